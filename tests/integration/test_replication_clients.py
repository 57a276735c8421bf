"""Replicated partitions with the other client libraries (issue "Replication"): kafka-python and
aiokafka idempotent acks=all producers keep going across a kill -9 of the partition leader
(NOT_LEADER_OR_FOLLOWER, a metadata refresh, retries on the new leader), and every record they
were acknowledged is read back once, at the offset they were given, from the new leader and from
the old one after its restart. The restarted replica's log matches the leader's up to the high
watermark (``pko dump-log``).
"""

from __future__ import annotations

import asyncio
import json
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faults.checker import compare_replicas
from faults.cluster_ops import (
    kill9,
    leader_of,
    restart,
    wait_for_full_isr,
    wait_for_leader,
    wait_for_replicas_at,
)
from kafka import KafkaProducer

from cluster.pytest_plugin import ClusterFactory

TOPIC = "replicated"
RECORDS_PER_PHASE = 300
THREE_NODES_YAML = f"""\
cluster: {{name: replication-clients}}
nodes:
  - {{id: 1}}
  - {{id: 2}}
  - {{id: 3}}
broker:
  offsets.topic.num.partitions: 1
topics:
  - {{name: {TOPIC}, partitions: 1, replication.factor: 3, config: {{min.insync.replicas: 2}}}}
"""


def _produce_kafka_python(bootstrap: str, values: list[bytes]) -> dict[bytes, int]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, retries=50,
                             retry_backoff_ms=100, request_timeout_ms=5000, max_block_ms=20000)
    try:
        futures = [(value, producer.send(TOPIC, value)) for value in values]
        return {value: future.get(timeout=60).offset for value, future in futures}
    finally:
        producer.close(timeout=5)


async def _produce_aiokafka(bootstrap: str, values: list[bytes]) -> dict[bytes, int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                retry_backoff_ms=100, request_timeout_ms=5000)
    await producer.start()
    try:
        sent = [(value, await producer.send(TOPIC, value)) for value in values]
        return {value: (await future).offset for value, future in sent}
    finally:
        await producer.stop()


async def _read_all(bootstrap: str, expected: int) -> dict[bytes, list[int]]:
    consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    seen: dict[bytes, list[int]] = {}
    try:
        deadline = time.monotonic() + 30
        while sum(len(offsets) for offsets in seen.values()) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    seen.setdefault(record.value, []).append(record.offset)
    finally:
        await consumer.stop()
    return seen


def _phase(name: str) -> list[bytes]:
    return [f"{name}-{i}".encode() for i in range(RECORDS_PER_PHASE)]


def test_kafka_python_and_aiokafka_survive_a_leader_kill_with_nothing_lost(pko_cluster_factory: ClusterFactory) -> None:
    cluster = pko_cluster_factory(THREE_NODES_YAML)
    bootstrap = cluster.bootstrap_servers
    wait_for_full_isr(cluster, TOPIC)
    acked: dict[bytes, int] = {}
    acked |= _produce_kafka_python(bootstrap, _phase("kp-before"))
    acked |= asyncio.run(_produce_aiokafka(bootstrap, _phase("aio-before")))
    leader = leader_of(cluster, TOPIC, 0)
    killed_at = time.monotonic()
    kill9(cluster, leader)
    acked |= _produce_kafka_python(bootstrap, _phase("kp-after"))
    first_ack_s = time.monotonic() - killed_at
    acked |= asyncio.run(_produce_aiokafka(bootstrap, _phase("aio-after")))
    new_leader, _ = wait_for_leader(cluster, TOPIC, 0, not_on=[leader])
    restart(cluster, leader)
    states = wait_for_full_isr(cluster, TOPIC, timeout_s=30)

    seen = asyncio.run(_read_all(bootstrap, len(acked)))
    lost = [v for v in acked if v not in seen]
    duplicates = [v for v, offsets in seen.items() if len(offsets) > 1]
    moved = [v for v, offset in acked.items() if v in seen and seen[v][0] != offset]
    replicas, _caught_up = wait_for_replicas_at(cluster, TOPIC, {0: max(acked.values()) + 1})
    divergent = compare_replicas(replicas, {0: max(acked.values()) + 1}).divergent
    print(json.dumps({"test": "replication-clients", "killed": leader, "new_leader": new_leader,
                      "acked": len(acked), "read": len(seen), "lost": len(lost), "duplicates": len(duplicates),
                      "offset_mismatches": len(moved), "divergent": divergent,
                      "kafka_python_after_kill_s": round(first_ack_s, 2), "isr": list(states[0].isr)}))
    assert not lost and not duplicates and not moved, (lost[:5], duplicates[:5], moved[:5])
    assert not divergent, divergent
    assert len(acked) == 4 * RECORDS_PER_PHASE
