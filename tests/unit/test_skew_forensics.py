"""Partitioner forensics on placements whose partitioner is known."""

from __future__ import annotations

from pykafka_ops.partitioner import Partitioner, partition
from pykafka_ops.services.skew_forensics import analyse_placements

KEYS = [b"customer-%d" % i for i in range(300)]


def placed(keys: list[bytes], partitioner: Partitioner, n: int = 6) -> list[tuple[int, bytes | None]]:
    return [(partition(k, n, partitioner), k) for k in keys]  # type: ignore[misc]


def test_one_partitioner_explains_everything() -> None:
    result = analyse_placements(placed(KEYS, Partitioner.murmur2_random) * 3 + [(2, None), (4, b"")], 6)
    assert result.partitioners == ("murmur2_random",) and not result.mixed
    assert result.placements == 300 and result.unexplained == 0 and result.split_key_count == 0
    fits = {f.partitioner: f for f in result.fits}
    assert fits["murmur2_random"].explained == 300 and fits["murmur2_random"].share == 1.0
    assert fits["consistent_random"].only == 0 and fits["fnv1a_random"].only == 0
    # a wrong candidate still matches about 1/n by chance
    assert 20 < fits["consistent_random"].explained < 80


def test_mixed_partitioners_are_detected_with_the_split_keys() -> None:
    mixed = placed(KEYS, Partitioner.murmur2_random) + placed(KEYS, Partitioner.consistent_random)
    result = analyse_placements(mixed, 6)
    assert result.mixed and result.partitioners == ("murmur2_random", "consistent_random")
    assert result.unexplained == 0
    both = sum(partition(k, 6, Partitioner.murmur2_random) != partition(k, 6, Partitioner.consistent_random)
               for k in KEYS)
    assert result.split_key_count == both > 200
    assert len(result.split_keys) == 10 and all(len(s.partitions) == 2 for s in result.split_keys)


def test_placements_no_candidate_explains_are_counted() -> None:
    moved = [((p + 1) % 6, k) for p, k in placed(KEYS, Partitioner.murmur2_random)]
    result = analyse_placements(moved + placed(KEYS[:50], Partitioner.fnv1a_random), 6)
    assert result.unexplained > 100
    assert "fnv1a_random" in result.partitioners


def test_too_few_placements_name_every_candidate_that_fits() -> None:
    # one key whose partition all three candidates happen to predict: nothing tells them apart
    key = next(k for k in KEYS if len({partition(k, 2, c) for c in (Partitioner.murmur2_random,
               Partitioner.consistent_random, Partitioner.fnv1a_random)}) == 1)
    result = analyse_placements([(partition(key, 2, Partitioner.murmur2_random), key)], 2)  # type: ignore[list-item]
    assert result.partitioners == ("murmur2_random", "consistent_random", "fnv1a_random") and not result.mixed
