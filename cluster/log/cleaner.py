"""LogCleaner (Kafka's `LogCleaner`): compaction of logs with cleanup.policy=compact.

One pass over a log, in three steps:

1. **plan** (event loop): the rolled segments — never the active one — in consecutive groups
   whose total size fits segment.bytes (Kafka's ``groupSegmentsBySize``).
2. **clean** (worker thread, reading the files through descriptors of its own): a map of each
   key to the offset of its newest record in those segments, then each group rewritten into
   ``<base>.log.cleaned`` (fsynced). A record stays if it is the newest of its key; a
   tombstone (null value) only while younger than delete.retention.ms; records without a key are
   dropped (Kafka counts them invalid). A batch that keeps every record is copied byte for byte;
   others are rebuilt with their base offset, offset range and producer fields (Kafka's
   ``MemoryRecords.filterTo``). A group's last batch always stays, empty if need be (Kafka's
   ``RETAIN_EMPTY``), so a cleaned segment ends at the same offset as the ones it replaces.
3. **swap** (event loop, without awaiting): if the group's segments are still in the log,
   unchanged, ``.cleaned`` → ``.swap``, the old segments' files are deleted, ``.swap`` →
   ``.log``, its indexes are rebuilt and it takes their place. After a crash, start-up deletes a
   ``.cleaned`` file and finishes an interrupted swap (``complete_interrupted_swaps``).

Transactions (KIP-98, Kafka's ``LogCleaner`` with ``CleanedTransactionMetadata``): only segments
below the last stable offset are cleaned; records of aborted transactions (the ``.txnindex``
entries) are removed and never enter the offset map, so an aborted write never hides a committed
one; the aborted-transaction indexes of a group are merged into the cleaned segment's
(``<base>.txnindex.swap`` during the swap). Markers are kept (Kafka removes them once
delete.retention.ms has passed and their transaction's data is gone: not done here).

A log is cleaned when a segment rolled since its last pass, or when a tombstone kept by that pass
has since outlived delete.retention.ms. The broker's maintenance loop runs ``clean_logs`` every
log.cleaner.backoff.ms.

Concurrency: one LogCleaner per node, driven from the event loop; the worker thread touches
only files. Simplifications against Kafka: a tombstone's age is its record timestamp (not
KIP-534's delete horizon, counted from its first cleaning); no min.cleanable.dirty.ratio and no
min/max.compaction.lag.ms; control batches are kept; the offset map is not bounded
(log.cleaner.dedupe.buffer.size); the cleaned position is not checkpointed, so a restarted
broker cleans each compacted log once more.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cluster.durable import fsync_path
from cluster.log.segment import LogSegment, segment_file_stem
from cluster.log.transaction_index import TXN_INDEX_SUFFIX, AbortedTxn
from pykafka_ops.records.batch import (
    HEADER_SIZE,
    BatchHeader,
    Compression,
    RecordBatch,
    read_batch_header,
)
from pykafka_ops.records.builder import RecordBatchBuilder

if TYPE_CHECKING:
    from cluster.log.manager import LogManager, TopicPartition
    from cluster.log.partition_log import PartitionLog

log = logging.getLogger(__name__)

CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class SegmentFile:
    """A rolled segment as planned: the object (to check it is still in the log) and its file."""

    segment: LogSegment
    path: Path
    size: int


@dataclass(frozen=True)
class CleanedGroup:
    """The cleaned copy of a group of segments, ready to be swapped in."""

    files: list[SegmentFile]
    cleaned_path: Path
    records_removed: int
    oldest_tombstone_ms: int | None
    """Timestamp of the oldest tombstone kept (it is due for removal delete.retention.ms later)."""


def group_by_size(files: list[SegmentFile], max_bytes: int) -> list[list[SegmentFile]]:
    """Consecutive segments whose sizes add up to at most ``max_bytes`` (at least one each), and
    whose offsets fit the int32 relative offsets of one segment's index."""
    groups: list[list[SegmentFile]] = []
    current: list[SegmentFile] = []
    size = 0
    for f in files:
        span = f.segment.next_offset - 1 - (current[0].segment.base_offset if current else f.segment.base_offset)
        if current and (size + f.size > max_bytes or span > INT32_MAX):
            groups.append(current)
            current, size = [], 0
        current.append(f)
        size += f.size
    if current:
        groups.append(current)
    return groups


