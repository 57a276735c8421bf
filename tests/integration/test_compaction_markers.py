"""The log cleaner removes transaction markers on a real node (issue 17 item 2, KIP-98, KIP-534).

A confluent-kafka transactional producer aborts one transaction and commits two on a compacted
topic (the second commit overwrites the first's keys); filler records roll the segments. The
cleaner drops the aborted records, stamps the two markers whose transactions have no data left
with a delete horizon, and removes them once delete.retention.ms has passed; the marker of the
transaction whose records survive stays. A read_committed consumer then reads exactly the
committed latest values, and the broker lists no aborted transaction any more.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from integration_helpers import create_topic, fetch_raw, unique_topic, wire

from cluster.pytest_plugin import RunningCluster, start_cluster, wait_until
from pykafka_ops.records.batch import RecordBatch, iter_batches

CLUSTER_YAML = """\
cluster: {name: compaction-markers}
nodes:
  - {id: 1}
broker:
  offsets.topic.num.partitions: 1
  transaction.state.log.num.partitions: 1
  log.cleaner.backoff.ms: 0
"""
#: Tiny segments roll often; a marker with no data left is removed 2 s after its first cleaning.
TABLE_CONFIG = {"cleanup.policy": "compact", "segment.bytes": "1024", "delete.retention.ms": "2000"}
KEYS = [b"k%d" % i for i in range(5)]
READ_COMMITTED = 1


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with start_cluster(CLUSTER_YAML, tmp_path_factory.mktemp("compaction-markers")) as running:
        yield running


def _log(cluster: RunningCluster, topic: str, isolation_level: int = 0) -> tuple[list, list, list]:
    """(control batch headers, data records, aborted transactions listed) of partition 0, read with
    Fetch from offset 0 to the high watermark (read_committed: the LSO), one segment at a time."""
    controls, records, aborted = [], [], []
    offset = 0
    with wire(cluster) as client:
        while True:
            answer = fetch_raw(client, topic, 0, offset, max_bytes=16 << 20, isolation_level=isolation_level)
            data = answer.records or b""
            batches = list(iter_batches(data))
            if not batches:
                return controls, records, aborted
            aborted += answer.aborted_transactions or []
            controls += [h for _pos, h in batches if h.is_control and h.records_count]
            records += [r for pos, h in batches if not h.is_control for r in RecordBatch(data, pos).records()]
            offset = batches[-1][1].last_offset + 1


def test_the_cleaner_removes_markers_once_their_transactions_have_no_data(cluster: RunningCluster) -> None:
    topic = unique_topic("txn-table")
    create_topic(cluster, topic, partitions=1, config=TABLE_CONFIG)
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "transactional.id": unique_topic("tid"),
                         "linger.ms": 0})
    producer.init_transactions(30)
    for version, commit in (("aborted", False), ("v1", True), ("v2", True)):
        producer.begin_transaction()
        for key in KEYS:
            producer.produce(topic, key=key, value=version.encode(), partition=0)
        assert producer.flush(15) == 0
        (producer.commit_transaction if commit else producer.abort_transaction)(30)
    assert len(_log(cluster, topic)[0]) == 3  # at most stamped so far: none is removed within 2 s
    plain = Producer({"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 0, "batch.num.messages": 1})
    for i in range(40):  # unrelated keys roll the transactions out of the active segment
        plain.produce(topic, key=b"filler-%d" % i, value=b"x" * 50, partition=0)
    assert plain.flush(15) == 0

    def cleaned() -> bool:
        controls, records, _aborted = _log(cluster, topic)
        return len(controls) == 1 and not [r for r in records if r.value == b"aborted"]

    wait_until(cleaned, 15, "the aborted records and the two markers without data removed")
    controls, records, aborted = _log(cluster, topic, READ_COMMITTED)
    assert not aborted
    table = {r.key: r.value for r in records}
    assert {k: table[k] for k in KEYS} == {k: b"v2" for k in KEYS}
    assert len([k for k in table if k.startswith(b"filler-")]) == 40
    producer.begin_transaction()  # the producer lives on: its state survived the cleaning
    producer.produce(topic, key=b"k0", value=b"v3", partition=0)
    producer.commit_transaction(30)
    assert {r.key: r.value for r in _log(cluster, topic, READ_COMMITTED)[1]}[b"k0"] == b"v3"
