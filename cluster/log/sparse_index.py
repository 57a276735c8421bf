"""SparseIndex: the append-only, sorted (key → value) file shared by OffsetIndex and TimeIndex.

Kafka mmaps preallocated index files; we keep entries in two ``array`` objects (16 bytes per
entry in memory) and append each entry to the file with ``os.write``, so the file always holds
exactly the entries written. A trailing partial entry or a key that goes backwards (a torn
write) is dropped at load; recovery rebuilds the indexes of unflushed segments from the log.
Subclasses define the on-disk entry layout (``ENTRY``) and how keys/values are made relative
to the segment's base offset. The file is created with its first entry, and its descriptor is
open only while used (``LogFile``).
"""

from __future__ import annotations

import os
import struct
from array import array
from bisect import bisect_right
from pathlib import Path

from cluster.log.file_handles import LogFile


class SparseIndex:
    """Sorted (key, value) pairs with strictly increasing keys, persisted append-only."""

    ENTRY: struct.Struct

    def __init__(self, path: Path, base_offset: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self._keys = array("q")
        self._values = array("q")
        self._file = LogFile(path)  # created by the first entry: most segments of a quiet topic never need one

    # -- encoding, per subclass --
    def _encode(self, key: int, value: int) -> bytes:
        raise NotImplementedError

    def _decode(self, raw: tuple[int, int]) -> tuple[int, int]:
        raise NotImplementedError

    def load(self) -> None:
        """Read the entries from disk, dropping a torn tail (no file: no entries)."""
        if not self.path.exists():
            return
        with self._file as fd:
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0)
        usable = size - size % self.ENTRY.size
        for raw in self.ENTRY.iter_unpack(data[:usable]):
            key, value = self._decode(raw)
            if self._keys and key <= self._keys[-1]:
                break
            self._keys.append(key)
            self._values.append(value)
        if len(self._keys) * self.ENTRY.size != size:
            self.truncate_entries(len(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def size_bytes(self) -> int:
        """Bytes the index file holds."""
        return len(self._keys) * self.ENTRY.size

    def last_entry(self) -> tuple[int, int] | None:
        """The newest (key, value), or None."""
        return (self._keys[-1], self._values[-1]) if self._keys else None

    def append(self, key: int, value: int) -> None:
        """Add an entry; a key that does not increase is ignored (as Kafka does). On an OSError
        (a full disk) the file is cut back to the entries it had, and the error goes up."""
        if self._keys and key <= self._keys[-1]:
            return
        entry = self._encode(key, value)
        with self._file as fd:
            self._file.dirty = True
            try:
                if os.write(fd, entry) != len(entry):
                    raise OSError(f"short write of an index entry to {self.path}")
            except OSError:
                os.ftruncate(fd, self.size_bytes)
                raise
        self._keys.append(key)
        self._values.append(value)

    def floor(self, key: int) -> tuple[int, int] | None:
        """The entry with the largest key ≤ ``key``, or None."""
        i = bisect_right(self._keys, key)
        return (self._keys[i - 1], self._values[i - 1]) if i else None

    def truncate_keys_from(self, key: int) -> None:
        """Drop entries whose key is ≥ ``key``."""
        self.truncate_entries(bisect_right(self._keys, key - 1))

    def truncate_entries(self, count: int) -> None:
        """Keep only the first ``count`` entries, in memory and on disk."""
        del self._keys[count:]
        del self._values[count:]
        if count == 0 and not self.path.exists():
            return
        with self._file as fd:
            self._file.dirty = True
            os.ftruncate(fd, count * self.ENTRY.size)

    def rename_dir(self, directory: Path) -> None:
        """The file's directory was renamed: later opens use the new path (an open descriptor stays valid)."""
        self.path = self._file.path = directory / self.path.name

    def flush(self) -> None:
        """fsync the index file if it changed since the last flush."""
        self._file.fsync()

    def close(self) -> None:
        """Give back the file's descriptor."""
        self._file.close()
