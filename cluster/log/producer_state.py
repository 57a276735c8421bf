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
the active segment.

Transactions (KIP-98; Kafka's ``ProducerAppendInfo.appendDataBatch`` / ``appendEndTxnMarker``):
a transactional batch of a producer with no open transaction opens one at its first offset
(``current_txn_first_offset``); a non-transactional batch while one is open is INVALID_TXN_STATE
(48). An end-transaction marker (a control batch, see ``cluster.log.transactions``) is checked for
the epoch as data is, and for the coordinator epoch (older than the one seen for the producer →
TRANSACTION_COORDINATOR_FENCED, 52); it closes the open transaction, which becomes a
``CompletedTxn`` (the caller writes the aborted ones to the segment's ``.txnindex``). A completed
transaction stays *unreplicated* until the high watermark passes its marker (Kafka's
``unreplicatedTxns``): with the open ones it bounds the last stable offset (``first_unstable_offset``).
Replicas (``origin=REPLICATION``) and the replay at load skip every check, as Kafka does.

Concurrency: owned by one PartitionLog, used from the node's event loop only.
"""

from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from cluster.log.transactions import CompletedTxn
from pykafka_ops.errors import ErrorCode
from pykafka_ops.records.batch import BatchHeader
from pykafka_ops.records.record import ControlRecord, ControlRecordType

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
    """One producer id's epoch, recent batches and open transaction (Kafka's ``ProducerStateEntry``)."""

    epoch: int
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=NUM_BATCHES_TO_RETAIN))
    last_timestamp: int = -1
    coordinator_epoch: int = -1
    """The coordinator epoch of the last marker written for this producer."""
    current_txn_first_offset: int = -1
    """First offset of the producer's open transaction, -1 when none is open."""

    def copy(self) -> ProducerStateEntry:
        """An independent copy (a request's pending state)."""
        return ProducerStateEntry(self.epoch, deque(self.batches, maxlen=NUM_BATCHES_TO_RETAIN),
                                  self.last_timestamp, self.coordinator_epoch, self.current_txn_first_offset)

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
        self.ongoing_txns: dict[int, int] = {}
        """pid → first offset of its open transaction (Kafka's ``ongoingTxns``)."""
        self.unreplicated_txns: list[CompletedTxn] = []
        """Completed transactions whose marker the high watermark has not passed yet."""

    # -- append path -----------------------------------------------------------------------

    def check(self, header: BatchHeader, pending: dict[int, ProducerStateEntry],
              marker: ControlRecord | None = None, from_client: bool = True) -> BatchMetadata | None:
        """Validate a batch with a producer id (a client's, or a coordinator's marker) before it
        is written. Returns the original batch when it is a duplicate; raises ProducerStateError
        to reject it. ``pending`` holds entries updated by earlier batches of the same request
        (they are committed by ``commit``). ``from_client`` False (a coordinator's data batch:
        the group coordinator's transactional offset commits) skips the duplicate and sequence
        checks, as Kafka's ``ProducerAppendInfo`` checks sequences only for AppendOrigin.CLIENT."""
        pid = header.producer_id
        entry = pending.get(pid) or self.producers.get(pid)
        if entry is None:
            return None
        epoch, first_seq = header.producer_epoch, header.base_sequence
        if epoch < entry.epoch:  # Kafka 2.7+ answers INVALID_PRODUCER_EPOCH here, not PRODUCER_FENCED
            raise ProducerStateError(
                ErrorCode.invalid_producer_epoch,
                f"producer {pid} epoch {epoch} is older than the current epoch {entry.epoch}",
            )
        if header.is_control:
            if marker is not None and marker.coordinator_epoch < entry.coordinator_epoch:
                raise ProducerStateError(
                    ErrorCode.transaction_coordinator_fenced,
                    f"producer {pid}: marker of coordinator epoch {marker.coordinator_epoch} is older than "
                    f"{entry.coordinator_epoch}",
                )
            return None
        if from_client and epoch == entry.epoch:
            duplicate = entry.find_duplicate(first_seq, header.last_sequence)
            if duplicate is not None:
                return duplicate
            if first_seq != _next_seq(entry.last_seq):  # no batch since a marker: 0 (Kafka's inSequence)
                raise ProducerStateError(
                    ErrorCode.out_of_order_sequence_number,
                    f"producer {pid}: sequence {first_seq} does not follow {entry.last_seq}",
                )
        elif from_client and epoch != entry.epoch and first_seq != 0:
            raise ProducerStateError(
                ErrorCode.out_of_order_sequence_number,
                f"producer {pid}: a new epoch {epoch} must start at sequence 0, got {first_seq}",
            )
        if entry.current_txn_first_offset >= 0 and not header.is_transactional:
            raise ProducerStateError(
                ErrorCode.invalid_txn_state,
                f"producer {pid}: a non-transactional batch while its transaction from offset "
                f"{entry.current_txn_first_offset} is open",
            )
        return None

    def update(self, header: BatchHeader, pending: dict[int, ProducerStateEntry] | None = None,
               marker: ControlRecord | None = None) -> CompletedTxn | None:
        """Record an appended batch (offsets already assigned); ``marker``: the end-transaction
        marker of a control batch. Returns the transaction a marker completed (the caller
        indexes it if aborted, then calls ``complete_txn``)."""
        pid = header.producer_id
        if pid < 0 or (header.is_control and marker is None):  # KRaft control batches: no state
            return None
        target = self.producers if pending is None else pending
        entry = target.get(pid) or self.producers.get(pid)
        if entry is None:
            entry = ProducerStateEntry(header.producer_epoch)
        elif pending is not None and pid not in pending:
            entry = entry.copy()
        if header.producer_epoch != entry.epoch:  # Kafka's maybeUpdateProducerEpoch
            entry.epoch = header.producer_epoch
            entry.batches.clear()
        completed = None
        if marker is not None:
            if entry.current_txn_first_offset >= 0:
                completed = CompletedTxn(pid, entry.current_txn_first_offset, header.base_offset,
                                         marker.type == ControlRecordType.ABORT)
            entry.current_txn_first_offset = -1
            entry.coordinator_epoch = marker.coordinator_epoch
        else:
            entry.batches.append(
                BatchMetadata(header.base_sequence, header.last_sequence, header.base_offset,
                              header.last_offset, header.max_timestamp)
            )
            if header.is_transactional and entry.current_txn_first_offset < 0:
                entry.current_txn_first_offset = header.base_offset
        entry.last_timestamp = max(entry.last_timestamp, header.max_timestamp)
        target[pid] = entry
        if pending is None:
            self._track_txn(pid, entry)
        return completed

    def commit(self, pending: dict[int, ProducerStateEntry]) -> None:
        """Make the entries of a written request current."""
        self.producers.update(pending)
        for pid, entry in pending.items():
            self._track_txn(pid, entry)

    def _track_txn(self, pid: int, entry: ProducerStateEntry) -> None:
        if entry.current_txn_first_offset >= 0:
            self.ongoing_txns[pid] = entry.current_txn_first_offset
        else:
            self.ongoing_txns.pop(pid, None)

    # -- transactions ----------------------------------------------------------------------

    def last_stable_offset_after(self, completed: CompletedTxn) -> int:
        """The LSO right after ``completed`` ended (Kafka's ``lastStableOffset(CompletedTxn)``):
        the first offset of another producer's open transaction, else the marker's offset + 1."""
        others = [first for pid, first in self.ongoing_txns.items() if pid != completed.producer_id]
        return min(others) if others else completed.last_offset + 1

    def complete_txn(self, completed: CompletedTxn) -> None:
        """The marker is written: the transaction is unstable until it is replicated."""
        self.unreplicated_txns.append(completed)

    def first_unstable_offset(self, high_watermark: int) -> int | None:
        """The first offset of an open transaction, or of a completed one whose marker is not yet
        below ``high_watermark`` (Kafka's ``firstUnstableOffset``); None if there is none."""
        if self.unreplicated_txns:
            self.unreplicated_txns = [t for t in self.unreplicated_txns if t.last_offset >= high_watermark]
        firsts = [t.first_offset for t in self.unreplicated_txns]
        if self.ongoing_txns:
            firsts.append(min(self.ongoing_txns.values()))
        return min(firsts) if firsts else None

    def remove_expired(self, now_ms: int) -> None:
        """Forget producers idle for longer than producer.id.expiration.ms (never one whose
        transaction is open: Kafka's ``isProducerExpired``)."""
        horizon = now_ms - self.expiration_ms
        for pid in [pid for pid, e in self.producers.items()
                    if e.last_timestamp < horizon and e.current_txn_first_offset < 0]:
            del self.producers[pid]

    # -- snapshots -------------------------------------------------------------------------

    def snapshot_offsets(self) -> list[int]:
        """Offsets of the snapshot files on disk, ascending."""
        return sorted(int(p.name[: -len(SNAPSHOT_SUFFIX)]) for p in self.directory.glob(f"*{SNAPSHOT_SUFFIX}"))

    def take_snapshot(self, offset: int) -> None:
        """Write the state as of ``offset`` (the log end) to ``<offset>.snapshot``; keep 2."""
        data = {
            str(pid): {"epoch": e.epoch, "last_timestamp": e.last_timestamp,
                       "coordinator_epoch": e.coordinator_epoch, "current_txn_first_offset": e.current_txn_first_offset,
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
        self.ongoing_txns.clear()
        self.unreplicated_txns.clear()
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
                entry = ProducerStateEntry(e["epoch"], last_timestamp=e["last_timestamp"],
                                           coordinator_epoch=e.get("coordinator_epoch", -1),
                                           current_txn_first_offset=e.get("current_txn_first_offset", -1))
                entry.batches.extend(BatchMetadata(*b) for b in e["batches"])
                self.producers[int(pid)] = entry
                self._track_txn(int(pid), entry)
            return offset
        return -1

    def truncate_snapshots_after(self, offset: int) -> None:
        """Delete snapshots taken after ``offset`` (before a log truncation)."""
        for snap in self.snapshot_offsets():
            if snap > offset:
                (self.directory / f"{snap:020d}{SNAPSHOT_SUFFIX}").unlink(missing_ok=True)
