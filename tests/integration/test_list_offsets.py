"""ListOffsets through three clients: earliest, latest, by timestamp, max timestamp.

The topic has 1 KiB segments (segment.bytes=1024, ~8 batches each) so lookups cross
segment files; record timestamps rise by 10 ms except one record in the middle that carries
the largest timestamp of all. Kafka's rules: by timestamp → the first offset whose timestamp is
≥ the target (so the out-of-order record wins for targets above the others); max timestamp
(-3, KIP-734) → that record's offset; a target above every timestamp → no offset.
"""

from __future__ import annotations

import time

import pytest

from integration_helpers import create_topic, list_offset, produce_raw, unique_topic, wire
from cluster.pytest_plugin import RunningCluster
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records.builder import RecordBatchBuilder

RECORDS = 100
PER_BATCH = 5
PEAK_OFFSET = 57


@pytest.fixture(scope="module")
def timeline(cluster: RunningCluster) -> tuple[str, int]:
    """(topic, first timestamp): record i at T0 + 10 i, except record 57 at T0 + 5000."""
    topic = unique_topic("offsets")
    create_topic(cluster, topic, partitions=1, config={"segment.bytes": "1024"})
    t0 = int(time.time() * 1000) - 60_000  # well within retention
    with wire(cluster) as client:
        for first in range(0, RECORDS, PER_BATCH):
            builder = RecordBatchBuilder()
            for i in range(first, first + PER_BATCH):
                builder.append(b"k%d" % i, b"v%d" % i, timestamp_ms=t0 + (5000 if i == PEAK_OFFSET else 10 * i))
            assert produce_raw(client, topic, 0, builder.build()).base_offset == first
    segments = list((cluster.config.node_dir(1) / f"{topic}-0").glob("*.log"))
    assert len(segments) >= 3, "the lookups should cross several segments"
    return topic, t0


def timestamp_cases(t0: int) -> list[tuple[int, int]]:
    """(target timestamp, expected offset)."""
    return [
        (t0 - 1_000, 0),           # before everything: the first record
        (t0, 0),
        (t0 + 200, 20),            # exact timestamp
        (t0 + 201, 21),            # between two: the next one
        (t0 + 575, PEAK_OFFSET),   # 57 is the first with a timestamp ≥ target (its own is 5000)
        (t0 + 580, PEAK_OFFSET),
        (t0 + 990, PEAK_OFFSET),   # 990 is record 99's, but 57 comes first and is larger
        (t0 + 991, PEAK_OFFSET),
        (t0 + 5000, PEAK_OFFSET),
    ]


def test_earliest_and_latest(cluster: RunningCluster, timeline: tuple[str, int]) -> None:
    from confluent_kafka import Consumer, TopicPartition
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KafkaTopicPartition

    topic, _t0 = timeline
    assert list_offset(cluster, topic, 0, -2).offset == 0
    assert list_offset(cluster, topic, 0, -1).offset == RECORDS

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": topic})
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, RECORDS)
    finally:
        consumer.close()
    kafka_consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap_servers)
    try:
        tp = KafkaTopicPartition(topic, 0)
        assert kafka_consumer.beginning_offsets([tp]) == {tp: 0}
        assert kafka_consumer.end_offsets([tp]) == {tp: RECORDS}
    finally:
        kafka_consumer.close()


def test_offsets_for_times_with_confluent_kafka(cluster: RunningCluster, timeline: tuple[str, int]) -> None:
    from confluent_kafka import Consumer, TopicPartition

    topic, t0 = timeline
    cases = timestamp_cases(t0)
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": topic})
    try:
        for target, expected in cases:
            (found,) = consumer.offsets_for_times([TopicPartition(topic, 0, target)], timeout=10)
            assert (found.error, found.offset) == (None, expected), f"target T0{target - t0:+d}"
        (beyond,) = consumer.offsets_for_times([TopicPartition(topic, 0, t0 + 5001)], timeout=10)
        assert beyond.offset == -1  # OFFSET_END: no record that new
    finally:
        consumer.close()


def test_offsets_for_times_with_kafka_python(cluster: RunningCluster, timeline: tuple[str, int]) -> None:
    from kafka import KafkaConsumer, TopicPartition

    topic, t0 = timeline
    tp = TopicPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap_servers)
    try:
        for target, expected in timestamp_cases(t0):
            found = consumer.offsets_for_times({tp: target})[tp]
            assert found is not None, f"target T0{target - t0:+d}"
            timestamp = t0 + (5000 if expected == PEAK_OFFSET else 10 * expected)
            assert (found.offset, found.timestamp) == (expected, timestamp), f"target T0{target - t0:+d}"
        assert consumer.offsets_for_times({tp: t0 + 5001})[tp] is None
    finally:
        consumer.close()


def test_raw_lookups_return_the_record_timestamp(cluster: RunningCluster, timeline: tuple[str, int]) -> None:
    topic, t0 = timeline
    for target, expected in timestamp_cases(t0):
        answer = list_offset(cluster, topic, 0, target)
        timestamp = t0 + (5000 if expected == PEAK_OFFSET else 10 * expected)
        assert (answer.error_code, answer.offset, answer.timestamp) == (0, expected, timestamp)
    beyond = list_offset(cluster, topic, 0, t0 + 5001)
    assert (beyond.error_code, beyond.offset, beyond.timestamp) == (0, -1, -1)


def test_max_timestamp_is_the_out_of_order_record(cluster: RunningCluster, timeline: tuple[str, int]) -> None:
    topic, t0 = timeline
    answer = list_offset(cluster, topic, 0, -3)
    assert (answer.error_code, answer.offset, answer.timestamp) == (0, PEAK_OFFSET, t0 + 5000)


def test_empty_partition(cluster: RunningCluster) -> None:
    topic = unique_topic("offsets-empty")
    create_topic(cluster, topic, partitions=1)
    assert list_offset(cluster, topic, 0, -2).offset == 0
    assert list_offset(cluster, topic, 0, -1).offset == 0
    by_time = list_offset(cluster, topic, 0, 0)
    assert (by_time.error_code, by_time.offset) == (0, -1)
    peak = list_offset(cluster, topic, 0, -3)
    assert (peak.error_code, peak.offset, peak.timestamp) == (0, -1, -1)


def test_v10_earliest_local_latest_tiered_and_kafka_python_sees_kafka_4(cluster: RunningCluster,
                                                                        timeline: tuple[str, int]) -> None:
    """v8 -4 (earliest local, KIP-405) = the log start offset with its epoch; v9 -5 (latest tiered,
    KIP-1005) = offset -1 without tiered storage; v10 carries timeout_ms. kafka-python reads
    ListOffsets 10 as a Kafka 4.0 broker."""
    from kafka import KafkaConsumer

    topic, _t0 = timeline
    with wire(cluster) as client:
        response = client.request(ApiKey.LIST_OFFSETS, 10, {
            "replica_id": -1, "isolation_level": 0, "timeout": 1000,
            "topics": [{"name": topic, "partitions": [
                {"partition_index": 0, "current_leader_epoch": -1, "timestamp": ts} for ts in (-2, -4, -5, -1)]}],
        })
    answers = [(p.error_code, p.offset, p.leader_epoch) for p in response.topics[0].partitions]
    assert answers == [(0, 0, 0), (0, 0, 0), (0, -1, -1), (0, RECORDS, 0)]

    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap_servers)
    try:
        assert consumer.config["api_version"] >= (4, 0)
    finally:
        consumer.close()
