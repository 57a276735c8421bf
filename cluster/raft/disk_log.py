"""``DiskRaftLog``: the Raft log (``RaftLog``) on the segment files of a ``PartitionLog`` — how
``__cluster_metadata-0`` stores the KRaft quorum's entries (Kafka's ``KafkaMetadataLog`` over a
``UnifiedLog``).

Entries are written with :func:`cluster.raft.batches.encode_entries` (one record per entry, one
batch per run of entries of the same epoch and kind, ``partitionLeaderEpoch`` = the entry epoch)
through ``PartitionLog.append_as_follower``, which keeps the offsets and epochs it is given: a
follower writes what its leader sent. Reads decode batches from the segment files.

Beside the segments the log keeps Kafka's ``LeaderEpochFileCache`` in memory
(:class:`cluster.raft.leader_epoch_cache.LeaderEpochCache`): (epoch, start offset) pairs, rebuilt
at open by scanning the batch headers (only the 61-byte headers are read: about 100 ms for
100 000 single-entry batches, the worst case, 12 ms for 100 000 entries in batches of 10 — no
``leader-epoch-checkpoint`` file is needed), which answers ``epoch_of``, ``last_epoch`` and
``end_offset_for_epoch`` without touching the disk. Opening refuses a log whose
offsets have gaps or whose epochs go back (``LogError``): such a log is not a Raft log.

Upgrade: a metadata log written by the single-voter quorum (JSON records keyed by record type, one
batch per commit, epoch 1) opens unchanged as entries of epoch 1 whose payload is the JSON value.

Files in the partition directory (Kafka's layout): the segments, the snapshots
(``<end offset>-<epoch>.checkpoint``, kept by :class:`cluster.raft.disk_snapshots.SnapshotFiles`),
and Kafka's ``quorum-state`` file of the node's election state, written by
``FileQuorumStateStore(raft_log.directory)``.
``PartitionLog.open`` deletes a leftover ``quorum-state.tmp`` (a write cut short), which the store
ignores anyway.

Durability (the ``RaftLog`` contract): ``append`` and ``truncate_to`` reach the kernel at once (a
killed process loses nothing written) but are durable only after ``flush``, which fsyncs the
segment files written since the last flush and, when segments were created or deleted, the
directory. The first flush after opening fsyncs every segment: after a kill -9, what recovery found
may still be in the page cache only (``open_metadata_raft_log`` flushes at once).

Truncation inside a batch: the core ships entries, not batches, so a follower's batch boundaries
need not be its leader's, and a diverging follower may have to cut inside one of its batches (the
Raft simulation does so in about one truncation in nine). ``PartitionLog.truncate_to`` cuts whole
batches, so the batch is cut and its kept head — which may hold entries below the high watermark —
is written again and fsynced at once. A crash in that instant (between the two system calls, or a
power cut before the fsync ends) loses the head: a window of one fsync, closed only by writing the
follower's batches as the leader cut them (KRaft ships whole batches) or by rewriting in place.

Concurrency: not thread-safe; driven by the one caller that drives the ``RaftNode``. ``flush``
blocks for its fsyncs; the caller may run it in a worker thread if it neither appends nor
truncates until it returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster.durable import fsync_path
from cluster.log.partition_log import PartitionLog, UnexpectedAppendOffsetError
from cluster.log.validator import RecordValidationError
from cluster.raft.batches import decode_entries, encode_entries
from cluster.raft.disk_snapshots import SnapshotFiles
from cluster.raft.leader_epoch_cache import LeaderEpochCache
from cluster.raft.log import Entry, LogError, OffsetAndEpoch
from pykafka_ops.records.batch import read_batch_header

if TYPE_CHECKING:
    from cluster.log.manager import LogManager

__all__ = ["DiskRaftLog", "open_metadata_raft_log"]

#: Bytes asked of ``PartitionLog.read`` per entry wanted (the first batch is always returned whole).
_BYTES_PER_ENTRY = 256
_MIN_READ, _MAX_READ = 4096, 1024 * 1024


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


class DiskRaftLog:
    """The ``RaftLog`` of one node on an open ``PartitionLog`` (see the module docstring)."""

    def __init__(self, partition_log: PartitionLog, clock_ms: Callable[[], int] = _wall_clock_ms) -> None:
        """Wrap ``partition_log`` (opened, and recovered if the shutdown was unclean) and rebuild
        the epoch cache from its batch headers. ``clock_ms`` stamps new batches and drives
        segment.ms rolls. Raises LogError if the log is not a Raft log (gaps, epochs going back)."""
        self.partition_log = partition_log
        self._clock_ms = clock_ms
        self._cache = LeaderEpochCache()
        self._durable_segments: tuple[int, ...] | None = None  # None: the directory was never fsynced
        # Written since the last flush, from this segment on. True at open: after a kill -9 what the
        # recovery found may still be in the page cache only, so the first flush fsyncs everything.
        self._unflushed = True
        self._flushed_active_base = 0
        self._snapshots = SnapshotFiles(self.directory)
        self._staged: tuple[int, int, Sequence[bytes], bytes] | None = None
        self._load_epochs()

    def _load_epochs(self) -> None:
        """Scan every batch header once: offsets must be dense from the first batch, epochs must
        not go back; entries below the log start (kept in a segment that straddles it) only
        feed the epoch cache, which then starts at the log start."""
        plog = self.partition_log
        snapshot = self.latest_snapshot()
        if plog.log_start_offset > (snapshot.offset if snapshot else 0):
            raise LogError(f"{plog.directory.name}: the log starts at {plog.log_start_offset}, after its "
                           f"latest snapshot ({snapshot}); the entries between are lost")
        cache, expected = self._cache, None
        for segment in plog.segments:
            for _position, header in segment.iter_headers():
                epoch = header.partition_leader_epoch
                if expected is None:  # the first batch must hold the log start (or precede it)
                    expected = min(header.base_offset, plog.log_start_offset)
                if header.base_offset != expected:
                    raise LogError(f"{plog.directory.name}: the batch at offset {header.base_offset} follows "
                                   f"offset {expected - 1}; a Raft log has no gaps")
                if epoch < cache.latest_epoch or epoch < 0:
                    raise LogError(f"{plog.directory.name}: the batch at offset {header.base_offset} has epoch "
                                   f"{epoch} after epoch {cache.latest_epoch}")
                cache.assign(epoch, header.base_offset)
                expected = header.last_offset + 1
        if expected is None:
            expected = plog.log_end_offset
        cache.truncate_from_start(plog.log_start_offset)
        if expected != plog.log_end_offset:
            raise LogError(f"{plog.directory.name}: the batches end at {expected}, the log at {plog.log_end_offset}")

    # -- what the core reads ------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """The partition directory, which also holds Kafka's ``quorum-state`` file."""
        return self.partition_log.directory

    @property
    def end_offset(self) -> int:
        return self.partition_log.log_end_offset

    @property
    def start_offset(self) -> int:
        """The first offset still in the log; those below are in a snapshot only."""
        return self.partition_log.log_start_offset

    @property
    def last_epoch(self) -> int:
        if self._cache.epochs:
            return self._cache.latest_epoch
        snapshot = self.latest_snapshot()
        return snapshot.epoch if snapshot is not None and snapshot.offset == self.end_offset else 0

    def epoch_entries(self) -> list[tuple[int, int]]:
        """(epoch, start offset) of every epoch in the log (Kafka's ``epochEntries``)."""
        return list(zip(self._cache.epochs, self._cache.start_offsets, strict=True))

    def epoch_of(self, offset: int) -> int:
        snapshot = self.latest_snapshot()
        if snapshot is not None and offset == snapshot.offset - 1 and offset < self.start_offset:
            return snapshot.epoch  # the last entry a snapshot covers
        if not self.start_offset <= offset < self.end_offset:
            raise LogError(f"offset {offset} is outside the log [{self.start_offset}, {self.end_offset})")
        return self._cache.epoch_for(offset)

    def end_offset_for_epoch(self, epoch: int) -> OffsetAndEpoch:
        if epoch < 0:
            return OffsetAndEpoch(-1, -1)
        snapshot = self.latest_snapshot()
        first = self._cache.epochs[0] if self._cache.epochs else None
        if snapshot is not None and (first is None or epoch < first) and snapshot.offset >= self.start_offset:
            return OffsetAndEpoch(snapshot.offset, snapshot.epoch)  # the log holds nothing older
        return self._cache.end_offset_for(epoch, self.end_offset)

    def read(self, start: int, max_entries: int) -> tuple[Entry, ...]:
        """Up to ``max_entries`` entries from ``start``, decoded from the segment files."""
        if start < self.start_offset:
            raise LogError(f"read from offset {start}, below the log start {self.start_offset}")
        end = self.end_offset
        out: list[Entry] = []
        offset = start
        while len(out) < max_entries and offset < end:
            want = max_entries - len(out)
            chunk = min(max(want * _BYTES_PER_ENTRY, _MIN_READ), _MAX_READ)
            data = self.partition_log.read(offset, chunk, end, min_one_batch=True)
            next_offset = offset
            for entry in decode_entries(data):
                next_offset = entry.offset + 1
                if entry.offset >= offset:
                    out.append(entry)
                    if len(out) == max_entries:
                        break
            if next_offset <= offset:  # nothing decoded: cannot happen in a log without gaps
                raise LogError(f"{self.directory.name}: no entry at offset {offset} below the end {end}")
            offset = next_offset
        return tuple(out)

    # -- what the core writes -----------------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> None:
        """Append entries whose offsets continue the log and whose epochs do not go back; all of
        them or none (they are checked before anything is written)."""
        if not entries:
            return
        end, last = self.end_offset, self.last_epoch
        for i, entry in enumerate(entries):
            if entry.offset != end + i:
                raise LogError(f"append at offset {entry.offset}, the log ends at {end + i}")
            if entry.epoch < last:
                raise LogError(f"append of epoch {entry.epoch} after epoch {last}")
            last = entry.epoch
        self._write(entries)
        for entry in entries:
            self._cache.assign(entry.epoch, entry.offset)

    def stage(self, first_offset: int, epoch: int, payloads: Sequence[bytes], data: bytes) -> None:
        """Offer the encoded batch of entries about to be appended (``first_offset`` on, of
        ``epoch``, with exactly these payload objects): a proposal of 10 000 records is encoded
        by its caller a slice at a time instead of inside ``append`` in one go. Used once."""
        self._staged = (first_offset, epoch, payloads, data)

    def _encoded(self, entries: Sequence[Entry], now_ms: int) -> bytearray:
        staged, self._staged = self._staged, None
        if staged is not None:
            first, epoch, payloads, data = staged
            if (first == entries[0].offset and len(payloads) == len(entries)
                    and all(e.epoch == epoch and not e.control and e.payload is p
                            for e, p in zip(entries, payloads, strict=True))):
                return bytearray(data)
        return bytearray(encode_entries(entries, now_ms))

    def _write(self, entries: Sequence[Entry]) -> None:
        now_ms = self._clock_ms()
        data = self._encoded(entries, now_ms)
        self._unflushed = True
        try:
            self.partition_log.append_as_follower(memoryview(data), now_ms)
        except (RecordValidationError, UnexpectedAppendOffsetError) as error:
            raise LogError(f"{self.directory.name}: cannot append offsets {entries[0].offset}.."
                           f"{entries[-1].offset}: {error}") from error

    def truncate_to(self, offset: int) -> None:
        """Remove every entry at ``offset`` and after (``PartitionLog.truncate_to`` cuts whole
        batches; the kept head of a batch cut in the middle is written again and fsynced)."""
        if offset < self.start_offset:
            raise LogError(f"truncation to {offset}, below the log start {self.start_offset} (in a snapshot)")
        end = self.end_offset
        if offset >= end:
            return
        data = self.partition_log.read(offset, 1, end, min_one_batch=True)  # the batch holding offset
        base = read_batch_header(data).base_offset
        kept = [entry for entry in decode_entries(data) if entry.offset < offset] if base < offset else []
        self._unflushed = True
        self.partition_log.truncate_to(base)
        self._flushed_active_base = min(self._flushed_active_base, self.partition_log.segments.active.base_offset)
        self._cache.truncate_from_end(base)
        if kept:
            self._write(kept)
            self._cache.assign(kept[0].epoch, kept[0].offset)
            self.flush()

    def flush(self) -> None:
        """fsync what was written since the last flush: the segment that was active then and every
        one rolled since, and, when segments were created or deleted, the partition directory.
        Segment files are fsynced by path, not through ``LogSegment.flush``, whose dirty flags only
        know of this process's writes: after a kill -9 what recovery kept may be in the page cache
        only, and the first flush after opening must cover it too."""
        plog = self.partition_log
        if self._unflushed:
            for segment in plog.segments:
                if segment.base_offset >= self._flushed_active_base:
                    fsync_path(segment.path)
                    segment.offset_index.flush()
                    segment.time_index.flush()
            self._unflushed = False
        bases = tuple(segment.base_offset for segment in plog.segments)
        if bases != self._durable_segments:
            if self._durable_segments is None:  # a new partition directory: its name too
                fsync_path(plog.directory.parent)
            fsync_path(plog.directory)
            self._durable_segments = bases
        self._flushed_active_base = plog.segments.active.base_offset
        plog.mark_flushed(self._clock_ms())

    # -- snapshots (KIP-630) --------------------------------------------------------------------

    def latest_snapshot(self) -> OffsetAndEpoch | None:
        """The newest snapshot's id: (end offset, exclusive; epoch of its last entry)."""
        return self._snapshots.latest()

    def snapshot_size(self, snapshot_id: OffsetAndEpoch) -> int:
        """Bytes of the snapshot ``snapshot_id`` (LogError if there is none)."""
        return self._snapshots.size(snapshot_id)

    def read_snapshot(self, snapshot_id: OffsetAndEpoch, position: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of the snapshot from ``position`` (LogError if there is none)."""
        return self._snapshots.read(snapshot_id, position, max_bytes)

    def create_snapshot(self, snapshot_id: OffsetAndEpoch, data: bytes) -> None:
        """Keep the state machine's snapshot at ``snapshot_id`` durably (written whole, renamed
        into place); older snapshots beyond the two newest are deleted."""
        if snapshot_id in self._snapshots.ids:
            return  # as Kafka: a snapshot that exists is kept as it is
        if not 0 < snapshot_id.offset <= self.end_offset or snapshot_id.epoch != self.epoch_of(snapshot_id.offset - 1):
            raise LogError(f"snapshot {snapshot_id} names no entry of the log [{self.start_offset}, {self.end_offset})")
        self._snapshots.add(snapshot_id, data, keep=2)

    def trim_to(self, offset: int) -> None:
        """Move the log start up to ``offset`` (never past the latest snapshot): the segments
        wholly below it are deleted, as Kafka's ``deleteBeforeSnapshot``."""
        snapshot = self.latest_snapshot()
        if snapshot is None or offset > snapshot.offset:
            raise LogError(f"trim to {offset} without a snapshot there (latest: {snapshot})")
        plog = self.partition_log
        if offset <= plog.log_start_offset:
            return
        plog.high_watermark = plog.log_end_offset  # the Raft core, not PartitionLog, knows what is committed
        plog.delete_records_before(offset)
        self._cache.truncate_from_start(offset)
        self._unflushed = True

    def install_snapshot(self, snapshot_id: OffsetAndEpoch, data: bytes) -> None:
        """Replace everything with the leader's snapshot: the log restarts empty at its end
        offset (Kafka's ``truncateToLatestSnapshot``)."""
        self._snapshots.replace_all(snapshot_id, data)
        self.partition_log.truncate_fully_and_start_at(snapshot_id.offset, self._clock_ms())
        self._cache = LeaderEpochCache()
        self._unflushed = True
        self._flushed_active_base = snapshot_id.offset
        self.flush()

    def __repr__(self) -> str:
        return f"DiskRaftLog({self.directory.name}, end={self.end_offset}, epochs={self.epoch_entries()})"


def open_metadata_raft_log(log_manager: LogManager, broker_config: Mapping[str, Any]) -> DiskRaftLog:
    """``__cluster_metadata-0`` of ``log_manager`` (started) as a Raft log, with the metadata log's
    topic settings, as ``Broker.start`` opens it today. Its quorum state goes beside it:
    ``FileQuorumStateStore(raft_log.directory)``."""
    from cluster.controller.quorum import METADATA_LOG_CONFIG, METADATA_TOPIC
    from pykafka_ops.config.settings import topic_defaults

    config = topic_defaults(broker_config) | METADATA_LOG_CONFIG
    raft_log = DiskRaftLog(log_manager.get_or_create(METADATA_TOPIC, 0, config))
    raft_log.flush()  # what an unclean shutdown left may be in the page cache only
    return raft_log
