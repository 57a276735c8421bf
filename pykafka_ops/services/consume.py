"""Read records from a topic with kcat's offset semantics, or as a consumer group member.

Start offsets (kcat ``-o``): ``beginning``, ``end``, ``stored``, ``N`` (absolute), ``-N`` (the
last N of **each** partition, computed from the watermarks), ``s@ts`` (the first record at or
after ``ts`` ms); ``e@ts`` stops a partition at its first record with timestamp ≥ ts (not
included). Without a group, partitions are assigned directly and nothing is committed. With a
group, the consumer subscribes; ``beginning``/``end`` only choose ``auto.offset.reset`` (used
when the group has no committed offset), and offsets are stored only after the sink wrote a
batch, then auto-committed and committed at close: at-least-once.

A run ends at: every partition at its end (``exit_at_end``, kcat -e), ``count`` records,
``idle_timeout_ms`` without a record, every partition past ``e@``, the output closing, or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.librdkafka import KafkaCallError, call_error, error_text, metadata, run_stoppable
from pykafka_ops.models.records import ConsumedRecord, ConsumeReport, PartitionEnd

_TIMESTAMP_TYPES = {0: "unknown", 1: "create", 2: "logappend"}
ISOLATION_LEVELS = ("read_uncommitted", "read_committed")


@dataclass(frozen=True)
class StartOffset:
    """Where each partition starts: ``kind`` is beginning, end, stored, offset, tail or timestamp."""

    kind: str
    value: int = 0


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _int64(number: int, text: str) -> None:
    """Offsets and timestamps are Kafka LONGs."""
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"invalid offset {text!r}: beyond a 64-bit offset")


def parse_offset(text: str) -> tuple[StartOffset | None, int | None]:
    """One kcat ``-o`` value → (start offset, or None for ``e@``; stop timestamp, or None)."""
    if text in ("beginning", "end", "stored"):
        return StartOffset(text), None
    for prefix, kind in (("s@", "timestamp"), ("e@", "stop")):
        if text.startswith(prefix):
            try:
                ts = int(text[2:])
            except ValueError:
                raise ValueError(f"invalid timestamp in offset {text!r} (expected ms since the epoch)") from None
            _int64(ts, text)
            return (None, ts) if kind == "stop" else (StartOffset(kind, ts), None)
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"invalid offset {text!r}: beginning, end, stored, N, -N, s@ms or e@ms") from None
    _int64(number, text)
    return (StartOffset("tail", -number) if text.startswith("-") else StartOffset("offset", number)), None


@dataclass(frozen=True)
class ConsumeRequest:
    """What to read and when to stop (see the module docstring)."""

    topic: str
    start: StartOffset = StartOffset("end")
    stop_timestamp: int | None = None
    partitions: tuple[int, ...] = ()
    group: str | None = None
    count: int | None = None
    exit_at_end: bool = False
    idle_timeout_ms: int | None = None
    isolation_level: str = "read_uncommitted"
    properties: Mapping[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """Refuse combinations that have no meaning (ValueError with the reason)."""
        if self.group is not None:
            if self.partitions:
                raise ValueError("Options group and partition cannot be specified together.")
            if self.start.kind not in ("beginning", "end", "stored"):
                raise ValueError("with a group, the start offset is the committed one: -o beginning|end|stored only")
        elif self.start.kind == "stored":
            raise ValueError("-o stored reads a group's committed offsets: give --group")
        if self.isolation_level not in ISOLATION_LEVELS:
            raise ValueError(f"isolation level must be {' or '.join(ISOLATION_LEVELS)}")

    def librdkafka(self) -> dict[str, Any]:
        """Consumer settings (offsets are stored by the loop, after a batch was written)."""
        grouped = self.group is not None
        reset = "earliest" if self.start.kind == "beginning" else "latest"
        return {"group.id": self.group if grouped else f"pko-consume-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": grouped, "enable.auto.offset.store": False, "enable.partition.eof": True,
                "auto.offset.reset": reset, "isolation.level": self.isolation_level, **self.properties}


class RecordSink(Protocol):
    """Where records go (the command writes them out)."""

    def write(self, records: list[ConsumedRecord]) -> int:
        """Write ``records``; return how many were written (fewer: the output closed, stop)."""

    def partition_end(self, end: PartitionEnd, last: bool) -> None:
        """A partition reached its end (``exit_at_end``); ``last``: every partition has."""


def to_record(msg: Any, leaders: Mapping[int, int]) -> ConsumedRecord:
    """Our record from a confluent-kafka message."""
    ts_type, ts = msg.timestamp()
    return ConsumedRecord(msg.topic(), msg.partition(), msg.offset(), ts if ts_type else None,
                          _TIMESTAMP_TYPES.get(ts_type, "unknown"), msg.key(), msg.value(),
                          tuple(msg.headers() or ()), leaders.get(msg.partition(), -1))


def _partitions(cluster: Any, request: ConsumeRequest) -> dict[int, int]:
    """partition → leader for the requested partitions; errors for a missing topic or partition."""
    topic = cluster.topics.get(request.topic)
    if topic is None or topic.error is not None:
        raise LookupError(f"Topic '{request.topic}' does not exist")
    leaders = {p: info.leader for p, info in topic.partitions.items()}
    missing = [p for p in request.partitions if p not in leaders]
    if missing:
        raise LookupError(f"topic {request.topic} has no partition {missing[0]} (it has {len(leaders)})")
    return {p: leaders[p] for p in (request.partitions or sorted(leaders))}


def _start_positions(consumer: Any, settings: ClientSettings, request: ConsumeRequest,
                     partitions: list[int]) -> list[Any]:
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

    start, topic = request.start, request.topic
    if start.kind in ("beginning", "end"):
        return [TopicPartition(topic, p, OFFSET_BEGINNING if start.kind == "beginning" else OFFSET_END)
                for p in partitions]
    if start.kind == "offset":
        return [TopicPartition(topic, p, start.value) for p in partitions]
    try:
        if start.kind == "tail":
            positions = []
            for p in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=settings.timeout_s)
                positions.append(TopicPartition(topic, p, max(low, high - start.value)))
            return positions
        found = consumer.offsets_for_times([TopicPartition(topic, p, start.value) for p in partitions],
                                           timeout=settings.timeout_s)
    except Exception as exc:  # KafkaException, mapped by call_error
        raise call_error(exc, settings, "list offsets") from None
    return [TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END) for tp in found]


class _Progress:
    """Which partitions are finished: at their end (with -e) or past the e@ stop timestamp."""

    def __init__(self, consumer: Any, request: ConsumeRequest, partitions: list[int]) -> None:
        self.consumer, self.request, self.partitions = consumer, request, set(partitions)
        self.at_end: set[int] = set()
        self.stopped: set[int] = set()

    def assigned(self) -> set[int]:
        if self.request.group is None:
            return self.partitions
        return {tp.partition for tp in self.consumer.assignment()}

    def finished(self) -> bool:
        assigned = self.assigned()
        done = self.stopped | (self.at_end if self.request.exit_at_end else set())
        return bool(assigned) and assigned <= done

    def stop_partition(self, partition: int) -> None:
        from confluent_kafka import TopicPartition

        self.stopped.add(partition)
        self.consumer.pause([TopicPartition(self.request.topic, partition)])


def _store(consumer: Any, topic: str, written: list[ConsumedRecord]) -> None:
    """Store the next offset of each partition written (committed by auto-commit and at close)."""
    from confluent_kafka import KafkaException, TopicPartition

    last: dict[int, int] = {}
    for record in written:
        last[record.partition] = record.offset
    # KafkaException: the partition was revoked meanwhile; its records are read again (at-least-once)
    with contextlib.suppress(KafkaException):
        consumer.store_offsets(offsets=[TopicPartition(topic, p, o + 1) for p, o in last.items()])


def _loop(stop: threading.Event, consumer: Any, request: ConsumeRequest, sink: RecordSink, leaders: Mapping[int, int],
          progress: _Progress) -> ConsumeReport:
    from confluent_kafka import KafkaError

    count, last_record_at = 0, time.monotonic()
    while not stop.is_set():
        batch: list[ConsumedRecord] = []
        for msg in consumer.consume(num_messages=500, timeout=0.1):
            error = msg.error()
            if error is None:
                if request.stop_timestamp is not None and (msg.timestamp()[1] >= request.stop_timestamp):
                    progress.stop_partition(msg.partition())
                elif msg.partition() not in progress.stopped:
                    progress.at_end.discard(msg.partition())
                    batch.append(to_record(msg, leaders))
            elif error.code() == KafkaError._PARTITION_EOF:
                progress.at_end.add(msg.partition())
                if request.exit_at_end and msg.partition() not in progress.stopped:
                    sink.partition_end(PartitionEnd(msg.topic(), msg.partition(), msg.offset()), progress.finished())
            elif error.fatal() or not error.retriable():
                raise KafkaCallError(error.name(), f"consume {request.topic}: {error_text(error)}")
        if request.count is not None:
            batch = batch[:request.count - count]
        if batch:
            written = sink.write(batch)
            count += written
            last_record_at = time.monotonic()
            if request.group is not None:
                _store(consumer, request.topic, batch[:written])
            if written < len(batch):
                return ConsumeReport(count, "closed")
        if request.count is not None and count >= request.count:
            return ConsumeReport(count, "count")
        if progress.finished():
            return ConsumeReport(count, "eof" if not progress.stopped else "stop-timestamp")
        idle_ms = (time.monotonic() - last_record_at) * 1000
        if request.idle_timeout_ms is not None and idle_ms >= request.idle_timeout_ms:
            return ConsumeReport(count, "timeout")
    return ConsumeReport(count, "interrupted")


def _consume(stop: threading.Event, settings: ClientSettings, request: ConsumeRequest,
             sink: RecordSink) -> ConsumeReport:
    from confluent_kafka import Consumer

    consumer = Consumer(settings.librdkafka(**request.librdkafka()))
    try:
        leaders = _partitions(metadata(consumer, settings, request.topic), request)
        if request.group is not None:
            consumer.subscribe([request.topic])
        else:
            consumer.assign(_start_positions(consumer, settings, request, list(leaders)))
        return _loop(stop, consumer, request, sink, leaders, _Progress(consumer, request, list(leaders)))
    finally:
        consumer.close()


async def consume(settings: ClientSettings, request: ConsumeRequest, sink: RecordSink) -> ConsumeReport:
    """Read ``request.topic`` into ``sink`` until a stop condition; cancelling ends it cleanly."""
    request.check()
    return await run_stoppable(lambda stop: _consume(stop, settings, request, sink))
