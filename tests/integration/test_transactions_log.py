"""The log side of transactions (issue 17 item 2, KIP-98) on real nodes, with raw requests.

Transactional batches are built with our RecordBatchBuilder (a producer id from InitProducerId,
the transactional bit), sent with a transactional id (without one Produce answers
TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as Kafka) and ended with WriteTxnMarkers v1, as a
transaction coordinator does (no coordinator is involved: the log side alone).
Checked: the last stable offset stops read_committed Fetch and ListOffsets at an open
transaction; read_committed answers list the aborted transactions of the range, and a
confluent-kafka read_committed consumer skips aborted records while read_uncommitted sees them;
WriteTxnMarkers' per-partition errors; the open transaction and the ``.txnindex`` survive kill -9;
on three nodes markers are replicated and a new leader after failover has the same LSO and
aborted transactions.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, TopicPartition
from faults.cluster_ops import (
    kill9,
    leader_of,
    restart,
    wait_for_full_isr,
    wait_for_leader,
)
from integration_helpers import (
    build_batch,
    create_topic,
    fetch_raw,
    init_producer_id,
    list_offset,
    produce_raw,
    unique_topic,
    wire,
)

from cluster.pytest_plugin import ClusterFactory, RunningCluster, wait_until
from pykafka_ops.client.wire import WireClient
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records.batch import RecordBatch, iter_batches
from pykafka_ops.services.dump_log import iter_log

READ_COMMITTED = 1
UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER, TRANSACTION_COORDINATOR_FENCED = 3, 6, 52
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
TXN_ID = "txn-log-test"


def _txn_batch(pid: int, epoch: int, seq: int, values: list[bytes]) -> bytes:
    return build_batch(values, producer_id=pid, producer_epoch=epoch, base_sequence=seq, is_transactional=True)


def _markers(client: WireClient, pid: int, epoch: int, commit: bool, topic: str, partitions: list[int],
             coordinator_epoch: int = 0) -> list[int]:
    """WriteTxnMarkers v1 for one producer: the partitions' error codes."""
    answer = client.request(ApiKey.WRITE_TXN_MARKERS, 1, {"markers": [{
        "producer_id": pid, "producer_epoch": epoch, "transaction_result": commit,
        "coordinator_epoch": coordinator_epoch, "topics": [{"name": topic, "partition_indexes": partitions}]}]})
    (marker,) = answer.markers
    return [p.error_code for t in marker.topics for p in t.partitions]


def _consume(cluster: RunningCluster, topic: str, isolation: str, end: int) -> list[bytes]:
    """Values a confluent-kafka consumer of ``isolation`` reads from partition 0 up to ``end``."""
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": unique_topic("g"),
                         "isolation.level": isolation, "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[bytes] = []

        def reached() -> bool:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                values.append(message.value())
            position = consumer.position([TopicPartition(topic, 0)])[0].offset
            return position >= end
        wait_until(reached, 20, f"{isolation} consumer at offset {end}")
        return values
    finally:
        consumer.close()


def _values(answer: Any) -> list[bytes]:
    """Values of the data records of a Fetch answer (control batches skipped, as clients do)."""
    data = answer.records or b""
    return [r.value for pos, header in iter_batches(data) if not header.is_control
            for r in RecordBatch(data, pos).records()]


def _committed_view(client: WireClient, topic: str) -> tuple[int, list[tuple[int, int]], list[bytes]]:
    """(last stable offset, aborted (pid, first offset), values) of a read_committed Fetch."""
    answer = fetch_raw(client, topic, 0, 0, isolation_level=READ_COMMITTED)
    assert answer.error_code == 0, answer
    aborted = [(t.producer_id, t.first_offset) for t in answer.aborted_transactions or ()]
    return answer.last_stable_offset, aborted, _values(answer)


