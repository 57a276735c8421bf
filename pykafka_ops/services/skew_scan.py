"""Reading a topic's records for `pko skew`: assigned partitions (no group membership), batched
``consume()``, every offset range read once up to the high watermark found at the start.

Blocking (confluent-kafka); the skew service runs ``scan`` in a worker thread. A consumed batch is
grouped into runs of one partition (librdkafka hands out messages partition by partition), and
each run goes to ``KeyStats.add`` whole, so the per-record work is C code: ``Message.key`` mapped
over the run, counting and hashing in the sketches; sizes are read from sampled records only. A
partition is done when a record at or past its end offset arrives or librdkafka reports
end-of-partition; it is then unassigned, so the remaining partitions get the fetches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.services.skew_keystats import KeyStats
from pykafka_ops.services.skew_whatif import RecordView

#: Messages per ``consume()`` call, and how long one call may wait for them (s): short, so that a
#: partial last batch does not wait long.
BATCH = 5000
BATCH_WAIT_S = 0.1
#: librdkafka pauses a partition's fetches this long (ms) once its local queue is full; its
#: default of 1000 ms idles the connection for most of a second whenever we read slower than
#: the broker sends, which halves throughput. A short backoff keeps fetches flowing.
FETCH_QUEUE_BACKOFF_MS = 20
#: Seconds without any record or end-of-partition event before the scan gives up.
STALL_S = 15.0

Progress = Callable[[int, int], None]
"""``progress(records_read, records_to_read)``, called from the scanning thread."""


class ScanError(RuntimeError):
    """Reading the topic failed (the message says which partitions and why)."""


@dataclass(frozen=True)
class PartitionRange:
    """Offsets [start, end) of one partition to read."""

    partition: int
    start: int
    end: int

    @property
    def size(self) -> int:
        """Records in the range (offsets; control records and compaction gaps included)."""
        return max(0, self.end - self.start)


def scan(settings: ClientSettings, topic: str, ranges: Sequence[PartitionRange], stats: KeyStats,
         deadline: float | None = None, stop: threading.Event | None = None,
         progress: Progress | None = None) -> bool:
    """Read ``ranges`` of ``topic`` into ``stats``. Returns False when ``deadline`` (a
    ``time.monotonic()`` value) passed or ``stop`` was set before every range was read."""
    from confluent_kafka import Consumer, Message, TopicPartition

    remaining = {r.partition: r.end for r in ranges if r.size}
    total = sum(r.size for r in ranges)
    if not remaining:
        return True
    consumer = Consumer(settings.librdkafka(
        group_id="pko-skew", enable_auto_commit=False, enable_auto_offset_store=False,
        enable_partition_eof=True, auto_offset_reset="earliest", isolation_level="read_uncommitted",
        fetch_queue_backoff_ms=FETCH_QUEUE_BACKOFF_MS))
    reader = _RunReader(stats)
    try:
        consumer.assign([TopicPartition(topic, r.partition, r.start) for r in ranges if r.size])
        last_event = time.monotonic()
        while remaining:
            now = time.monotonic()
            if (deadline is not None and now >= deadline) or (stop is not None and stop.is_set()):
                return False
            messages = consumer.consume(BATCH, BATCH_WAIT_S)
            if not messages:
                if now - last_event > STALL_S:
                    raise ScanError(f"no records from {topic} partitions {sorted(remaining)} for {STALL_S:g} s "
                                    f"(bootstrap {settings.bootstrap_servers})")
                continue
            last_event = now
            finished: list[int] = []
            if any(map(Message.error, messages)):
                messages, finished = _split_events(messages, topic)
            for partition, group in groupby(messages, Message.partition):
                if partition is None or (end := remaining.get(partition)) is None:
                    continue  # a partition already read to its end
                run: list[Any] = list(group)
                if run[-1].offset() >= end - 1:
                    run = [m for m in run if m.offset() < end]
                    finished.append(partition)
                reader.add(partition, run)
            for partition in finished:
                if remaining.pop(partition, None) is not None:
                    consumer.incremental_unassign([TopicPartition(topic, partition)])
            if progress is not None:
                progress(stats.total_scanned, total)
        return True
    finally:
        consumer.close()


class _RunReader:
    """Feeds runs of confluent-kafka messages of one partition to ``KeyStats``."""

    def __init__(self, stats: KeyStats) -> None:
        from confluent_kafka import Message

        self.stats = stats
        self._key = Message.key
        self._headers = any(t.needs_headers for t in stats.templates)
        self._value = any(t.needs_value for t in stats.templates)

    def add(self, partition: int, run: list[Any]) -> None:
        """Count ``run`` and sample from it."""
        picked = run[self.stats.sample_slice(partition, len(run))]
        sampled = []
        for m in picked:
            key = m.key()
            sampled.append(RecordView(partition, key, m.offset(), m.timestamp()[1],
                                      m.headers() if self._headers else None, m.value() if self._value else None,
                                      len(m) + len(key or b"")))
        self.stats.add(partition, list(map(self._key, run)), sampled)


def _split_events(messages: list[Any], topic: str) -> tuple[list[Any], list[int]]:
    """Records, and the partitions that reported end-of-partition. Connection trouble is left
    to librdkafka's retries (and to ``STALL_S``); any other error ends the scan."""
    from confluent_kafka import KafkaError

    transient = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE, KafkaError._TIMED_OUT}
    records, at_end = [], []
    for message in messages:
        error = message.error()
        if error is None:
            records.append(message)
        elif error.code() == KafkaError._PARTITION_EOF:
            at_end.append(message.partition())
        elif error.code() not in transient:
            raise ScanError(f"reading {topic}: {error.str()}")
    return records, at_end
