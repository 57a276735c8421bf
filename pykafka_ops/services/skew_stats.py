"""Balance arithmetic for `pko skew`: imbalance metrics, the hot-partition rule, sample sizes.

The hot-partition rule is klag's (``HotPartitionDetector``): a partition is hot when its load
exceeds mean + k·σ with the *population* σ. With n partitions one outlier's z-score is at most
√(n − 1), so with k = 2 the rule cannot fire on fewer than 6 partitions; ``hot_rule_note``
says so in the report rather than letting a silent "no hot partition" mislead.
"""

from __future__ import annotations

from collections.abc import Sequence

from pykafka_ops.models.skew import KEY_EMPTY, KEY_NULL, Imbalance


def mean_sigma(counts: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation of ``counts`` (0, 0 when empty)."""
    n = len(counts)
    if n == 0:
        return 0.0, 0.0
    mean = sum(counts) / n
    return mean, (sum((c - mean) ** 2 for c in counts) / n) ** 0.5


def z_scores(counts: Sequence[float]) -> list[float]:
    """(x − mean) / σ for each count, population σ; all 0.0 when every count is equal."""
    mean, sigma = mean_sigma(counts)
    if sigma == 0:
        return [0.0] * len(counts)
    return [(c - mean) / sigma for c in counts]


def gini(counts: Sequence[int]) -> float:
    """Gini coefficient of ``counts``: 0 when even, (n − 1)/n when one holds everything."""
    n, total = len(counts), sum(counts)
    if n == 0 or total == 0:
        return 0.0
    ranked = sorted(counts)
    return sum((2 * i - n + 1) * c for i, c in enumerate(ranked)) / (n * total)


def imbalance(counts: Sequence[int], hot_k: float, partitions: Sequence[int] | None = None) -> Imbalance:
    """Imbalance metrics of per-partition ``counts`` (``partitions`` names them; default 0..n−1)."""
    names = list(partitions) if partitions is not None else list(range(len(counts)))
    mean, sigma = mean_sigma(counts)
    if mean == 0:
        return Imbalance(1.0, 0.0, 0.0, hot_k, ())
    hot = tuple(name for name, z in zip(names, z_scores(counts)) if z > hot_k)
    return Imbalance(max(counts) / mean, sigma / mean, gini(counts), hot_k, hot)


def excess_cut(current: Imbalance, predicted: Imbalance) -> float | None:
    """1 − (predicted max/mean − 1) / (current max/mean − 1); None when nothing is in excess now."""
    excess = current.max_over_mean - 1
    if excess <= 1e-12:
        return None
    return 1 - (predicted.max_over_mean - 1) / excess


def hot_rule_note(partition_count: int, hot_k: float) -> str | None:
    """A warning when the z-score rule cannot flag any partition (√(n − 1) ≤ k)."""
    if partition_count > 1 and (partition_count - 1) ** 0.5 <= hot_k:
        return (f"with {partition_count} partitions no z-score can exceed {hot_k:g} (the maximum is "
                f"√{partition_count - 1} = {(partition_count - 1) ** 0.5:.2f}): use a smaller --hot-k or "
                "read max/mean")
    return None


def allocate(total: int, sizes: Sequence[int]) -> list[int]:
    """Split ``total`` over partitions in proportion to ``sizes`` (largest remainder), each at most
    its size: how many of its newest records each partition contributes to a sample."""
    available = sum(sizes)
    if total >= available:
        return list(sizes)
    exact = [total * s / available for s in sizes]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares


def key_text(key: bytes | None) -> str:
    """A key as text: UTF-8 when it decodes to printable text, else Python's bytes escapes
    (``\\xff``); NULL and empty keys by name."""
    if key is None:
        return KEY_NULL
    if not key:
        return KEY_EMPTY
    try:
        text = key.decode()
    except UnicodeDecodeError:
        text = ""
    return text if text.isprintable() and text else repr(key)[2:-1]
