"""Producer and consumer performance runs, as kafka-producer-perf-test / kafka-consumer-perf-test.

Producer: ``num_records`` values of ``record_size`` random upper-case letters (one payload reused,
as the Java tool does) or payloads taken at random from a file, optionally throttled to
``throughput`` records/s; latency is librdkafka's per-message figure, ``produce()`` to
acknowledgement. Every latency is kept (8 bytes each), so percentiles are exact, not sampled.
With a transaction duration (``--transaction-duration-ms``), the producer is transactional and
commits a transaction every that many ms, as the Java tool does (the last one at the end).
Consumer: reads ``messages`` records from the earliest (or latest) offsets; with a group it
subscribes and the time to the first assignment is the rebalance time, without one it assigns
every partition directly (rebalance time 0, no coordinator needed).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from array import array
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.librdkafka import error_text, metadata, run_stoppable
from pykafka_ops.models.perf import ConsumerPerfResult, ProducerPerfResult, ProducerPerfWindow
from pykafka_ops.services.produce import Pacer

WindowFn = Callable[[ProducerPerfWindow], None]


def random_payload(size: int, seed: int | None = None) -> bytes:
    """``size`` random upper-case ASCII letters (the Java tool's payload)."""
    rng = random.Random(seed)
    return bytes(rng.randrange(65, 91) for _ in range(size))


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The Java tool's percentile: ``sorted[int(n × fraction)]`` (0 for no values)."""
    if not ordered:
        return 0.0
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


class _Tally:
    """Acknowledgements counted from delivery callbacks, for the run and the current window."""

    def __init__(self) -> None:
        self.latencies = array("d")
        self.bytes = self.failed = 0
        self.first_error: str | None = None
        self.window_start, self.window_first, self.window_bytes, self.window_max = time.monotonic(), 0, 0, 0.0

    def on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failed += 1
            self.first_error = self.first_error or error_text(err)
            return
        latency = (msg.latency() or 0.0) * 1000
        self.latencies.append(latency)
        self.bytes += len(msg)
        self.window_bytes += len(msg)
        self.window_max = max(self.window_max, latency)

    def window(self) -> ProducerPerfWindow:
        """The window since the last call (and start a new one)."""
        now, done = time.monotonic(), len(self.latencies)
        count = done - self.window_first
        avg = sum(self.latencies[self.window_first:]) / count if count else 0.0
        result = ProducerPerfWindow(count, now - self.window_start, self.window_bytes, avg, self.window_max)
        self.window_start, self.window_first, self.window_bytes, self.window_max = now, done, 0, 0.0
        return result


class _Transactions:
    """Commits a transaction every ``duration_ms`` (None: not transactional)."""

    def __init__(self, producer: Any, duration_ms: int | None, timeout_s: float) -> None:
        self.producer, self.duration_s, self.timeout_s = producer, (duration_ms or 0) / 1000, timeout_s
        self.committed, self.started = 0, time.monotonic()
        if duration_ms is not None:
            producer.init_transactions(timeout_s)
            producer.begin_transaction()

    def tick(self, last: bool = False) -> None:
        """Commit when the transaction is old enough (or ``last``), then begin the next."""
        if not self.duration_s or not (last or time.monotonic() - self.started >= self.duration_s):
            return
        self.producer.commit_transaction(self.timeout_s)
        self.committed += 1
        if not last:
            self.producer.begin_transaction()
            self.started = time.monotonic()


def _produce_perf(stop: threading.Event, settings: ClientSettings, topic: str, num_records: int,
                  payloads: Sequence[bytes], throughput: float, props: Mapping[str, str], on_window: WindowFn | None,
                  interval_s: float, transaction_duration_ms: int | None) -> ProducerPerfResult:
    from confluent_kafka import Producer

    producer = Producer(settings.librdkafka(**props))
    metadata(producer, settings)
    transactions = _Transactions(producer, transaction_duration_ms, settings.timeout_s)
    tally, pacer, rng = _Tally(), Pacer(throughput if throughput > 0 else None), random.Random()
    single = payloads[0] if len(payloads) == 1 else None
    start = next_report = time.monotonic()
    next_report += interval_s
    for i in range(num_records):
        if stop.is_set():
            break
        pacer.wait(producer.poll)
        value = single if single is not None else rng.choice(payloads)
        while True:
            try:
                producer.produce(topic, value, on_delivery=tally.on_delivery)
                break
            except BufferError:
                producer.poll(0.005)
        # librdkafka's latency is measured when the delivery report is served: serve them often
        # (every 32 records: a few µs late at most, at a fraction of the cost of polling each time)
        if not i & 31:
            producer.poll(0)
            transactions.tick()
            if on_window is not None and not i & 1023 and time.monotonic() >= next_report:
                on_window(tally.window())
                next_report += interval_s
    transactions.tick(last=True)
    unacknowledged = producer.flush(settings.timeout_s)
    elapsed = time.monotonic() - start
    ordered = sorted(tally.latencies)
    done = len(ordered)
    total = ProducerPerfWindow(done, elapsed, tally.bytes, sum(ordered) / done if done else 0.0,
                               ordered[-1] if ordered else 0.0)
    return ProducerPerfResult(total, percentile(ordered, 0.5), percentile(ordered, 0.95), percentile(ordered, 0.99),
                              percentile(ordered, 0.999), tally.failed + unacknowledged,
                              tally.first_error or (f"{unacknowledged} not acknowledged" if unacknowledged else None),
                              transactions.committed)


async def producer_perf(settings: ClientSettings, topic: str, num_records: int, payloads: Sequence[bytes],
                        throughput: float = -1, props: Mapping[str, str] | None = None,
                        on_window: WindowFn | None = None, interval_s: float = 5.0,
                        transaction_duration_ms: int | None = None) -> ProducerPerfResult:
    """Send ``num_records`` records (throttled to ``throughput`` records/s when > 0) and measure;
    ``on_window`` gets a window every ``interval_s`` seconds; with ``transaction_duration_ms`` (and a
    ``transactional.id`` in ``props``) in transactions of that age. Cancelling stops early and reports."""
    return await run_stoppable(lambda stop: _produce_perf(stop, settings, topic, num_records, payloads, throughput,
                                                          props or {}, on_window, interval_s,
                                                          transaction_duration_ms))


def _consume_perf(stop: threading.Event, settings: ClientSettings, topic: str, messages: int, group: str | None,
                  from_latest: bool, timeout_ms: int, props: Mapping[str, str]) -> ConsumerPerfResult:
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

    consumer = Consumer(settings.librdkafka(**{
        "group.id": group or f"perf-consumer-{uuid.uuid4().hex[:8]}", "enable.auto.commit": group is not None,
        "auto.offset.reset": "latest" if from_latest else "earliest", **props}))
    try:
        described = metadata(consumer, settings, topic).topics.get(topic)
        if described is None or described.error is not None or not described.partitions:
            raise LookupError(f"Topic '{topic}' does not exist")
        start_ms = int(time.time() * 1000)
        assigned_at: list[int] = []
        if group is not None:
            consumer.subscribe([topic], on_assign=lambda _c, _p: assigned_at.append(int(time.time() * 1000)))
        else:
            position = OFFSET_END if from_latest else OFFSET_BEGINNING
            consumer.assign([TopicPartition(topic, p, position) for p in described.partitions])
        count = size = 0
        last_record, timed_out = time.monotonic(), False
        while count < messages and not stop.is_set():
            # never more than is left: consume() waits its timeout for as many as it asks
            batch = consumer.consume(num_messages=min(10_000, messages - count), timeout=0.1)
            records = [m for m in batch if m.error() is None]
            if records:
                count += len(records)
                size += sum(len(m) + len(m.key() or b"") for m in records)
                last_record = time.monotonic()
            elif (time.monotonic() - last_record) * 1000 >= timeout_ms:
                timed_out = True
                break
        end_ms = int(time.time() * 1000)
    finally:
        consumer.close()
    rebalance_ms = assigned_at[0] - start_ms if assigned_at else 0
    return ConsumerPerfResult(start_ms, end_ms, size, count, rebalance_ms, timed_out)


async def consumer_perf(settings: ClientSettings, topic: str, messages: int, group: str | None = None,
                        from_latest: bool = False, timeout_ms: int = 10_000,
                        props: Mapping[str, str] | None = None) -> ConsumerPerfResult:
    """Read ``messages`` records from ``topic`` and measure; stops early after ``timeout_ms`` without a record."""
    return await run_stoppable(lambda stop: _consume_perf(stop, settings, topic, messages, group, from_latest,
                                                          timeout_ms, props or {}))
