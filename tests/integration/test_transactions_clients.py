"""Transactions with real clients (issue 17 item 1, KIP-98, transaction version 1).

confluent-kafka's (librdkafka's), kafka-python's and aiokafka's transactional producers against
the wired transaction coordinator: commit and abort as read_committed and read_uncommitted
consumers see them; raw requests get Kafka's answers (advertised ranges, AddPartitionsToTxn's
unknown partitions, PRODUCER_FENCED / INVALID_PRODUCER_EPOCH by version); a second producer
with the same ``transactional.id`` fences the first (its commit fails fatally, none of its
records reach read_committed); a transaction left open past its ``transaction.timeout.ms`` is
aborted by the coordinator; on three nodes (``__transaction_state``
RF 3) the transactional id's state survives kill -9 of its coordinator's node. Two clusters in
all: one node for the module, three nodes for the failover test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Producer,
    TopicPartition,
)
from faults.cluster_ops import brokers, kill9, poll_until, wait_for_leader
from integration_helpers import create_topic, list_offset, unique_topic

from cluster.pytest_plugin import (
    ClusterFactory,
    RunningCluster,
    start_cluster,
    wait_until,
)
from pykafka_ops.client.wire import WireClient
from pykafka_ops.protocol.api_keys import ApiKey

READ_COMMITTED = 1
TRANSACTION = 1  # FindCoordinator key type

ONE_NODE_YAML = """\
cluster: {name: txn-clients}
nodes:
  - {id: 1}
broker:
  offsets.topic.num.partitions: 1
  transaction.state.log.num.partitions: 5
  transaction.abort.timed.out.transaction.cleanup.interval.ms: 500
"""

THREE_NODES_YAML = """\
cluster: {name: txn-failover}
nodes:
  - {id: 1}
  - {id: 2}
  - {id: 3}
broker:
  offsets.topic.num.partitions: 1
  transaction.state.log.num.partitions: 3
topics:
  - {name: txn-failover, partitions: 1, replication.factor: 3, config: {min.insync.replicas: 2}}
