"""The Raft log as the core sees it (Kafka's ``ReplicatedLog``), and an in-memory implementation.

An entry is (offset, epoch, payload); offsets are dense. Beside the entries the log keeps, as
Kafka's ``LeaderEpochFileCache`` does, the start offset of each epoch, which answers
``end_offset_for_epoch`` — the leader's half of the diverging-epoch handshake — without a scan.

Snapshots (KIP-630). A snapshot is the state machine's image after the entries below its end
offset; its id is Kafka's snapshot ``OffsetAndEpoch``: (end offset, exclusive; epoch of the entry
before it). The state machine writes one at a committed offset (``create_snapshot``), and the log
before it may then be deleted (``trim_to``): the log starts at ``start_offset`` and the entries
below exist only in a snapshot. A follower too far behind replaces its whole log with the leader's
snapshot (``install_snapshot``, Kafka's ``truncateToLatestSnapshot``): it then starts and ends at
the snapshot's end offset, its last epoch being the snapshot's. At the boundary the log still
answers as Kafka's ``KafkaMetadataLog`` does: ``epoch_of(start_offset - 1)`` is the epoch of the
entry before the start (the snapshot's), and any epoch older than the first one the log holds ends
at (``start_offset``, that epoch) — the snapshot id when the log starts at a snapshot.

Durability contract: ``append`` and ``truncate_to`` may be buffered; ``flush`` makes them durable.
The core asks for a flush (``Ready.flush_log``) before any message that depends on them leaves
the node, so a crash can only lose a suffix no other node was told about. ``create_snapshot`` and
``install_snapshot`` are durable when they return; ``trim_to`` needs no flush to be safe (a crash
that undoes it leaves entries the snapshot already covers).

Concurrency: not thread-safe; driven by the one caller that drives the ``RaftNode``.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = ["Entry", "LogError", "MemoryRaftLog", "OffsetAndEpoch", "RaftLog"]


class OffsetAndEpoch(NamedTuple):
    """Kafka's ``OffsetAndEpoch``: an end offset (exclusive) and the epoch of the entry before it.
    Also a snapshot's id (the snapshot holds the state after every entry below ``offset``)."""

    offset: int
    epoch: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One record of the Raft log. ``control`` marks records the core writes itself (the
    LeaderChangeMessage a new leader appends); the state machine skips them."""

    offset: int
    epoch: int
    payload: bytes
    control: bool = False


class LogError(Exception):
    """An append, truncation or snapshot that would break the log's shape (a bug in the caller or
    core), or a snapshot that does not exist."""


class RaftLog(Protocol):
    """What the Raft core needs from its log."""

    @property
    def start_offset(self) -> int:
        """The first offset still in the log; entries below it exist only in a snapshot (0 while
        nothing was trimmed). Equal to ``end_offset`` when the log holds no entry."""
        ...

    @property
    def end_offset(self) -> int:
        """The offset the next appended entry gets (the log end offset, LEO)."""
        ...

    @property
    def last_epoch(self) -> int:
        """The epoch of the last entry: of the snapshot the log starts at if it holds no entry, 0
        for an empty log without snapshot."""
        ...

    def epoch_of(self, offset: int) -> int:
        """The epoch of the entry at ``offset`` (start_offset - 1 <= offset < end_offset; at
        start_offset - 1, the epoch of the last entry the trimmed prefix or snapshot ends with).
        Raises LogError outside."""
        ...

    def read(self, start: int, max_entries: int) -> tuple[Entry, ...]:
        """Up to ``max_entries`` entries from ``start`` (empty at the end); ``start`` is never
        below ``start_offset`` (the core checks)."""
        ...

    def end_offset_for_epoch(self, epoch: int) -> OffsetAndEpoch:
        """Kafka's ``endOffsetForEpoch``: the largest epoch in the log that is <= ``epoch`` and the
        offset where it ends (the start of the next epoch, or the LEO). An epoch older than every
        epoch the log holds ends at (start_offset, epoch of the entry before it) once the log
        starts after 0; without any entry, at (end_offset, last_epoch). (-1, -1) for epoch < 0."""
        ...

    def append(self, entries: Sequence[Entry]) -> None:
        """Append entries whose offsets continue the log and whose epochs do not go back."""
        ...

    def truncate_to(self, offset: int) -> None:
        """Remove every entry at ``offset`` and after (never below ``start_offset``: LogError)."""
        ...

    def flush(self) -> None:
        """Make every append and truncation so far durable."""
        ...

    # ------------------------------------------------------------------ snapshots (KIP-630)

    def latest_snapshot(self) -> OffsetAndEpoch | None:
        """The id of the newest snapshot the log keeps, None without any."""
        ...

    def snapshot_size(self, snapshot_id: OffsetAndEpoch) -> int:
        """The size in bytes of a snapshot the log keeps (LogError for an unknown id)."""
        ...

    def read_snapshot(self, snapshot_id: OffsetAndEpoch, position: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes of a snapshot from ``position`` (0 <= position <= size);
        LogError for an unknown id or a position outside the snapshot."""
        ...

    def create_snapshot(self, snapshot_id: OffsetAndEpoch, data: bytes) -> None:
        """Keep, durably, the state machine's snapshot after every entry below
        ``snapshot_id.offset`` (a committed offset, at most the end offset, whose epoch must be
        ``epoch_of(snapshot_id.offset - 1)``: LogError otherwise). A snapshot with that id
        already kept is left as it is (Kafka's ``createNewSnapshot`` returns empty)."""
        ...

    def trim_to(self, offset: int) -> None:
        """Delete the entries below ``offset`` (the log start offset moves up; nothing happens at
        or below the current start), never past the latest snapshot's end offset (LogError).
        Snapshots older than the new start offset may be forgotten."""
        ...

    def install_snapshot(self, snapshot_id: OffsetAndEpoch, data: bytes) -> None:
        """A follower replaces everything with a snapshot fetched from the leader (Kafka's
        ``truncateToLatestSnapshot``): durably keep it, drop every entry and every older snapshot;
        then start_offset = end_offset = snapshot_id.offset and last_epoch = snapshot_id.epoch."""
        ...


