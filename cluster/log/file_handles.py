"""Bounded file descriptors for log segments and indexes: an LRU of open files (issue "Data safety").

Kafka keeps every segment's ``.log`` open and maps its indexes, and asks operators for a high
``ulimit -n``; each partition then costs at least three descriptors and a node with thousands of
partitions runs out (reliability-probe §3.3: 6 656 partitions exhausted the limit and the node could
no longer start). Here each log file is a ``LogFile`` that opens its descriptor on first use and
gives it back to a ``FileHandleCache`` shared by the whole process — the limit is per process —
which closes the least recently used descriptors once more than ``log.open.files.max`` are open.
Reopening costs one ``open()``; the bytes already written are in the page cache, and ``fsync`` on a
new descriptor flushes them (fsync is per inode), so closing a descriptor loses nothing.

A descriptor is used inside ``with log_file as fd:``, which pins it: a pinned descriptor is never
closed under its user (the cache may briefly hold more than its capacity while every open file is
pinned).

Concurrency: the event loop and worker threads (segment fsyncs, the log cleaner) share the cache;
one lock guards its table and the pin counts, and is never held across a system call other than
``open``/``close``.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

#: The default of ``log.open.files.max``.
DEFAULT_MAX_OPEN_FILES = 512
#: Flags of every log file: appends go to the end, reads use pread.
_FLAGS = os.O_RDWR | os.O_APPEND  # os.open makes descriptors non-inheritable (PEP 446)


class FileHandleCache:
    """At most ``capacity`` open descriptors (unless more are pinned), least recently used closed first."""

    def __init__(self, capacity: int = DEFAULT_MAX_OPEN_FILES) -> None:
        self.capacity = capacity
        self._open: OrderedDict[LogFile, None] = OrderedDict()
        self._lock = threading.Lock()
        self.opened = 0
        """Descriptors opened so far (first opens and reopens after eviction)."""

    def configure(self, capacity: int) -> None:
        """Set the capacity (``log.open.files.max``) and close what is over it."""
        with self._lock:
            self.capacity = max(1, capacity)
            self._evict()

    @property
    def open_count(self) -> int:
        """Descriptors open right now."""
        return len(self._open)

    def _acquire(self, log_file: LogFile) -> int:
        with self._lock:
            log_file._closing = False
            if log_file._fd < 0:
                flags = _FLAGS if log_file._created else _FLAGS | os.O_CREAT
                log_file._fd = os.open(log_file.path, flags, 0o644)
                log_file._created = True
                self.opened += 1
                self._open[log_file] = None
            else:
                self._open.move_to_end(log_file)
            log_file._pins += 1
            self._evict()
            return log_file._fd

    def _release(self, log_file: LogFile) -> None:
        with self._lock:
            log_file._pins -= 1
            if log_file._closing and log_file._pins == 0:
                self._close(log_file)
            elif len(self._open) > self.capacity:  # back under capacity once the pins are gone
                self._evict()

    def _evict(self) -> None:
        skipped = 0  # pinned files go to the back; stop once every open file was seen pinned
        while len(self._open) > self.capacity and skipped < len(self._open):
            candidate = next(iter(self._open))
            if candidate._pins:
                self._open.move_to_end(candidate)
                skipped += 1
            else:
                self._close(candidate)

    def _close(self, log_file: LogFile) -> None:
        self._open.pop(log_file, None)
        fd, log_file._fd = log_file._fd, -1
        if fd >= 0:
            os.close(fd)

    def close(self, log_file: LogFile) -> None:
        """Close ``log_file``'s descriptor now, or when its last user unpins it."""
        with self._lock:
            if log_file._pins:
                log_file._closing = True
            else:
                self._close(log_file)


#: The process's cache (file descriptors are a per-process resource); LogManager configures it.
FILE_HANDLES = FileHandleCache()


class LogFile:
    """A log or index file whose descriptor the cache opens on use: ``with log_file as fd: ...``.

    The file is created on first use; later opens never create it again (a file deleted under
    the node is an error, not a new empty file).
    """

    __slots__ = ("_cache", "_closing", "_created", "_fd", "_pins", "_sync_lock", "dirty", "path")

    def __init__(self, path: Path, cache: FileHandleCache = FILE_HANDLES) -> None:
        self.path = path
        self._cache = cache
        self._fd = -1
        self._pins = 0
        self._created = False
        self._closing = False
        self.dirty = False
        """Written since the last ``fsync`` (its writers set it)."""
        self._sync_lock = threading.Lock()

    def __enter__(self) -> int:
        return self._cache._acquire(self)

    def __exit__(self, *exc_info: object) -> None:
        self._cache._release(self)

    def create(self) -> None:
        """Create the file now (so it exists on disk before its first write)."""
        with self:
            pass

    def fsync(self) -> None:
        """fsync the file if it was written since the last fsync (may run in a worker thread:
        a write during the fsync marks the file dirty again; a second caller waits for an fsync
        in progress rather than returning before the bytes are on disk)."""
        with self._sync_lock:
            if not self.dirty:
                return
            self.dirty = False
            try:
                with self as fd:
                    os.fsync(fd)
            except OSError:
                self.dirty = True
                raise

    def close(self) -> None:
        """Give the descriptor back (the file can still be used: it reopens)."""
        self._cache.close(self)

    def __repr__(self) -> str:
        return f"LogFile({self.path}, fd={self._fd})"
