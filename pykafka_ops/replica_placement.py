"""Replica placement for new partitions: Kafka's rack-unaware assignment
(``AdminUtils.assignReplicasToBrokersRackUnaware``, what the controller places new partitions
with) and its rack-aware one (``assignReplicasToBrokersRackAware``, for ``pko reassign
--generate`` against clusters whose brokers have racks).

The first replica of partition p is broker ``(p + start) mod n``, so leaders spread evenly; the
other replicas follow at a shift that grows by one every n partitions, so that followers of one
broker's leaders are spread too. ``start`` and the first shift are random per call (Kafka's), so
that many small topics do not all lead on the first broker.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence


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


def _rack_alternated(racks: Mapping[int, str]) -> list[int]:
    """Brokers taken one per rack in turn, racks in name order, ids ascending within a rack
    (Kafka's ``getRackAlternatedBrokerList``)."""
    by_rack: dict[str, list[int]] = {}
    for broker, rack in sorted(racks.items()):
        by_rack.setdefault(rack, []).append(broker)
    columns = [by_rack[r] for r in sorted(by_rack)]
    return [column[i] for i in range(max(map(len, columns))) for column in columns if i < len(column)]


def place_replicas_rack_aware(racks: Mapping[int, str], partitions: int, replication_factor: int,
                       rng: random.Random) -> dict[int, list[int]]:
    """Kafka's ``assignReplicasToBrokersRackAware``: a follower goes to the next broker (at the
    partition's shift) whose rack has no replica yet, until every rack has one."""
    brokers = _rack_alternated(racks)
    n, rack_count = len(brokers), len(set(racks.values()))
    start, shift = rng.randrange(n), rng.randrange(n)
    placed: dict[int, list[int]] = {}
    for partition in range(partitions):
        if partition > 0 and partition % n == 0:
            shift += 1
        first = (partition + start) % n
        replicas = [brokers[first]]
        k = 0
        while len(replicas) < replication_factor:
            broker = brokers[(first + 1 + (shift * rack_count + k) % (n - 1)) % n]
            k += 1
            used_racks = {racks[b] for b in replicas}
            if (racks[broker] not in used_racks or len(used_racks) == rack_count) \
                    and (broker not in replicas or len(replicas) == n):
                replicas.append(broker)
        placed[partition] = replicas
    return placed