# -- worker thread -------------------------------------------------------------------------


def _file_batches(path: Path, size: int) -> Iterator[tuple[BatchHeader, bytes]]:
    """Every whole batch in the first ``size`` bytes of a segment file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        position = 0
        while position + HEADER_SIZE <= size:
            header = read_batch_header(os.pread(fd, HEADER_SIZE, position))
            if position + header.size > size:
                return
            yield header, os.pread(fd, header.size, position)
            position += header.size
    finally:
        os.close(fd)


#: producer id → (first offset, marker offset) of its aborted transactions.
AbortedRanges = dict[int, list[tuple[int, int]]]


def aborted_ranges(entries: list[AbortedTxn]) -> AbortedRanges:
    """The aborted transactions of ``.txnindex`` entries, by producer."""
    ranges: AbortedRanges = {}
    for e in entries:
        ranges.setdefault(e.producer_id, []).append((e.first_offset, e.last_offset))
    return ranges


def is_aborted(header: BatchHeader, aborted: AbortedRanges) -> bool:
    """Whether a transactional data batch belongs to an aborted transaction."""
    if not header.is_transactional or header.is_control:
        return False
    return any(first <= header.base_offset < last for first, last in aborted.get(header.producer_id, ()))


def build_offset_map(files: list[SegmentFile], aborted: AbortedRanges | None = None) -> dict[bytes, int]:
    """Key → offset of its newest record in ``files`` (Kafka's ``OffsetMap``), aborted
    transactions left out."""
    latest: dict[bytes, int] = {}
    for f in files:
        for header, data in _file_batches(f.path, f.size):
            if not header.is_control and not is_aborted(header, aborted or {}):
                for record in RecordBatch(data).records():
                    if record.key is not None:
                        latest[record.key] = record.offset
    return latest


def clean_batch(header: BatchHeader, data: bytes, latest: dict[bytes, int], tombstone_horizon_ms: int,
                keep_empty: bool) -> tuple[bytes | None, int, int | None]:
    """(the batch to write, or None; records removed; oldest tombstone timestamp kept)."""
    if header.is_control:
        return data, 0, None
    records = list(RecordBatch(data).records())
    kept = [r for r in records if r.key is not None and latest.get(r.key) == r.offset
            and not (r.value is None and r.timestamp < tombstone_horizon_ms)]
    oldest_tombstone = min((r.timestamp for r in kept if r.value is None), default=None)
    removed = len(records) - len(kept)
    if not removed:
        return data, 0, oldest_tombstone
    if not kept and not keep_empty:
        return None, removed, None
    builder = RecordBatchBuilder(
        base_offset=header.base_offset, compression=header.compression if kept else Compression.NONE,
        producer_id=header.producer_id, producer_epoch=header.producer_epoch, base_sequence=header.base_sequence,
        is_transactional=header.is_transactional, partition_leader_epoch=header.partition_leader_epoch,
        timestamp_type=header.timestamp_type)
    for r in kept:
        builder.append(r.key, r.value, r.headers, timestamp_ms=r.timestamp, offset_delta=r.offset - header.base_offset)
    return builder.build(last_offset_delta=header.last_offset_delta), removed, oldest_tombstone


def write_cleaned_group(files: list[SegmentFile], latest: dict[bytes, int], tombstone_horizon_ms: int,
                        aborted: AbortedRanges | None = None) -> CleanedGroup:
    """Write the cleaned copy of ``files`` to ``<first base>.log.cleaned`` and fsync it."""
    cleaned_path = files[0].path.with_name(files[0].path.name + CLEANED_SUFFIX)
    removed = 0
    oldest: int | None = None
    batches = ((header, data) for f in files for header, data in _file_batches(f.path, f.size))
    with open(cleaned_path, "wb") as out:
        pending = next(batches, None)
        while pending is not None:
            following = next(batches, None)
            header, raw = pending
            if is_aborted(header, aborted or {}):  # aborted data goes (a group's last batch stays, empty)
                data, dropped, tombstone = (_emptied(header) if following is None else None), header.records_count, None
            else:
                data, dropped, tombstone = clean_batch(header, raw, latest, tombstone_horizon_ms,
                                                       keep_empty=following is None)
            removed += dropped
            if tombstone is not None:
                oldest = tombstone if oldest is None else min(oldest, tombstone)
            if data is not None:
                out.write(data)
            pending = following
        out.flush()
        os.fsync(out.fileno())
    return CleanedGroup(files, cleaned_path, removed, oldest)


def _emptied(header: BatchHeader) -> bytes:
    """An empty batch with ``header``'s offsets and producer fields (a group's last batch stays)."""
    return RecordBatchBuilder(
        base_offset=header.base_offset, producer_id=header.producer_id, producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence, is_transactional=True, partition_leader_epoch=header.partition_leader_epoch,
    ).build(last_offset_delta=header.last_offset_delta)


def clean_segments(groups: list[list[SegmentFile]], tombstone_horizon_ms: int,
                   aborted: AbortedRanges | None = None) -> list[CleanedGroup]:
    """Steps 2 of the module docstring for every group (runs in a worker thread)."""
    latest = build_offset_map([f for group in groups for f in group], aborted)
    return [write_cleaned_group(group, latest, tombstone_horizon_ms, aborted) for group in groups]


# -- event loop ----------------------------------------------------------------------------


def swap_in(partition_log: PartitionLog, group: CleanedGroup) -> LogSegment:
    """Replace the group's segments with the cleaned one (Kafka's ``replaceSegments``)."""
    old = [f.segment for f in group.files]
    first = old[0]
    swap_path = first.path.with_name(first.path.name + SWAP_SUFFIX)
    os.replace(group.cleaned_path, swap_path)
    txn_swap = _txn_swap_path(first.path)
    entries = [e for segment in old for e in segment.txn_index.entries]
    if entries:
        txn_swap.write_bytes(b"".join(e.encode() for e in entries))
    for segment in old:
        if segment in partition_log.unflushed_segments:
            partition_log.unflushed_segments.remove(segment)
        segment.delete()
    if entries:
        os.replace(txn_swap, first.path.with_suffix(TXN_INDEX_SUFFIX))
    os.replace(swap_path, first.path)
    fsync_path(partition_log.directory)
    cleaned = LogSegment(partition_log.directory, first.base_offset, partition_log.config.index_interval_bytes)
    cleaned.recover(partition_log.config.max_batch_bytes, lambda _header: None)  # rebuilds its indexes
    partition_log.segments.replace(old, cleaned)
    return cleaned


def _txn_swap_path(log_path: Path) -> Path:
    """Where the merged ``.txnindex`` of a cleaned group waits during the swap."""
    return log_path.with_suffix(TXN_INDEX_SUFFIX + SWAP_SUFFIX)


def complete_interrupted_swaps(directory: Path) -> None:
    """Start-up, before the segments are opened: delete half-written ``.cleaned`` files and
    finish each swap a crash interrupted (the ``.swap`` file replaces every segment it covers)."""
    for cleaned in directory.glob(f"*.log{CLEANED_SUFFIX}"):
        cleaned.unlink()
    for swap in sorted(directory.glob(f"*.log{SWAP_SUFFIX}")):
        base = int(swap.name.split(".", 1)[0])
        last = base
        for header, _data in _file_batches(swap, swap.stat().st_size):
            last = header.last_offset
        covered = [p for p in directory.glob("*.log") if p.stem.isdigit() and base <= int(p.stem) <= last]
        target = directory / f"{segment_file_stem(base)}.log"
        txn_swap = _txn_swap_path(target)
        if not txn_swap.exists():  # the crash came before the merged index was written
            merged = b"".join(p.with_suffix(TXN_INDEX_SUFFIX).read_bytes() for p in sorted(covered)
                              if p.with_suffix(TXN_INDEX_SUFFIX).exists())
            if merged:
                txn_swap.write_bytes(merged)
        for log_file in covered:
            for suffix in (".log", ".index", ".timeindex", TXN_INDEX_SUFFIX):
                log_file.with_suffix(suffix).unlink(missing_ok=True)
        if txn_swap.exists():
            os.replace(txn_swap, target.with_suffix(TXN_INDEX_SUFFIX))
        os.replace(swap, target)
        log.warning("%s: finished the swap of a cleaned segment interrupted by a crash", swap)


class LogCleaner:
    """Cleans the compacted logs of a LogManager (see module docstring)."""

    def __init__(self, log_manager: LogManager) -> None:
        self.log_manager = log_manager
        self._cleaned_below: dict[TopicPartition, int] = {}
        """Active segment's base offset at the last pass: a roll since then means new work."""
        self._tombstones_due_ms: dict[TopicPartition, int] = {}

    async def clean_logs(self, now_ms: int) -> int:
        """Clean every compacted log that needs it; returns the number of records removed."""
        logs = dict(self.log_manager.logs)
        for gone in (self._cleaned_below.keys() | self._tombstones_due_ms.keys()) - logs.keys():
            self._cleaned_below.pop(gone, None)
            self._tombstones_due_ms.pop(gone, None)
        removed = 0
        for tp, partition_log in logs.items():
            if partition_log.config.compact and self._needs_cleaning(tp, partition_log, now_ms):
                try:
                    removed += await self.clean(tp, partition_log, now_ms)
                except Exception:  # one bad log must not stop the others (nor the broker)
                    log.exception("cleaning %s-%d failed", *tp)
        return removed

    def _needs_cleaning(self, tp: TopicPartition, partition_log: PartitionLog, now_ms: int) -> bool:
        if len(partition_log.segments) < 2:
            return False
        rolled = partition_log.segments.active.base_offset > self._cleaned_below.get(tp, -1)
        due_ms = self._tombstones_due_ms.get(tp)
        return rolled or (due_ms is not None and now_ms >= due_ms)

    async def clean(self, tp: TopicPartition, partition_log: PartitionLog, now_ms: int) -> int:
        """One pass over ``partition_log``; returns the number of records removed."""
        active = partition_log.segments.active
        stable = partition_log.last_stable_offset  # never past an open transaction (KIP-98)
        files = [SegmentFile(s, s.path, s.size) for s in partition_log.segments
                 if s is not active and s.next_offset <= stable]
        if not files:
            return 0
        groups = group_by_size(files, partition_log.config.segment_bytes)
        retention_ms = partition_log.config.delete_retention_ms
        aborted = aborted_ranges([e for s in partition_log.segments for e in s.txn_index.entries])
        cleaned = await asyncio.to_thread(clean_segments, groups, now_ms - retention_ms, aborted)
        removed, oldest, all_swapped = 0, None, True
        for group in cleaned:
            current = list(partition_log.segments)
            intact = self.log_manager.logs.get(tp) is partition_log and all(
                any(s is f.segment for s in current) and f.segment.size == f.size for f in group.files)
            if group.oldest_tombstone_ms is not None:
                oldest = group.oldest_tombstone_ms if oldest is None else min(oldest, group.oldest_tombstone_ms)
            if not intact or not group.records_removed:
                # Retention, truncation or deletion got there first (next pass tries again), or the
                # copy is byte for byte the original (nothing to swap).
                group.cleaned_path.unlink(missing_ok=True)
                all_swapped = all_swapped and intact
                continue
            segment = swap_in(partition_log, group)
            removed += group.records_removed
            log.info("cleaned %s-%d: %d segment(s) → %s (%d bytes, %d record(s) removed)", *tp, len(group.files),
                     segment.path.name, segment.size, group.records_removed)
        if all_swapped:
            self._cleaned_below[tp] = active.base_offset
        if oldest is None:
            self._tombstones_due_ms.pop(tp, None)
        else:
            self._tombstones_due_ms[tp] = oldest + retention_ms
        return removed
