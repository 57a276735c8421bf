"""Consumer-group members for the integration tests: real clients polling in a thread, with the
design document's at-least-once loop (enable.auto.commit=false; process a record, then commit
it). ``GroupMember`` runs confluent-kafka (librdkafka) with a chosen assignor, or kafka-python.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from group_clients import wait_until

#: A single-node cluster for group tests: no initial rebalance delay, short sessions allowed.
GROUPS_YAML = """\
cluster: {name: groups}
nodes:
  - {id: 1}
broker:
  num.partitions: 1
  group.initial.rebalance.delay.ms: 0
  group.min.session.timeout.ms: 1000
  offsets.topic.num.partitions: 10
"""

#: Client settings that keep rebalances quick (the test clusters allow 1 s sessions).
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_INTERVAL_MS = 300
MAX_POLL_INTERVAL_MS = 10000


def unique(prefix: str) -> str:
    """A topic or group name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, topic: str, partitions: int, config: dict[str, str] | None = None) -> None:
    """Create ``topic`` and wait until the broker knows it."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})])[topic].result(15)


def produce(bootstrap: str, topic: str, count: int, start: int = 0) -> None:
    """``count`` keyed records (keys spread over the partitions by the default partitioner)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        producer.produce(topic, key=b"key-%d" % i, value=b"value-%d" % i)
    assert producer.flush(15) == 0


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """The log end offset of every partition."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("watermarks")})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offset of every partition (-1001 = none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return {tp.partition: tp.offset
                for tp in consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)}
    finally:
        consumer.close()


@dataclass
class GroupMember:
    """One member of ``group`` consuming ``topic`` in its own thread."""

    bootstrap: str
    group: str
    topic: str
    client: str = "confluent"
    """"confluent" (librdkafka) or "kafka-python"."""
    assignor: str = "range"
    group_instance_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """More librdkafka settings (confluent only)."""
    name: str = field(default_factory=lambda: unique("member"))
    consumed: dict[int, set[int]] = field(default_factory=dict)
    """Partition → offsets processed (and then committed)."""
    assignment: frozenset[int] = frozenset()
    rebalances: int = 0
    """How many times partitions were assigned or revoked (callbacks seen)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _failure: BaseException | None = None

    def start(self) -> GroupMember:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the consumer (a dynamic member sends LeaveGroup; a static one does not)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(20)
            assert not self._thread.is_alive(), f"{self.name} did not stop"
        if self._failure is not None:
            raise self._failure

    def _process(self, partition: int, offset: int) -> None:
        self.consumed.setdefault(partition, set()).add(offset)

    def _run(self) -> None:
        try:
            if self.client == "kafka-python":
                self._run_kafka_python()
            else:
                self._run_confluent()
        except BaseException as exc:  # reported by stop()
            self._failure = exc

    def _on_rebalance(self, _consumer: Any, _partitions: Any) -> None:
        self.rebalances += 1

    def _run_confluent(self) -> None:
        config = {"bootstrap.servers": self.bootstrap, "group.id": self.group, "client.id": self.name,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "partition.assignment.strategy": self.assignor, "session.timeout.ms": SESSION_TIMEOUT_MS,
                  "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS, "max.poll.interval.ms": MAX_POLL_INTERVAL_MS}
        if self.group_instance_id is not None:
            config["group.instance.id"] = self.group_instance_id
        consumer = Consumer(config | self.options)
        consumer.subscribe([self.topic], on_assign=self._on_rebalance, on_revoke=self._on_rebalance)
        try:
            while not self._stop.is_set():
                message = consumer.poll(0.05)
                self.assignment = frozenset(tp.partition for tp in consumer.assignment())
                if message is None or message.error():
                    continue
                self._process(message.partition(), message.offset())
                try:
                    consumer.commit(message=message, asynchronous=False)
                except KafkaException:
                    pass  # revoked meanwhile: its next owner reads it again (at-least-once)
        finally:
            consumer.close()

    def _run_kafka_python(self) -> None:
        from kafka import KafkaConsumer
        from kafka.errors import CommitFailedError, KafkaError

        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group, client_id=self.name,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
                                 max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
                                 # kafka-python's leader may assign before its first metadata answer
                                 # names the topic ("No partition metadata"); it rejoins only when a
                                 # later refresh changes its metadata snapshot (default: 5 minutes)
                                 metadata_max_age_ms=1000)
        # ... and when that answer lands on its heartbeat thread while the main thread assigns, the
        # snapshot it compares against already has the topic and it never rejoins (a kafka-python
        # race, seen on a loaded 2-core CI machine): know the topic's partitions before joining.
        wait_until(lambda: consumer.partitions_for_topic(self.topic), 15, f"kafka-python to see {self.topic}")
        consumer.subscribe([self.topic])
        try:
            while not self._stop.is_set():
                batches = consumer.poll(timeout_ms=50)
                self.assignment = frozenset(tp.partition for tp in consumer.assignment())
                for tp, records in batches.items():
                    for record in records:
                        self._process(tp.partition, record.offset)
                if batches:
                    try:
                        consumer.commit()  # the positions after what was just processed
                    except (CommitFailedError, KafkaError):
                        pass  # a rebalance took the partitions: their next owner reads again
        finally:
            consumer.close()


def all_consumed(members: Iterable[GroupMember], ends: dict[int, int]) -> bool:
    """Every offset below the end of every partition was processed by some member (no gaps)."""
    members = list(members)
    return all(set(range(end)) <= set().union(*(m.consumed.get(p, set()) for m in members))
               for p, end in ends.items())


def wait_for_assignment(members: Iterable[GroupMember], sizes: list[int], partitions: int,
                        timeout_s: float = 30) -> None:
    """Wait until the members' assignments have ``sizes`` (any order) and cover every partition."""
    members = list(members)

    def balanced() -> bool:
        owned = [m.assignment for m in members]
        return sorted(len(a) for a in owned) == sorted(sizes) and frozenset().union(*owned) == set(range(partitions))

    wait_until(balanced, timeout_s, f"assignments of sizes {sizes}")
