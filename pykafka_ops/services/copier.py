"""A consume-transform-produce copier, exactly-once or at-least-once, run as its own process so
that it can be killed with SIGKILL (``pko demo --exactly-once`` and the fault test T7 do).

    python -m pykafka_ops.services.copier --bootstrap HOST:PORT --source in --sink out \\
        --group copier --transactional-id copier-1 [--guarantee at-least-once] [--hold-ms 100]

Exactly-once (the design document's flow): a transactional producer (idempotent, acks=all, a
``transactional.id``), a read_committed consumer without auto-commit, and the consumed offsets
sent in each batch's transaction (``send_offsets_to_transaction``). A restarted instance with the
same ``transactional.id`` fences the killed one (its open transaction is aborted) and resumes at
the offsets committed with the last committed transaction: nothing is lost or copied twice.
At-least-once: an idempotent producer, a flush, then a synchronous offset commit: a kill between
the two copies the batch again on restart.

Partitions are assigned (no group rebalance to wait for after a kill), starting at the group's
committed offsets (read_committed asks them with ``require_stable``). Each record keeps its
partition, key and headers; ``--transform`` changes the value. Progress goes to stdout as JSON
lines: ``{"event": "ready", "pending": n}`` (records after the committed offsets),
``{"event": "produced", "batch": k, "records": n}`` (before the commit; ``--hold-ms`` waits
there), ``{"event": "committed", "batch": k, "records": n, "ms": t, "commit_ms": c}`` (produce
to commit, and the commit alone), ``{"event": "aborted", …}``, ``{"event": "failed", "error":
name, "fatal": bool}`` before an error ends the process (a fenced zombie's) and, with
``--exit-idle-ms``, ``{"event": "done", "copied": n}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

GUARANTEES = ("exactly-once", "at-least-once")


def _identity(value: bytes | None) -> bytes | None:
    return value


def _validate_order(value: bytes | None) -> bytes | None:
    """An order (JSON) marked as validated; anything else passes unchanged."""
    try:
        order = json.loads(value or b"")
    except ValueError:
        return value
    return json.dumps({**order, "validated": True}).encode() if isinstance(order, dict) else value


TRANSFORMS: dict[str, Callable[[bytes | None], bytes | None]] = {"copy": _identity, "validate-order": _validate_order}


@dataclass(frozen=True)
class CopierConfig:
    """What to copy and how (see the module docstring)."""

    bootstrap: str
    source: str
    sink: str
    group: str
    transactional_id: str
    guarantee: str = "exactly-once"
    transform: str = "copy"
    batch: int = 100
    hold_ms: int = 0
    exit_idle_ms: int | None = None
    transaction_timeout_ms: int = 10_000

    def argv(self) -> list[str]:
        """The command line that runs this copier in a new process."""
        args = [sys.executable, "-m", "pykafka_ops.services.copier", "--bootstrap", self.bootstrap, "--source",
                self.source, "--sink", self.sink, "--group", self.group, "--transactional-id",
                self.transactional_id, "--guarantee", self.guarantee, "--transform", self.transform,
                "--batch", str(self.batch), "--hold-ms", str(self.hold_ms),
                "--transaction-timeout-ms", str(self.transaction_timeout_ms)]
        return args + (["--exit-idle-ms", str(self.exit_idle_ms)] if self.exit_idle_ms is not None else [])


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class Copier:
    """One copier instance (a producer and a consumer of its own)."""

    def __init__(self, config: CopierConfig) -> None:
        from confluent_kafka import Consumer, Producer

        self.config = config
        self.exactly_once = config.guarantee == "exactly-once"
        self.transform = TRANSFORMS[config.transform]
        common = {"bootstrap.servers": config.bootstrap, "log_level": 0, "reconnect.backoff.ms": 20,
                  "reconnect.backoff.max.ms": 200, "retry.backoff.ms": 20, "retry.backoff.max.ms": 200}
        producer = {"acks": "all", "enable.idempotence": True, "linger.ms": 5}
        if self.exactly_once:
            producer |= {"transactional.id": config.transactional_id,
                         "transaction.timeout.ms": config.transaction_timeout_ms}
        self.producer = Producer(common | producer)
        self.consumer = Consumer(common | {
            "group.id": config.group, "enable.auto.commit": False, "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed" if self.exactly_once else "read_uncommitted"})
        self.committed: dict[int, int] = {}
        self.copied = self.batches = 0

    def start(self, timeout_s: float = 60) -> None:
        """Fence earlier instances (exactly-once), then assign every source partition at the committed offsets."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        if self.exactly_once:
            self.producer.init_transactions(timeout_s)
        described = self.consumer.list_topics(self.config.source, timeout=timeout_s).topics[self.config.source]
        partitions = [TopicPartition(self.config.source, p) for p in sorted(described.partitions)]
        pending = 0
        for tp in self.consumer.committed(partitions, timeout=timeout_s):
            low, high = self.consumer.get_watermark_offsets(tp, timeout=timeout_s)
            self.committed[tp.partition] = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            pending += high - (tp.offset if tp.offset >= 0 else low)
        self.consumer.assign([TopicPartition(self.config.source, p, o) for p, o in self.committed.items()])
        _emit("ready", start=self.committed, pending=pending)

    def _rewind(self) -> None:
        """Back to the last committed positions (after an aborted transaction)."""
        from confluent_kafka import TopicPartition

        for p, offset in self.committed.items():
            self.consumer.seek(TopicPartition(self.config.source, p, offset))

    def _produce(self, messages: Sequence[Any]) -> None:
        for m in messages:
            while True:
                try:
                    self.producer.produce(self.config.sink, self.transform(m.value()), m.key(), m.partition(),
                                          headers=m.headers())
                    break
                except BufferError:
                    self.producer.poll(0.01)

    def _commit(self, offsets: dict[int, int]) -> None:
        from confluent_kafka import TopicPartition

        positions = [TopicPartition(self.config.source, p, o) for p, o in offsets.items()]
        if self.exactly_once:
            self.producer.send_offsets_to_transaction(positions, self.consumer.consumer_group_metadata(), 30)
            self.producer.commit_transaction(30)
        else:
            self.consumer.commit(offsets=positions, asynchronous=False)

    def copy_batch(self, messages: Sequence[Any]) -> None:
        """Copy one batch in one transaction (or produce, flush, commit); an abortable error rewinds."""
        from confluent_kafka import KafkaException

        offsets = {m.partition(): m.offset() + 1 for m in messages}
        self.batches += 1
        started = time.monotonic()
        try:
            if self.exactly_once:
                self.producer.begin_transaction()
            self._produce(messages)
            if not self.exactly_once and self.producer.flush(30):
                raise RuntimeError("records not acknowledged within 30 s")
            _emit("produced", batch=self.batches, records=len(messages))
            if self.config.hold_ms:
                time.sleep(self.config.hold_ms / 1000)
            committing = time.monotonic()
            self._commit(offsets)
        except KafkaException as exc:
            error = exc.args[0]
            if not (self.exactly_once and error.txn_requires_abort()):
                _emit("failed", batch=self.batches, error=error.name(), fatal=error.fatal())
                raise
            self.producer.abort_transaction(30)
            self._rewind()
            _emit("aborted", batch=self.batches, error=str(error))
            return
        self.committed.update(offsets)
        self.copied += len(messages)
        now = time.monotonic()
        _emit("committed", batch=self.batches, records=len(messages), ms=round((now - started) * 1000, 1),
              commit_ms=round((now - committing) * 1000, 1))

    def run(self) -> int:
        """Copy until killed (or idle at every partition's end for ``exit_idle_ms``); records copied."""
        from confluent_kafka import KafkaError

        at_end: set[int] = set()
        idle_since = time.monotonic()
        while True:
            batch = []
            for m in self.consumer.consume(self.config.batch, 0.2):
                if m.error() is None:
                    batch.append(m)
                    at_end.discard(m.partition())
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
            if batch:
                self.copy_batch(batch)
                idle_since = time.monotonic()
            elif (self.config.exit_idle_ms is not None and at_end >= set(self.committed)
                  and (time.monotonic() - idle_since) * 1000 >= self.config.exit_idle_ms):
                _emit("done", copied=self.copied)
                return self.copied

    def close(self) -> None:
        """Leave cleanly (a killed copier does not get here)."""
        self.consumer.close()
        self.producer.flush(10)


def parse_config(argv: Sequence[str] | None = None) -> CopierConfig:
    """The command line of ``CopierConfig.argv()`` (without the interpreter and ``-m``) → its configuration."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag in ("bootstrap", "source", "sink", "group", "transactional-id"):
        parser.add_argument(f"--{flag}", required=True)
    parser.add_argument("--guarantee", choices=GUARANTEES, default="exactly-once")
    parser.add_argument("--transform", choices=sorted(TRANSFORMS), default="copy")
    for flag, default in (("batch", 100), ("hold-ms", 0), ("transaction-timeout-ms", 10_000)):
        parser.add_argument(f"--{flag}", type=int, default=default)
    parser.add_argument("--exit-idle-ms", type=int, default=None)
    args = parser.parse_args(argv)
    return CopierConfig(args.bootstrap, args.source, args.sink, args.group, args.transactional_id, args.guarantee,
                        args.transform, args.batch, args.hold_ms, args.exit_idle_ms, args.transaction_timeout_ms)


def main(argv: list[str] | None = None) -> int:
    """Run one copier until killed (or idle, with ``--exit-idle-ms``)."""
    copier = Copier(parse_config(argv))
    try:
        copier.start()
        copier.run()
    finally:
        copier.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
