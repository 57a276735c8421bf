"""LogSegment (Kafka's `LogSegment`): one ``.log`` file of record batches plus its indexes.

Beside the offset and time indexes, a segment has an aborted-transaction index (``.txnindex``,
``transaction_index``): trusted at a clean load, cut back to the recovered batches by ``recover``
(the partition log's producer-state replay adds what is missing), truncated and deleted with the
segment.

Record batches are stored byte for byte as produced (after the broker set their base offset and
leader epoch), so a Fetch reads a file range and sends it unchanged. Appends go straight to the
kernel with ``os.write`` — no user-space buffer — so a record is never acknowledged while it
still sits in this process: ``kill -9`` cannot lose it (fsync is ``flush()``, run by policy).

An append is all or nothing: if writing the batches or their index entries fails (a full disk,
an I/O error), the log file and both indexes are cut back to where the append started before
the error goes up, so no partial bytes stay where the next append would land behind them (a
short write once left garbage that hid every later batch from readers and from recovery). If
even that cut fails, the segment refuses appends until a later one succeeds.

Concurrency: a segment belongs to its PartitionLog, which is used from the node's event loop
only (``flush`` may run in a worker thread; it touches no Python state).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cluster.log.file_handles import LogFile
from cluster.log.offset_index import OffsetIndex
from cluster.log.time_index import TimeIndex
from cluster.log.transaction_index import (
    TXN_INDEX_SUFFIX,
    CorruptIndexError,
    TransactionIndex,
)
from pykafka_ops.records.batch import (
    HEADER_SIZE,
    BatchHeader,
    CorruptRecordError,
    crc_ok,
    read_batch_header,
)

log = logging.getLogger(__name__)

_SCAN_CHUNK = 64 * 1024


def segment_file_stem(base_offset: int) -> str:
    """Kafka's file naming: the base offset as 20 zero-padded digits."""
    return f"{base_offset:020d}"


@dataclass(frozen=True)
class BatchInfo:
    """Where one appended batch sits; produced by validation, consumed by ``append``."""

    position_in_write: int
    size: int
    last_offset: int
    max_timestamp: int


@dataclass(frozen=True)
class RecoveryResult:
    """What ``LogSegment.recover`` found."""

    valid_bytes: int
    truncated_bytes: int
    batches: int
    reason: str | None


