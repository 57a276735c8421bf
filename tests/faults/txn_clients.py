"""Read_committed readers of the transactional fault test (T7): a reader thread that follows a
topic while the copier runs, and the duplicate count. The final read to the end of every
partition is ``pykafka_ops.services.copier_run.read_to_end`` (``faults.clients.drain`` counts
offsets up to the high watermark, which a read_committed consumer never reaches: markers and
aborted data are not returned).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

Reads = dict[int, list[str]]


class CommittedReader:
    """A read_committed consumer following ``topic`` in a thread until ``stop()``."""

    def __init__(self, bootstrap: str, topic: str, partitions: Iterable[int]) -> None:
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, list(partitions)
        self.reads: Reads = {p: [] for p in self.partitions}
        self.errors: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"reader-{topic}", daemon=True)

    def start(self) -> CommittedReader:
        self._thread.start()
        return self

    @property
    def count(self) -> int:
        """Records read so far."""
        return sum(len(values) for values in self.reads.values())

    def _run(self) -> None:
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"rc-{uuid.uuid4().hex[:8]}",
                             "isolation.level": "read_committed", "enable.auto.commit": False, "log_level": 0})
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self.partitions])
        try:
            while not self._stop.is_set():
                for m in consumer.consume(1_000, 0.1):
                    if m.error() is None:
                        self.reads[m.partition()].append((m.value() or b"").decode())
                    else:
                        self.errors[m.error().name()] = self.errors.get(m.error().name(), 0) + 1
        finally:
            consumer.close()

    def stop(self, timeout_s: float = 10) -> None:
        self._stop.set()
        self._thread.join(timeout_s)


def duplicates(reads: Reads) -> int:
    """Values read more than once (over every partition)."""
    values = [v for vs in reads.values() for v in vs]
    return len(values) - len(set(values))
