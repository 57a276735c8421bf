"""LeaderEpochFileCache (Kafka's, KIP-101): which leader epoch wrote the log from which offset.

One ``leader-epoch-checkpoint`` file per partition directory, in Kafka's format::

    0               <- version
    2               <- number of entries
    0 0             <- "epoch start_offset", epochs and start offsets increasing
    3 120

An entry is added when a batch of a newer epoch is appended (leader and follower appends read the
batch's partitionLeaderEpoch) and the file is then rewritten at once, atomically (temp file, fsync,
rename, fsync of the directory), so it never misses an epoch that reached the log. Truncations
(retention, DeleteRecords, a follower cutting a divergent suffix, recovery of a torn tail) change
it too; a stale file after a crash is corrected when the log opens (truncated to the log's start
and end), as in Kafka's ``LogLoader``.

A missing or unreadable file next to a non-empty log (a data dir written before this cache
existed, or damage) is rebuilt from the batch headers of the log: 61 bytes a batch, no records.

Concurrency: part of a PartitionLog, used from the node's event loop only.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from pykafka_ops.records.batch import BatchHeader

if TYPE_CHECKING:
    from cluster.log.partition_log import PartitionLog

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "leader-epoch-checkpoint"
CHECKPOINT_VERSION = 0
UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class EpochEntry(NamedTuple):
    """The first offset written in a leader epoch."""

    epoch: int
    start_offset: int


class CorruptCheckpointError(ValueError):
    """A checkpoint file that does not parse as Kafka's leader-epoch checkpoint."""