class LogSegment:
    """A segment of a partition log, named by its base offset."""

    def __init__(self, directory: Path, base_offset: int, index_interval_bytes: int, created_ms: int | None = None):
        stem = segment_file_stem(base_offset)
        self.base_offset = base_offset
        self.path = directory / f"{stem}.log"
        self.index_interval_bytes = index_interval_bytes
        self._file = LogFile(self.path)
        with self._file as fd:  # created now: a restart finds the segment even if nothing was written
            self.size = os.fstat(fd).st_size
        self.offset_index = OffsetIndex(directory / f"{stem}.index", base_offset)
        self.time_index = TimeIndex(directory / f"{stem}.timeindex", base_offset)
        self.txn_index = TransactionIndex(directory / f"{stem}{TXN_INDEX_SUFFIX}")
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.first_batch_timestamp: int | None = None
        self.created_ms = created_ms if created_ms is not None else int(time.time() * 1000)
        self._bytes_since_index_entry = 0
        self.unflushed_records = 0
        self._torn_from: int | None = None  # where an undone append could not be cut back

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> None:
        """Open a segment written before and trusted (cleanly shut down or below the recovery
        point): load its indexes and find its next offset from the last batches."""
        self.offset_index.load()
        self.time_index.load()
        self.txn_index.load()
        entry = self.time_index.last_entry()
        if entry:
            self.max_timestamp, self.offset_of_max_timestamp = entry
        last = self.offset_index.last_entry()
        start = last[1] if last else 0
        if start > self.size:
            raise CorruptRecordError(f"{self.offset_index.path}: entry points past the end of {self.path}")
        end = start
        for pos, header in self.iter_headers(start):
            self._track(header)
            end = pos + header.size
        if end != self.size:  # a torn tail (damaged after the clean shutdown): recover instead
            raise CorruptRecordError(f"{self.path}: {self.size - end} bytes after the last whole batch")
        first = next(self.iter_headers(0), None)
        if first is not None:
            self.first_batch_timestamp = first[1].max_timestamp

    def recover(self, max_batch_bytes: int, on_batch: Callable[[BatchHeader], None]) -> RecoveryResult:
        """Rebuild the indexes from the log, checking each batch's CRC; cut the file after the
        last valid batch (a torn write from a crash, or garbage). ``on_batch`` sees every valid
        batch in order (the producer state is rebuilt from it). Mirrors `LogSegment.recover`."""
        self.offset_index.truncate_entries(0)
        self.time_index.truncate_entries(0)
        self.next_offset, self.max_timestamp, self.offset_of_max_timestamp = self.base_offset, -1, -1
        self._bytes_since_index_entry = 0
        valid = batches = 0
        reason = None
        expected_offset = self.base_offset
        while valid < self.size:
            chunk = self.read(valid, HEADER_SIZE)
            try:
                header = read_batch_header(chunk, 0)
            except (CorruptRecordError, ValueError) as exc:
                reason = f"bad batch header at position {valid}: {exc}"
                break
            if header.size > max_batch_bytes or valid + header.size > self.size:
                reason = f"batch at position {valid} claims {header.size} bytes, {self.size - valid} left"
                break
            if header.base_offset < expected_offset:
                reason = f"batch at position {valid} has offset {header.base_offset} < {expected_offset}"
                break
            data = self.read(valid, header.size)
            if not crc_ok(data, 0, header):
                reason = f"CRC mismatch in the batch at position {valid} (offset {header.base_offset})"
                break
            self._index_batch(valid, header.size, header.last_offset, header.max_timestamp)
            self._track(header)
            if self.first_batch_timestamp is None:
                self.first_batch_timestamp = header.max_timestamp
            on_batch(header)
            expected_offset = header.last_offset + 1
            valid += header.size
            batches += 1
        truncated = self.size - valid
        if truncated:
            self._truncate_file(valid)
            self.size = valid
        try:  # markers of the torn tail leave the index (the producer-state replay re-adds the rest)
            self.txn_index.load()
            self.txn_index.truncate_to(self.next_offset)
        except CorruptIndexError:
            self.txn_index.reset()
        return RecoveryResult(valid, truncated, batches, reason)

    # -- appending -------------------------------------------------------------------------

    def append(self, data: memoryview | bytes, batches: list[BatchInfo]) -> None:
        """Write ``data`` (whole batches, offsets already assigned) and index it; all or nothing
        (an OSError leaves the segment as it was)."""
        if self._torn_from is not None:
            self._cut_back(self._torn_from)
        before = (self.size, len(self.offset_index), len(self.time_index), self._bytes_since_index_entry,
                  self.max_timestamp, self.offset_of_max_timestamp, self.first_batch_timestamp)
        try:
            self._write_and_index(memoryview(data), batches)
        except OSError:
            self._undo(before)
            raise
        if batches:
            self.next_offset = batches[-1].last_offset + 1

    def _write_and_index(self, view: memoryview, batches: list[BatchInfo]) -> None:
        start = self.size
        written = 0
        with self._file as fd:
            self._file.dirty = True
            while written < len(view):  # regular files write everything at once, but be exact
                written += os.write(fd, view[written:])
        self.size += len(view)
        for info in batches:
            self._index_batch(start + info.position_in_write, info.size, info.last_offset, info.max_timestamp)
            if info.max_timestamp > self.max_timestamp:
                self.max_timestamp, self.offset_of_max_timestamp = info.max_timestamp, info.last_offset
            if self.first_batch_timestamp is None:
                self.first_batch_timestamp = info.max_timestamp

    def _undo(self, before: tuple[int, int, int, int, int, int, int | None]) -> None:
        """Put the segment back as it was before a failed append."""
        size, offset_entries, time_entries, *fields = before
        (self._bytes_since_index_entry, self.max_timestamp, self.offset_of_max_timestamp,
         self.first_batch_timestamp) = fields
        self.size = size
        try:
            self.offset_index.truncate_entries(offset_entries)
            self.time_index.truncate_entries(time_entries)
            self._cut_back(size)
        except OSError as exc:
            log.error("%s: cannot cut a failed append back to %d bytes (%s); appends wait until it can",
                      self.path, size, exc.strerror or exc)
            self._torn_from = size

    def _cut_back(self, size: int) -> None:
        """Truncate the file to ``size`` (raises OSError, keeping ``_torn_from``, if it cannot)."""
        self._truncate_file(size)
        self._torn_from = None

    def _truncate_file(self, size: int) -> None:
        with self._file as fd:
            self._file.dirty = True
            os.ftruncate(fd, size)

    def _index_batch(self, position: int, size: int, last_offset: int, max_timestamp: int) -> None:
        """Kafka's rule: an index entry when more than index.interval.bytes went by since the last."""
        if self._bytes_since_index_entry > self.index_interval_bytes:
            self.offset_index.append(last_offset, position)
            ts_max = max(self.max_timestamp, max_timestamp)
            ts_offset = last_offset if max_timestamp >= self.max_timestamp else self.offset_of_max_timestamp
            self.time_index.append(ts_max, ts_offset)
            self._bytes_since_index_entry = 0
        self._bytes_since_index_entry += size

    def _track(self, header: BatchHeader) -> None:
        self.next_offset = header.last_offset + 1
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp, self.offset_of_max_timestamp = header.max_timestamp, header.last_offset

    # -- reading ---------------------------------------------------------------------------

    def read(self, position: int, size: int) -> bytes:
        """Up to ``size`` bytes of the log file from ``position``."""
        with self._file as fd:
            return os.pread(fd, size, position)

    def iter_headers(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of each whole batch from ``start`` (a batch boundary) up to ``end``."""
        end = self.size if end is None else end
        pos = start
        while pos + HEADER_SIZE <= end:
            chunk = self.read(pos, min(_SCAN_CHUNK, end - pos))
            inner = 0
            while inner + HEADER_SIZE <= len(chunk):
                header = read_batch_header(chunk, inner)
                if pos + inner + header.size > end:
                    return
                yield pos + inner, header
                inner += header.size
            pos += inner

    def find_batch(self, offset: int) -> tuple[int, BatchHeader] | None:
        """(position, header) of the first batch whose last offset is ≥ ``offset``."""
        for position, header in self.iter_headers(self.offset_index.lookup(offset)):
            if header.last_offset >= offset:
                return position, header
        return None

    def position_of(self, offset: int) -> int:
        """File position where the batch holding ``offset`` starts (``size`` if past the end)."""
        found = self.find_batch(offset)
        return found[0] if found else self.size

    # -- maintenance -----------------------------------------------------------------------

    def truncate_to(self, offset: int) -> int:
        """Remove batches at or after ``offset`` (must be a batch boundary); returns bytes cut."""
        position = self.position_of(offset)
        cut = self.size - position
        self._truncate_file(position)
        self.size = position
        self.offset_index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        self.txn_index.truncate_to(offset)
        self.next_offset = max(self.base_offset, min(self.next_offset, offset))
        self.max_timestamp, self.offset_of_max_timestamp = -1, -1
        for _pos, header in self.iter_headers(self.offset_index.lookup(self.base_offset)):
            self._track(header)
        if self.size == 0:  # Kafka's LogSegment.truncateTo: an emptied segment restarts its roll clock
            self.first_batch_timestamp = None
            self.created_ms = int(time.time() * 1000)
        return cut

    def rename_dir(self, directory: Path) -> None:
        """The partition directory was renamed (Kafka's ``LogSegment.updateParentDir``): open
        descriptors stay valid, later opens use the new paths."""
        self.path = self._file.path = directory / self.path.name
        self.offset_index.rename_dir(directory)
        self.time_index.rename_dir(directory)
        self.txn_index.path = directory / self.txn_index.path.name

    def flush(self) -> None:
        """fsync the log and its indexes, those written since the last flush (may run in a worker
        thread): a shutdown with 12 000 quiet partitions costs no fsync for them."""
        self._file.fsync()
        self.offset_index.flush()
        self.time_index.flush()
        self.txn_index.flush()

    def close(self) -> None:
        """Give back the files' descriptors (a later use reopens them)."""
        self._file.close()
        self.offset_index.close()
        self.time_index.close()

    def delete(self) -> None:
        """Close and remove the segment's files."""
        self.close()
        for path in (self.path, self.offset_index.path, self.time_index.path, self.txn_index.path):
            path.unlink(missing_ok=True)

    @property
    def largest_timestamp(self) -> int:
        """The segment's newest record timestamp (its mtime-free retention age, as Kafka)."""
        return self.max_timestamp

    def __repr__(self) -> str:
        return f"LogSegment(base={self.base_offset}, next={self.next_offset}, size={self.size})"
