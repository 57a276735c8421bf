"""Replica placement for new partitions: Kafka's rack-unaware assignment
(``AdminUtils.assignReplicasToBrokersRackUnaware``).

The first replica of partition p is broker ``(p + start) mod n``, so leaders spread evenly; the
other replicas follow at a shift that grows by one every n partitions, so that followers of one
broker's leaders are spread too. ``start`` and the first shift are random per call (Kafka's), so
that many small topics do not all lead on the first broker.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def place_replicas(brokers: Sequence[int], partitions: int, replication_factor: int, first_partition: int = 0,
                   rng: random.Random | None = None) -> dict[int, list[int]]:
    """Replicas of partitions ``first_partition .. first_partition + partitions - 1`` over
    ``brokers`` (sorted ids, at least ``replication_factor`` of them)."""
    if replication_factor > len(brokers) or replication_factor < 1:
        raise ValueError(f"replication factor {replication_factor} with {len(brokers)} broker(s)")
    rng = rng or random.Random()
    n = len(brokers)
    start = rng.randrange(n)
    shift = rng.randrange(n)
    placed: dict[int, list[int]] = {}
    for partition in range(first_partition, first_partition + partitions):
        if partition > 0 and partition % n == 0:
            shift += 1
        first = (partition + start) % n
        replicas = [brokers[first]]
        for j in range(replication_factor - 1):
            replicas.append(brokers[(first + 1 + (shift + j) % (n - 1)) % n])
        placed[partition] = replicas
    return placed
