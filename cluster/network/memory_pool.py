"""RequestMemoryPool: the bytes of requests the whole node holds (Kafka's ``queued.max.request.bytes``).

What counts is what has actually arrived: the bytes of an incomplete frame as they come in, and a
complete frame's bytes until its request no longer needs them (right after decoding for most
APIs; after the handler for Produce, whose records are views of the frame). A size prefix alone
reserves nothing, so a client that announces 100 MiB and sends 4 bytes pins 4 bytes.

While the pool is exhausted, connections stop reading (TCP pushes back on the senders) and wait
here; they are resumed, oldest first, as requests finish. If everything the pool holds belongs
to incomplete frames, no request can finish to free memory, so the connection holding the most
is closed (load shedding: an honest client retries, a slow sender loses what it pinned).

Concurrency: owned by the node's event loop; every method runs on it.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class PoolUser(Protocol):
    """A connection as the pool sees it."""

    peer: str

    def memory_available(self) -> None:
        """The pool has room again: resume reading if nothing else holds it back."""

    def close(self, reason: str) -> None:
        """Close the connection (it then calls ``RequestMemoryPool.drop``)."""


class RequestMemoryPool:
    """Node-wide accounting of request bytes; ``capacity`` ≤ 0 means unbounded (Kafka's -1)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._partial: dict[PoolUser, int] = {}
        self._waiting: dict[PoolUser, None] = {}  # insertion-ordered: oldest waiter first

    @property
    def exhausted(self) -> bool:
        """Whether connections must stop reading."""
        return 0 < self.capacity <= self.used

    @property
    def available(self) -> int:
        """Bytes that may still arrive before the pool is exhausted (capacity when unbounded)."""
        return self.capacity - self.used if self.capacity > 0 else 1 << 62

    def receive(self, user: PoolUser, nbytes: int) -> None:
        """``nbytes`` of an incomplete frame arrived on ``user``."""
        self.used += nbytes
        self._partial[user] = self._partial.get(user, 0) + nbytes

    def frame_complete(self, user: PoolUser, size: int) -> None:
        """A frame of ``size`` bytes is complete on ``user``; it is held until ``release(size)``."""
        self.used += size - self._partial.pop(user, 0)

    def release(self, size: int) -> None:
        """A request no longer needs its ``size`` frame bytes."""
        self.used -= size
        self._wake()

    def drop(self, user: PoolUser) -> None:
        """``user`` closed: forget its incomplete frame and stop waiting for it."""
        held = self._partial.pop(user, 0)
        self.used -= held
        self._waiting.pop(user, None)
        if held:
            self._wake()

    def wait(self, user: PoolUser) -> None:
        """``user`` stopped reading because the pool is exhausted; it is told when there is room."""
        self._waiting[user] = None
        self._shed_if_stuck()

    def _wake(self) -> None:
        while self._waiting and not self.exhausted:
            user = next(iter(self._waiting))
            del self._waiting[user]
            user.memory_available()

    def _shed_if_stuck(self) -> None:
        """If only incomplete frames hold the pool, nothing will free it: close the biggest."""
        while self.exhausted and self._partial and self.used <= sum(self._partial.values()):
            victim = max(self._partial, key=self._partial.__getitem__)
            log.warning("request memory (queued.max.request.bytes=%d) is held by incomplete requests only: "
                        "closing the connection from %s, which holds %d bytes of one",
                        self.capacity, victim.peer, self._partial[victim])
            victim.close("request memory exhausted by incomplete requests")
            self.drop(victim)  # close() drops it too; this makes sure the loop ends
