"""Clients of the fault tests that record into a ``History``: a confluent-kafka producer
(idempotent, acks=all by default) and the final drain (every partition from the beginning to
its high watermark).

Values are unique strings ``<proc>-<seq>`` (``p0-17``), as the checker needs. A delivery
report's error is ``fail`` only when Kafka defines it as "nothing was appended"
(``DEFINITE_FAILURES``); any other error — a message timeout above all — is ``info``.
``WireProducer`` is a raw Kafka-protocol producer (Produce v9 to one broker's address) recording
with the same ``History.invoke/ok/fail/info`` calls.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any, Self

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Producer,
    TopicPartition,
)

from faults.history import History, Op
from pykafka_ops.client.wire import WireClient, WireError
from pykafka_ops.errors import error_name
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records.builder import RecordBatchBuilder

#: Delivery errors that mean the broker appended nothing (Kafka's error docs): the record was
#: refused before the append. Everything else is an unknown outcome.
DEFINITE_FAILURES = frozenset(getattr(KafkaError, name) for name in (
    "INVALID_MSG", "MSG_SIZE_TOO_LARGE", "INVALID_MSG_SIZE", "TOPIC_EXCEPTION", "RECORD_LIST_TOO_LARGE",
    "NOT_ENOUGH_REPLICAS", "INVALID_REQUIRED_ACKS", "TOPIC_AUTHORIZATION_FAILED", "INVALID_TIMESTAMP",
    "INVALID_RECORD", "_UNKNOWN_PARTITION", "_UNKNOWN_TOPIC", "_INVALID_ARG") if hasattr(KafkaError, name))

#: Producer settings of the fault tests: idempotent, acks=all, retrying quickly across faults.
PRODUCER_CONFIG: dict[str, Any] = {
    "acks": "all", "enable.idempotence": True, "linger.ms": 2, "message.timeout.ms": 60_000,
    "retry.backoff.ms": 20, "retry.backoff.max.ms": 200, "reconnect.backoff.ms": 20,
    "reconnect.backoff.max.ms": 200,
}


class RecordingProducer:
    """A confluent-kafka producer whose every send is an invoke and one ok/fail/info in ``history``.

    ``send()`` queues one record (call ``poll``/``flush`` to get reports); ``start()`` runs a
    thread that sends until ``stop()`` (or ``limit`` records), keeping at most ``max_in_flight``
    unanswered so that a dead broker does not grow an unbounded queue."""

    def __init__(self, bootstrap: str, topic: str, history: History, proc: str = "p0",
                 max_in_flight: int = 1_000, **config: Any) -> None:
        self.topic = topic
        self.history = history
        self.proc = proc
        self.max_in_flight = max_in_flight
        self.producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_CONFIG,
                                  **{key.replace("_", "."): value for key, value in config.items()}})
        self.sent = 0
        self.completed = 0
        self.acked = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def send(self, partition: int | None = None, key: bytes | None = None) -> str:
        """Queue the next value (to ``partition``, or the partitioner's choice); returns it."""
        value = f"{self.proc}-{self.sent}"
        self.sent += 1
        op = self.history.invoke(self.proc, "send", value, partition)
        kwargs: dict[str, Any] = {} if partition is None else {"partition": partition}
        while True:
            try:
                self.producer.produce(self.topic, value.encode(), key,
                                      on_delivery=lambda err, msg, op=op: self._report(op, err, msg), **kwargs)
                return value
            except BufferError:
                self.producer.poll(0.01)  # local queue full: wait for reports, then retry
            except Exception as exc:  # noqa: BLE001 - refused before it was queued: never sent
                self.completed += 1
                self.history.fail(op, repr(exc))
                return value

    def _report(self, op: Op, err: KafkaError | None, msg: Any) -> None:
        self.completed += 1
        if err is None:
            self.acked += 1
            self.history.ok(op, partition=msg.partition(), offset=msg.offset())
        elif err.code() in DEFINITE_FAILURES:
            self.history.fail(op, f"{err.name()}: {err.str()}")
        else:
            self.history.info(op, f"{err.name()}: {err.str()}")

    def poll(self, timeout_s: float = 0.0) -> None:
        """Serve delivery reports (they are recorded from the calling thread)."""
        self.producer.poll(timeout_s)

    def flush(self, timeout_s: float = 60.0) -> int:
        """Wait for every queued record's report; the number still queued after ``timeout_s``."""
        return self.producer.flush(timeout_s)

    # -- background -------------------------------------------------------------------------

    def start(self, limit: int | None = None, partitions: Iterable[int] | None = None,
              rate_per_s: float | None = None) -> Self:
        """Send from a thread until ``stop()`` or ``limit`` sends (round robin over ``partitions``,
        or the partitioner's choice), at most ``rate_per_s`` sends a second if given (a steady
        schedule: after a back-pressure stall the producer does not burst to catch up)."""
        cycle = list(partitions) if partitions is not None else None
        interval = 1.0 / rate_per_s if rate_per_s else 0.0

        def run() -> None:
            next_at = time.monotonic()
            while not self._stop.is_set() and (limit is None or self.sent < limit):
                if self.sent - self.completed >= self.max_in_flight:
                    self.producer.poll(0.01)  # back-pressure: wait for reports, not for time
                    next_at = time.monotonic()
                    continue
                if interval:
                    ahead = next_at - time.monotonic()
                    if ahead > 0:
                        self.producer.poll(min(max(ahead, 0.002), 0.05))  # serve reports while pacing
                        continue
                    next_at = max(next_at + interval, time.monotonic() - 0.1)
                self.send(cycle[self.sent % len(cycle)] if cycle else None)
                self.producer.poll(0)
            while not self._stop.is_set() and self.completed < self.sent:
                self.producer.poll(0.05)

        self._thread = threading.Thread(target=run, name=f"producer-{self.proc}", daemon=True)
        self._thread.start()
        return self

    def stop(self, flush_s: float = 60.0) -> int:
        """Stop sending, wait for the thread, flush; the number of records still unanswered
        (they stay open invocations in the history: unknown outcome)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(flush_s)
        return self.flush(flush_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def high_watermarks(bootstrap: str, topic: str, partitions: Iterable[int], timeout_s: float = 15) -> dict[int, int]:
    """partition → high watermark, as the partition's leader answers (confluent-kafka)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"hw-{uuid.uuid4().hex[:8]}"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1] for p in partitions}
    finally:
        consumer.close()


def drain(bootstrap: str, topic: str, partitions: Iterable[int], history: History | None = None,
          proc: str = "reader", timeout_s: float = 30) -> dict[int, list[tuple[int, str]]]:
    """Read ``partitions`` of ``topic`` from the beginning to their high watermarks (taken at the
    start) with an assigning confluent-kafka consumer; partition → [(offset, value)] in read
    order. With ``history``, each poll that returned records is a ``poll`` op (ok, or info on an
    error). Fails (AssertionError) if the ends are not reached within ``timeout_s``."""
    wanted = list(partitions)
    ends = high_watermarks(bootstrap, topic, wanted)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"drain-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "error", "enable.partition.eof": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in wanted])
    reads: dict[int, list[tuple[int, str]]] = {p: [] for p in wanted}
    position = {p: 0 for p in wanted}
    deadline = time.monotonic() + timeout_s
    try:
        while any(position[p] < ends[p] for p in wanted):
            progress = {p: f"{position[p]}/{ends[p]}" for p in wanted}
            assert time.monotonic() < deadline, f"drain of {topic} stopped at {progress} after {timeout_s:g} s"
            op = history.invoke(proc, "poll") if history is not None else None
            messages = consumer.consume(10_000, 0.5)
            errors = [m.error() for m in messages if m.error() is not None]
            for message in messages:
                if message.error() is None:
                    p, offset = message.partition(), message.offset()
                    reads[p].append((offset, (message.value() or b"").decode(errors="replace")))
                    position[p] = max(position[p], offset + 1)
            if history is not None and op is not None:
                if errors:
                    history.info(op, "; ".join(str(e) for e in errors))
                else:
                    history.ok(op, value=str(len(messages) - len(errors)))
    finally:
        consumer.close()
    return reads


#: Produce error codes after which the broker appended nothing (Kafka's ``Errors.java``): a raw
#: send answered with one of them is ``fail``; any other error is ``info`` (NOT_LEADER_OR_FOLLOWER
#: and NOT_ENOUGH_REPLICAS_AFTER_APPEND may come after the append, REQUEST_TIMED_OUT always does).
WIRE_DEFINITE_FAILURES = frozenset({
    2,   # CORRUPT_MESSAGE
    3,   # UNKNOWN_TOPIC_OR_PARTITION
    10,  # MESSAGE_TOO_LARGE
    17,  # INVALID_TOPIC_EXCEPTION
    18,  # RECORD_LIST_TOO_LARGE
    19,  # NOT_ENOUGH_REPLICAS (checked before the append)
    21,  # INVALID_REQUIRED_ACKS
    29,  # TOPIC_AUTHORIZATION_FAILED
    32,  # INVALID_TIMESTAMP
    87,  # INVALID_RECORD
})


class WireProducer:
    """A raw Kafka-protocol producer (our ``WireClient`` and codec): Produce v9, one request of
    one record at a time, to one broker's address only, whatever the cluster says about leaders
    (a client stuck on a zombie leader, say). Each send is an invoke and one ok/fail/info in
    ``history``, as ``RecordingProducer`` does; ``errors`` counts the error codes answered.

    Not idempotent (no producer id): a send is never retried, so a record is in the log at most
    once. A connection error or timeout is ``info``; the next send opens a new connection."""

    def __init__(self, host: str, port: int, topic: str, partition: int, history: History,
                 proc: str = "w0", acks: int = -1, timeout_s: float = 30.0, request_timeout_ms: int = 30_000) -> None:
        self.host, self.port = host, port
        self.topic, self.partition = topic, partition
        self.history = history
        self.proc = proc
        self.acks = acks
        self.timeout_s = timeout_s
        self.request_timeout_ms = request_timeout_ms
        self.sent = self.acked = 0
        self.errors: dict[str, int] = {}
        self._client: WireClient | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def send(self) -> Op:
        """Send the next value and wait for the answer; returns the completion op."""
        value = f"{self.proc}-{self.sent}"
        self.sent += 1
        op = self.history.invoke(self.proc, "send", value, self.partition)
        batch = RecordBatchBuilder()
        batch.append(None, value.encode())
        body = {"transactional_id": None, "acks": self.acks, "timeout": self.request_timeout_ms,
                "topic_data": [{"name": self.topic, "partition_data": [
                    {"index": self.partition, "records": batch.build()}]}]}
        try:
            if self._client is None:
                self._client = WireClient(self.host, self.port, timeout=self.timeout_s, client_id=self.proc)
            response = self._client.request(ApiKey.PRODUCE, 9, body)
        except (OSError, WireError) as exc:  # includes timeouts: the request may have been appended
            self._close()
            self._count("CONNECTION")
            return self.history.info(op, repr(exc))
        (answer,) = response.responses[0].partition_responses
        if answer.error_code == 0:
            self.acked += 1
            return self.history.ok(op, partition=self.partition, offset=answer.base_offset)
        name = error_name(answer.error_code)
        self._count(name)
        if answer.error_code in WIRE_DEFINITE_FAILURES:
            return self.history.fail(op, name)
        return self.history.info(op, name)

    def _count(self, name: str) -> None:
        self.errors[name] = self.errors.get(name, 0) + 1

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def start(self, pause_s: float = 0.01) -> Self:
        """Send from a thread until ``stop()``, ``pause_s`` apart (a deadline-free pacing, not a wait)."""
        def run() -> None:
            while not self._stop.is_set():
                self.send()
                self._stop.wait(pause_s)

        self._thread = threading.Thread(target=run, name=f"wire-producer-{self.proc}", daemon=True)
        self._thread.start()
        return self

    def stop(self, join_s: float | None = None) -> bool:
        """Stop sending; True once the thread ended (a send in flight ends within ``timeout_s``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s + 1 if join_s is None else join_s)
        alive = self._thread is not None and self._thread.is_alive()
        if not alive:
            self._close()
        return not alive
