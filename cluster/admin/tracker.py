"""ProduceClientTracker: the acks and idempotence of Produce requests per (client id, topic), lately.

The Produce handler calls ``record_request`` once per request (never per batch or record) with
what the fast path parsed already: the header's client id, acks, the transactional id, the topic
names, and whether the first batch carries a producer id (an idempotent producer's batches do,
``producer_id >= 0``; others have -1). ``GET /v1/produce-clients`` answers ``snapshot()``::

    {"node_id": 1, "window_ms": 300000, "evicted": 0,
     "clients": [{"client_id": "loose", "topic": "orders", "acks": {"1": 12},
                  "requests": 12, "idempotent": false, "idempotent_requests": 0,
                  "transactional": false, "transactional_requests": 0,
                  "last_seen_ms": 1767000000000}]}

``clients`` holds one entry per (client id, topic) written to within the window, sorted by client
id then topic. ``acks`` maps each acks value seen ("-1" is acks=all) to its request count;
``idempotent`` / ``transactional`` say whether any of those requests had a producer id / a
transactional id (``*_requests`` count them); ``last_seen_ms`` is wall-clock epoch ms. A request
with no client id counts under "". A request naming several topics counts once for each.

Window: counts are kept in ``BUCKETS`` buckets per entry, each ``window_ms / BUCKETS`` long and
aligned on multiples of that length; a bucket counts while any part of it lies within the last
``window_ms``, so a request is forgotten between ``window_ms`` and ``window_ms * (1 + 1/BUCKETS)``
after it was seen. The window runs on a monotonic clock (a wall-clock jump neither forgets nor keeps
anything); only ``last_seen_ms`` is wall time. Memory is bounded: at most ``max_entries`` entries
of at most ``BUCKETS + 1`` buckets; past the cap the least recently written entry is dropped and
counted in ``evicted`` (since the node started).

Concurrency: not thread-safe; used from the node's event loop only (the Produce handler and the
admin server), with no await inside any method.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from pykafka_ops.protocol.fastpath import ProduceRequest

#: Buckets per window: the window's granularity.
BUCKETS = 5
#: Default cap on distinct (client id, topic) entries.
MAX_ENTRIES = 10_000
#: Offset of the producer id (int64) in a v2 record batch header; its first byte's top bit is the sign.
PRODUCER_ID_OFFSET = 43
#: A bucket is ``[start_ms, acks=-1, acks=0, acks=1, idempotent, transactional]`` (counts of requests).
_ACKS_SLOT = {-1: 1, 0: 2, 1: 3}
_IDEMPOTENT, _TRANSACTIONAL = 4, 5


class _Entry:
    """One (client id, topic): its buckets, oldest first, and when it was last written to."""

    __slots__ = ("buckets", "last_seen")

    def __init__(self) -> None:
        self.buckets: list[list[int]] = []
        self.last_seen = 0


class ProduceClientTracker:
    """Per (client id, topic): acks values, idempotence and transactions seen over a sliding window."""

    def __init__(self, window_ms: int, max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time) -> None:
        """``clock`` (monotonic) and ``wall_clock`` (epoch) return seconds; tests pass fakes."""
        if window_ms < BUCKETS or max_entries < 1:
            raise ValueError(f"window_ms must be at least {BUCKETS} and max_entries at least 1")
        self.window_ms = window_ms
        self.max_entries = max_entries
        self.evicted = 0
        self._bucket_ms = window_ms // BUCKETS
        self._clock = clock
        self._wall_clock = wall_clock
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        """Least recently written first: expired entries are always at the front."""

    def __len__(self) -> int:
        return len(self._entries)

    def record_request(self, client_id: str | None, request: ProduceRequest) -> None:
        """Count one parsed Produce request (see the module docstring for what it reads)."""
        topics = request.topics
        records = topics[0].partitions[0].records if topics and topics[0].partitions else None
        idempotent = records is not None and len(records) > PRODUCER_ID_OFFSET and records[PRODUCER_ID_OFFSET] < 0x80
        self.record(client_id or "", [t.name for t in topics], request.acks, idempotent,
                    request.transactional_id is not None)

    def record(self, client_id: str, topics: Iterable[str], acks: int, idempotent: bool, transactional: bool) -> None:
        """Count one request of ``client_id`` to each of ``topics``; acks outside {-1, 0, 1} (a
        request the handler refuses) are not counted."""
        slot = _ACKS_SLOT.get(acks)
        if slot is None:
            return
        now = int(self._clock() * 1000)
        start = now - now % self._bucket_ms
        entries = self._entries
        for topic in topics:
            key = (client_id, topic)
            entry = entries.get(key)
            if entry is None:
                entry = self._add(key, now)
            else:
                entries.move_to_end(key)
            entry.last_seen = now
            buckets = entry.buckets
            if not buckets or buckets[-1][0] != start:
                self._trim(buckets, now)
                buckets.append([start, 0, 0, 0, 0, 0])
            bucket = buckets[-1]
            bucket[slot] += 1
            if idempotent:
                bucket[_IDEMPOTENT] += 1
            if transactional:
                bucket[_TRANSACTIONAL] += 1

    def _add(self, key: tuple[str, str], now: int) -> _Entry:
        """A new entry, after dropping expired ones and, at the cap, the least recently written."""
        self._expire(now)
        if len(self._entries) >= self.max_entries:
            self._entries.popitem(last=False)
            self.evicted += 1
        entry = self._entries[key] = _Entry()
        return entry

    def _expire(self, now: int) -> None:
        """Drop the entries not written to within the window (all at the front)."""
        entries = self._entries
        horizon = now - self.window_ms
        while entries:
            key, entry = next(iter(entries.items()))
            if entry.buckets[-1][0] + self._bucket_ms > horizon:
                return
            del entries[key]

    def _trim(self, buckets: list[list[int]], now: int) -> None:
        """Drop the buckets that lie wholly before the window."""
        live = self._live_buckets(buckets, now)
        if len(live) != len(buckets):
            buckets[:] = live

    def _live_buckets(self, buckets: list[list[int]], now: int) -> list[list[int]]:
        """The buckets of which some part lies within the window."""
        horizon = now - self.window_ms
        return [b for b in buckets if b[0] + self._bucket_ms > horizon]

    def snapshot(self, node_id: int) -> dict[str, Any]:
        """The ``GET /v1/produce-clients`` answer (module docstring); expired entries are dropped."""
        now = int(self._clock() * 1000)
        wall_now = int(self._wall_clock() * 1000)
        self._expire(now)
        clients = []
        for (client_id, topic), entry in self._entries.items():
            totals = [0] * 6
            for bucket in self._live_buckets(entry.buckets, now):
                for i in range(1, 6):
                    totals[i] += bucket[i]
            acks = {str(value): totals[slot] for value, slot in _ACKS_SLOT.items() if totals[slot]}
            if not acks:
                continue
            clients.append({
                "client_id": client_id, "topic": topic, "acks": acks, "requests": sum(acks.values()),
                "idempotent": totals[_IDEMPOTENT] > 0, "idempotent_requests": totals[_IDEMPOTENT],
                "transactional": totals[_TRANSACTIONAL] > 0, "transactional_requests": totals[_TRANSACTIONAL],
                "last_seen_ms": wall_now - (now - entry.last_seen),
            })
        clients.sort(key=lambda c: (c["client_id"], c["topic"]))
        return {"node_id": node_id, "window_ms": self.window_ms, "clients": clients, "evicted": self.evicted}
