"""The Raft log as the core sees it (Kafka's ``ReplicatedLog``), and an in-memory implementation.

An entry is (offset, epoch, payload); offsets start at 0 and are dense (no snapshots yet, so the
log start offset is always 0). Beside the entries the log keeps, as Kafka's
``LeaderEpochFileCache`` does, the start offset of each epoch, which answers
``end_offset_for_epoch`` — the leader's half of the diverging-epoch handshake — without a scan.

Durability contract (the durable implementation comes with the controller wiring): ``append`` and
``truncate_to`` may be buffered; ``flush`` makes them durable. The core asks for a flush (``Ready.
flush_log``) before any message that depends on them leaves the node, so a crash can only lose a
suffix no other node was told about.

Concurrency: not thread-safe; driven by the one caller that drives the ``RaftNode``.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = ["Entry", "LogError", "MemoryRaftLog", "OffsetAndEpoch", "RaftLog"]


class OffsetAndEpoch(NamedTuple):
    """Kafka's ``OffsetAndEpoch``: an end offset (exclusive) and the epoch of the entry before it."""

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
    """An append or truncation that would break the log's shape (a bug in the caller or core)."""


class RaftLog(Protocol):
    """What the Raft core needs from its log."""

    @property
    def end_offset(self) -> int:
        """The offset the next appended entry gets (the log end offset, LEO)."""
        ...

    @property
    def last_epoch(self) -> int:
        """The epoch of the last entry, 0 for an empty log."""
        ...

    def epoch_of(self, offset: int) -> int:
        """The epoch of the entry at ``offset`` (0 <= offset < end_offset)."""
        ...

    def read(self, start: int, max_entries: int) -> tuple[Entry, ...]:
        """Up to ``max_entries`` entries from ``start`` (empty at the end)."""
        ...

    def end_offset_for_epoch(self, epoch: int) -> OffsetAndEpoch:
        """Kafka's ``endOffsetForEpoch``: the largest epoch in the log that is <= ``epoch`` and the
        offset where it ends (the start of the next epoch, or the LEO)."""
        ...

    def append(self, entries: Sequence[Entry]) -> None:
        """Append entries whose offsets continue the log and whose epochs do not go back."""
        ...

    def truncate_to(self, offset: int) -> None:
        """Remove every entry at ``offset`` and after."""
        ...

    def flush(self) -> None:
        """Make every append and truncation so far durable."""
        ...


class MemoryRaftLog:
    """The log in a list; used by the simulation and the unit tests."""

    def __init__(self, entries: Sequence[Entry] = ()) -> None:
        self._entries: list[Entry] = []
        # LeaderEpochFileCache: parallel lists of epochs and the offset where each starts.
        self._epochs: list[int] = []
        self._epoch_starts: list[int] = []
        if entries:
            self.append(entries)

    @property
    def end_offset(self) -> int:
        return len(self._entries)

    @property
    def last_epoch(self) -> int:
        return self._epochs[-1] if self._epochs else 0

    def epoch_of(self, offset: int) -> int:
        if not 0 <= offset < len(self._entries):
            raise LogError(f"offset {offset} is outside the log [0, {len(self._entries)})")
        return self._entries[offset].epoch

    def entry(self, offset: int) -> Entry:
        return self._entries[offset]

    def entries(self) -> tuple[Entry, ...]:
        """Every entry (for tests and the simulation)."""
        return tuple(self._entries)

    def read(self, start: int, max_entries: int) -> tuple[Entry, ...]:
        return tuple(self._entries[start:start + max_entries])

    def end_offset_for_epoch(self, epoch: int) -> OffsetAndEpoch:
        if not self._epochs:
            return OffsetAndEpoch(0, 0) if epoch >= 0 else OffsetAndEpoch(-1, -1)
        # index of the first epoch greater than the requested one
        higher = bisect.bisect_right(self._epochs, epoch)
        if higher == 0:  # smaller than any epoch in the log: ends where the first epoch starts
            return OffsetAndEpoch(self._epoch_starts[0], epoch)
        end = self._epoch_starts[higher] if higher < len(self._epochs) else len(self._entries)
        return OffsetAndEpoch(end, self._epochs[higher - 1])

    def append(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            if entry.offset != len(self._entries):
                raise LogError(f"append at offset {entry.offset}, the log ends at {len(self._entries)}")
            last = self._epochs[-1] if self._epochs else 0
            if entry.epoch < last:
                raise LogError(f"append of epoch {entry.epoch} after epoch {last}")
            if entry.epoch != last or not self._epochs:
                self._epochs.append(entry.epoch)
                self._epoch_starts.append(entry.offset)
            self._entries.append(entry)

    def truncate_to(self, offset: int) -> None:
        if offset < 0:
            raise LogError(f"truncation to a negative offset {offset}")
        if offset >= len(self._entries):
            return
        del self._entries[offset:]
        keep = bisect.bisect_left(self._epoch_starts, offset)  # epochs that start before offset
        del self._epochs[keep:]
        del self._epoch_starts[keep:]

    def flush(self) -> None:
        return None
