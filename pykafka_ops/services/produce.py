"""Send records to a topic with a librdkafka producer and count what was acknowledged.

The partitioner is librdkafka's ``partitioner`` setting; the default here is ``murmur2_random``
(Java-compatible murmur2 for keyed records, random for null keys) so that keyed records land on
the partition a Java client would choose — librdkafka's own default, ``consistent_random``
(CRC-32), puts them elsewhere (`cli-parity.md` §6.3). ``java`` and ``crc32`` are accepted as
aliases of the two.

The input is read on its own daemon thread, so that Ctrl-C ends a run even while a terminal
read blocks: the loop stops taking records, flushes what it sent and reports the counts.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.librdkafka import error_text, metadata, run_stoppable
from pykafka_ops.models.records import ProduceReport, ProducerRecord

#: librdkafka's partitioner names (CONFIGURATION.md) and our two aliases.
PARTITIONERS: dict[str, str] = {
    "murmur2_random": "murmur2_random", "murmur2": "murmur2", "consistent_random": "consistent_random",
    "consistent": "consistent", "fnv1a": "fnv1a", "fnv1a_random": "fnv1a_random", "random": "random",
    "java": "murmur2_random", "crc32": "consistent_random",
}
DEFAULT_PARTITIONER = "murmur2_random"
COMPRESSION_TYPES = ("none", "gzip", "snappy", "lz4", "zstd")
ACKS = ("0", "1", "all", "-1")
_END = object()


@dataclass(frozen=True)
class ProduceOptions:
    """Producer settings: ``acks`` 0|1|all, ``rate`` in records/s (None = as fast as possible),
    ``partition`` forces one partition, ``properties`` are extra librdkafka settings."""

    acks: str = "all"
    idempotent: bool = False
    compression: str = "none"
    partitioner: str = DEFAULT_PARTITIONER
    partition: int | None = None
    rate: float | None = None
    linger_ms: int = 5
    properties: Mapping[str, str] = field(default_factory=dict)

    def librdkafka(self, timeout_ms: int) -> dict[str, Any]:
        """The producer settings for confluent-kafka."""
        return {"acks": "all" if self.acks == "-1" else self.acks, "enable.idempotence": self.idempotent,
                "compression.type": self.compression, "partitioner": PARTITIONERS[self.partitioner],
                "linger.ms": self.linger_ms, "message.timeout.ms": timeout_ms, **self.properties}


class Pacer:
    """Spaces calls ``1/rate`` seconds apart (Kafka's ThroughputThrottler, simplified)."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = time.monotonic()

    def wait(self, sleep: Callable[[float], object]) -> None:
        """Block until the next slot with ``sleep(seconds)`` (``stop.wait``, ``producer.poll`` …)."""
        if not self.interval:
            return
        delay = self.next_at - time.monotonic()
        if delay > 0:
            sleep(delay)
        self.next_at = max(self.next_at, time.monotonic() - 1.0) + self.interval


def _feed(records: Iterable[ProducerRecord], out: queue.Queue[Any], stop: threading.Event) -> None:
    """Move ``records`` into ``out``, then ``_END`` (or the exception that ended the input)."""

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        for record in records:
            if not put(record):
                return
        put(_END)
    except Exception as exc:  # an InputError or a read error ends the input; reported by the loop
        put(exc)


def send(producer: Any, topic: str, record: ProducerRecord, partition: int | None,
         on_delivery: Callable[[Any, Any], None]) -> None:
    """``producer.produce`` one record, serving delivery reports while librdkafka's queue is full;
    a record librdkafka refuses at once is reported to ``on_delivery`` as failed."""
    from confluent_kafka import KafkaException

    chosen = partition if partition is not None else record.partition
    while True:
        try:
            producer.produce(topic, record.value, record.key, partition=-1 if chosen is None else chosen,
                             on_delivery=on_delivery, timestamp=record.timestamp or 0,
                             headers=list(record.headers) or None)
            return
        except BufferError:
            producer.poll(0.05)
        except KafkaException as exc:  # refused locally (unknown partition, too large …): a failed delivery
            on_delivery(exc.args[0], None)
            return


def _produce(stop: threading.Event, settings: ClientSettings, topic: str, records: Iterable[ProducerRecord],
             options: ProduceOptions) -> ProduceReport:
    from confluent_kafka import Producer

    producer = Producer(settings.librdkafka(**options.librdkafka(int(settings.timeout_s * 1000))))
    metadata(producer, settings)
    counts = {"delivered": 0, "failed": 0}
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is None:
            counts["delivered"] += 1
        else:
            counts["failed"] += 1
            if not errors:
                errors.append(error_text(err))

    feed: queue.Queue[Any] = queue.Queue(maxsize=10_000)
    threading.Thread(target=_feed, args=(records, feed, stop), name="pko-produce-input", daemon=True).start()
    pacer, sent, input_error = Pacer(options.rate), 0, None
    while not stop.is_set():
        try:
            item = feed.get(timeout=0.1)
        except queue.Empty:
            producer.poll(0)
            continue
        if item is _END:
            break
        if isinstance(item, Exception):
            input_error = str(item)
            break
        pacer.wait(stop.wait)
        send(producer, topic, item, options.partition, on_delivery)
        sent += 1
        producer.poll(0)
    unacknowledged = producer.flush(settings.timeout_s)
    if unacknowledged and not errors:
        errors.append(f"{unacknowledged} records not acknowledged within {settings.timeout_s:g} s")
    return ProduceReport(topic, sent, counts["delivered"], counts["failed"] + unacknowledged,
                         errors[0] if errors else None, input_error, stop.is_set())


async def produce(settings: ClientSettings, topic: str, records: Iterable[ProducerRecord],
                  options: ProduceOptions | None = None) -> ProduceReport:
    """Send every record of ``records`` to ``topic``; the report counts acknowledgements.

    ``records`` is consumed on a separate thread. Delivery waits at most the settings' timeout
    per record (librdkafka's ``message.timeout.ms``); cancelling stops reading, flushes, reports.
    """
    chosen = options or ProduceOptions()
    return await run_stoppable(lambda stop: _produce(stop, settings, topic, records, chosen))
