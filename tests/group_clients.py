"""Helpers shared by the consumer-groups CLI and integration tests: real clients, deadline pollers.

Records are produced one batch per record (``linger.ms=0`` and a flush each): Tansu 0.6 answers
ListOffsets(latest) with a batch count, so multi-record batches would make its lag wrong.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from typer.testing import CliRunner

T = TypeVar("T")


@dataclass(frozen=True)
class Broker:
    """A running broker the tests talk to: ``name`` (tansu, pko) and its bootstrap servers."""

    name: str
    bootstrap: str


@contextmanager
def tansu_broker(directory: Path) -> Iterator[Broker]:
    """Tansu (``tansu.tansu_process``) as a ``Broker``; its log in ``directory``."""
    from tansu import tansu_process

    with tansu_process(directory) as (port, _proc):
        yield Broker("tansu", f"127.0.0.1:{port}")


def wait_until(check: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.05) -> T:
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


def rows(stdout: str) -> list[list[str]]:
    """The whitespace-split lines of a plain layout, blank lines dropped."""
    return [line.split() for line in stdout.splitlines() if line.strip()]


def unique(prefix: str) -> str:
    """A name no other test uses on a shared broker."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Pko:
    """Runs `pko` in-process (typer's CliRunner): exit code, stdout and stderr apart."""

    bootstrap: str

    def __call__(self, *args: str, bootstrap: bool = True) -> Any:
        from commands.main import app

        argv = ["consumer-groups", *args] + (["--bootstrap-server", self.bootstrap] if bootstrap else [])
        return CliRunner().invoke(app, argv, catch_exceptions=False)


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create ``topic`` and wait until its metadata shows every partition."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=15)
    wait_until(lambda: len(getattr(admin.list_topics(topic, timeout=5).topics.get(topic), "partitions", {}))
               == partitions, 15, f"metadata of {topic}")


def produce(bootstrap: str, topic: str, counts: Mapping[int, int], timestamp_ms: int | None = None) -> None:
    """Produce ``counts[p]`` records to each partition p, one batch per record."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for partition, count in counts.items():
        for i in range(count):
            producer.produce(topic, value=f"{partition}-{i}".encode(), partition=partition,
                             timestamp=timestamp_ms or 0)
            assert producer.flush(10) == 0


def commit(bootstrap: str, group: str, offsets: Mapping[tuple[str, int], int]) -> None:
    """Commit ``offsets`` for ``group`` without joining it (the group stays Empty)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


@dataclass
class GroupMember:
    """A confluent-kafka consumer in a group, polling in a thread (so it stays a member)."""

    bootstrap: str
    group: str
    topics: Sequence[str]
    commit: bool = True
    client_id: str = "pko-test-consumer"
    consumed: list[tuple[str, int, int]] = field(default_factory=list)
    assignment: list[tuple[str, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Poll, record what was consumed, commit after processing each record (at-least-once)."""
        from confluent_kafka import Consumer

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group, "client.id": self.client_id,
                             "auto.offset.reset": "earliest", "enable.auto.commit": False,
                             "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "max.poll.interval.ms": 6000})
        consumer.subscribe(list(self.topics))
        try:
            while not self._stop.is_set():
                msg = consumer.poll(0.1)
                self.assignment = [(tp.topic, tp.partition) for tp in consumer.assignment()]
                if msg is None or msg.error():
                    continue
                self.consumed.append((msg.topic(), msg.partition(), msg.offset()))
                if self.commit:
                    consumer.commit(message=msg, asynchronous=False)
        finally:
            consumer.close()


@contextmanager
def group_member(bootstrap: str, group: str, topics: Sequence[str], **options: Any) -> Iterator[GroupMember]:
    """A running ``GroupMember``; waits until it owns partitions, leaves the group on exit."""
    member = GroupMember(bootstrap, group, topics, **options)
    thread = threading.Thread(target=member.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: member.assignment, 30, f"an assignment in group {group}")
        yield member
    finally:
        member._stop.set()
        thread.join(15)


def read_from_committed(bootstrap: str, group: str, topic: str, partitions: int, timeout_s: float = 15) -> dict[int, int]:
    """The first offset a new member of ``group`` reads on each partition (it resumes at the committed offset)."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "latest",
                         "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                         "max.poll.interval.ms": 6000})
    first: dict[int, int] = {}
    consumer.subscribe([topic])
    try:
        def poll() -> bool:
            msg = consumer.poll(0.1)
            if msg is not None and not msg.error():
                first.setdefault(msg.partition(), msg.offset())
            return len(first) == partitions
        wait_until(poll, timeout_s, f"a record from each partition of {topic} in group {group}", interval_s=0)
    finally:
        consumer.close()
    return first
