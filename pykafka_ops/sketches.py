"""Bounded-memory sketches for key statistics: heavy hitters and the number of distinct keys.

Both take whole batches of keys so that the per-record work runs in C (``Counter.update``,
``map(hash, …)``, ``filter``); Python code runs only per prune or per candidate, so the cost per
record stays near that of reading it. Memory does not grow with the number of distinct keys.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import chain

_TWO_63 = 1 << 63
_TWO_64 = 1 << 64


class HeavyHitters:
    """The most frequent (partition, key) pairs of a stream, with guaranteed error bounds.

    This is the Misra–Gries "Frequent" summary in its mergeable form (Agarwal et al., "Mergeable
    Summaries", PODS 2012), which is isomorphic to Space-Saving. Each batch is merged exactly
    (``Counter.update``, in C); when more than ``prune_at`` counters are held, the
    (``capacity`` + 1)-th largest count *t* is subtracted from every counter and counters left at
    zero or below are dropped. Each prune removes at least (capacity + 1)·t occurrences, so the
    total subtracted, ``error_bound``, never exceeds N / (capacity + 1) for a stream of N keys,
    and for every pair: count ≤ true count ≤ count + error_bound.

    Keys are counted per partition (one counter table per partition, pruned together): a key
    found in several partitions appears once per partition, which is what shows a split key.
    """

    def __init__(self, capacity: int = 1000, prune_at: int = 65_536) -> None:
        if capacity < 1 or prune_at <= capacity:
            raise ValueError("need 1 <= capacity < prune_at")
        self.capacity = capacity
        self.prune_at = prune_at
        self.error_bound = 0
        self.total = 0
        self._counts: dict[int, Counter[bytes | None]] = {}

    def update(self, partition: int, keys: Sequence[bytes | None], watch: Sequence[bytes | None] = ()) -> list[int]:
        """Count ``keys`` seen in ``partition``; return how many of them equal each key of
        ``watch`` (read off the counters, no scan)."""
        counts = self._counts.setdefault(partition, Counter())
        before = [counts[w] for w in watch]
        counts.update(keys)
        seen = [counts[w] - b for w, b in zip(watch, before)]
        self.total += len(keys)
        if sum(map(len, self._counts.values())) > self.prune_at:
            self._prune()
        return seen

    def _prune(self) -> None:
        values = chain.from_iterable(c.values() for c in self._counts.values())
        threshold = heapq.nlargest(self.capacity + 1, values)[-1]
        self.error_bound += threshold
        for partition, counts in self._counts.items():
            self._counts[partition] = Counter({k: c - threshold for k, c in counts.items() if c > threshold})

    def top(self, n: int) -> list[tuple[int, bytes | None, int]]:
        """The ``n`` largest ``(partition, key, count)``, count descending (ties: partition, key)."""
        values = sorted(chain.from_iterable(c.values() for c in self._counts.values()), reverse=True)
        if not values or n < 1:
            return []
        least = values[min(n, len(values)) - 1]  # sorting ints in C first keeps the Python work small
        pairs = [(p, k, c) for p, counts in self._counts.items() for k, c in counts.items() if c >= least]
        pairs.sort(key=lambda t: (-t[2], t[0], b"" if t[1] is None else t[1]))
        return pairs[:n]

    def memory_entries(self) -> int:
        """Counters currently held (at most ``prune_at`` plus one batch)."""
        return sum(map(len, self._counts.values()))


class DistinctCounter:
    """Approximate number of distinct keys: a KMV ("k minimum values") sketch.

    It keeps the ``k`` smallest 64-bit hashes seen (Bar-Yossef et al. 2002); with U the k-th
    smallest hash scaled to (0, 1], the unbiased estimate is (k − 1) / U (Beyer et al. 2007) with a
    relative standard error of about 1/√(k − 2): 0.39 % for the default k = 65,536. Below k distinct
    keys the count is exact. Hashes are Python's SipHash of the key bytes (computed in C, cached
    on each bytes object, and seeded per process, so estimates can differ by that error between
    runs). Only hashes below the current k-th smallest reach Python code, so after warm-up
    almost no key costs more than a C comparison.
    """

    def __init__(self, k: int = 65_536) -> None:
        if k < 3:
            raise ValueError("k must be at least 3")
        self.k = k
        self._kept: set[int] = set()
        self._pending: list[int] = []
        self._threshold = _TWO_63  # hashes lie in [-2**63, 2**63)

    def update(self, keys: Iterable[bytes]) -> None:
        """Add ``keys`` (bytes; leave NULL keys out, they are not a key value)."""
        self._pending.extend(filter(self._threshold.__gt__, map(hash, keys)))
        if len(self._pending) > self.k:
            self._compact()

    def _compact(self) -> None:
        self._kept.update(self._pending)
        self._pending.clear()
        if len(self._kept) > self.k:
            smallest = sorted(self._kept)[: self.k]
            self._kept = set(smallest)
            self._threshold = smallest[-1]  # equal hashes are already kept

    @property
    def exact(self) -> bool:
        """True while fewer than ``k`` distinct keys were seen (the estimate is then a count)."""
        self._compact()
        return len(self._kept) < self.k

    def estimate(self) -> int:
        """The number of distinct keys seen (exact when ``exact``)."""
        self._compact()
        if len(self._kept) < self.k:
            return len(self._kept)
        kth = max(self._kept)
        return round((self.k - 1) / ((kth + _TWO_63 + 1) / _TWO_64))

    @property
    def relative_error(self) -> float:
        """One standard error of ``estimate()``, relative (0.0 when exact)."""
        return 0.0 if self.exact else 1 / (self.k - 2) ** 0.5
