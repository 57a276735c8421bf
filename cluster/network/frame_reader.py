"""FrameReader: one connection's byte stream cut into int32-size-prefixed frames.

Memory grows with what actually arrives, never with what a size prefix announces:

* small frames (up to ``READ_BUFFER_SIZE``) are read into a per-connection buffer, allocated on
  the first read at ``INITIAL_BUFFER_SIZE`` and grown once a frame needs more, then copied out;
* a larger frame gets its own anonymous ``mmap``, which the socket reads into directly (no copy
  before the log). It starts at ``BIG_INITIAL_SIZE`` (or the frame's size if smaller) and doubles
  as bytes arrive, up to the announced size (``mremap``: no copy either), so neither memory nor
  address space follows a size prefix: a 100 MiB prefix followed by silence costs 1 MiB of
  address space and no memory. Released maps are recycled through a MapCache (a fresh map's
  pages fault in as data lands, ~0.3 ms per MiB: a tenth of the Produce path's CPU).

A size below zero or above ``socket.request.max.bytes`` is refused before anything is allocated
(Kafka's ``InvalidReceiveException``). Every byte of a frame is charged to the node's
RequestMemoryPool as it arrives; releasing it once the request is done is the connection's job.

Concurrency: used by one connection on the node's event loop.
"""

from __future__ import annotations

import mmap
import struct
from collections import deque
from collections.abc import Iterator

from cluster.network.memory_pool import PoolUser, RequestMemoryPool

_SIZE = struct.Struct(">i")
#: First size of a connection's read buffer (idle connections keep no more).
INITIAL_BUFFER_SIZE = 4096
#: Largest read buffer; frames that do not fit get a buffer of their own.
READ_BUFFER_SIZE = 64 * 1024
#: First size of a large frame's own buffer (a Produce request of librdkafka fits: no resize).
BIG_INITIAL_SIZE = 1 << 20


class FrameError(Exception):
    """A size prefix Kafka refuses: the connection must be closed."""


class Frame:
    """A complete request frame: its bytes (writable, for in-place offset patches), its size, and
    the map holding them for a large frame (to recycle once the request is done)."""

    __slots__ = ("view", "size", "mapping")

    def __init__(self, view: memoryview, size: int, mapping: mmap.mmap | None = None) -> None:
        self.view = view
        self.size = size
        self.mapping = mapping


class MapCache:
    """Maps of released large frames, kept (at most ``MAX_CACHED_MAPS``, shrunk to
    ``BIG_INITIAL_SIZE``) so that the next large frame lands in pages that are already there.

    A map is reused only once it can be resized, which mmap refuses while any view of it is
    alive. The transport holds the view of the last read until its next one, and a handler may
    still hold records of its frame, so a map given back is first *pending*, and is retried when
    the next large frame needs one (the oldest pending map is dropped when there are too many).
    """

    MAX_CACHED_MAPS = 8

    def __init__(self) -> None:
        self._free: list[mmap.mmap] = []
        self._pending: deque[mmap.mmap] = deque()

    def take(self, size: int) -> mmap.mmap:
        """A map of at least ``min(size, BIG_INITIAL_SIZE)`` bytes (it may be longer than ``size``)."""
        if not self._free:
            self._retry_pending()
        return self._free.pop() if self._free else _anonymous(min(size, BIG_INITIAL_SIZE))

    def give(self, mapping: mmap.mmap) -> None:
        """A frame's map, no longer needed by its request."""
        self._pending.append(mapping)
        if len(self._pending) > self.MAX_CACHED_MAPS:
            self._pending.popleft()  # unmapped once its last view goes

    def _retry_pending(self) -> None:
        for _ in range(len(self._pending)):
            mapping = self._pending.popleft()
            try:
                mapping.resize(BIG_INITIAL_SIZE)  # refused (BufferError) while a view of it is alive
            except BufferError:
                self._pending.append(mapping)
                continue
            if len(self._free) < self.MAX_CACHED_MAPS:
                self._free.append(mapping)


