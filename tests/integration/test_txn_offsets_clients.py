"""``send_offsets_to_transaction`` with kafka-python's and aiokafka's transactional producers
(issue 17: "send_offsets_to_transaction atomic"; confluent-kafka's is in ``test_txn_offsets.py``).

Consume-transform-produce on one node: a group consumer (read_committed, no auto-commit) reads
``in``, the producer writes each value upper-cased to ``out`` and sends the consumed offsets in
the same transaction. A committed transaction makes both the outputs (read_committed) and the
group's offsets (read by a fresh confluent-kafka consumer of the group, which asks with
``require_stable``) visible; an aborted one leaves neither. kafka-python passes the consumer's
group metadata (KIP-447: TxnOffsetCommit with the member id and generation) and, once, the bare
group id; aiokafka only takes a group id (TxnOffsetCommit without a generation). One node for
the module.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from integration_helpers import create_topic, unique_topic

from cluster.pytest_plugin import RunningCluster, start_cluster
from pykafka_ops.services.copier_run import read_to_end

YAML = """\
cluster: {name: txn-offsets-clients}
nodes:
  - {id: 1}
broker:
  offsets.topic.num.partitions: 1
  transaction.state.log.num.partitions: 1
  group.initial.rebalance.delay.ms: 0
"""
SEED = 15


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """One node for the module's tests."""
    with start_cluster(YAML, tmp_path_factory.mktemp("txn-offsets-clients")) as running:
        yield running


def _topics(cluster: RunningCluster, prefix: str) -> tuple[str, str, str]:
    """(source seeded with ``SEED`` values "v0" …, empty sink, group id) of one test."""
    source, sink, group = unique_topic(f"{prefix}-in"), unique_topic(f"{prefix}-out"), unique_topic(prefix)
    create_topic(cluster, source, partitions=1)
    create_topic(cluster, sink, partitions=1)
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
    for i in range(SEED):
        producer.produce(source, f"v{i}".encode(), partition=0)
    assert producer.flush(30) == 0
    return source, sink, group


def _committed(cluster: RunningCluster, group: str, topic: str) -> int:
    """The group's committed offset of ``topic``/0 (-1001: none), as a fresh consumer of the group
    sees it (librdkafka's OffsetFetch asks with require_stable: it waits for the markers)."""
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": group})
    try:
        return int(consumer.committed([TopicPartition(topic, 0)], 10)[0].offset)
    finally:
        consumer.close()


def _outputs(cluster: RunningCluster, sink: str) -> list[str]:
    """``sink``/0 read_committed (call once no transaction is open)."""
    return read_to_end(cluster.bootstrap_servers, sink, [0], timeout_s=15)[0]


def _expect(cluster: RunningCluster, source: str, sink: str, group: str, committed: int, copied: int) -> None:
    """The group's offset is ``committed`` and ``out`` holds the first ``copied`` values upper-cased."""
    assert _committed(cluster, group, source) == committed
    assert _outputs(cluster, sink) == [f"V{i}" for i in range(copied)]


def test_kafka_python_send_offsets_to_transaction(cluster: RunningCluster) -> None:
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import OffsetAndMetadata
    from kafka.structs import TopicPartition as KafkaTopicPartition

    source, sink, group = _topics(cluster, "kp-ctp")
    consumer = KafkaConsumer(source, bootstrap_servers=cluster.bootstrap_servers, group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             isolation_level="read_committed")
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, transactional_id=unique_topic("kp-tid"))
    try:
        producer.init_transactions()

        def copy(count: int, commit: bool, group_metadata: Any) -> None:
            producer.begin_transaction()
            records: list[Any] = []
            deadline = time.monotonic() + 30
            while len(records) < count:
                assert time.monotonic() < deadline, f"only {len(records)} of {count} records consumed"
                for batch in consumer.poll(timeout_ms=500, max_records=count - len(records)).values():
                    records += batch
            for record in records:
                producer.send(sink, record.value.upper(), partition=0)
            offsets = {KafkaTopicPartition(source, 0): OffsetAndMetadata(records[-1].offset + 1, "", -1)}
            producer.send_offsets_to_transaction(offsets, group_metadata(consumer))
            if commit:
                producer.commit_transaction()
            else:
                producer.abort_transaction()

        copy(5, commit=True, group_metadata=KafkaConsumer.group_metadata)  # KIP-447: member id, generation
        _expect(cluster, source, sink, group, committed=5, copied=5)
        copy(5, commit=False, group_metadata=KafkaConsumer.group_metadata)
        _expect(cluster, source, sink, group, committed=5, copied=5)  # neither outputs nor offsets
        consumer.seek(KafkaTopicPartition(source, 0), 5)  # the aborted input again, as after a restart
        copy(5, commit=True, group_metadata=lambda _consumer: group)  # the bare group id
        _expect(cluster, source, sink, group, committed=10, copied=10)
    finally:
        producer.close(timeout=10)
        consumer.close()


def test_aiokafka_send_offsets_to_transaction(cluster: RunningCluster) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.structs import TopicPartition as AioTopicPartition

    source, sink, group = _topics(cluster, "aio-ctp")
    partition = AioTopicPartition(source, 0)

    async def run(steps: list[bool]) -> None:
        consumer = AIOKafkaConsumer(source, bootstrap_servers=cluster.bootstrap_servers, group_id=group,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    isolation_level="read_committed")
        producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap_servers,
                                    transactional_id=unique_topic("aio-tid"))
        await consumer.start()
        await producer.start()
        try:
            for commit in steps:
                await producer.begin_transaction()
                records: list[Any] = []
                deadline = time.monotonic() + 30
                while len(records) < 5:
                    assert time.monotonic() < deadline, f"only {len(records)} records consumed"
                    for batch in (await consumer.getmany(timeout_ms=500, max_records=5 - len(records))).values():
                        records += batch
                for record in records:
                    await producer.send(sink, record.value.upper(), partition=0)
                await producer.send_offsets_to_transaction({partition: records[-1].offset + 1}, group)
                if commit:
                    await producer.commit_transaction()
                else:
                    await producer.abort_transaction()
                    consumer.seek(partition, records[0].offset)  # the aborted input again
        finally:
            await producer.stop()
            await consumer.stop()

    asyncio.run(run([True]))
    _expect(cluster, source, sink, group, committed=5, copied=5)
    asyncio.run(run([False]))  # a new consumer starts from the committed offset 5
    _expect(cluster, source, sink, group, committed=5, copied=5)
    asyncio.run(run([True]))
    _expect(cluster, source, sink, group, committed=10, copied=10)
