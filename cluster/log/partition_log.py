"""PartitionLog (≈ Kafka's `UnifiedLog`): the on-disk log of one topic partition.

Offsets: ``log_start_offset`` ≤ ``high_watermark`` ≤ ``log_end_offset``. The high watermark is
set by the replication layer (``Partition``); consumers read below it (read_committed ones below the last
stable offset: ``LogTransactions``). Appends validate batch headers, check idempotent-producer
sequences and transactions (``Origin``: a client's batches, a coordinator's markers), rebuild
batches not in the topic's ``compression.type`` (``recompress``), assign offsets in place and
write each request's batches for this partition with one ``os.write``. Reads return a byte range of one segment
starting at the batch that holds the fetch offset (whole batches, as Kafka: the client skips
records before its offset), bounded by ``max_offset`` and ``max_bytes``.

Concurrency: used only from the node's event loop; nothing here awaits. Segment fsyncs run in
a worker thread (``LogManager``) on segments that are no longer written.
"""

from __future__ import annotations

import logging
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cluster.log.cleaner import complete_interrupted_swaps
from cluster.log.config import LogConfig
from cluster.log.leader_epoch_cache import (
    LeaderEpochFileCache,
    finish_loading,
    open_leader_epoch_cache,
)
from cluster.log.log_transactions import LogTransactions
from cluster.log.producer_state import ProducerStateEntry, ProducerStateManager
from cluster.log.recompress import needs_recompression, recompress
from cluster.log.retention import LogRetention, OffsetOutOfRangeError
from cluster.log.segment import BatchInfo, LogSegment, segment_file_stem
from cluster.log.segments import LogSegments
from cluster.log.timestamp_lookup import TimestampLookup, TimestampOffset
from cluster.log.transactions import CompletedTxn, Origin, end_txn_marker
from cluster.log.validator import assign_offsets, require_keys, validate_record_set
from pykafka_ops.records.batch import LENGTH, LOG_OVERHEAD, BatchHeader

log = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1
_BATCH_LENGTH = struct.Struct(">i")


class UnexpectedAppendOffsetError(Exception):
    """A follower append whose offsets do not continue the log (Kafka's UnexpectedAppendOffsetException)."""


@dataclass(frozen=True)
class LogAppendInfo:
    """The result of an append (or of a duplicate that was not written again)."""

    first_offset: int
    last_offset: int
    max_timestamp: int
    log_append_time_ms: int
    """-1 unless the topic uses LogAppendTime."""
    records: int
    duplicate: bool = False


def partition_dir_name(topic: str, partition: int) -> str:
    """Kafka's directory name for a partition: ``<topic>-<partition>``."""
    return f"{topic}-{partition}"