class FrameReader:
    """Buffers for one connection; ``frames(nbytes)`` yields what the last read completed."""

    def __init__(self, max_frame_size: int, pool: RequestMemoryPool, maps: MapCache, user: PoolUser) -> None:
        self.max_frame_size = max_frame_size
        self._pool = pool
        self._maps = maps
        self._user = user
        self._buf = bytearray()
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._big: mmap.mmap | None = None
        self._big_size = 0
        self._big_filled = 0

    @property
    def buffered(self) -> int:
        """Bytes held for frames that are not complete yet."""
        return self._end - self._start + (self._big_filled if self._big is not None else 0)

    def get_buffer(self) -> memoryview:
        """Where the next socket read goes (``asyncio.BufferedProtocol.get_buffer``)."""
        if self._big is not None:
            if self._big_filled == len(self._big):
                self._grow_big()
            end = min(self._big_size, self._big_filled + max(self._pool.available, READ_BUFFER_SIZE))
            return memoryview(self._big)[self._big_filled : end]
        if not self._buf:
            self._resize(INITIAL_BUFFER_SIZE)
        elif self._end == len(self._buf):
            self._compact()
        return self._view[self._end :]

    def frames(self, nbytes: int) -> Iterator[Frame]:
        """Account ``nbytes`` just read and yield every frame they complete, in order.
        Raises FrameError at a size prefix Kafka refuses (after the frames before it)."""
        big = self._big
        if big is not None:
            self._big_filled += nbytes
            if self._big_filled < self._big_size:
                self._pool.receive(self._user, nbytes)
                return
            self._big = None
            self._pool.frame_complete(self._user, self._big_size)
            yield Frame(memoryview(big)[: self._big_size], self._big_size, big)
            return
        self._end += nbytes
        yield from self._split()

    def _split(self) -> Iterator[Frame]:
        while self._end - self._start >= 4:
            (size,) = _SIZE.unpack_from(self._buf, self._start)
            if size < 0 or size > self.max_frame_size:
                raise FrameError(f"invalid request size {size} (socket.request.max.bytes={self.max_frame_size})")
            begin = self._start + 4
            available = self._end - begin
            if available >= size:
                self._start = begin + size
                self._pool.frame_complete(self._user, size)
                yield Frame(memoryview(bytearray(self._view[begin : begin + size])), size)
                continue
            if 4 + size > READ_BUFFER_SIZE:
                self._start_big(size, begin, available)
            elif 4 + size > len(self._buf):
                self._resize(READ_BUFFER_SIZE)
            elif begin + size > len(self._buf):
                self._compact()
            break
        if self._start == self._end:
            self._start = self._end = 0

    def _start_big(self, size: int, begin: int, available: int) -> None:
        """A frame larger than the read buffer: move what arrived into its own mmap."""
        big = self._maps.take(size)  # what arrived (< READ_BUFFER_SIZE) fits any first map
        big[:available] = self._view[begin : self._end]
        self._big, self._big_size, self._big_filled = big, size, available
        self._pool.receive(self._user, available)
        self._start = self._end = 0

    def _grow_big(self) -> None:
        """Double the large frame's buffer (at most to the frame's size)."""
        assert self._big is not None
        size = min(self._big_size, 2 * len(self._big))
        try:
            self._big.resize(size)
        except BufferError:  # a view of the last read is still alive: copy instead of moving
            bigger = _anonymous(size)
            bigger[: self._big_filled] = self._big[: self._big_filled]
            self._big = bigger

    def _compact(self) -> None:
        pending = self._end - self._start
        self._buf[:pending] = self._buf[self._start : self._end]
        self._start, self._end = 0, pending

    def _resize(self, size: int) -> None:
        pending = self._view[self._start : self._end].tobytes()
        self._buf = bytearray(size)
        self._buf[: len(pending)] = pending
        self._view = memoryview(self._buf)
        self._start, self._end = 0, len(pending)

    def discard(self) -> None:
        """The connection closed: let go of the buffers (the pool forgets the partial frame)."""
        self._big = None
        self._buf = bytearray()
        self._view = memoryview(self._buf)
        self._start = self._end = 0


def _anonymous(size: int) -> mmap.mmap:
    """Private anonymous memory: it can grow with ``resize`` (a shared mapping, Python's default,
    is a fixed-size shmem object: pages past its first size would fault with SIGBUS)."""
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
