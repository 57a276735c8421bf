"""TransactionIndex (Kafka's `TransactionIndex`): a segment's aborted-transaction index.

``<base offset>.txnindex`` beside the segment's ``.log`` holds one 34-byte entry per transaction
aborted by a marker in that segment (Kafka's ``AbortedTxn``, KIP-98), big-endian:

    version int16 (= 0) | producerId int64 | firstOffset int64 | lastOffset int64 | lastStableOffset int64

``lastOffset`` is the offset of the ABORT marker, ``lastStableOffset`` the partition's LSO right
after the abort (the first offset of another transaction still open then, else lastOffset + 1).
A read_committed Fetch asks the indexes of the segments it reads for the aborted transactions that
overlap its range (``collect``, Kafka's ``collectAbortedTxns``); the search of later segments stops
at the first entry whose ``lastStableOffset`` reaches the fetch's upper bound (no transaction open
then can still be unaborted in range).

The file is created at the first abort (most segments have none) and written with ``os.write``
(no user-space buffer), as the log itself. Entries are small and few, so they are also kept in
memory (Kafka re-reads the file; a list is simpler and the file is read once, at load).

Concurrency: owned by one LogSegment; used from the node's event loop only (``flush`` may run in a
worker thread).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import NamedTuple

TXN_INDEX_SUFFIX = ".txnindex"
_ENTRY = struct.Struct(">hqqqq")
ENTRY_SIZE = _ENTRY.size  # 34, Kafka's AbortedTxn.TOTAL_SIZE
CURRENT_VERSION = 0
assert ENTRY_SIZE == 34


class CorruptIndexError(Exception):
    """A ``.txnindex`` that is not a whole number of valid entries (the segment rebuilds it)."""


class AbortedTxn(NamedTuple):
    """One entry (Kafka's ``AbortedTxn``)."""

    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int

    def encode(self) -> bytes:
        """The 34-byte on-disk entry."""
        return _ENTRY.pack(CURRENT_VERSION, *self)


class TransactionIndex:
    """The aborted transactions of one segment, in marker order (``last_offset`` increasing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[AbortedTxn] = []
        self._dirty = False

    def load(self) -> None:
        """Read the file if there is one; CorruptIndexError if it is malformed."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            self.entries = []
            return
        if len(data) % ENTRY_SIZE:
            raise CorruptIndexError(f"{self.path}: {len(data)} bytes is not a whole number of entries")
        entries = []
        for pos in range(0, len(data), ENTRY_SIZE):
            version, *fields = _ENTRY.unpack_from(data, pos)
            if version != CURRENT_VERSION:
                raise CorruptIndexError(f"{self.path}: entry version {version} at position {pos}")
            entries.append(AbortedTxn(*fields))
        self.entries = entries

    @property
    def last_offset(self) -> int:
        """The marker offset of the newest entry (-1 when empty)."""
        return self.entries[-1].last_offset if self.entries else -1

    def append(self, entry: AbortedTxn) -> None:
        """Add an entry; its marker must follow the last one's (Kafka's check in ``append``)."""
        if entry.last_offset <= self.last_offset:
            raise ValueError(f"{self.path}: aborted txn ending at {entry.last_offset} does not follow "
                             f"{self.last_offset}")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, entry.encode())
        finally:
            os.close(fd)
        self.entries.append(entry)
        self._dirty = True

    def truncate_to(self, offset: int) -> None:
        """Drop the entries whose marker is at or after ``offset`` (the log was cut there)."""
        kept = [e for e in self.entries if e.last_offset < offset]
        if len(kept) != len(self.entries):
            self._rewrite(kept)

    def reset(self) -> None:
        """Forget every entry and remove the file (the segment is rebuilt from its batches)."""
        self.entries = []
        self.path.unlink(missing_ok=True)

    def _rewrite(self, entries: list[AbortedTxn]) -> None:
        if not entries:
            self.reset()
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(b"".join(e.encode() for e in entries))
        os.replace(tmp, self.path)
        self.entries = entries

    def collect(self, fetch_offset: int, upper_bound_offset: int) -> tuple[list[AbortedTxn], bool]:
        """(aborted transactions overlapping [fetch_offset, upper_bound_offset), complete?) —
        Kafka's ``collectAbortedTxns``: complete once an entry's LSO reaches the upper bound, so
        later segments need not be searched."""
        found = []
        for entry in self.entries:
            if entry.last_offset >= fetch_offset and entry.first_offset < upper_bound_offset:
                found.append(entry)
            if entry.last_stable_offset >= upper_bound_offset:
                return found, True
        return found, False

    def flush(self) -> None:
        """fsync the file if entries were added since the last flush."""
        if not self._dirty:
            return
        self._dirty = False
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def delete(self) -> None:
        """Remove the file (the segment is deleted)."""
        self.path.unlink(missing_ok=True)
