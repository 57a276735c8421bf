"""Partitioner forensics: which partitioner put each sampled key where it is.

For every distinct (key, partition) placement of the sample — NULL and empty keys left out, since
producers place them without hashing — each candidate partitioner predicts a partition; a
candidate *explains* a placement when the prediction matches. With n partitions a wrong candidate
still matches about 1/n of placements by chance, so what counts is the placements only one
candidate explains: a partitioner is in use when it alone explains at least 1 % of them (at
least one). Two or more in use means producers with different partitioners (mixed clients: the
same key then lands in two partitions, which breaks per-key ordering).

Placements nobody explains come from a custom partitioner, explicit partitions, or a partition
count that changed after the records were written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pykafka_ops.models.skew import Forensics, PartitionerFit, SplitKey
from pykafka_ops.partitioner import Partitioner, partition
from pykafka_ops.services.skew_stats import key_text

#: Candidates: the Java default (= librdkafka murmur2_random), librdkafka's default
#: consistent_random (CRC-32), and Sarama's FNV-1a (librdkafka fnv1a).
CANDIDATES = (Partitioner.murmur2_random, Partitioner.consistent_random, Partitioner.fnv1a_random)
#: Fraction of placements a candidate must explain alone to count as in use.
MIN_ONLY_SHARE = 0.01
#: Split keys listed in the report (all are counted).
SPLIT_KEYS_SHOWN = 10


def analyse_placements(placements: Iterable[tuple[int, bytes | None]], partition_count: int) -> Forensics:
    """Forensics over (partition, key) placements (duplicates and NULL/empty keys are ignored)."""
    distinct = {(p, k) for p, k in placements if k}
    explained = dict.fromkeys(CANDIDATES, 0)
    only = dict.fromkeys(CANDIDATES, 0)
    unexplained = 0
    partitions_of: dict[bytes, list[int]] = defaultdict(list)
    for actual, key in distinct:
        partitions_of[key].append(actual)
        matching = [c for c in CANDIDATES if partition(key, partition_count, c) == actual]
        for candidate in matching:
            explained[candidate] += 1
        if len(matching) == 1:
            only[matching[0]] += 1
        unexplained += not matching
    total = len(distinct)
    threshold = max(1.0, MIN_ONLY_SHARE * total)
    in_use = tuple(c.value for c in CANDIDATES if only[c] >= threshold)
    mixed = len(in_use) > 1
    if not in_use and total:
        # Nothing tells the candidates apart (tiny sample): name those that explain everything.
        in_use = tuple(c.value for c in CANDIDATES if explained[c] == total)
    split = sorted(((key_text(k), tuple(sorted(ps))) for k, ps in partitions_of.items() if len(ps) > 1),
                   key=lambda item: (-len(item[1]), item[0]))
    fits = tuple(PartitionerFit(c.value, explained[c], only[c], explained[c] / total if total else 0.0)
                 for c in CANDIDATES)
    return Forensics(total, fits, unexplained, in_use, mixed,
                     tuple(SplitKey(k, ps) for k, ps in split[:SPLIT_KEYS_SHOWN]), len(split))
