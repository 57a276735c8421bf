"""Key → partition exactly as Kafka producers compute it (Java client and librdkafka).

Hashes (all return unsigned 32-bit ints):

- ``murmur2``: Kafka's ``Utils.murmur2`` (seed 0x9747b28c). The Java producer's partition is
  ``toPositive(murmur2(key)) % n`` where ``toPositive(x) = x & 0x7fffffff`` (a mask, not ``abs``).
- ``crc32``: CRC-32/IEEE, librdkafka's ``rd_crc32`` (zlib's, in C), no sign mask.
- ``fnv1a``: 32-bit FNV-1a with librdkafka's extra ``abs`` of the signed result (to match Sarama's
  ``NewHashPartitioner``; ``rdfnv1a.c``).

Partitioners are librdkafka's names (``partitioner`` client property). What happens to a record
the hash does not place — ``partition()`` returns ``None`` — follows ``rd_kafka_msg_partitioner``:

| partitioner         | NULL key       | empty key      | other keys            |
|---------------------|----------------|----------------|-----------------------|
| ``consistent``      | crc32 → p0     | crc32 → p0     | crc32 % n             |
| ``consistent_random`` (librdkafka default) | sticky | sticky | crc32 % n     |
| ``murmur2``         | murmur2("")    | murmur2("")    | (murmur2 & 0x7fffffff) % n |
| ``murmur2_random`` (= Java default) | sticky | murmur2("") | (murmur2 & 0x7fffffff) % n |
| ``fnv1a``           | fnv1a("")      | fnv1a("")      | fnv1a % n             |
| ``fnv1a_random``    | sticky         | fnv1a("")      | fnv1a % n             |
| ``random``          | sticky         | random         | random                |

"Sticky" is librdkafka's sticky partition: a random partition kept for
``sticky.partitioning.linger.ms`` (default 10 ms; 0 means random per record). The Java client's
null-key behaviour (KIP-480/KIP-794 uniform sticky) switches after a batch instead of a time, but
over many records both spread evenly. ``Partitioning`` reproduces the librdkafka behaviour.
"""

from __future__ import annotations

import random
import struct
import sys
import time
import zlib
from collections.abc import Callable, Iterable
from enum import StrEnum

_M32 = 0xFFFFFFFF
_MURMUR_SEED = 0x9747B28C
_MURMUR_M = 0x5BD1E995
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
_LITTLE_ENDIAN = sys.byteorder == "little"


class Partitioner(StrEnum):
    """librdkafka's ``partitioner`` values; ``murmur2_random`` is the Java client's default."""

    random = "random"
    consistent = "consistent"
    consistent_random = "consistent_random"
    murmur2 = "murmur2"
    murmur2_random = "murmur2_random"
    fnv1a = "fnv1a"
    fnv1a_random = "fnv1a_random"


def _blocks(data: bytes, count: int) -> Iterable[int]:
    """The first ``count`` little-endian uint32 words of ``data``."""
    if _LITTLE_ENDIAN:
        return memoryview(data)[: count * 4].cast("I")
    return struct.unpack_from(f"<{count}I", data)


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` of ``data`` as an unsigned 32-bit int (Java's int & 0xffffffff)."""
    length = len(data)
    h = (_MURMUR_SEED ^ length) & _M32
    whole = length >> 2
    for k in _blocks(data, whole):
        k = (k * _MURMUR_M) & _M32
        k ^= k >> 24
        k = (k * _MURMUR_M) & _M32
        h = ((h * _MURMUR_M) & _M32) ^ k
    tail = length & 3
    if tail:
        i = whole * 4
        if tail == 3:
            h ^= data[i + 2] << 16
        if tail >= 2:
            h ^= data[i + 1] << 8
        h ^= data[i]
        h = (h * _MURMUR_M) & _M32
    h ^= h >> 13
    h = (h * _MURMUR_M) & _M32
    return h ^ (h >> 15)


def to_positive(h: int) -> int:
    """Kafka's ``Utils.toPositive``: clear the sign bit (``x & 0x7fffffff``), which is not ``abs``."""
    return h & 0x7FFFFFFF


def crc32(data: bytes) -> int:
    """librdkafka's ``rd_crc32``: CRC-32/IEEE (zlib, computed in C)."""
    return zlib.crc32(data)


def fnv1a(data: bytes) -> int:
    """librdkafka's ``rd_fnv1a``: 32-bit FNV-1a, then ``abs`` of the signed value (INT_MIN stays)."""
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _M32
    if h & 0x80000000:
        h = -h & _M32
    return h


#: The hash partitioners, by family: partition = hash(key) % n.
_HASHES: dict[Partitioner, Callable[[bytes], int]] = {
    Partitioner.consistent: crc32,
    Partitioner.consistent_random: crc32,
    Partitioner.murmur2: lambda key: to_positive(murmur2(key)),
    Partitioner.murmur2_random: lambda key: to_positive(murmur2(key)),
    Partitioner.fnv1a: fnv1a,
    Partitioner.fnv1a_random: fnv1a,
}
#: Partitioners that hash a NULL key like an empty one (no sticky partition).
_HASH_NULL = frozenset({Partitioner.consistent, Partitioner.murmur2, Partitioner.fnv1a})


def partition(key: bytes | None, num_partitions: int, partitioner: Partitioner) -> int | None:
    """The partition ``partitioner`` computes for ``key``, or ``None`` when the producer picks one
    itself (its sticky partition, or a random one: see the module docstring)."""
    if partitioner is Partitioner.random:
        return None
    if key is None:
        if partitioner not in _HASH_NULL:
            return None
        key = b""
    elif not key and partitioner is Partitioner.consistent_random:
        return None
    return _HASHES[partitioner](key) % num_partitions


def partitions_for(keys: Iterable[bytes | None], num_partitions: int, partitioner: Partitioner) -> list[int | None]:
    """``partition()`` of each key; each distinct key is hashed once (the hashes run in Python)."""
    cache: dict[bytes | None, int | None] = {}
    out = []
    for key in keys:
        found = cache.get(key, -1)
        if found == -1:
            found = cache[key] = partition(key, num_partitions, partitioner)
        out.append(found)
    return out


class Partitioning:
    """A producer's full choice of partition, random and sticky cases included (librdkafka).

    ``linger_ms`` is ``sticky.partitioning.linger.ms``: how long the sticky partition is kept,
    in ms (0: a random partition per record). ``clock`` returns seconds; ``rng`` makes it
    reproducible in tests.
    """

    def __init__(self, partitioner: Partitioner = Partitioner.consistent_random, linger_ms: int = 10,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.partitioner = partitioner
        self.linger_ms = linger_ms
        self._rng = rng or random.Random()
        self._clock = clock
        self._sticky: int | None = None
        self._sticky_until = 0.0

    def choose(self, key: bytes | None, num_partitions: int) -> int:
        """The partition of the next record with ``key`` on a topic of ``num_partitions``."""
        hashed = partition(key, num_partitions, self.partitioner)
        if hashed is not None:
            return hashed
        keyed_random = self.partitioner is Partitioner.random and key is not None
        if keyed_random or self.linger_ms <= 0:
            return self._rng.randrange(num_partitions)
        now = self._clock()
        if self._sticky is None or now >= self._sticky_until or self._sticky >= num_partitions:
            self._sticky = self._rng.randrange(num_partitions)
            self._sticky_until = now + self.linger_ms / 1000
        return self._sticky
