"""Retention and DeleteRecords move the log start offset; consumers start from it.

Topic configs go through confluent-kafka's AdminClient (CreateTopics with configs). Segments
are 1 KiB so that a few dozen batches make many segment files; the node checks retention twice
a second (log.retention.check.interval.ms=500). Kafka's rules: retention.bytes deletes the
oldest segments while the log without them is still ≥ retention.bytes; retention.ms deletes
segments whose newest record is older than retention.ms (the active one is rolled first); the
log start offset is then the first remaining segment's base offset. The module has its own
cluster because the DeleteRecords test restarts the node.
"""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import TopicPartition

from integration_helpers import (
    admin,
    create_topic,
    drain_confluent,
    drain_kafka_python,
    fetch_raw,
    list_offset,
    produce_raw,
    unique_topic,
    wait_until,
    wire,
)
from cluster.pytest_plugin import RunningCluster
from pykafka_ops.records.builder import RecordBatchBuilder

OFFSET_OUT_OF_RANGE = 1


def produce_batches(cluster: RunningCluster, topic: str, batches: int, per_batch: int = 5,
                    timestamp_ms: int | None = None) -> None:
    """``batches`` raw batches of ``per_batch`` ~100-byte records to partition 0."""
    with wire(cluster) as client:
        for _ in range(batches):
            builder = RecordBatchBuilder()
            for _ in range(per_batch):
                builder.append(None, b"x" * 100, timestamp_ms=timestamp_ms)
            assert produce_raw(client, topic, 0, builder.build()).error_code == 0


def segment_bases(cluster: RunningCluster, topic: str) -> list[int]:
    directory: Path = cluster.config.node_dir(1) / f"{topic}-0"
    return sorted(int(p.stem) for p in directory.glob("*.log"))


def segment_sizes(cluster: RunningCluster, topic: str) -> list[int]:
    """Sizes of the partition's .log files, oldest first."""
    directory: Path = cluster.config.node_dir(1) / f"{topic}-0"
    return [p.stat().st_size for p in sorted(directory.glob("*.log"))]


def earliest(cluster: RunningCluster, topic: str) -> int:
    return list_offset(cluster, topic, 0, -2).offset


def test_retention_bytes_deletes_old_segments_and_consumers_start_at_the_log_start(
        own_cluster: RunningCluster) -> None:
    topic = unique_topic("ret-bytes")
    create_topic(own_cluster, topic, partitions=1, config={"segment.bytes": "1024", "retention.bytes": "3000"})
    produce_batches(own_cluster, topic, 40)  # 200 records, ~22 KB, ~20 segments
    latest = list_offset(own_cluster, topic, 0, -1).offset
    assert latest == 200

    # Kafka's rule met: without its oldest segment the log would be below retention.bytes
    wait_until(lambda: 0 < sum(segment_sizes(own_cluster, topic)[1:]) < 3000, 15,
               "retention.bytes to delete the old segment files")
    start = earliest(own_cluster, topic)
    assert 0 < start < latest
    assert segment_bases(own_cluster, topic)[0] == start

    from_start = drain_confluent(own_cluster, topic, {0: latest}, starts={0: start})[0]
    assert [r.offset for r in from_start] == list(range(start, latest))
    kafka_python = drain_kafka_python(own_cluster, topic, {0: latest}, starts={0: start})[0]
    assert [r.offset for r in kafka_python] == list(range(start, latest))
    assert_consumers_begin_at(own_cluster, topic, start)


def assert_consumers_begin_at(cluster: RunningCluster, topic: str, start: int) -> None:
    """OFFSET_BEGINNING and a reset from a deleted offset both land on the log start."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KafkaTopicPartition

    for position in (OFFSET_BEGINNING, 0):
        consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": unique_topic("g"),
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, 0, position)])
        try:
            message = wait_until(lambda c=consumer: c.poll(0.2), 15, f"a record from position {position}")
            assert message.error() is None and message.offset() == start
        finally:
            consumer.close()

    kafka_consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap_servers, auto_offset_reset="earliest")
    tp = KafkaTopicPartition(topic, 0)
    kafka_consumer.assign([tp])
    try:
        kafka_consumer.seek_to_beginning(tp)
        assert kafka_consumer.position(tp) == start
        kafka_consumer.seek(tp, 0)  # below the log start: OFFSET_OUT_OF_RANGE, reset to earliest
        records = wait_until(lambda: kafka_consumer.poll(timeout_ms=200).get(tp), 15, "kafka-python records")
        assert records[0].offset == start
    finally:
        kafka_consumer.close()

    with wire(cluster) as client:
        below = fetch_raw(client, topic, 0, start - 1)
        assert below.error_code == OFFSET_OUT_OF_RANGE
        assert below.log_start_offset == start


def test_retention_ms_deletes_expired_segments_even_the_active_one(own_cluster: RunningCluster) -> None:
    topic = unique_topic("ret-ms")
    create_topic(own_cluster, topic, partitions=1, config={"segment.bytes": "1024", "retention.ms": "60000"})
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    produce_batches(own_cluster, topic, 10, timestamp_ms=an_hour_ago)  # 50 records, all expired

    wait_until(lambda: earliest(own_cluster, topic) == 50, 15, "retention.ms to delete every expired record")
    produce_batches(own_cluster, topic, 1)  # 5 new records, timestamped now
    assert list_offset(own_cluster, topic, 0, -1).offset == 55

    seen = drain_confluent(own_cluster, topic, {0: 55})[0]
    assert [r.offset for r in seen] == [50, 51, 52, 53, 54]
    assert earliest(own_cluster, topic) == 50, "fresh records are kept"


def test_delete_records_moves_the_low_watermark_and_survives_restarts(own_cluster: RunningCluster) -> None:
    topic = unique_topic("delete-records")
    create_topic(own_cluster, topic, partitions=1, config={"segment.bytes": "1024"})
    produce_batches(own_cluster, topic, 20)  # 100 records over ~10 segments

    client = admin(own_cluster)
    futures = client.delete_records([TopicPartition(topic, 0, 37)], request_timeout=15, operation_timeout=10)
    (future,) = futures.values()
    assert future.result(timeout=15).low_watermark == 37
    assert earliest(own_cluster, topic) == 37
    assert segment_bases(own_cluster, topic)[0] <= 37 < segment_bases(own_cluster, topic)[1]
    assert_consumers_begin_at(own_cluster, topic, 37)

    own_cluster.restart(1)  # clean stop and start
    assert earliest(own_cluster, topic) == 37
    own_cluster.kill(1, "KILL")
    own_cluster.restart(1)
    assert earliest(own_cluster, topic) == 37
    assert [r.offset for r in drain_confluent(own_cluster, topic, {0: 100}, starts={0: 37})[0]] == list(range(37, 100))

    # OFFSET_END (-1) deletes everything up to the high watermark. A new admin client: the old
    # one's connection died with the node, and librdkafka fails the leader lookup it is in.
    client = admin(own_cluster)
    futures = client.delete_records([TopicPartition(topic, 0, -1)], request_timeout=15, operation_timeout=10)
    (future,) = futures.values()
    assert future.result(timeout=15).low_watermark == 100
    assert earliest(own_cluster, topic) == 100