def test_markers_lso_read_committed_and_restart(pko_cluster_factory: ClusterFactory) -> None:
    cluster = pko_cluster_factory()
    topic = unique_topic("txlog")
    create_topic(cluster, topic, partitions=1)
    with wire(cluster) as client:
        (a, ea), (b, eb), (c, ec) = (init_producer_id(client) for _ in range(3))
        assert produce_raw(client, topic, 0, _txn_batch(a, ea, 0, [b"a0", b"a1"]),
                           transactional_id=TXN_ID).error_code == 0  # 0-1
        assert produce_raw(client, topic, 0, _txn_batch(b, eb, 0, [b"b0", b"b1"]),
                           transactional_id=TXN_ID).error_code == 0  # 2-3
        assert _markers(client, a, ea, True, topic, [0]) == [0]  # 4
        assert _markers(client, b, eb, False, topic, [0], coordinator_epoch=2) == [0]  # 5
        no_id = produce_raw(client, topic, 0, _txn_batch(c, ec, 0, [b"c0"]))  # as Kafka: refused, not appended
        assert no_id.error_code == TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert produce_raw(client, topic, 0, _txn_batch(c, ec, 0, [b"c0"]),
                           transactional_id=TXN_ID).error_code == 0  # 6, left open
        assert produce_raw(client, topic, 0, build_batch([b"n0"])).error_code == 0  # 7
        # WriteTxnMarkers errors: no such partition, a coordinator epoch older than the last marker's
        assert _markers(client, b, eb, False, topic, [5]) == [UNKNOWN_TOPIC_OR_PARTITION]
        assert _markers(client, b, eb, False, topic, [0], coordinator_epoch=1) == [TRANSACTION_COORDINATOR_FENCED]

        assert _committed_view(client, topic) == (6, [(b, 2)], [b"a0", b"a1", b"b0", b"b1"])
        uncommitted = fetch_raw(client, topic, 0, 0)
        assert uncommitted.last_stable_offset == 6 and not uncommitted.aborted_transactions
        assert _values(uncommitted) == [b"a0", b"a1", b"b0", b"b1", b"c0", b"n0"]
    assert list_offset(cluster, topic, 0, -1, isolation_level=READ_COMMITTED).offset == 6
    assert list_offset(cluster, topic, 0, -1).offset == 8
    assert _consume(cluster, topic, "read_committed", 6) == [b"a0", b"a1"]  # aborted b* skipped
    assert _consume(cluster, topic, "read_uncommitted", 8) == [b"a0", b"a1", b"b0", b"b1", b"c0", b"n0"]

    cluster.kill(1)  # kill -9: the open transaction and the .txnindex come back from the disk
    cluster.restart(1)
    with wire(cluster) as client:
        assert _committed_view(client, topic) == (6, [(b, 2)], [b"a0", b"a1", b"b0", b"b1"])
        assert _markers(client, c, ec, True, topic, [0]) == [0]  # 8
        lso, aborted, values = _committed_view(client, topic)
    assert (lso, aborted) == (9, [(b, 2)])
    assert _consume(cluster, topic, "read_committed", 9) == [b"a0", b"a1", b"c0", b"n0"]
    segment = next((cluster.config.data_dir / "node-1").rglob(f"{topic}-0/00000000000000000000.log"))
    controls = [r.control for batch in iter_log(segment, deep=True) for r in batch.records if r.control]
    assert controls == ["endTxnMarker: COMMIT coordinatorEpoch: 0", "endTxnMarker: ABORT coordinatorEpoch: 2",
                        "endTxnMarker: COMMIT coordinatorEpoch: 0"]  # as kafka-dump-log prints them
    assert (segment.with_suffix(".txnindex")).stat().st_size == 34  # one aborted transaction


THREE_NODES_YAML = """\
cluster: {name: txn-log}
nodes:
  - {id: 1}
  - {id: 2}
  - {id: 3}
broker:
  offsets.topic.num.partitions: 1
topics:
  - {name: txn-replicated, partitions: 1, replication.factor: 3, config: {min.insync.replicas: 2}}
"""


def _on(cluster: RunningCluster, node: int, call: Any) -> Any:
    with wire(cluster, node) as client:
        return call(client)


def test_markers_are_replicated_and_the_lso_survives_failover(pko_cluster_factory: ClusterFactory) -> None:
    cluster = pko_cluster_factory(THREE_NODES_YAML)
    topic = "txn-replicated"
    wait_for_full_isr(cluster, topic)
    leader = leader_of(cluster, topic, 0)
    (a, ea), (b, eb) = (_on(cluster, leader, init_producer_id) for _ in range(2))
    produce = lambda pid, epoch, values: lambda client: produce_raw(  # noqa: E731
        client, topic, 0, _txn_batch(pid, epoch, 0, values), transactional_id=TXN_ID).error_code
    assert _on(cluster, leader, produce(a, ea, [b"a0", b"a1"])) == 0  # 0-1, acks=all
    assert _on(cluster, leader, lambda cl: _markers(cl, a, ea, False, topic, [0])) == [0]  # 2, replicated
    assert _on(cluster, leader, produce(b, eb, [b"b0"])) == 0  # 3, left open
    follower = next(n for n in (1, 2, 3) if n != leader)
    assert _on(cluster, follower, lambda cl: _markers(cl, a, ea, True, topic, [0])) == [NOT_LEADER_OR_FOLLOWER]
    assert _on(cluster, leader, lambda cl: _committed_view(cl, topic)) == (3, [(a, 0)], [b"a0", b"a1"])

    kill9(cluster, leader)
    new_leader, _ = wait_for_leader(cluster, topic, 0, not_on=[leader])
    view = wait_until(lambda: _on(cluster, new_leader, lambda cl: _committed_view(cl, topic)), 15,
                      "a read_committed fetch from the new leader")
    assert view == (3, [(a, 0)], [b"a0", b"a1"])
    assert _on(cluster, new_leader, lambda cl: _markers(cl, b, eb, True, topic, [0])) == [0]  # 4
    assert _on(cluster, new_leader, lambda cl: _committed_view(cl, topic))[0] == 5
    restart(cluster, leader)
