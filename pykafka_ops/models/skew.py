"""Key-skew reports (`pko skew`, the TUI's skew screen): what the skew service returns.

Counts are records; byte figures are key + value bytes. ``share`` values are fractions in
[0, 1]. Keys are shown as text: UTF-8 when it is printable, else Python's bytes escapes;
``KEY_NULL`` and ``KEY_EMPTY`` stand for NULL and empty keys (which producers do not hash the
same way: see ``pykafka_ops.partitioner``).
"""

from __future__ import annotations

from dataclasses import dataclass

KEY_NULL = "(null)"
KEY_EMPTY = "(empty)"


@dataclass(frozen=True)
class SkewOptions:
    """What to read and compute. ``sample=None`` reads everything (``--full``)."""

    sample: int | None = 100_000
    """Records to read in total, newest first, split across partitions by their size."""
    since_ms: int | None = None
    """Only records at or after this timestamp (ms since the epoch)."""
    max_seconds: float | None = None
    """Stop reading after this many seconds; the report is then marked incomplete."""
    top: int = 10
    """Heavy-hitter keys to report."""
    hot_k: float = 2.0
    """A partition is hot when its records exceed mean + hot_k · σ (population σ)."""
    group: str | None = None
    """Consumer group whose lag and partition owners to show."""
    rate_window_s: float | None = None
    """Measure each partition's produce rate over this many seconds before now."""
    what_if_partitions: tuple[int, ...] = ()
    what_if_keys: tuple[str, ...] = ()
    """Key templates such as ``{key}:{header.region}`` or ``{key}:{offset%8}``."""
    partitioner: str | None = None
    """Partitioner for what-if predictions (default: the one forensics found, else murmur2)."""


@dataclass(frozen=True)
class Imbalance:
    """How unevenly records spread over partitions."""

    max_over_mean: float
    """Largest partition / mean partition (1.0 = even)."""
    cv: float
    """Coefficient of variation: population σ / mean."""
    gini: float
    """Gini coefficient: 0 = even, (n − 1)/n = everything in one partition."""
    hot_k: float
    hot_partitions: tuple[int, ...]
    """Partitions above mean + hot_k · σ."""


@dataclass(frozen=True)
class PartitionBalance:
    """One partition of the analysed range."""

    partition: int
    records: int
    """Records in range, from offsets (high watermark − start offset)."""
    share: float
    """records / all records in range."""
    bytes: int | None
    """Estimated bytes in range: records × mean size of the records read (None if none were read)."""
    scanned: int
    """Records read."""
    null_keys: int
    """Records read with a NULL key."""
    z_score: float
    hot: bool
    rate_per_s: float | None = None
    """Records per second over the rate window (``--rate-window``)."""
    lag: int | None = None
    """Consumer lag of ``--group`` (log-end offset − committed offset)."""
    consumer_id: str | None = None
    """Member of ``--group`` that owns the partition."""
    host: str | None = None
    client_id: str | None = None


@dataclass(frozen=True)
class HeavyKey:
    """A frequent key in one partition (a key found in several partitions has one row each)."""

    key: str
    partition: int
    count: int
    """Lower bound: the true count lies in [count, count + error]."""
    error: int
    share_of_topic: float
    """count / records read."""
    share_of_partition: float
    """count / records read from this partition."""


@dataclass(frozen=True)
class PartitionerFit:
    """How many sampled key placements a partitioner predicts."""

    partitioner: str
    explained: int
    """(key, partition) placements this partitioner predicts."""
    only: int
    """... that no other candidate predicts."""
    share: float
    """explained / placements examined."""


@dataclass(frozen=True)
class SplitKey:
    """A key found in more than one partition."""

    key: str
    partitions: tuple[int, ...]


@dataclass(frozen=True)
class Forensics:
    """Which partitioners placed the sampled keyed records (NULL and empty keys are left out)."""

    placements: int
    """Distinct (key, partition) pairs examined."""
    fits: tuple[PartitionerFit, ...]
    unexplained: int
    """Placements no candidate predicts (custom partitioner, explicit partitions, or the
    partition count changed since the record was written)."""
    partitioners: tuple[str, ...]
    """The partitioners the data shows in use; when no placement tells them apart (a tiny
    sample), every candidate that explains all placements."""
    mixed: bool
    """True when placements show two or more partitioners in use."""
    split_keys: tuple[SplitKey, ...]
    """Keys seen in more than one partition (first few)."""
    split_key_count: int


@dataclass(frozen=True)
class WhatIf:
    """The balance the sampled records would have under another key or partition count."""

    key_template: str
    partitions: int
    partitioner: str
    sampled: int
    """Records the prediction is computed from."""
    current: Imbalance
    """The same records as they lie now."""
    predicted: Imbalance
    records: tuple[int, ...]
    """Predicted sampled records per partition."""
    excess_cut: float | None
    """1 − predicted excess / current excess, excess = max/mean − 1 (None when there is none)."""


@dataclass(frozen=True)
class SkewReport:
    """Everything `pko skew` shows, for a topic or for a keys file."""

    source: str
    """The topic, or the keys file's path."""
    mode: str
    """``full``, ``sample`` or ``keys-file``."""
    partition_count: int
    records: int
    """Records in range (or keys in the file)."""
    scanned: int
    complete: bool
    """False when ``max_seconds`` stopped the scan early."""
    elapsed_s: float
    partitions: tuple[PartitionBalance, ...]
    imbalance: Imbalance
    heavy_hitters: tuple[HeavyKey, ...]
    heavy_hitter_error: int
    """Every heavy-hitter count is within this many records of the truth."""
    distinct_keys: int
    distinct_keys_exact: bool
    distinct_keys_error: float
    """Relative standard error of ``distinct_keys`` (0.0 when exact)."""
    null_keys: int
    empty_keys: int
    forensics: Forensics | None
    what_if: tuple[WhatIf, ...]
    warnings: tuple[str, ...]
    since_ms: int | None = None
    group: str | None = None
    partitioner: str | None = None
    """The partitioner a keys file was placed with."""
