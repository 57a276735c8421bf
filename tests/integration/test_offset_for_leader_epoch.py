"""OffsetForLeaderEpoch (key 23) and the leader-epoch checkpoint on a real node (KIP-101, KIP-320).

A single node takes a new leader epoch for its partitions at each restart (fenced, then unfenced
and elected again), so producing between restarts writes batches of several epochs. The answers
are Kafka's ``LeaderEpochFileCache.endOffsetFor``; the checkpoint file survives restarts, is
rebuilt from the log when missing (a data dir from before the cache, e.g. the upgrade fixtures),
and librdkafka, which validates its position with this request after a leader epoch change,
consumes across a restart as before.
"""

from __future__ import annotations

import logging
import tarfile
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from integration_helpers import (
    build_batch,
    create_topic,
    produce_raw,
    read_partition,
    unique_topic,
    wire,
)

from cluster.log.leader_epoch_cache import CHECKPOINT_FILE, LeaderEpochFileCache
from cluster.pytest_plugin import RunningCluster, start_cluster
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode
from pykafka_ops.records.batch import iter_batches

UPGRADE_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "upgrade" / "node-1-4eeeca0.tar.gz"


def offset_for_leader_epoch(cluster: RunningCluster, topic: str, leader_epoch: int, partition: int = 0,
                            current_leader_epoch: int = -1, version: int = 4) -> Any:
    """One partition's answer (error_code, leader_epoch, end_offset) to a consumer's request."""
    with wire(cluster) as client:
        response = client.request(ApiKey.OFFSET_FOR_LEADER_EPOCH, version, {
            "replica_id": -1, "topics": [{"topic": topic, "partitions": [{
                "partition": partition, "current_leader_epoch": current_leader_epoch,
                "leader_epoch": leader_epoch}]}]})
    (topic_answer,) = response.topics
    assert topic_answer.topic == topic
    (answer,) = topic_answer.partitions
    assert answer.partition == partition
    return answer


def leader_epoch(cluster: RunningCluster, topic: str, partition: int = 0) -> int:
    with wire(cluster) as client:
        response = client.request(ApiKey.METADATA, 12, {
            "topics": [{"name": topic, "topic_id": None}], "allow_auto_topic_creation": False,
            "include_topic_authorized_operations": False})
    return next(p.leader_epoch for p in response.topics[0].partitions if p.partition_index == partition)


def produce(cluster: RunningCluster, topic: str, batches: int, records: int = 3) -> list[int]:
    """Produce ``batches`` batches to partition 0; their base offsets."""
    with wire(cluster) as client:
        answers = [produce_raw(client, topic, 0, build_batch([b"v%d" % i for i in range(records)]))
                   for _ in range(batches)]
    assert all(a.error_code == 0 for a in answers)
    return [a.base_offset for a in answers]


def answer_of(found: Any) -> tuple[int, int, int]:
    return int(found.error_code), found.leader_epoch, found.end_offset


