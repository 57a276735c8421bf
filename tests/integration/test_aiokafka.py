"""aiokafka round trip: an idempotent acks=all AIOKafkaProducer writes, an AIOKafkaConsumer on
assigned partitions (no group) reads everything back with keys, values, headers, timestamps."""

from __future__ import annotations

import asyncio
import time

from integration_helpers import create_topic, high_watermarks, unique_topic
from cluster.pytest_plugin import RunningCluster

RECORDS = 2_000
PARTITIONS = 3


async def _round_trip(bootstrap: str, topic: str, first_timestamp_ms: int) -> tuple[dict, dict]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                compression_type="gzip", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=b"k%d" % (i % 31), value=b"v%d" % i, headers=[("n", b"%d" % i)],
                                timestamp_ms=first_timestamp_ms + i)
            for i in range(RECORDS)
        ]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    acked: dict[int, list[tuple[int, int]]] = {}
    for i, meta in enumerate(metadata):
        acked.setdefault(meta.partition, []).append((meta.offset, i))

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    seen: dict[int, list] = {p: [] for p in range(PARTITIONS)}
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in partitions])

        async def drain() -> None:
            while await behind():
                batches = await consumer.getmany(timeout_ms=500, max_records=5_000)
                for tp, messages in batches.items():
                    seen[tp.partition] += messages

        await asyncio.wait_for(drain(), timeout=60)
    finally:
        await consumer.stop()
    return acked, seen


def test_aiokafka_producer_and_assigned_consumer_round_trip(cluster: RunningCluster) -> None:
    topic = unique_topic("aiokafka")
    create_topic(cluster, topic, partitions=PARTITIONS)
    first_timestamp_ms = int(time.time() * 1000) - RECORDS

    acked, seen = asyncio.run(_round_trip(cluster.bootstrap_servers, topic, first_timestamp_ms))

    assert sum(len(a) for a in acked.values()) == RECORDS
    assert high_watermarks(cluster, topic, range(PARTITIONS)) == {p: len(acked.get(p, [])) for p in range(PARTITIONS)}
    for partition in range(PARTITIONS):
        expected = [(offset, b"k%d" % (i % 31), b"v%d" % i, [("n", b"%d" % i)], first_timestamp_ms + i)
                    for offset, i in acked.get(partition, [])]
        got = [(m.offset, m.key, m.value, list(m.headers), m.timestamp) for m in seen[partition]]
        assert got == expected, f"partition {partition}"
