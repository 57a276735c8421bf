"""Partitioners against the published vectors (cli-parity.md §6.4, librdkafka's rdfnv1a.c)."""

from __future__ import annotations

import random

import pytest

from pykafka_ops.partitioner import (
    Partitioner,
    Partitioning,
    crc32,
    fnv1a,
    murmur2,
    partition,
    partitions_for,
    to_positive,
)

UNALIGNED = b"PreAmbleWillBeRemoved,ThePrePartThatIs"

# Kafka UtilsTest.testMurmur2: Java's signed int results.
KAFKA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}
# librdkafka rdmurmur2.c unittest_murmur2 (unsigned).
LIBRDKAFKA_MURMUR2 = {
    b"kafka": 0xD067CF64,
    b"giberish123456789": 0x8F552B0C,
    b"1234": 0x9FC97B14,
    b"234": 0xE7C009CA,
    b"34": 0x873930DA,
    b"4": 0x5A4B5CA1,
    UNALIGNED: 0x78424F1C,
    UNALIGNED[1:]: 0x4A62B377,
    UNALIGNED[2:]: 0xE0E4E09E,
    UNALIGNED[3:]: 0x62B8B43F,
    b"": 0x106E08D9,
}
# librdkafka tests/0048-partitioner.c: (murmur2 & 0x7fffffff, crc32).
LIBRDKAFKA_0048 = {
    b"": (0x106E08D9, 0x0),
    b"23456": (0x058D780F, 0xB1B451D7),
    b"this is another string with more length to it perhaps": (0x4F7703DA, 0xB0150DF7),
    b"hejsan": (0x5EC19395, 0xD077037E),
}
# librdkafka rdfnv1a.c unittest_fnv1a (Go hash/fnv results, abs'd as Sarama does).
LIBRDKAFKA_FNV1A = {
    b"kafka": 0x0D33C4E1,
    b"giberish123456789": 0x77A58295,
    b"1234": 0x023BDD03,
    b"234": 0x2DEA3CD2,
    b"34": 0x740FA83E,
    b"4": 0x310CA263,
    UNALIGNED: 0x65CBD69C,
    UNALIGNED[1:]: 0x6E49C79A,
    UNALIGNED[2:]: 0x69EED356,
    UNALIGNED[3:]: 0x6ABCC023,
    b"": 0x7EE3623B,
}


@pytest.mark.parametrize(("key", "signed"), KAFKA_MURMUR2.items())
def test_murmur2_matches_kafka_utils_test(key: bytes, signed: int) -> None:
    assert murmur2(key) == signed & 0xFFFFFFFF


@pytest.mark.parametrize(("key", "expected"), LIBRDKAFKA_MURMUR2.items())
def test_murmur2_matches_librdkafka_unittest(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@pytest.mark.parametrize(("key", "hashes"), LIBRDKAFKA_0048.items())
def test_masked_murmur2_and_crc32_match_librdkafka_0048(key: bytes, hashes: tuple[int, int]) -> None:
    assert (to_positive(murmur2(key)), crc32(key)) == hashes


@pytest.mark.parametrize(("key", "expected"), LIBRDKAFKA_FNV1A.items())
def test_fnv1a_matches_librdkafka_unittest(key: bytes, expected: int) -> None:
    assert fnv1a(key) == expected


def test_positive_mask_is_not_abs() -> None:
    # "21" hashes to a negative Java int: the mask keeps the low 31 bits, abs() would not.
    h = murmur2(b"21")
    assert to_positive(h) == (-973932308) & 0x7FFFFFFF != abs(-973932308)


@pytest.mark.parametrize(
    ("key", "java", "librdkafka"),
    [
        (b"foo", (2, 2, 8), (2, 5, 5)),
        (b"kafka", (1, 4, 4), (2, 5, 11)),
        (b"hejsan", (1, 1, 1), (0, 0, 6)),
        (b"abc", (0, 3, 3), (0, 0, 6)),
    ],
)
def test_example_partition_mappings(key: bytes, java: tuple[int, ...], librdkafka: tuple[int, ...]) -> None:
    counts = (3, 6, 12)
    assert tuple(partition(key, n, Partitioner.murmur2_random) for n in counts) == java
    assert tuple(partition(key, n, Partitioner.consistent_random) for n in counts) == librdkafka


def test_null_and_empty_keys_follow_librdkafka() -> None:
    n = 6
    assert partition(None, n, Partitioner.consistent) == 0
    assert partition(b"", n, Partitioner.consistent) == 0
    assert partition(None, n, Partitioner.consistent_random) is None
    assert partition(b"", n, Partitioner.consistent_random) is None
    assert partition(None, n, Partitioner.murmur2) == 0x106E08D9 % n
    assert partition(None, n, Partitioner.murmur2_random) is None
    assert partition(b"", n, Partitioner.murmur2_random) == 0x106E08D9 % n
    assert partition(None, n, Partitioner.fnv1a) == 0x7EE3623B % n
    assert partition(None, n, Partitioner.fnv1a_random) is None
    assert partition(b"", n, Partitioner.fnv1a_random) == 0x7EE3623B % n
    assert partition(b"x", n, Partitioner.random) is None


def test_partitions_for_matches_partition_per_key() -> None:
    keys = [b"a", None, b"", b"a", b"kafka"]
    for partitioner in Partitioner:
        assert partitions_for(keys, 12, partitioner) == [partition(k, 12, partitioner) for k in keys]


def test_sticky_partition_is_kept_for_linger_then_repicked() -> None:
    now = [0.0]
    picker = Partitioning(Partitioner.murmur2_random, linger_ms=10, rng=random.Random(7), clock=lambda: now[0])
    first = {picker.choose(None, 6) for _ in range(100)}
    assert len(first) == 1
    seen = set(first)
    for step in range(1, 200):
        now[0] = step * 0.011
        seen.add(picker.choose(None, 6))
    assert seen == set(range(6))
    assert picker.choose(b"kafka", 6) == 4  # keyed records are hashed, never sticky


def test_zero_linger_and_random_partitioner_pick_per_record() -> None:
    per_record = Partitioning(Partitioner.consistent_random, linger_ms=0, rng=random.Random(1), clock=lambda: 0.0)
    assert len({per_record.choose(b"", 6) for _ in range(200)}) == 6
    keyed = Partitioning(Partitioner.random, rng=random.Random(1), clock=lambda: 0.0)
    assert len({keyed.choose(b"same-key", 6) for _ in range(200)}) == 6
    assert len({keyed.choose(None, 6) for _ in range(200)}) == 1