class MemoryRaftLog:
    """The log in a list, its snapshots in a dict; used by the simulation and the unit tests."""

    def __init__(self, entries: Sequence[Entry] = ()) -> None:
        self._start = 0
        self._start_epoch = 0  # the epoch of the entry at start - 1 (0 when start is 0)
        self._entries: list[Entry] = []
        # LeaderEpochFileCache of the entries held: parallel lists of epochs and where each starts
        # (the first one clamped to the start offset, as truncateFromStart does).
        self._epochs: list[int] = []
        self._epoch_starts: list[int] = []
        self._snapshots: dict[OffsetAndEpoch, bytes] = {}
        if entries:
            self.append(entries)

    @property
    def start_offset(self) -> int:
        return self._start

    @property
    def end_offset(self) -> int:
        return self._start + len(self._entries)

    @property
    def last_epoch(self) -> int:
        return self._epochs[-1] if self._epochs else self._start_epoch

    def epoch_of(self, offset: int) -> int:
        if self._start > 0 and offset == self._start - 1:
            return self._start_epoch
        if not self._start <= offset < self.end_offset:
            raise LogError(f"offset {offset} is outside the log [{self._start}, {self.end_offset})")
        return self._entries[offset - self._start].epoch

    def entry(self, offset: int) -> Entry:
        if not self._start <= offset < self.end_offset:
            raise LogError(f"offset {offset} is outside the log [{self._start}, {self.end_offset})")
        return self._entries[offset - self._start]

    def entries(self) -> tuple[Entry, ...]:
        """Every entry held, from the start offset (for tests and the simulation)."""
        return tuple(self._entries)

    def read(self, start: int, max_entries: int) -> tuple[Entry, ...]:
        if start < self._start:
            raise LogError(f"read from {start}, below the log start offset {self._start}")
        index = start - self._start
        return tuple(self._entries[index:index + max_entries])

    def end_offset_for_epoch(self, epoch: int) -> OffsetAndEpoch:
        if epoch < 0:
            return OffsetAndEpoch(-1, -1)
        if not self._epochs:  # no entry: KafkaMetadataLog answers (end offset, last fetched epoch)
            return OffsetAndEpoch(self._start, self._start_epoch)
        # index of the first epoch greater than the requested one
        higher = bisect.bisect_right(self._epochs, epoch)
        if higher == 0:  # older than any epoch held: it ends where the log (or its snapshot) starts
            if self._start > 0:
                return OffsetAndEpoch(self._start, self._start_epoch)
            return OffsetAndEpoch(self._epoch_starts[0], epoch)
        end = self._epoch_starts[higher] if higher < len(self._epochs) else self.end_offset
        return OffsetAndEpoch(end, self._epochs[higher - 1])

    def append(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            if entry.offset != self.end_offset:
                raise LogError(f"append at offset {entry.offset}, the log ends at {self.end_offset}")
            last = self.last_epoch
            if entry.epoch < last:
                raise LogError(f"append of epoch {entry.epoch} after epoch {last}")
            if not self._epochs or entry.epoch != self._epochs[-1]:
                self._epochs.append(entry.epoch)
                self._epoch_starts.append(entry.offset)
            self._entries.append(entry)

    def truncate_to(self, offset: int) -> None:
        if offset < self._start:
            raise LogError(f"truncation to {offset}, below the log start offset {self._start}")
        if offset >= self.end_offset:
            return
        del self._entries[offset - self._start:]
        keep = bisect.bisect_left(self._epoch_starts, offset)  # epochs that start before offset
        del self._epochs[keep:]
        del self._epoch_starts[keep:]

    def flush(self) -> None:
        return None

    # ------------------------------------------------------------------ snapshots

    def latest_snapshot(self) -> OffsetAndEpoch | None:
        return max(self._snapshots) if self._snapshots else None

    def snapshot_ids(self) -> tuple[OffsetAndEpoch, ...]:
        """Every snapshot kept, oldest first (for tests and the simulation)."""
        return tuple(sorted(self._snapshots))

    def snapshot_size(self, snapshot_id: OffsetAndEpoch) -> int:
        return len(self._snapshot(snapshot_id))

    def read_snapshot(self, snapshot_id: OffsetAndEpoch, position: int, max_bytes: int) -> bytes:
        data = self._snapshot(snapshot_id)
        if not 0 <= position <= len(data):
            raise LogError(f"position {position} is outside snapshot {tuple(snapshot_id)} of {len(data)} bytes")
        return data[position:position + max(0, max_bytes)]

    def create_snapshot(self, snapshot_id: OffsetAndEpoch, data: bytes) -> None:
        snapshot_id = OffsetAndEpoch(*snapshot_id)
        if snapshot_id.offset > self.end_offset:
            raise LogError(f"snapshot {tuple(snapshot_id)} ends after the log end offset {self.end_offset}")
        if self.epoch_of(snapshot_id.offset - 1) != snapshot_id.epoch:
            raise LogError(f"snapshot {tuple(snapshot_id)}: the entry at {snapshot_id.offset - 1} has epoch "
                           f"{self.epoch_of(snapshot_id.offset - 1)}")
        self._snapshots.setdefault(snapshot_id, bytes(data))

    def trim_to(self, offset: int) -> None:
        latest = self.latest_snapshot()
        if offset > (latest.offset if latest is not None else 0):
            raise LogError(f"trim to {offset}, past the latest snapshot {latest}")
        if offset <= self._start:
            return
        self._start_epoch = self.epoch_of(offset - 1)
        del self._entries[:offset - self._start]
        self._start = offset
        # LeaderEpochFileCache.truncateFromStart: drop the epochs that start at or before the new
        # start, then put back the one the new start falls in, starting there
        drop = bisect.bisect_right(self._epoch_starts, offset)
        first = self._epochs[drop - 1] if drop else None
        del self._epochs[:drop]
        del self._epoch_starts[:drop]
        if first is not None and self._entries:
            self._epochs.insert(0, first)
            self._epoch_starts.insert(0, offset)
        for old in [s for s in self._snapshots if s.offset < offset]:
            del self._snapshots[old]  # forgetSnapshotsBefore: older than the log start

    def install_snapshot(self, snapshot_id: OffsetAndEpoch, data: bytes) -> None:
        snapshot_id = OffsetAndEpoch(*snapshot_id)
        if snapshot_id.offset <= 0 or snapshot_id.epoch < 0:
            raise LogError(f"not a snapshot id: {tuple(snapshot_id)}")
        self._snapshots = {snapshot_id: bytes(data)}
        self._entries.clear()
        self._epochs.clear()
        self._epoch_starts.clear()
        self._start = snapshot_id.offset
        self._start_epoch = snapshot_id.epoch

    def _snapshot(self, snapshot_id: OffsetAndEpoch) -> bytes:
        data = self._snapshots.get(OffsetAndEpoch(*snapshot_id))
        if data is None:
            raise LogError(f"no snapshot {tuple(snapshot_id)}")
        return data
