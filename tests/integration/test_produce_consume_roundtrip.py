"""100 000 keyed records through a real node: librdkafka writes, librdkafka and kafka-python read
(20 000 more with each compression codec).

The producer is idempotent with acks=all; the consumers use ASSIGNED partitions (consumer
groups are a later issue). What the broker must keep: per partition, the order the producer's
delivery reports gave; and per record, key, value, header and CreateTime timestamp.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Producer

from integration_helpers import Seen, drain_confluent, drain_kafka_python, high_watermarks, unique_topic
from cluster.pytest_plugin import RunningCluster

RECORDS = 100_000
PARTITIONS = 3
#: Distinct keys: many, so that every partition gets a share of them.
KEYS = 10_007


def _key(i: int) -> bytes:
    return b"key-%d" % (i * 7919 % KEYS)


def produce(cluster: RunningCluster, topic: str, compression: str, count: int,
            first_timestamp_ms: int) -> dict[int, list[tuple[int, int]]]:
    """Produce ``count`` records; returns partition → [(offset, record number)] in delivery order."""
    producer = Producer({
        "bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "enable.idempotence": True,
        "compression.type": compression, "linger.ms": 5, "batch.num.messages": 500,
    })
    delivered: dict[int, list[tuple[int, int]]] = {}
    errors: list[str] = []

    def on_delivery(err: object, msg: object, i: int) -> None:
        if err is not None:
            errors.append(f"record {i}: {err}")
        else:
            delivered.setdefault(msg.partition(), []).append((msg.offset(), i))  # type: ignore[attr-defined]

    for i in range(count):
        while True:
            try:
                producer.produce(topic, key=_key(i), value=b"v%d" % i, headers=[("seq", b"%d" % i)],
                                 timestamp=first_timestamp_ms + i,
                                 on_delivery=lambda err, msg, i=i: on_delivery(err, msg, i))
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0, "records still queued after 60 s"
    assert not errors, errors[:5]
    return delivered


def check_read_back(seen: dict[int, list[Seen]], delivered: dict[int, list[tuple[int, int]]],
                    first_timestamp_ms: int, client: str) -> None:
    for partition, acks in delivered.items():
        records = seen[partition]
        assert [r.offset for r in records] == [offset for offset, _i in acks], \
            f"{client}: partition {partition} order differs from the delivery reports"
        expected = [Seen(partition, offset, _key(i), b"v%d" % i, (("seq", b"%d" % i),), first_timestamp_ms + i)
                    for offset, i in acks]
        for got, want in zip(records, expected, strict=True):
            assert got == want, f"{client}: {got} != {want}"


# The full 100 000 records go through uncompressed; each codec gets 20 000 (still ~15 batches per
# partition). The broker treats every codec alike — it stores a batch as sent and reads only its
# header — so what a codec changes is the clients' encoding, which 20 000 records cover; 100 000
# per codec would add ~40 s (kafka-python decodes in Python) to a suite meant to stay < 3 min.
@pytest.mark.parametrize(("compression", "count"), [
    ("none", RECORDS), ("gzip", 20_000), ("snappy", 20_000), ("lz4", 20_000), ("zstd", 20_000)])
def test_keyed_records_read_back_in_delivery_order_by_two_clients(cluster: RunningCluster, compression: str,
                                                                  count: int) -> None:
    topic = unique_topic(f"pc-{compression}")
    # CreateTime within retention (7 days by default): older records could be deleted by
    # retention before they are read back, as Kafka would.
    first_timestamp_ms = int(time.time() * 1000) - count
    delivered = produce(cluster, topic, compression, count, first_timestamp_ms)

    assert sum(len(acks) for acks in delivered.values()) == count
    assert sorted(i for acks in delivered.values() for _o, i in acks) == list(range(count))
    assert set(delivered) == set(range(PARTITIONS)), "keys spread over every partition"
    for partition, acks in delivered.items():
        offsets = [offset for offset, _i in acks]
        assert offsets == list(range(len(acks))), f"partition {partition}: offsets not dense from 0"
    ends = high_watermarks(cluster, topic, range(PARTITIONS))
    assert ends == {p: len(delivered[p]) for p in range(PARTITIONS)}

    check_read_back(drain_confluent(cluster, topic, ends), delivered, first_timestamp_ms, "confluent-kafka")
    check_read_back(drain_kafka_python(cluster, topic, ends), delivered, first_timestamp_ms, "kafka-python")


def test_confluent_consumer_reports_create_time(cluster: RunningCluster) -> None:
    from confluent_kafka import Consumer, TopicPartition

    topic = unique_topic("create-time")
    stamp = int(time.time() * 1000) - 5_000
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all"})
    producer.produce(topic, value=b"x", partition=0, timestamp=stamp)
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": topic})
    consumer.assign([TopicPartition(topic, 0, 0)])
    try:
        message = consumer.poll(15)
        assert message is not None and message.error() is None
        assert message.timestamp() == (TIMESTAMP_CREATE_TIME, stamp)
    finally:
        consumer.close()