class LeaderEpochFileCache:
    """Epoch → start offset entries of one partition, mirrored to its checkpoint file."""

    def __init__(self, directory: Path, entries: Iterable[EpochEntry] = ()) -> None:
        self.path = directory / CHECKPOINT_FILE
        self._entries: list[EpochEntry] = list(entries)  # epochs and offsets strictly increasing
        self._dirty = False  # changed since the file was written (assign(..., flush=False))

    # -- reading the file ------------------------------------------------------------------

    @classmethod
    def read(cls, directory: Path) -> LeaderEpochFileCache:
        """The cache stored in ``directory``; FileNotFoundError or CorruptCheckpointError."""
        text = (directory / CHECKPOINT_FILE).read_text(encoding="ascii", errors="strict")
        return cls(directory, parse_checkpoint(text))

    # -- queries ---------------------------------------------------------------------------

    @property
    def entries(self) -> list[EpochEntry]:
        """The entries, oldest first."""
        return list(self._entries)

    @property
    def latest_entry(self) -> EpochEntry | None:
        """The newest entry, or None."""
        return self._entries[-1] if self._entries else None

    @property
    def latest_epoch(self) -> int | None:
        """The newest epoch that wrote to the log, or None."""
        return self._entries[-1].epoch if self._entries else None

    @property
    def earliest_entry(self) -> EpochEntry | None:
        """The oldest entry, or None."""
        return self._entries[0] if self._entries else None

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) for ``requested_epoch``, as Kafka's ``LeaderEpochFileCache.endOffsetFor``:
        the latest epoch ends at the log end offset; an older one at the start offset of the next
        higher epoch, answered with the largest known epoch ≤ the requested one, or with the
        requested epoch itself when it is below every known epoch (its data was deleted: the
        first known epoch's start offset). UNDEFINED (-1, -1) for epoch -1, for an epoch above
        every known one and for an empty cache."""
        if requested_epoch == UNDEFINED_EPOCH or not self._entries:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if self._entries[-1].epoch == requested_epoch:
            return requested_epoch, log_end_offset
        floor: EpochEntry | None = None
        for entry in self._entries:
            if entry.epoch > requested_epoch:  # the higher entry
                return (floor.epoch if floor else requested_epoch), entry.start_offset
            floor = entry
        return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET

    def epoch_for_offset(self, offset: int) -> int | None:
        """The epoch that wrote ``offset`` (Kafka's ``epochForOffset``), or None."""
        found = None
        for entry in self._entries:
            if entry.start_offset > offset:
                break
            found = entry.epoch
        return found

    # -- changes ---------------------------------------------------------------------------

    def assign(self, epoch: int, start_offset: int, *, flush: bool = True) -> bool:
        """Record that ``epoch`` wrote from ``start_offset`` on if it is new (Kafka's ``assign``):
        entries that would break the order (an epoch ≥ it, or an offset ≥ its start) are removed
        first. Batches without an epoch (-1) are ignored. Returns whether the cache changed."""
        if epoch < 0 or start_offset < 0:
            return False
        latest = self._entries[-1] if self._entries else None
        if latest is not None and latest.epoch == epoch and start_offset >= latest.start_offset:
            return False
        removed = 0
        while self._entries and (self._entries[-1].epoch >= epoch or self._entries[-1].start_offset >= start_offset):
            dropped = self._entries.pop()
            removed += 1
            if removed > 1 or dropped.start_offset != start_offset:
                log.warning("%s: epoch %d from offset %d replaces entry %s", self.path.parent.name,
                            epoch, start_offset, tuple(dropped))
        self._entries.append(EpochEntry(epoch, start_offset))
        self._dirty = True
        if flush:
            self._try_flush()
        return True

    def _try_flush(self) -> None:
        """``flush`` after an append that already reached the log: a failed write (disk full)
        must not fail the append; the file is written again at the next change or a clean close."""
        try:
            self.flush()
        except OSError as exc:
            log.error("%s: cannot write %s (%s); will retry", self.path.parent.name, CHECKPOINT_FILE, exc)

    def assign_recovered(self, header: BatchHeader) -> None:
        """A batch met while recovering a segment: its epoch is recorded only when newer than the
        newest known (Kafka's ``LogSegment.recover``), so re-reading the batches of epochs the
        checkpoint already holds changes nothing (``finish_loading`` then cuts the cache to the
        recovered log's end)."""
        latest = self.latest_epoch
        if latest is None or header.partition_leader_epoch > latest:
            self.assign(header.partition_leader_epoch, header.base_offset, flush=False)

    def assign_batches(self, headers: Iterable[BatchHeader]) -> None:
        """``assign`` the partitionLeaderEpoch of each batch (a follower's or a recovered append)."""
        for header in headers:
            self.assign(header.partition_leader_epoch, header.base_offset)

    def truncate_from_end(self, end_offset: int) -> None:
        """The log was cut to end before ``end_offset``: drop the epochs starting at or after it."""
        if end_offset < 0 or not self._entries or self._entries[-1].start_offset < end_offset:
            return
        while self._entries and self._entries[-1].start_offset >= end_offset:
            self._entries.pop()
        self.flush()

    def flush_if_dirty(self) -> None:
        """Write the file if ``assign(..., flush=False)`` changed the entries since it was written."""
        if self._dirty:
            self.flush()

    def truncate_from_start(self, start_offset: int) -> None:
        """The log now starts at ``start_offset``: the epoch holding it starts there, older ones
        go (Kafka's ``truncateFromStart``; an entry starting exactly there is kept)."""
        removed = 0
        while removed < len(self._entries) and self._entries[removed].start_offset <= start_offset:
            removed += 1
        if removed == 0:
            return
        first = EpochEntry(self._entries[removed - 1].epoch, start_offset)
        if removed == 1 and first == self._entries[0]:
            return  # the log starts exactly where its first epoch does: nothing changes
        self._entries[:removed] = [first]
        self.flush()

    def clear(self, *, flush: bool = True) -> None:
        """Forget every entry (the log was emptied: ``truncate_fully_and_start_at``)."""
        self._entries.clear()
        if flush:
            self.flush()
        else:
            self._dirty = True

    def flush(self) -> None:
        """Write the checkpoint atomically: temp file, fsync, rename over, fsync the directory."""
        write_checkpoint(self.path, self._entries)
        self._dirty = False

    def __repr__(self) -> str:
        return f"LeaderEpochFileCache({[tuple(e) for e in self._entries]})"


def parse_checkpoint(text: str) -> list[EpochEntry]:
    """Entries of a checkpoint file's text; CorruptCheckpointError if it is not one."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    try:
        if len(lines) < 2 or int(lines[0]) != CHECKPOINT_VERSION:
            raise CorruptCheckpointError(f"not a version {CHECKPOINT_VERSION} checkpoint")
        count = int(lines[1])
        if count != len(lines) - 2:
            raise CorruptCheckpointError(f"{count} entries announced, {len(lines) - 2} found")
        entries = []
        for line in lines[2:]:
            epoch, offset = line.split(" ")
            entries.append(EpochEntry(int(epoch), int(offset)))
    except ValueError as exc:  # int() of garbage, a line without exactly two fields
        raise CorruptCheckpointError(str(exc)) from exc
    for before, after in itertools.pairwise(entries):
        if after.epoch <= before.epoch or after.start_offset <= before.start_offset:
            raise CorruptCheckpointError(f"entries out of order: {tuple(before)}, {tuple(after)}")
    if any(e.epoch < 0 or e.start_offset < 0 for e in entries):
        raise CorruptCheckpointError("a negative epoch or offset")
    return entries


def write_checkpoint(path: Path, entries: list[EpochEntry]) -> None:
    """Write ``entries`` to ``path`` in Kafka's format, atomically and durably."""
    lines = [str(CHECKPOINT_VERSION), str(len(entries))] + [f"{e.epoch} {e.start_offset}" for e in entries]
    data = ("\n".join(lines) + "\n").encode("ascii")
    tmp = path.with_name(path.name + ".tmp")  # a crash leaves it: PartitionLog.open removes *.tmp
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def open_leader_epoch_cache(directory: Path, fresh: bool) -> tuple[LeaderEpochFileCache, bool]:
    """The cache stored in ``directory`` and whether it must be rebuilt from the log (the file
    is missing or unreadable). A directory made just now has nothing to read or rebuild."""
    if fresh:
        return LeaderEpochFileCache(directory), False
    try:
        return LeaderEpochFileCache.read(directory), False
    except FileNotFoundError:
        return LeaderEpochFileCache(directory), True
    except (OSError, UnicodeDecodeError, CorruptCheckpointError) as exc:
        log.warning("%s: %s is unreadable (%s): rebuilding it from the log", directory.name, CHECKPOINT_FILE, exc)
        return LeaderEpochFileCache(directory), True


def finish_loading(partition_log: PartitionLog, rebuild: bool) -> None:
    """Make the cache agree with the log just opened (after recovery): rebuilt from the batch
    headers if asked, else cut to the log's end and start (a checkpoint written before a crash
    may name epochs of a torn tail, or a start moved before it)."""
    cache = partition_log.leader_epochs
    if rebuild:
        cache.clear(flush=False)
        for segment in partition_log.segments:
            for _pos, header in segment.iter_headers():
                cache.assign(header.partition_leader_epoch, header.base_offset, flush=False)
        if partition_log.log_end_offset > partition_log.log_start_offset or cache.entries:
            cache.truncate_from_start(partition_log.log_start_offset)
            cache.flush()  # even empty: the next start reads it instead of scanning again
            log.info("%s: rebuilt %s from the log: %s", partition_log.directory.name, CHECKPOINT_FILE, cache)
        return
    cache.truncate_from_end(partition_log.log_end_offset)
    cache.truncate_from_start(partition_log.log_start_offset)
    cache.flush_if_dirty()  # epochs that recovery found past the last checkpoint
