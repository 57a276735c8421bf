"""ProducerStateManager (Kafka's): idempotent-producer state of one partition.

Per producer id we keep the epoch and the metadata of its last 5 batches
(``NUM_BATCHES_TO_RETAIN`` in `ProducerStateEntry`). On append:

* epoch below the current one → INVALID_PRODUCER_EPOCH (47);
* a batch equal to a retained one (same epoch, first and last sequence) is a *duplicate*: the
  broker answers success with the original offsets and writes nothing (`UnifiedLog`);
* new epoch → the first sequence must be 0; same epoch → it must follow the last sequence
  (wrapping at INT32_MAX); otherwise OUT_OF_ORDER_SEQUENCE_NUMBER (45);
* no state for the producer (new, expired or never seen) → any sequence is accepted.

The state is rebuilt from batch headers at load and persisted in ``<offset>.snapshot`` files
(JSON here, binary in Kafka) at segment rolls and clean shutdown, so start-up replays at most
the active segment. Transactions (ongoing txn first offset → LSO) extend ``ProducerStateEntry``.

Concurrency: owned by one PartitionLog, used from the node's event loop only.
"""

from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from pykafka_ops.errors import ErrorCode
from pykafka_ops.records.batch import BatchHeader

NUM_BATCHES_TO_RETAIN = 5
INT32_MAX = 2**31 - 1
SNAPSHOT_SUFFIX = ".snapshot"


@dataclass(frozen=True)
class BatchMetadata:
    """What is remembered of one appended batch."""

    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass
class ProducerStateEntry:
    """One producer id's epoch and recent batches."""

    epoch: int
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=NUM_BATCHES_TO_RETAIN))
    last_timestamp: int = -1

    def find_duplicate(self, first_seq: int, last_seq: int) -> BatchMetadata | None:
        """The retained batch with exactly these sequences, if any."""
        for meta in self.batches:
            if meta.first_seq == first_seq and meta.last_seq == last_seq:
                return meta
        return None

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1


class ProducerStateError(Exception):
    """A batch the producer state rejects; ``error_code`` is Kafka's answer."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def _next_seq(seq: int) -> int:
    return 0 if seq == INT32_MAX else seq + 1


class ProducerStateManager:
    """pid → ProducerStateEntry for one partition, with snapshot files in the log directory."""

    def __init__(self, directory: Path, expiration_ms: int) -> None:
        self.directory = directory
        self.expiration_ms = expiration_ms
        self.producers: dict[int, ProducerStateEntry] = {}

    # -- append path -----------------------------------------------------------------------

    def check(self, header: BatchHeader, pending: dict[int, ProducerStateEntry]) -> BatchMetadata | None:
        """Validate an idempotent batch before it is written. Returns the original batch when it
        is a duplicate; raises ProducerStateError to reject it. ``pending`` holds entries updated
        by earlier batches of the same request (they are committed by ``update``)."""
        pid = header.producer_id
        entry = pending.get(pid) or self.producers.get(pid)
        if entry is None:
            return None
        epoch, first_seq = header.producer_epoch, header.base_sequence
        if epoch < entry.epoch:
            raise ProducerStateError(
                ErrorCode.invalid_producer_epoch,
                f"producer {pid} epoch {epoch} is older than the current epoch {entry.epoch}",
            )
        if epoch == entry.epoch:
            duplicate = entry.find_duplicate(first_seq, header.last_sequence)
            if duplicate is not None:
                return duplicate
            if entry.batches and first_seq != _next_seq(entry.last_seq):
                raise ProducerStateError(
                    ErrorCode.out_of_order_sequence_number,
                    f"producer {pid}: sequence {first_seq} does not follow {entry.last_seq}",
                )
        elif first_seq != 0:
            raise ProducerStateError(
                ErrorCode.out_of_order_sequence_number,
                f"producer {pid}: a new epoch {epoch} must start at sequence 0, got {first_seq}",
            )
        return None

    def update(self, header: BatchHeader, pending: dict[int, ProducerStateEntry] | None = None) -> None:
        """Record an appended batch (offsets already assigned)."""
        pid = header.producer_id
        if pid < 0:
            return
        target = self.producers if pending is None else pending
        entry = target.get(pid) or self.producers.get(pid)
        if entry is None or header.producer_epoch > entry.epoch:
            entry = ProducerStateEntry(header.producer_epoch)
        elif pending is not None and pid not in pending:
            entry = ProducerStateEntry(entry.epoch, deque(entry.batches, maxlen=NUM_BATCHES_TO_RETAIN),
                                       entry.last_timestamp)
        entry.batches.append(
            BatchMetadata(header.base_sequence, header.last_sequence, header.base_offset,
                          header.last_offset, header.max_timestamp)
        )
        entry.last_timestamp = max(entry.last_timestamp, header.max_timestamp)
        target[pid] = entry

    def commit(self, pending: dict[int, ProducerStateEntry]) -> None:
        """Make the entries of a written request current."""
        self.producers.update(pending)

    def remove_expired(self, now_ms: int) -> None:
        """Forget producers idle for longer than producer.id.expiration.ms."""
        horizon = now_ms - self.expiration_ms
        for pid in [pid for pid, e in self.producers.items() if e.last_timestamp < horizon]:
            del self.producers[pid]

    # -- snapshots -------------------------------------------------------------------------

    def snapshot_offsets(self) -> list[int]:
        """Offsets of the snapshot files on disk, ascending."""
        return sorted(int(p.name[: -len(SNAPSHOT_SUFFIX)]) for p in self.directory.glob(f"*{SNAPSHOT_SUFFIX}"))

    def take_snapshot(self, offset: int) -> None:
        """Write the state as of ``offset`` (the log end) to ``<offset>.snapshot``; keep 2."""
        data = {
            str(pid): {"epoch": e.epoch, "last_timestamp": e.last_timestamp,
                       "batches": [[b.first_seq, b.last_seq, b.first_offset, b.last_offset, b.timestamp]
                                   for b in e.batches]}
            for pid, e in self.producers.items()
        }
        path = self.directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
        for old in self.snapshot_offsets()[:-2]:
            (self.directory / f"{old:020d}{SNAPSHOT_SUFFIX}").unlink(missing_ok=True)

    def load_snapshot(self, max_offset: int) -> int:
        """Load the newest snapshot at or below ``max_offset``; returns its offset (or -1).
        Snapshots above ``max_offset`` (the log was truncated) are deleted."""
        self.producers.clear()
        for offset in reversed(self.snapshot_offsets()):
            path = self.directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"
            if offset > max_offset:
                path.unlink(missing_ok=True)
                continue
            try:
                raw = json.loads(path.read_text())
            except (OSError, ValueError):
                path.unlink(missing_ok=True)
                continue
            for pid, e in raw.items():
                entry = ProducerStateEntry(e["epoch"], last_timestamp=e["last_timestamp"])
                entry.batches.extend(BatchMetadata(*b) for b in e["batches"])
                self.producers[int(pid)] = entry
            return offset
        return -1

    def truncate_snapshots_after(self, offset: int) -> None:
        """Delete snapshots taken after ``offset`` (before a log truncation)."""
        for snap in self.snapshot_offsets():
            if snap > offset:
                (self.directory / f"{snap:020d}{SNAPSHOT_SUFFIX}").unlink(missing_ok=True)
