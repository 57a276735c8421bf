"""RequestMemoryPool: accounting of what arrived, waiting while exhausted, shedding when stuck."""

from __future__ import annotations

from cluster.network.memory_pool import RequestMemoryPool


class User:
    def __init__(self, name: str, pool: RequestMemoryPool) -> None:
        self.peer = name
        self.pool = pool
        self.events: list[str] = []

    def memory_available(self) -> None:
        self.events.append("resumed")

    def close(self, reason: str) -> None:
        self.events.append("closed")
        self.pool.drop(self)


def test_what_arrives_is_held_until_the_request_releases_it() -> None:
    pool = RequestMemoryPool(100)
    user = User("a", pool)
    pool.receive(user, 30)
    pool.receive(user, 30)
    assert pool.used == 60 and not pool.exhausted
    pool.frame_complete(user, 80)  # the last 20 bytes came with the end of the frame
    assert pool.used == 80
    pool.release(80)
    assert pool.used == 0


def test_waiters_resume_oldest_first_once_a_request_releases_memory() -> None:
    pool = RequestMemoryPool(100)
    a, b, busy = User("a", pool), User("b", pool), User("busy", pool)
    pool.frame_complete(busy, 100)  # a complete request being processed
    assert pool.exhausted
    pool.wait(a)
    pool.wait(b)
    assert a.events == b.events == []  # nothing shed: the request will finish
    pool.release(100)
    assert a.events == ["resumed"] and b.events == ["resumed"]


def test_when_only_incomplete_frames_hold_the_pool_the_biggest_holder_is_closed() -> None:
    pool = RequestMemoryPool(100)
    small, big = User("small", pool), User("big", pool)
    pool.receive(small, 40)
    pool.receive(big, 60)
    pool.wait(small)
    assert big.events == ["closed"] and small.events == ["resumed"]
    assert pool.used == 40


def test_an_unbounded_pool_never_waits() -> None:
    pool = RequestMemoryPool(-1)
    pool.receive(User("a", pool), 10**12)
    assert not pool.exhausted and pool.available > 10**15