@pytest.fixture(scope="module")
def epochs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A node whose topic holds batches of three leader epochs: (cluster, topic, [(epoch, start)], end)."""
    with start_cluster("cluster: {name: ofle}\nnodes:\n  - {id: 1}\n", tmp_path_factory.mktemp("ofle")) as cluster:
        topic = unique_topic("epochs")
        create_topic(cluster, topic, partitions=1, config={"segment.bytes": "1024"})
        starts = []
        for round_ in range(3):
            if round_:
                cluster.restart(1)
            starts.append((leader_epoch(cluster, topic), produce(cluster, topic, 8)[0]))
        assert len({e for e, _s in starts}) == 3, f"each restart should take a new leader epoch: {starts}"
        yield cluster, topic, starts, starts[-1][1] + 24


def test_the_checkpoint_holds_each_epoch_and_its_start(epochs: Any) -> None:
    cluster, topic, starts, _end = epochs
    directory = cluster.config.node_dir(1) / f"{topic}-0"
    assert len(list(directory.glob("*.log"))) >= 3  # the batches span segments
    assert LeaderEpochFileCache.read(directory).entries == starts
    lines = (directory / CHECKPOINT_FILE).read_text().splitlines()
    assert lines == ["0", "3"] + [f"{e} {s}" for e, s in starts]  # Kafka's format


@pytest.mark.parametrize("version", [2, 3, 4])
def test_end_offsets_of_each_epoch(epochs: Any, version: int) -> None:
    cluster, topic, ((e0, _s0), (e1, s1), (e2, s2)), end = epochs

    def ask(epoch: int) -> tuple[int, int, int]:
        return answer_of(offset_for_leader_epoch(cluster, topic, epoch, version=version))

    assert ask(e0) == (0, e0, s1)  # an older epoch ends where the next begins
    assert ask(e1) == (0, e1, s2)
    assert ask(e2) == (0, e2, end)  # the latest ends at the log end
    assert ask(e0 + 1) == (0, e0, s1)  # an epoch that wrote nothing: the one before it
    assert ask(e2 + 5) == (0, -1, -1)  # above every known epoch
    assert ask(-1) == (0, -1, -1)


def test_current_leader_epoch_is_checked(epochs: Any) -> None:
    cluster, topic, starts, _end = epochs
    current = leader_epoch(cluster, topic)
    assert answer_of(offset_for_leader_epoch(cluster, topic, starts[0][0], current_leader_epoch=current)) == (
        0, starts[0][0], starts[1][1])
    fenced = offset_for_leader_epoch(cluster, topic, starts[0][0], current_leader_epoch=current - 1)
    assert answer_of(fenced) == (ErrorCode.fenced_leader_epoch, -1, -1)
    unknown = offset_for_leader_epoch(cluster, topic, starts[0][0], current_leader_epoch=current + 1, version=2)
    assert answer_of(unknown) == (ErrorCode.unknown_leader_epoch, -1, -1)


def test_partitions_not_held_here(epochs: Any) -> None:
    cluster, topic, _starts, _end = epochs
    assert answer_of(offset_for_leader_epoch(cluster, "no-such-topic", 0)) == (
        ErrorCode.unknown_topic_or_partition, -1, -1)
    assert answer_of(offset_for_leader_epoch(cluster, topic, 0, partition=7)) == (
        ErrorCode.unknown_topic_or_partition, -1, -1)


def test_a_missing_checkpoint_is_rebuilt_at_start_up(epochs: Any) -> None:
    cluster, topic, starts, end = epochs
    directory = cluster.config.node_dir(1) / f"{topic}-0"
    cluster.kill(1, "TERM")
    (directory / CHECKPOINT_FILE).unlink()  # as a data dir written before the cache existed
    cluster.restart(1)
    # rebuilt from the batches, plus the epoch the restarted node leads in from the log end on
    # (Kafka's makeLeader assigns it before anything is appended)
    assert LeaderEpochFileCache.read(directory).entries == [*starts, (leader_epoch(cluster, topic), end)]
    (e0, _s0), (_e1, s1), (e2, _s2) = starts
    assert answer_of(offset_for_leader_epoch(cluster, topic, e0)) == (0, e0, s1)
    assert answer_of(offset_for_leader_epoch(cluster, topic, e2)) == (0, e2, end)


def test_librdkafka_consumes_across_a_leader_epoch_change(epochs: Any) -> None:
    """librdkafka validates its position with OffsetForLeaderEpoch once the leader epoch changes
    (KIP-320); with a correct answer it goes on from where it was, losing and repeating nothing."""
    cluster, _topic, _starts, _end = epochs
    topic = unique_topic("validate")
    create_topic(cluster, topic, partitions=1)
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
    for i in range(20):
        producer.produce(topic, b"before-%d" % i, partition=0)
    assert producer.flush(15) == 0
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger(f"rdkafka.{topic}")
    logger.addHandler(Capture())
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": unique_topic("g"),
                         "enable.auto.commit": False, "auto.offset.reset": "error",
                         "topic.metadata.refresh.interval.ms": 500, "debug": "protocol,fetch,consumer"},
                        logger=logger)
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values = _consume(consumer, 20)
        cluster.restart(1)  # a new leader epoch
        producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
        for i in range(20):
            producer.produce(topic, b"after-%d" % i, partition=0)
        assert producer.flush(30) == 0
        values += _consume(consumer, 20)
    finally:
        consumer.close()
    assert values == [b"before-%d" % i for i in range(20)] + [b"after-%d" % i for i in range(20)]
    assert any("Sent OffsetForLeaderEpochRequest" in line for line in lines), "librdkafka never validated"
    assert any("epoch validation succeeded" in line for line in lines), [l for l in lines if "VALID" in l]


def _consume(consumer: Consumer, count: int, timeout_polls: int = 120) -> list[bytes]:
    values: list[bytes] = []
    for _ in range(timeout_polls):
        for message in consumer.consume(count - len(values), 0.5):
            assert message.error() is None, message.error()
            values.append(message.value())
        if len(values) >= count:
            return values
    raise AssertionError(f"consumed {len(values)} of {count}")


def test_an_upgraded_data_dir_starts_with_a_correct_cache(tmp_path: Path) -> None:
    """The upgrade fixture (written before the cache existed) has no checkpoint files; each
    partition gets one rebuilt from its batches' partitionLeaderEpoch."""
    data = tmp_path / "data"
    data.mkdir()
    with tarfile.open(UPGRADE_FIXTURE) as tar:
        tar.extractall(data, filter="data")
    node_dir = data / "node-1"
    assert not list(node_dir.glob(f"*/{CHECKPOINT_FILE}"))
    expected = {}
    for partition in range(3):
        headers = [h for segment in sorted((node_dir / f"orders-{partition}").glob("*.log"))
                   for _pos, h in iter_batches(segment.read_bytes())]
        epoch_starts: list[tuple[int, int]] = []
        for header in headers:
            if not epoch_starts or header.partition_leader_epoch > epoch_starts[-1][0]:
                epoch_starts.append((header.partition_leader_epoch, header.base_offset))
        assert epoch_starts, "the fixture's partitions hold batches"
        expected[partition] = epoch_starts
    with start_cluster("cluster: {name: upgraded}\nnodes:\n  - {id: 1}\n", tmp_path) as cluster:
        for partition, epoch_starts in expected.items():
            assert LeaderEpochFileCache.read(node_dir / f"orders-{partition}").entries == epoch_starts
            log_end = len(read_partition(cluster, "orders", partition))
            found = offset_for_leader_epoch(cluster, "orders", epoch_starts[-1][0], partition=partition)
            assert answer_of(found) == (0, epoch_starts[-1][0], log_end)
