"""Helpers of the integration tests: deadline pollers, raw requests, consumers that drain.

Everything here talks to real node processes over TCP: raw requests go through our wire
client and codec (``WireClient``), records through confluent-kafka (librdkafka) and
kafka-python. Nothing sleeps to wait: ``wait_until`` polls a predicate until a deadline.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any, NamedTuple

from cluster.pytest_plugin import RunningCluster, wait_until  # noqa: F401 - shared by the tests
from pykafka_ops.client.wire import WireClient
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records.batch import RecordBatch, iter_batches
from pykafka_ops.records.builder import RecordBatchBuilder

#: Poll interval of ``wait_until``, in seconds.
PRODUCE_VERSION = 9
FETCH_VERSION = 12


def unique_topic(prefix: str) -> str:
    """A topic name no other test uses (the session cluster is shared)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def address(cluster: RunningCluster, node: int = 1) -> tuple[str, int]:
    """(host, port) of ``node``."""
    return cluster.config.host, cluster.config.node(node).port


def wire(cluster: RunningCluster, node: int = 1, timeout: float = 10.0) -> WireClient:
    """A new raw connection to ``node``."""
    host, port = address(cluster, node)
    return WireClient(host, port, timeout=timeout)


def node_log(cluster: RunningCluster, node: int = 1) -> str:
    """The whole log of ``node`` (stdout and stderr of every run)."""
    return (cluster.config.data_dir / "logs" / f"node-{node}.log").read_text(errors="replace")


# --- admin -----------------------------------------------------------------------------------


def admin(cluster: RunningCluster) -> Any:
    """A confluent-kafka AdminClient for ``cluster``."""
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": cluster.bootstrap_servers})


def create_topic(cluster: RunningCluster, name: str, partitions: int = 3,
                 config: dict[str, str] | None = None) -> None:
    """Create ``name`` through CreateTopics (confluent-kafka) and wait for the answer."""
    from confluent_kafka.admin import NewTopic

    client = admin(cluster)  # keep a reference: a collected AdminClient cancels its futures
    futures = client.create_topics([NewTopic(name, partitions, 1, config=config or {})],
                                   operation_timeout=10, request_timeout=15)
    futures[name].result(timeout=15)


# --- raw requests ----------------------------------------------------------------------------


def build_batch(values: Iterable[bytes], key: bytes | None = None, **builder: Any) -> bytes:
    """One v2 batch holding a record per value (``builder``: RecordBatchBuilder arguments)."""
    batch = RecordBatchBuilder(**builder)
    for value in values:
        batch.append(key, value)
    return batch.build()


def produce_raw(client: WireClient, topic: str, partition: int, records: bytes | None,
                acks: int = -1, version: int = PRODUCE_VERSION, transactional_id: str | None = None) -> Any:
    """Send one Produce and return the partition's answer (``error_code``, ``base_offset`` …);
    transactional batches need a ``transactional_id``."""
    response = client.request(ApiKey.PRODUCE, version, {
        "transactional_id": transactional_id, "acks": acks, "timeout": 5000,
        "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": records}]}],
    })
    (topic_response,) = response.responses
    (partition_response,) = topic_response.partition_responses
    return partition_response


def fetch_raw(client: WireClient, topic: str, partition: int, offset: int,
              max_bytes: int = 1 << 20, max_wait_ms: int = 0, isolation_level: int = 0) -> Any:
    """Send one Fetch (sessionless; read_uncommitted unless ``isolation_level`` is 1) and return
    the partition's answer."""
    response = client.request(ApiKey.FETCH, FETCH_VERSION, {
        "replica_id": -1, "max_wait": max_wait_ms, "min_bytes": 1, "max_bytes": max_bytes,
        "isolation_level": isolation_level, "session_id": 0, "session_epoch": -1,
        "topics": [{"topic": topic, "partitions": [{
            "partition": partition, "current_leader_epoch": -1, "fetch_offset": offset,
            "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": max_bytes}]}],
        "forgotten_topics_data": [], "rack_id": "",
    })
    (topic_response,) = response.responses
    (partition_response,) = topic_response.partitions
    return partition_response


def fetched_records(partition_response: Any) -> list[Any]:
    """Every record of a Fetch answer (``Record``: offset, timestamp, key, value, headers)."""
    data = partition_response.records or b""
    return [record for _pos, header in iter_batches(data) for record in RecordBatch(data, _pos).records()
            ] if data else []


def read_partition(cluster: RunningCluster, topic: str, partition: int, start: int = 0) -> list[Any]:
    """Every record of one partition from ``start`` up to the high watermark, by raw Fetch."""
    records: list[Any] = []
    offset = start
    with wire(cluster) as client:
        while True:
            answer = fetch_raw(client, topic, partition, offset)
            assert answer.error_code == 0, f"Fetch {topic}-{partition}@{offset}: error {answer.error_code}"
            got = [r for r in fetched_records(answer) if r.offset >= offset]
            records += got
            if got:
                offset = got[-1].offset + 1
            if offset >= answer.high_watermark:
                return records
            assert got, f"Fetch {topic}-{partition}@{offset} returned nothing below the high watermark"


