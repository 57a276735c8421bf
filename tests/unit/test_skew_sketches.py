"""Heavy hitters and distinct-key sketches against streams whose truth is known."""

from __future__ import annotations

import random
from collections import Counter
from itertools import accumulate

from pykafka_ops.sketches import DistinctCounter, HeavyHitters


def zipf_stream(n: int, items: int, s: float, seed: int) -> list[bytes]:
    """``n`` keys drawn from a Zipf(s) law over ``items`` keys (rank 1 most frequent)."""
    rng = random.Random(seed)
    cum = list(accumulate(1 / rank**s for rank in range(1, items + 1)))
    ranks = rng.choices(range(1, items + 1), cum_weights=cum, k=n)
    return [b"user-%d" % r for r in ranks]


def test_zipf_top10_found_with_counts_inside_the_error_bound() -> None:
    stream = zipf_stream(300_000, 50_000, 1.1, seed=42)
    sketch = HeavyHitters(capacity=1000, prune_at=4000)
    for start in range(0, len(stream), 5000):
        batch = stream[start:start + 5000]
        for partition in range(3):
            sketch.update(partition, [k for k in batch if hash(k) % 3 == partition])
    truth = Counter(stream)
    true_top = {k for k, _ in truth.most_common(10)}

    found = sketch.top(10)
    assert {key for _p, key, _c in found} == true_top
    assert sketch.error_bound > 0, "the stream must have forced prunes"
    assert sketch.error_bound <= len(stream) / (sketch.capacity + 1)
    for _partition, key, count in found:
        assert count <= truth[key] <= count + sketch.error_bound
    assert sketch.memory_entries() <= sketch.prune_at
    assert sketch.total == len(stream)


def test_heavy_hitters_keeps_a_key_per_partition_and_counts_watched_keys() -> None:
    sketch = HeavyHitters(capacity=10, prune_at=100)
    assert sketch.update(0, [b"split"] * 30 + [None] * 5, watch=(None, b"")) == [5, 0]
    assert sketch.update(4, [b"split"] * 20 + [b""] * 2 + [None], watch=(None, b"")) == [1, 2]
    assert sketch.update(4, [b""], watch=(b"",)) == [1]
    assert sketch.top(5) == [(0, b"split", 30), (4, b"split", 20), (0, None, 5), (4, b"", 3), (4, None, 1)]
    assert sketch.error_bound == 0 and sketch.total == 59


def test_heavy_hitters_memory_is_bounded_with_a_million_distinct_keys() -> None:
    sketch = HeavyHitters(capacity=100, prune_at=5000)
    hot = [b"hot"] * 2000
    for start in range(0, 1_000_000, 10_000):
        sketch.update(start % 6, [b"k%d" % i for i in range(start, start + 10_000)] + hot)
    assert sketch.memory_entries() <= sketch.prune_at + 10_001
    (partition, key, count), *_ = sketch.top(1)
    truth = sum(2000 for start in range(0, 1_000_000, 10_000) if start % 6 == partition)
    assert key == b"hot" and count <= truth <= count + sketch.error_bound


def test_distinct_estimate_within_2_percent_past_the_exact_range() -> None:
    sketch = DistinctCounter()
    for start in range(0, 400_000, 50_000):
        keys = [b"key-%d" % i for i in range(start, start + 50_000)]
        sketch.update(keys)
        sketch.update(keys[:1000])  # repeats do not count
    assert not sketch.exact
    assert abs(sketch.estimate() - 400_000) <= 8_000
    assert sketch.relative_error < 0.005


def test_distinct_estimate_within_2_percent_on_a_zipf_stream() -> None:
    stream = zipf_stream(250_000, 200_000, 0.8, seed=7)
    sketch = DistinctCounter()
    for start in range(0, len(stream), 10_000):
        sketch.update(stream[start:start + 10_000])
    truth = len(set(stream))
    assert not sketch.exact, "the stream must be past the sketch's exact range"
    assert abs(sketch.estimate() - truth) <= 0.02 * truth


def test_distinct_count_is_exact_below_k() -> None:
    sketch = DistinctCounter(k=1024)
    sketch.update([b"a", b"b", b"a", b""])
    sketch.update([b"c%d" % i for i in range(500)])
    assert sketch.exact and sketch.estimate() == 503 and sketch.relative_error == 0.0