class PartitionLog(TimestampLookup, LogRetention, LogTransactions):
    """Segments, offsets and producer state of one partition (see module docstring)."""

    def __init__(self, directory: Path, config: LogConfig, producer_expiration_ms: int) -> None:
        self.directory = directory
        self.config = config
        self.segments = LogSegments()
        self.producer_state = ProducerStateManager(directory, producer_expiration_ms)
        self.leader_epochs = LeaderEpochFileCache(directory)
        self.log_start_offset = 0
        self.high_watermark = 0
        self.recovery_point = 0
        self.unflushed_segments: list[LogSegment] = []
        self.on_truncate: Callable[[int | None], None] | None = None
        """Called after a truncation with its offset (None: emptied), to mirror it (``cluster.replication.alter_log_dirs``)."""
        self._records_since_flush = 0
        self._last_flush_ms = 0

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path,
        config: LogConfig,
        producer_expiration_ms: int,
        *,
        clean_shutdown: bool,
        recovery_point: int = 0,
        log_start_offset: int = 0,
        high_watermark: int | None = None,
    ) -> PartitionLog:
        """Open (or create) the log in ``directory``. After an unclean shutdown every segment
        from the recovery point on is checked batch by batch and a torn tail is cut off.
        ``high_watermark``: the checkpointed one (``LogManager``), clamped to [log start, log
        end] as Kafka's ``updateHighWatermark``; None (a Raft-managed log): the log end."""
        self = cls(directory, config, producer_expiration_ms)
        try:
            directory.mkdir(parents=True)
            fresh = True  # a directory made just now holds nothing to scan (a 10 000-partition topic)
        except FileExistsError:
            fresh = False
        bases = [] if fresh else self._scan_directory()
        self.leader_epochs, rebuild_epochs = open_leader_epoch_cache(directory, fresh)
        for base in bases or [log_start_offset]:
            self.segments.add(LogSegment(directory, base, config.index_interval_bytes))
        self._load_segments(clean_shutdown, recovery_point)
        self.log_start_offset = max(log_start_offset, self.segments.first.base_offset)
        self.log_start_offset = min(self.log_start_offset, self.log_end_offset)
        finish_loading(self, rebuild_epochs)
        if not fresh:
            self._load_producer_state()
        end = self.log_end_offset
        self.high_watermark = end if high_watermark is None else min(max(high_watermark, self.log_start_offset), end)
        self.recovery_point = end
        return self

    def _scan_directory(self) -> list[int]:
        """Tidy what a crash left (temporary files, interrupted swaps, indexes without a log);
        return the base offsets of the segments found."""
        directory = self.directory
        for stray in directory.glob("*.tmp"):
            stray.unlink()
        complete_interrupted_swaps(directory)
        bases = sorted(int(p.stem) for p in directory.glob("*.log") if p.stem.isdigit())
        for suffix in (".index", ".timeindex", ".txnindex"):
            for orphan in directory.glob(f"*{suffix}"):
                if not (directory / f"{orphan.stem}.log").exists():
                    orphan.unlink()
        return bases

    def _load_segments(self, clean_shutdown: bool, recovery_point: int) -> None:
        for i, segment in enumerate(list(self.segments)):
            trusted = clean_shutdown or (segment is not self.segments.active and
                                         self.segments[i + 1].base_offset <= recovery_point)
            if trusted:
                try:
                    segment.load()
                    continue
                except Exception as exc:  # a broken index: fall back to recovery
                    log.warning("%s: rebuilding %s: %s", self.directory.name, segment.path.name, exc)
            result = segment.recover(self.config.max_batch_bytes, self.leader_epochs.assign_recovered)
            if result.truncated_bytes:
                log.warning("%s: recovery cut %d bytes from %s after %d valid batches (%s)",
                            self.directory.name, result.truncated_bytes, segment.path.name,
                            result.batches, result.reason)
                self._delete_segments_after(segment)
                break

    def _delete_segments_after(self, segment: LogSegment) -> None:
        while self.segments.active is not segment:
            dropped = self.segments.remove_last()
            log.warning("%s: deleting %s, which follows a corrupt segment", self.directory.name, dropped.path.name)
            dropped.delete()

    def _load_producer_state(self) -> None:
        snapshot = self.producer_state.load_snapshot(self.log_end_offset)
        start = max(snapshot, self.log_start_offset)
        if start >= self.log_end_offset:
            return
        for segment in self.segments.from_index(self.segments.floor(start)):
            for pos, header in segment.iter_headers():
                if header.base_offset >= start:
                    self._replay_batch(segment, pos, header)

    # -- offsets ---------------------------------------------------------------------------

    @property
    def log_end_offset(self) -> int:
        """The offset the next record will get (LEO)."""
        return self.segments.active.next_offset

    @property
    def size_bytes(self) -> int:
        """Bytes of all segments."""
        return sum(s.size for s in self.segments)

    # -- append ----------------------------------------------------------------------------

    def append_as_leader(self, records: memoryview, leader_epoch: int, now_ms: int,
                         origin: Origin = Origin.CLIENT) -> LogAppendInfo:
        """Validate, assign offsets in place and write a produced record set (``origin``
        COORDINATOR: an end-transaction marker, Kafka's ``appendAsLeader(origin=COORDINATOR)``);
        batches not in the topic's ``compression.type`` are rebuilt in it first (``recompress``).
        Raises RecordValidationError or ProducerStateError with Kafka's error code."""
        config = self.config
        batches = validate_record_set(records, config.max_message_bytes, config.segment_bytes,
                                      allow_control=origin is Origin.COORDINATOR)
        if config.compact:
            require_keys(records, batches, self.directory.name)
        if config.compression is not None and needs_recompression(batches, config.compression):
            records, batches = recompress(records, batches, config.compression, config.compression_level,
                                          config.max_message_bytes, self.directory.name)
        pending: dict[int, ProducerStateEntry] = {}
        markers = [end_txn_marker(b.header, records, b.position) if b.header.is_control else None for b in batches]
        for batch, marker in zip(batches, markers):
            if batch.header.producer_id >= 0:
                duplicate = self.producer_state.check(batch.header, pending, marker, origin is Origin.CLIENT)
                if duplicate is not None:
                    return LogAppendInfo(duplicate.first_offset, duplicate.last_offset, duplicate.timestamp,
                                         -1, 0, duplicate=True)
        first_offset = self.log_end_offset
        append_time = now_ms if self.config.log_append_time else None
        infos = assign_offsets(records, batches, first_offset, leader_epoch, append_time)
        completed: list[CompletedTxn] = []
        for batch, info, marker in zip(batches, infos, markers):
            if batch.header.producer_id >= 0:
                txn = self.producer_state.update(_with_offsets(batch.header, info.last_offset, info.max_timestamp),
                                                 pending, marker)
                if txn is not None:
                    completed.append(txn)
        self._maybe_roll(len(records), infos[-1].last_offset, max(i.max_timestamp for i in infos), now_ms)
        self.segments.active.append(records, infos)
        self.producer_state.commit(pending)
        if completed:
            self._complete_txns(self.segments.active, completed)
        self.leader_epochs.assign(leader_epoch, first_offset)
        count = infos[-1].last_offset - first_offset + 1
        self._records_since_flush += count
        return LogAppendInfo(first_offset, infos[-1].last_offset, max(i.max_timestamp for i in infos),
                             append_time if append_time is not None else -1, count)

    def append_as_follower(self, records: memoryview, now_ms: int) -> LogAppendInfo:
        """Write batches whose base offsets and partition leader epochs are already set, unchanged
        (Kafka's ``UnifiedLog.appendAsFollower``; the KRaft metadata log writes its entries so).
        Checked as a replica's batches are (CRC, sizes, records; control batches allowed), not
        renumbered. Raises UnexpectedAppendOffsetError if the first batch starts below the log
        end offset or the batches' offsets do not increase."""
        batches = validate_record_set(records, self.config.max_message_bytes, self.config.segment_bytes,
                                      from_client=False)
        infos: list[BatchInfo] = []
        next_offset = self.log_end_offset
        for batch in batches:
            if batch.header.base_offset < next_offset:
                raise UnexpectedAppendOffsetError(f"{self.directory.name}: a batch at offset {batch.header.base_offset}"
                                                  f" appended where offset {next_offset} is expected")
            infos.append(BatchInfo(batch.position, batch.header.size, batch.header.last_offset,
                                   batch.header.max_timestamp))
            next_offset = batch.header.last_offset + 1
        max_timestamp = max(i.max_timestamp for i in infos)
        self._maybe_roll(len(records), infos[-1].last_offset, max_timestamp, now_ms)
        active = self.segments.active
        active.append(records, infos)
        for batch in batches:  # origin REPLICATION: no checks, the leader made them
            if batch.header.producer_id >= 0:
                marker = end_txn_marker(batch.header, records, batch.position) if batch.header.is_control else None
                txn = self.producer_state.update(batch.header, marker=marker)
                if txn is not None:
                    self._complete_txns(active, [txn])
        self.leader_epochs.assign_batches(batch.header for batch in batches)
        count = sum(batch.header.records_count for batch in batches)
        self._records_since_flush += count
        return LogAppendInfo(batches[0].header.base_offset, infos[-1].last_offset, max_timestamp, -1, count)

    def _maybe_roll(self, incoming_bytes: int, last_offset: int, max_timestamp: int, now_ms: int) -> None:
        active = self.segments.active
        if active.size == 0:
            return
        # Kafka's LogSegment.timeWaitedForRoll: the incoming batches' max timestamp minus the
        # segment's first batch timestamp; the segment's age only when that timestamp is missing.
        first_ts = active.first_batch_timestamp
        waited = max_timestamp - first_ts if first_ts is not None and first_ts >= 0 else now_ms - active.created_ms
        if (active.size + incoming_bytes > self.config.segment_bytes
                or waited > self.config.segment_ms
                or last_offset - active.base_offset > INT32_MAX):
            self.roll(now_ms)

    def roll(self, now_ms: int) -> LogSegment:
        """Start a new active segment at the log end; the old one waits for its fsync."""
        old = self.segments.active
        new_base = self.log_end_offset
        if old.size == 0:
            return old
        self.producer_state.take_snapshot(new_base)
        segment = LogSegment(self.directory, new_base, self.config.index_interval_bytes, created_ms=now_ms)
        self.segments.add(segment)
        self.unflushed_segments.append(old)
        return segment

    def flush_due(self, now_ms: int) -> bool:
        """Whether flush.messages / flush.ms ask for an fsync of the active segment now."""
        if not self._records_since_flush:
            return False
        return (self._records_since_flush >= self.config.flush_messages
                or now_ms - self._last_flush_ms >= self.config.flush_ms)

    def mark_flushed(self, now_ms: int) -> None:
        """Record that the active segment was just fsynced (by flush.messages / flush.ms)."""
        self._records_since_flush = 0
        self._last_flush_ms = now_ms

    # -- read ------------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int, max_offset: int, min_one_batch: bool) -> bytes | memoryview:
        """Bytes of whole batches from the one holding ``offset``, stopping before ``max_offset``
        (the high watermark or LSO) and within ``max_bytes`` — except that with ``min_one_batch``
        the first batch is returned whole even when larger (KIP-74). Kafka also sends the
        partial batch that ``max_bytes`` cuts off, which clients discard; we drop it here, which
        saves up to a whole batch (librdkafka batches reach 1 MB) per partition per fetch."""
        if offset < self.log_start_offset or offset > self.log_end_offset:
            raise OffsetOutOfRangeError(
                f"offset {offset} is outside [{self.log_start_offset}, {self.log_end_offset}]")
        if offset >= max_offset:
            return b""
        i = max(self.segments.floor(offset), 0)
        while i < len(self.segments):
            segment = self.segments[i]
            found = segment.find_batch(offset)
            if found is not None:
                position, header = found
                if header.base_offset >= max_offset:
                    return b""
                end = segment.size if max_offset >= segment.next_offset else segment.position_of(max_offset)
                length = min(max_bytes, end - position)
                if min_one_batch and length < header.size:
                    length = min(header.size, end - position)
                return _whole_batches(segment.read(position, length)) if length > 0 else b""
            i += 1
        return b""

    def truncate_to(self, offset: int) -> None:
        """Remove every record at or after ``offset`` (a follower diverged from its leader)."""
        while len(self.segments) > 1 and self.segments.active.base_offset >= offset:
            dropped = self.segments.remove_last()
            if dropped in self.unflushed_segments:  # closed now: LogManager.flush must not fsync it
                self.unflushed_segments.remove(dropped)
            dropped.delete()
        self.segments.active.truncate_to(offset)
        self.leader_epochs.truncate_from_end(offset)
        self.producer_state.truncate_snapshots_after(offset)
        self._load_producer_state()
        self.high_watermark = min(self.high_watermark, self.log_end_offset)
        if self.on_truncate is not None:
            self.on_truncate(offset)

    def truncate_fully_and_start_at(self, offset: int, now_ms: int) -> None:
        """Drop every segment and start an empty log at ``offset`` (Kafka's
        ``truncateFullyAndStartAt``: a replica that loads its leader's snapshot)."""
        while len(self.segments):
            dropped = self.segments.remove_last()
            if dropped in self.unflushed_segments:
                self.unflushed_segments.remove(dropped)
            dropped.delete()
        self.segments.add(LogSegment(self.directory, offset, self.config.index_interval_bytes, created_ms=now_ms))
        self.producer_state.truncate_snapshots_after(-1)
        self.producer_state.load_snapshot(offset)
        self.leader_epochs.clear()
        self.log_start_offset = self.high_watermark = self.recovery_point = offset
        if self.on_truncate is not None:
            self.on_truncate(None)

    def close(self, clean: bool) -> None:
        """Close the files; a clean close snapshots the producer state at the log end (an empty
        log with no producers has nothing to snapshot: its restart scans nothing)."""
        if clean and (self.producer_state.producers or self.log_end_offset > self.log_start_offset):
            self.producer_state.take_snapshot(self.log_end_offset)
        if clean:
            self.leader_epochs.flush_if_dirty()
        for segment in self.segments:
            segment.close()

    def rename_dir(self, directory: Path) -> None:
        """The directory was renamed to ``directory`` (Kafka's ``UnifiedLog.renameDir``): point
        every file at it; open descriptors stay valid."""
        self.directory = self.producer_state.directory = directory
        self.leader_epochs.path = directory / self.leader_epochs.path.name
        for segment in self.segments:
            segment.rename_dir(directory)

    def delete(self) -> None:
        """Close and remove the whole partition directory."""
        for segment in self.segments:
            segment.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __repr__(self) -> str:
        return (f"PartitionLog({self.directory.name}, start={self.log_start_offset}, "
                f"hw={self.high_watermark}, end={self.log_end_offset}, segments={len(self.segments)})")


def _whole_batches(data: bytes) -> bytes | memoryview:
    """``data`` without a trailing partial batch (only batch lengths are read)."""
    pos = 0
    while pos + LOG_OVERHEAD <= len(data):
        size = _BATCH_LENGTH.unpack_from(data, pos + LENGTH)[0] + LOG_OVERHEAD
        if pos + size > len(data):
            break
        pos += size
    return data if pos == len(data) else memoryview(data)[:pos]


def _with_offsets(header: BatchHeader, last_offset: int, max_timestamp: int) -> BatchHeader:
    """The header as written: offsets assigned by the broker (and LogAppendTime if any)."""
    return header._replace(base_offset=last_offset - header.last_offset_delta, max_timestamp=max_timestamp)


__all__ = ["LogAppendInfo", "OffsetOutOfRangeError", "PartitionLog", "TimestampOffset",
           "UnexpectedAppendOffsetError", "partition_dir_name", "segment_file_stem"]