"""


@pytest.fixture(scope="module")
def txn_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """One node whose coordinator aborts timed-out transactions within about a second."""
    with start_cluster(ONE_NODE_YAML, tmp_path_factory.mktemp("txn-clients")) as running:
        yield running


def _producer(cluster: RunningCluster, transactional_id: str, **extra: object) -> Producer:
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "transactional.id": transactional_id,
                         **extra})
    producer.init_transactions(30)
    return producer


def _produce(producer: Producer, topic: str, values: list[bytes], partition: int = 0) -> None:
    for value in values:
        producer.produce(topic, value, partition=partition)
    assert producer.flush(30) == 0


def _read(cluster: RunningCluster, topic: str, isolation: str, partitions: int = 1, node: int = 1) -> list[bytes]:
    """Every value an ``isolation`` consumer reads from the partitions up to their high watermark
    (read_committed stops at the LSO, so the caller waits for the transactions to end first)."""
    level = READ_COMMITTED if isolation == "read_committed" else 0
    ends = {p: list_offset(cluster, topic, p, -1, level, node).offset for p in range(partitions)}
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": unique_topic("txn-reader"),
                         "isolation.level": isolation, "enable.auto.commit": False})
    values: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])

        def reached() -> bool:
            for message in consumer.consume(100, 0.2):
                assert message.error() is None, message.error()
                values.append(message.value())
            positions = consumer.position([TopicPartition(topic, p) for p in ends])
            return all(tp.offset >= ends[tp.partition] for tp in positions)
        wait_until(reached, 20, f"a {isolation} consumer of {topic} at {ends}")
    finally:
        consumer.close()
    return values


def _stable(cluster: RunningCluster, topic: str, partition: int = 0, node: int = 1) -> bool:
    """No open transaction on the partition: its LSO is its high watermark (asked of ``node``, its leader)."""
    return (list_offset(cluster, topic, partition, -1, READ_COMMITTED, node).offset
            == list_offset(cluster, topic, partition, -1, 0, node).offset)


def test_commit_and_abort_as_read_committed_and_read_uncommitted_see_them(txn_cluster: RunningCluster) -> None:
    topic = unique_topic("txn-commit")
    create_topic(txn_cluster, topic, partitions=2)
    producer = _producer(txn_cluster, unique_topic("tid"))
    producer.begin_transaction()
    _produce(producer, topic, [b"c0", b"c1"], partition=0)
    _produce(producer, topic, [b"c2"], partition=1)
    producer.commit_transaction(30)
    producer.begin_transaction()
    _produce(producer, topic, [b"a0", b"a1"], partition=0)
    _produce(producer, topic, [b"a2"], partition=1)
    producer.abort_transaction(30)
    producer.begin_transaction()
    _produce(producer, topic, [b"c3"], partition=1)
    producer.commit_transaction(30)
    wait_until(lambda: _stable(txn_cluster, topic, 0) and _stable(txn_cluster, topic, 1), 10, "markers written")
    # three transactions on partition 1, two on partition 0: each ended by one control record
    assert list_offset(txn_cluster, topic, 0, -1).offset == 2 + 1 + 2 + 1
    assert list_offset(txn_cluster, topic, 1, -1).offset == 1 + 1 + 1 + 1 + 1 + 1
    assert sorted(_read(txn_cluster, topic, "read_committed", 2)) == [b"c0", b"c1", b"c2", b"c3"]
    assert sorted(_read(txn_cluster, topic, "read_uncommitted", 2)) == [b"a0", b"a1", b"a2", b"c0", b"c1",
                                                                        b"c2", b"c3"]


def test_a_zombie_is_fenced_and_none_of_its_records_are_committed(txn_cluster: RunningCluster) -> None:
    topic = unique_topic("txn-zombie")
    create_topic(txn_cluster, topic, partitions=1)
    transactional_id = unique_topic("tid-zombie")
    zombie = _producer(txn_cluster, transactional_id)
    zombie.begin_transaction()
    _produce(zombie, topic, [b"zombie-0", b"zombie-1"])
    successor = _producer(txn_cluster, transactional_id)  # bumps the epoch, aborts the zombie's transaction
    with pytest.raises(KafkaException) as raised:
        zombie.commit_transaction(30)
    error = raised.value.args[0]
    assert error.fatal(), error
    assert "fenced" in error.str().lower() or "epoch" in error.str().lower(), error
    successor.begin_transaction()
    _produce(successor, topic, [b"successor"])
    successor.commit_transaction(30)
    wait_until(lambda: _stable(txn_cluster, topic), 10, "markers written")
    assert _read(txn_cluster, topic, "read_committed") == [b"successor"]
    assert _read(txn_cluster, topic, "read_uncommitted") == [b"zombie-0", b"zombie-1", b"successor"]


def test_kafka_python_transactional_producer_commits(txn_cluster: RunningCluster) -> None:
    from kafka import KafkaProducer

    topic = unique_topic("txn-kafka-python")
    create_topic(txn_cluster, topic, partitions=1)
    producer = KafkaProducer(bootstrap_servers=txn_cluster.bootstrap_servers,
                             transactional_id=unique_topic("tid-kp"))
    try:
        producer.init_transactions()
        producer.begin_transaction()
        for value in (b"kp0", b"kp1"):
            producer.send(topic, value, partition=0)
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send(topic, b"kp-aborted", partition=0)
        producer.flush(timeout=10)  # written, then aborted (an unsent record would just be dropped)
        producer.abort_transaction()
    finally:
        producer.close(timeout=10)
    wait_until(lambda: _stable(txn_cluster, topic), 10, "markers written")
    assert _read(txn_cluster, topic, "read_committed") == [b"kp0", b"kp1"]
    assert _read(txn_cluster, topic, "read_uncommitted") == [b"kp0", b"kp1", b"kp-aborted"]


def test_a_transaction_open_past_its_timeout_is_aborted(txn_cluster: RunningCluster) -> None:
    topic = unique_topic("txn-timeout")
    create_topic(txn_cluster, topic, partitions=1)
    producer = _producer(txn_cluster, unique_topic("tid-timeout"), **{"transaction.timeout.ms": 2000})
    producer.begin_transaction()
    _produce(producer, topic, [b"left-open"])
    assert not _stable(txn_cluster, topic)  # the LSO is held at the open transaction
    started = time.monotonic()
    poll_until(lambda: _stable(txn_cluster, topic), 15, "the coordinator's abort of the open transaction")
    assert time.monotonic() - started < 10
    with pytest.raises(KafkaException):  # its epoch was bumped by the abort
        producer.commit_transaction(10)
    assert list_offset(txn_cluster, topic, 0, -1).offset == 2  # the record and the ABORT marker
    assert _read(txn_cluster, topic, "read_committed") == []


def _txn_coordinator(cluster: RunningCluster, transactional_id: str, via: list[int]) -> int | None:
    """The node FindCoordinator (key type 1) names for ``transactional_id``, asked of ``via``."""
    for node in via:
        try:
            with WireClient(cluster.config.host, cluster.config.node(node).port, timeout=3) as client:
                answer = client.request(ApiKey.FIND_COORDINATOR, 3, {"key": transactional_id,
                                                                     "key_type": TRANSACTION})
        except (OSError, ConnectionError, TimeoutError):
            continue
        if answer.error_code == 0:
            return int(answer.node_id)
    return None


def _init_producer_id(cluster: RunningCluster, node: int, transactional_id: str) -> tuple[int, int] | None:
    """A raw InitProducerId v4 with ``transactional_id`` to ``node``: (producer id, epoch), or None
    on a retriable error (the coordinator still loading or moving)."""
    try:
        with WireClient(cluster.config.host, cluster.config.node(node).port, timeout=10) as client:
            answer = client.request(ApiKey.INIT_PRODUCER_ID, 4, {
                "transactional_id": transactional_id, "transaction_timeout": 60000, "producer_id": -1,
                "producer_epoch": -1})
    except (OSError, ConnectionError, TimeoutError):
        return None
    return (answer.producer_id, answer.producer_epoch) if answer.error_code == 0 else None


def test_three_nodes_commit_survives_the_coordinators_kill9(pko_cluster_factory: ClusterFactory) -> None:
    cluster = pko_cluster_factory(THREE_NODES_YAML)
    topic, transactional_id = "txn-failover", "tid-failover"
    first = _producer(cluster, transactional_id)  # epoch 0
    first.begin_transaction()
    _produce(first, topic, [b"before-0", b"before-1"])
    first.commit_transaction(30)
    coordinator = _txn_coordinator(cluster, transactional_id, brokers(cluster))
    assert coordinator is not None
    kill9(cluster, coordinator)
    survivors = [n for n in brokers(cluster) if n != coordinator]
    successor, _ = poll_until(
        lambda: (_txn_coordinator(cluster, transactional_id, survivors) or coordinator) != coordinator
        and _txn_coordinator(cluster, transactional_id, survivors), 20, "a new transaction coordinator")
    # the id's producer id and epoch were loaded from the replica: a bump, not a new id at epoch 0
    (_pid, epoch), _ = poll_until(lambda: _init_producer_id(cluster, successor, transactional_id), 20,
                                  "InitProducerId at the new coordinator")
    assert epoch == 1
    second = _producer(cluster, transactional_id)  # epoch 2
    second.begin_transaction()
    _produce(second, topic, [b"after"])
    second.commit_transaction(30)
    leader, _ = wait_for_leader(cluster, topic, 0, not_on=[coordinator])
    wait_until(lambda: _stable(cluster, topic, 0, leader), 10, "markers written")
    assert _read(cluster, topic, "read_committed", 1, leader) == [b"before-0", b"before-1", b"after"]


def test_raw_transaction_requests_get_kafkas_answers(txn_cluster: RunningCluster) -> None:
    """Advertised ranges, AddPartitionsToTxn's unknown partitions, fencing errors per version."""
    topic = unique_topic("txn-raw")
    create_topic(txn_cluster, topic, partitions=1)
    transactional_id = unique_topic("tid-raw")
    with WireClient(txn_cluster.config.host, txn_cluster.config.node(1).port, timeout=10) as client:
        versions = {k.api_key: (k.min_version, k.max_version)
                    for k in client.request(ApiKey.API_VERSIONS, 3, {"client_software_name": "t",
                                                                    "client_software_version": "1"}).api_keys}
        assert [versions[k] for k in (ApiKey.INIT_PRODUCER_ID, ApiKey.ADD_PARTITIONS_TO_TXN,
                                      ApiKey.ADD_OFFSETS_TO_TXN, ApiKey.END_TXN)] == [(0, 4), (0, 3), (0, 3), (0, 3)]

        def init(timeout_ms: int = 60000) -> tuple[int, int, int]:
            answer = client.request(ApiKey.INIT_PRODUCER_ID, 4, {
                "transactional_id": transactional_id, "transaction_timeout": timeout_ms, "producer_id": -1,
                "producer_epoch": -1})
            return answer.error_code, answer.producer_id, answer.producer_epoch

        def add(version: int, pid: int, epoch: int, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
            answer = client.request(ApiKey.ADD_PARTITIONS_TO_TXN, version, {
                "v3_and_below_transactional_id": transactional_id, "v3_and_below_producer_id": pid,
                "v3_and_below_producer_epoch": epoch,
                "v3_and_below_topics": [{"name": name, "partitions": [index]} for name, index in partitions]})
            return {(t.name, p.partition_index): p.partition_error_code
                    for t in answer.results_by_topic_v3_and_below for p in t.results_by_partition}

        def end(version: int, pid: int, epoch: int, commit: bool) -> int:
            return client.request(ApiKey.END_TXN, version, {"transactional_id": transactional_id, "producer_id": pid,
                                                            "producer_epoch": epoch, "committed": commit}).error_code

        # as clients do: FindCoordinator first (it creates __transaction_state; until its partition
        # is loaded, InitProducerId answers NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS)
        wait_until(lambda: _txn_coordinator(txn_cluster, transactional_id, [1]) == 1, 10, "FindCoordinator")
        assert init(900_001)[0] == 50  # INVALID_TRANSACTION_TIMEOUT: above transaction.max.timeout.ms
        error, pid, epoch = wait_until(lambda: (lambda a: a if a[0] == 0 else None)(init()), 10, "InitProducerId")
        assert end(3, pid, epoch, True) == 48  # INVALID_TXN_STATE: no transaction open
        assert add(3, pid, epoch, [(topic, 0), (topic, 7)]) == {(topic, 0): 55, (topic, 7): 3}
        assert add(3, pid, epoch, [(topic, 0)]) == {(topic, 0): 0}
        assert end(3, pid, epoch, False) == 0
        assert wait_until(lambda: (lambda a: a if a[0] == 0 else None)(init()), 10, "a second InitProducerId")[1:] \
            == (pid, epoch + 1)
        assert add(3, pid, epoch, [(topic, 0)]) == {(topic, 0): 90}  # PRODUCER_FENCED
        assert add(1, pid, epoch, [(topic, 0)]) == {(topic, 0): 47}  # INVALID_PRODUCER_EPOCH before v2
        assert end(1, pid, epoch, True) == 47


def test_aiokafka_transactional_producer_commits_and_aborts(txn_cluster: RunningCluster) -> None:
    import asyncio

    from aiokafka import AIOKafkaProducer

    topic = unique_topic("txn-aiokafka")
    create_topic(txn_cluster, topic, partitions=1)

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=txn_cluster.bootstrap_servers,
                                    transactional_id=unique_topic("tid-aio"))
        await producer.start()
        try:
            async with producer.transaction():
                for value in (b"aio0", b"aio1"):
                    await producer.send_and_wait(topic, value, partition=0)
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"aio-aborted", partition=0)
            await producer.abort_transaction()
        finally:
            await producer.stop()

    asyncio.run(run())
    wait_until(lambda: _stable(txn_cluster, topic), 10, "markers written")
    assert _read(txn_cluster, topic, "read_committed") == [b"aio0", b"aio1"]
    assert _read(txn_cluster, topic, "read_uncommitted") == [b"aio0", b"aio1", b"aio-aborted"]
