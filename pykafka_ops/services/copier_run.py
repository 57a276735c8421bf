"""The parent side of the copier of ``pykafka_ops.services.copier``: one child process
(``CopierProcess``: its JSON events, SIGKILL) and a run of successive instances sharing one
``transactional.id`` (``CopierRun``: kill one mid-transaction and start the next, wait for
progress or for the end, restarting an instance that died by itself). ``pko demo --exactly-once``
and the fault test T7 drive copiers with it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pykafka_ops.services.copier import CopierConfig

#: Seconds between two looks at a copier's events.
POLL_S = 0.01


@dataclass
class CopierProcess:
    """A copier in a child process: its events as they arrive, SIGKILL, its exit status."""

    config: CopierConfig
    events: list[dict[str, Any]] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    def start(self) -> CopierProcess:
        """Start the process and a thread reading its events."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(self.config.argv(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, env=env)
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        return self

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                continue

    def of(self, event: str) -> list[dict[str, Any]]:
        """The events of this kind so far."""
        return [e for e in list(self.events) if e.get("event") == event]

    @property
    def committed_records(self) -> int:
        """Records this instance copied in committed transactions (or batches)."""
        return sum(e["records"] for e in self.of("committed"))

    @property
    def mid_transaction(self) -> bool:
        """A batch was produced and is neither committed nor aborted yet."""
        return len(self.of("produced")) > len(self.of("committed")) + len(self.of("aborted"))

    @property
    def returncode(self) -> int | None:
        """The exit status, None while it runs."""
        return None if self.process is None else self.process.poll()

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` (SIGSTOP, SIGCONT …) if the process runs."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def kill9(self) -> None:
        """SIGKILL, and reap."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@dataclass
class CopierRun:
    """Successive copier instances with one configuration (one ``transactional.id``)."""

    config: CopierConfig
    instances: list[CopierProcess] = field(default_factory=list)
    #: Instances that exited by themselves with an error (and were replaced).
    crashes: int = 0
    kills: int = 0

    def start(self) -> CopierRun:
        """Start a new instance (the next one fences the previous, exactly-once)."""
        self.instances.append(CopierProcess(self.config).start())
        return self

    @property
    def current(self) -> CopierProcess:
        """The newest instance."""
        return self.instances[-1]

    @property
    def committed_records(self) -> int:
        """Records copied in committed transactions by every instance."""
        return sum(i.committed_records for i in self.instances)

    def events(self, event: str) -> list[dict[str, Any]]:
        """The events of this kind of every instance."""
        return [e for i in self.instances for e in i.of(event)]

    def wait(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
        """Seconds until ``predicate()``, replacing an instance that died by itself; TimeoutError at the deadline."""
        started = time.monotonic()
        while not predicate():
            code = self.current.returncode
            if code not in (None, 0):
                self.crashes += 1
                self.start()
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"copier: not {what} within {timeout_s:g} s (committed {self.committed_records})")
            time.sleep(POLL_S)
        return time.monotonic() - started

    def wait_committed(self, records: int, timeout_s: float) -> float:
        """Seconds until at least ``records`` records were copied and committed."""
        return self.wait(lambda: self.committed_records >= records, timeout_s, f"{records} records committed")

    def kill_mid_transaction(self, timeout_s: float) -> None:
        """SIGKILL the current instance between its produce and its commit, and start the next."""
        self.wait(lambda: self.current.mid_transaction, timeout_s, "in the middle of a batch")
        self.current.kill9()
        self.kills += 1
        self.start()

    def pause_mid_transaction(self, timeout_s: float) -> CopierProcess:
        """SIGSTOP the current instance between its produce and its commit, start the next (which
        fences it), and return the paused one: a zombie to resume with SIGCONT."""
        self.wait(lambda: self.current.mid_transaction, timeout_s, "in the middle of a batch")
        zombie = self.current
        zombie.send_signal(signal.SIGSTOP)
        self.start()
        return zombie

    def finish(self, timeout_s: float) -> float:
        """Seconds until an instance copied everything and exited (``exit_idle_ms`` must be set)."""
        return self.wait(lambda: self.current.returncode == 0 and bool(self.current.of("done")), timeout_s,
                         "finished")

    def stop(self) -> None:
        """SIGKILL whatever still runs (teardown)."""
        for instance in self.instances:
            instance.kill9()

    def commit_latencies_ms(self) -> list[float]:
        """Every committed batch's commit time (offsets sent and the transaction committed, or the
        offset commit), in ms, sorted."""
        return sorted(e["commit_ms"] for e in self.events("committed"))


def read_to_end(bootstrap: str, topic: str, partitions: Iterable[int] | None = None,
                isolation_level: str = "read_committed", timeout_s: float = 30) -> dict[int, list[str]]:
    """partition → values (decoded) in offset order, from the beginning until every partition
    reported its end (default: every partition of ``topic``). A read_committed consumer never
    receives markers nor aborted data, so the end is librdkafka's partition-EOF event (at the
    last stable offset), not a count of offsets: call it once no transaction is open."""
    import uuid

    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex[:8]}",
                         "isolation.level": isolation_level, "enable.auto.commit": False,
                         "enable.partition.eof": True, "log_level": 0})
    try:
        if partitions is None:
            partitions = sorted(consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions)
        wanted = set(partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(wanted)])
        reads: dict[int, list[str]] = {p: [] for p in sorted(wanted)}
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while at_end != wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: only partitions {sorted(at_end)} at their end "
                                   f"after {timeout_s:g} s")
            for m in consumer.consume(10_000, 0.2):
                if m.error() is None:
                    reads[m.partition()].append((m.value() or b"").decode(errors="replace"))
                    at_end.discard(m.partition())
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
    finally:
        consumer.close()
    return reads
