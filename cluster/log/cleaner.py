"""LogCleaner (Kafka's `LogCleaner`): compaction of logs with cleanup.policy=compact.

One pass over a log, in three steps:

1. **plan** (event loop): the rolled segments — never the active one — in consecutive groups
   whose total size fits segment.bytes (Kafka's ``groupSegmentsBySize``).
2. **clean** (worker thread, reading the files through descriptors of its own): a map of each
   key to the offset of its newest record in those segments, then each group rewritten into
   ``<base>.log.cleaned`` and its aborted-transaction index into ``<base>.txnindex.cleaned``
   (both fsynced). A record stays if it is the newest of its key; a tombstone (null value) only
   while younger than delete.retention.ms; records without a key are dropped (Kafka counts them
   invalid). A batch that keeps every record is copied byte for byte; others are rebuilt with
   their base offset, offset range and producer fields (Kafka's ``MemoryRecords.filterTo``). A
   batch left without records (or emptied by an earlier pass) is removed, but a group's last
   batch always stays, empty if need be (without producer fields, unless ``cleaner_transactions``
   keeps them: Kafka's ``RETAIN_EMPTY``), so a cleaned segment ends at the same offset as the
   ones it replaces.
3. **swap** (event loop, without awaiting): if the group's segments are still in the log,
   unchanged, ``.cleaned`` → ``.swap`` (the index first), the old segments' files are deleted,
   ``.swap`` → ``.txnindex`` / ``.log``, its indexes are rebuilt and it takes their place. After a
   crash, start-up deletes ``.cleaned`` files and finishes an interrupted swap
   (``complete_interrupted_swaps``). Once a group cannot be swapped, the later groups of the pass
   are not either (what they dropped was decided knowing what the earlier ones dropped).

Transactions (KIP-98 and KIP-534, ``cleaner_transactions``, Kafka's ``CleanedTransactionMetadata``):
only segments below the last stable offset are cleaned; records of aborted transactions are
removed and never enter the offset map, so an aborted write never hides a committed one; a
COMMIT/ABORT marker whose transaction has no data left is stamped with a delete horizon (now +
delete.retention.ms) by the first pass that finds it so, and removed by a pass after that horizon;
``.txnindex`` entries go with their aborted data.

A log is cleaned when a segment rolled since its last pass, or when a tombstone or a marker's
delete horizon kept by that pass has since come due. The broker's maintenance loop runs
``clean_logs`` every log.cleaner.backoff.ms.

Concurrency: one LogCleaner per node, driven from the event loop; the worker thread touches
only files. Simplifications against Kafka: a tombstone's age is its record timestamp (not
KIP-534's delete horizon, counted from its first cleaning, which markers do use); no
min.cleanable.dirty.ratio and no min/max.compaction.lag.ms; the offset map is not bounded
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
from cluster.log.cleaner_transactions import (
    CleanedTransactionMetadata,
    empty_batch,
    last_records_of_active_producers,
)
from cluster.log.segment import LogSegment, segment_file_stem
from cluster.log.transaction_index import TXN_INDEX_SUFFIX, AbortedTxn
from pykafka_ops.records.batch import (
    HEADER_SIZE,
    BatchHeader,
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
    """A rolled segment as planned: the object (to check it is still in the log), its file and its
    aborted-transaction index entries."""

    segment: LogSegment
    path: Path
    size: int
    aborted: tuple[AbortedTxn, ...] = ()


@dataclass(frozen=True)
class CleanedGroup:
    """The cleaned copy of a group of segments, ready to be swapped in."""

    files: list[SegmentFile]
    cleaned_path: Path
    records_removed: int
    changed: bool
    """False when the copy is the original byte for byte, index included (nothing to swap)."""
    due_ms: int | None
    """When a record kept by this pass becomes removable: the oldest tombstone's timestamp +
    delete.retention.ms, or the nearest delete horizon of a marker."""


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


def build_offset_map(files: list[SegmentFile], txn: CleanedTransactionMetadata) -> dict[bytes, int]:
    """Key → offset of its newest record in ``files`` (Kafka's ``OffsetMap``), aborted
    transactions left out."""
    latest: dict[bytes, int] = {}
    for f in files:
        for header, data in _file_batches(f.path, f.size):
            if not header.is_control and not txn.is_aborted(header):
                for record in RecordBatch(data).records():
                    if record.key is not None:
                        latest[record.key] = record.offset
    return latest


def clean_batch(header: BatchHeader, data: bytes, latest: dict[bytes, int], tombstone_horizon_ms: int,
                keep_empty: bool) -> tuple[bytes | None, int | None]:
    """(the data batch to write — ``data`` itself when every record stays — or None; the oldest
    tombstone timestamp kept). A batch left without records goes, unless ``keep_empty``: then
    it stays, empty, with its producer fields."""
    records = list(RecordBatch(data).records())
    kept = [r for r in records if r.key is not None and latest.get(r.key) == r.offset
            and not (r.value is None and r.timestamp < tombstone_horizon_ms)]
    oldest_tombstone = min((r.timestamp for r in kept if r.value is None), default=None)
    if not kept:  # Kafka's DELETE_EMPTY, or RETAIN_EMPTY for an active producer's last batch
        return (data if not records else empty_batch(header, keep_producer=True)) if keep_empty else None, None
    if len(kept) == len(records):
        return data, oldest_tombstone
    builder = RecordBatchBuilder(
        base_offset=header.base_offset, compression=header.compression,
        producer_id=header.producer_id, producer_epoch=header.producer_epoch, base_sequence=header.base_sequence,
        is_transactional=header.is_transactional, partition_leader_epoch=header.partition_leader_epoch,
        timestamp_type=header.timestamp_type)
    for r in kept:
        builder.append(r.key, r.value, r.headers, timestamp_ms=r.timestamp, offset_delta=r.offset - header.base_offset)
    return builder.build(last_offset_delta=header.last_offset_delta), oldest_tombstone


def _clean_one(header: BatchHeader, raw: bytes, latest: dict[bytes, int], tombstone_horizon_ms: int,
               txn: CleanedTransactionMetadata) -> tuple[bytes | None, int | None, int | None]:
    """(the batch to write, or None; a marker's delete horizon; the oldest tombstone kept)."""
    if header.is_control:
        data, horizon = txn.clean_control_batch(header, raw)
        return data, horizon, None
    keep_empty = txn.is_last_of_active_producer(header)
    if txn.is_aborted(header):
        data, tombstone = (empty_batch(header, keep_producer=True) if keep_empty else None), None
    else:
        data, tombstone = clean_batch(header, raw, latest, tombstone_horizon_ms, keep_empty)
    if data is not None:
        txn.on_data_written(header)
    return data, None, tombstone


def write_cleaned_group(files: list[SegmentFile], latest: dict[bytes, int], tombstone_horizon_ms: int,
                        delete_retention_ms: int, txn: CleanedTransactionMetadata) -> CleanedGroup:
    """Write the cleaned copy of ``files`` to ``<first base>.log.cleaned`` and its index to
    ``<first base>.txnindex.cleaned``, fsynced."""
    cleaned_path = files[0].path.with_name(files[0].path.name + CLEANED_SUFFIX)
    removed, changed = 0, False
    due: list[int] = []
    batches = ((header, data) for f in files for header, data in _file_batches(f.path, f.size))
    with open(cleaned_path, "wb") as out:
        pending = next(batches, None)
        while pending is not None:
            following = next(batches, None)
            header, raw = pending
            data, horizon, tombstone = _clean_one(header, raw, latest, tombstone_horizon_ms, txn)
            if data is None and following is None:  # a group's last batch stays, empty if need be
                data = empty_batch(header, keep_producer=False)
            removed += header.records_count - (read_batch_header(data).records_count if data is not None else 0)
            changed = changed or data != raw
            due += [t for t in (horizon, None if tombstone is None else tombstone + delete_retention_ms)
                    if t is not None]
            if data is not None:
                out.write(data)
            pending = following
        out.flush()
        os.fsync(out.fileno())
    entries = [e for f in files for e in f.aborted]
    kept = txn.kept_aborted_entries(entries)
    with open(_txn_path(cleaned_path, CLEANED_SUFFIX), "wb") as out:
        out.write(b"".join(e.encode() for e in kept))
        out.flush()
        os.fsync(out.fileno())
    return CleanedGroup(files, cleaned_path, removed, changed or kept != entries, min(due, default=None))


def clean_segments(groups: list[list[SegmentFile]], now_ms: int, delete_retention_ms: int,
                   txn: CleanedTransactionMetadata | None = None) -> list[CleanedGroup]:
    """Steps 2 of the module docstring for every group, in offset order (runs in a worker
    thread). ``txn``: the log's aborted transactions and active producers (none if omitted)."""
    txn = txn or CleanedTransactionMetadata([], {}, now_ms, delete_retention_ms)
    latest = build_offset_map([f for group in groups for f in group], txn)
    return [write_cleaned_group(group, latest, now_ms - delete_retention_ms, delete_retention_ms, txn)
            for group in groups]


# -- event loop ----------------------------------------------------------------------------


def swap_in(partition_log: PartitionLog, group: CleanedGroup) -> LogSegment:
    """Replace the group's segments with the cleaned one (Kafka's ``replaceSegments``)."""
    old = [f.segment for f in group.files]
    first = old[0]
    swap_path = first.path.with_name(first.path.name + SWAP_SUFFIX)
    txn_swap = _txn_path(first.path, SWAP_SUFFIX)
    os.replace(_txn_path(group.cleaned_path, CLEANED_SUFFIX), txn_swap)  # first: a .log.swap has its index
    os.replace(group.cleaned_path, swap_path)
    for segment in old:
        if segment in partition_log.unflushed_segments:
            partition_log.unflushed_segments.remove(segment)
        segment.delete()
    _install_txn_index(txn_swap, first.path.with_suffix(TXN_INDEX_SUFFIX))
    os.replace(swap_path, first.path)
    fsync_path(partition_log.directory)
    cleaned = LogSegment(partition_log.directory, first.base_offset, partition_log.config.index_interval_bytes)
    cleaned.recover(partition_log.config.max_batch_bytes, lambda _header: None)  # rebuilds its indexes
    partition_log.segments.replace(old, cleaned)
    return cleaned


def _txn_path(log_path: Path, suffix: str) -> Path:
    """``<base>.txnindex<suffix>`` beside ``<base>.log[...]``: the index of a cleaned group,
    written with it (``.cleaned``) and renamed before it during the swap (``.swap``)."""
    return log_path.with_name(log_path.name.split(".", 1)[0] + TXN_INDEX_SUFFIX + suffix)


def _install_txn_index(txn_swap: Path, target: Path) -> None:
    """The swapped index becomes the segment's (an empty one: the segment has none)."""
    if txn_swap.stat().st_size:
        os.replace(txn_swap, target)
    else:
        txn_swap.unlink()


def complete_interrupted_swaps(directory: Path) -> None:
    """Start-up, before the segments are opened: delete half-written ``.cleaned`` files and
    finish each swap a crash interrupted (the ``.swap`` file replaces every segment it covers)."""
    for cleaned in [*directory.glob(f"*.log{CLEANED_SUFFIX}"), *directory.glob(f"*{TXN_INDEX_SUFFIX}{CLEANED_SUFFIX}")]:
        cleaned.unlink()
    for txn_swap in directory.glob(f"*{TXN_INDEX_SUFFIX}{SWAP_SUFFIX}"):  # its log was never renamed .swap
        if not txn_swap.with_name(txn_swap.name.split(".", 1)[0] + ".log" + SWAP_SUFFIX).exists():
            txn_swap.unlink()
    for swap in sorted(directory.glob(f"*.log{SWAP_SUFFIX}")):
        base = int(swap.name.split(".", 1)[0])
        last = base
        for header, _data in _file_batches(swap, swap.stat().st_size):
            last = header.last_offset
        covered = [p for p in directory.glob("*.log") if p.stem.isdigit() and base <= int(p.stem) <= last]
        target = directory / f"{segment_file_stem(base)}.log"
        txn_swap = _txn_path(target, SWAP_SUFFIX)
        if not txn_swap.exists() and covered:  # a swap begun before its index was written (older versions)
            merged = b"".join(p.with_suffix(TXN_INDEX_SUFFIX).read_bytes() for p in sorted(covered)
                              if p.with_suffix(TXN_INDEX_SUFFIX).exists())
            txn_swap.write_bytes(merged)
        for log_file in covered:
            for suffix in (".log", ".index", ".timeindex", TXN_INDEX_SUFFIX):
                log_file.with_suffix(suffix).unlink(missing_ok=True)
        if txn_swap.exists():
            _install_txn_index(txn_swap, target.with_suffix(TXN_INDEX_SUFFIX))
        os.replace(swap, target)
        log.warning("%s: finished the swap of a cleaned segment interrupted by a crash", swap)


class LogCleaner:
    """Cleans the compacted logs of a LogManager (see module docstring)."""

    def __init__(self, log_manager: LogManager) -> None:
        self.log_manager = log_manager
        self._cleaned_below: dict[TopicPartition, int] = {}
        """Active segment's base offset at the last pass: a roll since then means new work."""
        self._due_ms: dict[TopicPartition, int] = {}
        """When a tombstone or marker kept by the last pass becomes removable."""

    async def clean_logs(self, now_ms: int) -> int:
        """Clean every compacted log that needs it; returns the number of records removed."""
        moving = self.log_manager.future_logs  # a replica being moved is not cleaned (Kafka's abortAndPauseCleaning)
        logs = {tp: partition_log for tp, partition_log in self.log_manager.logs.items() if tp not in moving}
        for gone in (self._cleaned_below.keys() | self._due_ms.keys()) - logs.keys():
            self._cleaned_below.pop(gone, None)
            self._due_ms.pop(gone, None)
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
        due_ms = self._due_ms.get(tp)
        return rolled or (due_ms is not None and now_ms >= due_ms)

    async def clean(self, tp: TopicPartition, partition_log: PartitionLog, now_ms: int) -> int:
        """One pass over ``partition_log``; returns the number of records removed."""
        active = partition_log.segments.active
        stable = partition_log.last_stable_offset  # never past an open transaction (KIP-98)
        files = [SegmentFile(s, s.path, s.size, tuple(s.txn_index.entries)) for s in partition_log.segments
                 if s is not active and s.next_offset <= stable]
        if not files:
            return 0
        groups = group_by_size(files, partition_log.config.segment_bytes)
        retention_ms = partition_log.config.delete_retention_ms
        txn = CleanedTransactionMetadata([e for s in partition_log.segments for e in s.txn_index.entries],
                                         last_records_of_active_producers(partition_log.producer_state),
                                         now_ms, retention_ms)
        cleaned = await asyncio.to_thread(clean_segments, groups, now_ms, retention_ms, txn)
        removed, all_swapped = 0, True
        due = [g.due_ms for g in cleaned if g.due_ms is not None]
        for group in cleaned:
            current = list(partition_log.segments)
            intact = all_swapped and self.log_manager.logs.get(tp) is partition_log and all(
                any(s is f.segment for s in current) and f.segment.size == f.size for f in group.files)
            if not intact or not group.changed:
                # Retention, truncation or deletion got there first (next pass tries again), or the
                # copy is byte for byte the original (nothing to swap).
                group.cleaned_path.unlink(missing_ok=True)
                _txn_path(group.cleaned_path, CLEANED_SUFFIX).unlink(missing_ok=True)
                all_swapped = intact
                continue
            segment = swap_in(partition_log, group)
            removed += group.records_removed
            log.info("cleaned %s-%d: %d segment(s) → %s (%d bytes, %d record(s) removed)", *tp, len(group.files),
                     segment.path.name, segment.size, group.records_removed)
        if all_swapped:
            self._cleaned_below[tp] = active.base_offset
        if due:
            self._due_ms[tp] = min(due)
        else:
            self._due_ms.pop(tp, None)
        return removed