def list_offset(cluster: RunningCluster, topic: str, partition: int, timestamp: int,
                isolation_level: int = 0, node: int = 1) -> Any:
    """ListOffsets v7 for one partition (-1 latest, -2 earliest, -3 max timestamp, or a time)."""
    with wire(cluster, node) as client:
        response = client.request(ApiKey.LIST_OFFSETS, 7, {
            "replica_id": -1, "isolation_level": isolation_level,
            "topics": [{"name": topic, "partitions": [
                {"partition_index": partition, "current_leader_epoch": -1, "timestamp": timestamp}]}],
        })
    (topic_response,) = response.topics
    (partition_response,) = topic_response.partitions
    return partition_response


def init_producer_id(client: WireClient) -> tuple[int, int]:
    """InitProducerId v4 without a transactional id: (producer id, epoch)."""
    answer = client.request(ApiKey.INIT_PRODUCER_ID, 4, {
        "transactional_id": None, "transaction_timeout": 60000, "producer_id": -1, "producer_epoch": -1})
    assert answer.error_code == 0, answer
    return answer.producer_id, answer.producer_epoch


HEALTH_TOPIC = "health-probe"


def assert_node_serves(cluster: RunningCluster, node: int = 1) -> None:
    """On a NEW connection: ApiVersions, then a Produce, then a Fetch that reads it back."""
    marker = uuid.uuid4().bytes
    with wire(cluster, node) as client:
        versions = client.request(ApiKey.API_VERSIONS, 3, {"client_software_name": "pytest",
                                                           "client_software_version": "1.0"})
        assert versions.error_code == 0
        assert {k.api_key for k in versions.api_keys} >= {0, 1, 3, 18}
        client.request(ApiKey.METADATA, 12, {"topics": [{"name": HEALTH_TOPIC}],
                                             "allow_auto_topic_creation": True})
        answer = wait_until(lambda: _produced(client, marker), 10, f"a Produce to {HEALTH_TOPIC} to succeed")
        fetched = fetch_raw(client, HEALTH_TOPIC, 0, answer.base_offset)
        assert fetched.error_code == 0
        values = [r.value for r in fetched_records(fetched) if r.offset == answer.base_offset]
        assert values == [marker]


def _produced(client: WireClient, marker: bytes) -> Any:
    answer = produce_raw(client, HEALTH_TOPIC, 0, build_batch([marker]))
    return answer if answer.error_code == 0 else None


# --- record checks ---------------------------------------------------------------------------


class Seen(NamedTuple):
    """One record as a client returned it, in comparable form."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp: int


def drain_confluent(cluster: RunningCluster, topic: str, ends: dict[int, int],
                    starts: dict[int, int] | None = None, timeout_s: float = 60) -> dict[int, list[Seen]]:
    """Read every partition of ``ends`` (partition → end offset) from ``starts`` (default: the
    beginning) with a confluent-kafka consumer on ASSIGNED partitions, until each end is reached."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": unique_topic("assigned"),
                         "enable.auto.commit": False, "auto.offset.reset": "error"})
    starts = starts or {}
    consumer.assign([TopicPartition(topic, p, starts.get(p, OFFSET_BEGINNING)) for p in ends])
    seen: dict[int, list[Seen]] = {p: [] for p in ends}
    nxt = {p: starts.get(p, 0) for p in ends}
    deadline = time.monotonic() + timeout_s
    try:
        while any(nxt[p] < ends[p] for p in ends):
            assert time.monotonic() < deadline, f"confluent-kafka read {_progress(seen, ends)} of {topic}"
            for message in consumer.consume(10_000, 0.5):
                assert message.error() is None, message.error()
                p = message.partition()
                seen[p].append(Seen(p, message.offset(), message.key(), message.value(),
                                    tuple(message.headers() or ()), message.timestamp()[1]))
                nxt[p] = message.offset() + 1
    finally:
        consumer.close()
    return seen


def drain_kafka_python(cluster: RunningCluster, topic: str, ends: dict[int, int],
                       starts: dict[int, int] | None = None, timeout_s: float = 60) -> dict[int, list[Seen]]:
    """As ``drain_confluent``, with kafka-python's KafkaConsumer (assign, no group)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap_servers, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="none")
    partitions = {p: TopicPartition(topic, p) for p in ends}
    consumer.assign(list(partitions.values()))
    starts = starts or {}
    for p, tp in partitions.items():
        if p in starts:
            consumer.seek(tp, starts[p])
        else:
            consumer.seek_to_beginning(tp)
    seen: dict[int, list[Seen]] = {p: [] for p in ends}
    deadline = time.monotonic() + timeout_s
    try:
        while any(consumer.position(partitions[p]) < ends[p] for p in ends):
            assert time.monotonic() < deadline, f"kafka-python read {_progress(seen, ends)} of {topic}"
            for tp, messages in consumer.poll(timeout_ms=500, max_records=20_000).items():
                for m in messages:
                    seen[tp.partition].append(Seen(tp.partition, m.offset, m.key, m.value,
                                                   tuple(m.headers or ()), m.timestamp))
    finally:
        consumer.close()
    return seen


def _progress(seen: dict[int, list[Seen]], ends: dict[int, int]) -> str:
    return ", ".join(f"p{p}: {len(seen[p])} (end {ends[p]})" for p in sorted(ends))


def high_watermarks(cluster: RunningCluster, topic: str, partitions: Iterable[int]) -> dict[int, int]:
    """partition → high watermark (ListOffsets latest)."""
    return {p: list_offset(cluster, topic, p, -1).offset for p in partitions}
