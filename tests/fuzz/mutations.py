"""Byte-level mutations of request frames: length fields, size prefixes, record batches.

Every function here is pure and takes its randomness from the ``random.Random`` it is given,
so a fuzz case is rebuilt exactly from (seed, index) (``fuzz.frames``).

* ``set_length`` rewrites one length-bearing field found by ``bounds.length_fields`` with a
  value of a ``LENGTH_VALUES`` class: huge (uvarint 0xFFFFFFFF = ``ff ff ff ff 0f``, int32
  0x7FFFFFFF), large, negative (-1 or the compact null 0, -2, the type's minimum), off by one.
* ``SIZE_LIES`` are size prefixes that do not match the frame: shorter, longer, negative, above
  ``socket.request.max.bytes``.
* ``BATCH_FAULTS`` turn a valid v2 record batch into a bad one (CRC, length, count, attributes,
  magic, compressed garbage under a valid CRC, ...), as Kafka's validator must refuse them.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

from crc32c import crc32c

from pykafka_ops.protocol.bounds import LengthField
from pykafka_ops.records import batch as rb
from pykafka_ops.records.compression import Compression, compress

#: Kafka's default ``socket.request.max.bytes`` (100 MiB): a larger prefix is refused.
MAX_REQUEST_BYTES = 104_857_600

_I8, _I16, _I32 = struct.Struct(">b"), struct.Struct(">h"), struct.Struct(">i")
_WIDTH = {"int8": _I8, "int16": _I16, "int32": _I32}


def uvarint(value: int) -> bytes:
    """Kafka's unsigned varint (7 bits a byte, low bits first)."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, bytes used) of the varint at ``pos`` of a well-formed buffer."""
    value = shift = 0
    start = pos
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos - start
        shift += 7


# --- length fields ---------------------------------------------------------------------------

#: The value classes ``set_length`` writes, in the order a systematic sweep visits them (the
#: dangerous ones first, so that a short run hits every field with them).
LENGTH_VALUES = ("huge", "large", "null", "minus2", "minimum", "plus1", "minus1")


def _length_value(encoding: str, kind: str, original: int) -> int | bytes:
    """The new value of a length for a value class; bytes for an over-long varint."""
    if encoding == "uvarint":
        table: dict[str, int | bytes] = {
            "huge": 0xFFFFFFFF, "large": 0x7FFFFFFF, "null": 0,
            "minus2": b"\xff\xff\xff\xff\xff\x01",  # 6 bytes: longer than any Kafka varint
            "minimum": 0x80000000,
        }
    else:
        bits = {"int8": 8, "int16": 16, "int32": 32}[encoding]
        top = 2 ** (bits - 1)
        table = {"huge": top - 1, "large": top // 8, "null": -1, "minus2": -2, "minimum": -top}
    if kind == "plus1":
        return original + 1
    if kind == "minus1":
        return original - 1
    return table[kind]


def set_length(body: bytes, field: LengthField, kind: str) -> bytes:
    """``body`` with the length at ``field.position`` replaced by a ``kind`` value (see
    ``LENGTH_VALUES``); the rest of the bytes are left as they were."""
    pos = field.position
    if field.encoding == "uvarint":
        original, used = read_uvarint(body, pos)
    else:
        width = _WIDTH[field.encoding]
        (original,) = width.unpack_from(body, pos)
        used = width.size
    value = _length_value(field.encoding, kind, original)
    if isinstance(value, bytes):
        new = value
    elif field.encoding == "uvarint":
        new = uvarint(max(value, 0) & 0xFFFFFFFFF)
    else:
        width = _WIDTH[field.encoding]
        low, high = -(2 ** (width.size * 8 - 1)), 2 ** (width.size * 8 - 1) - 1
        new = width.pack(min(max(value, low), high))
    return body[:pos] + new + body[pos + used:]


# --- size prefixes ---------------------------------------------------------------------------

#: Size prefix lies: name → the declared size for a payload of ``n`` bytes.
SIZE_LIES: dict[str, Callable[[int, random.Random], int]] = {
    "short_by_one": lambda n, rng: max(n - 1, 0),
    "short_random": lambda n, rng: rng.randrange(0, max(n, 1)),
    "short_header": lambda n, rng: rng.randrange(0, 10),
    "long_by_one": lambda n, rng: n + 1,
    "long_random": lambda n, rng: n + rng.randrange(2, 70_000),
    "long_max": lambda n, rng: MAX_REQUEST_BYTES,
    "negative_one": lambda n, rng: -1,
    "negative_min": lambda n, rng: -(2**31),
    "negative_random": lambda n, rng: -rng.randrange(2, 2**31),
    "above_max": lambda n, rng: MAX_REQUEST_BYTES + 1,
    "int32_max": lambda n, rng: 2**31 - 1,
    "http_get": lambda n, rng: 0x47455420,  # "GET " read as a size
}


def with_prefix(payload: bytes, size: int | None = None) -> bytes:
    """``payload`` with an int32 size prefix: its length, or ``size`` (a lie)."""
    return _I32.pack(len(payload) if size is None else size) + payload


# --- record batches --------------------------------------------------------------------------


def _recrc(batch: bytearray) -> bytearray:
    """Recompute the CRC-32C of a batch (attributes .. end), as a careful attacker would."""
    struct.pack_into(">I", batch, rb.CRC, crc32c(bytes(batch[rb.ATTRIBUTES:])))
    return batch


def _set(fmt: str, offset: int, value: int, recrc: bool = False) -> Callable[[bytearray, random.Random], bytearray]:
    def fault(batch: bytearray, rng: random.Random) -> bytearray:
        struct.pack_into(fmt, batch, offset, value)
        return _recrc(batch) if recrc else batch
    return fault


def _length(delta: Callable[[int], int]) -> Callable[[bytearray, random.Random], bytearray]:
    def fault(batch: bytearray, rng: random.Random) -> bytearray:
        (length,) = _I32.unpack_from(batch, rb.LENGTH)
        _I32.pack_into(batch, rb.LENGTH, max(min(delta(length), 2**31 - 1), -(2**31)))
        return batch
    return fault


def _codec_garbage(codec: Compression) -> Callable[[bytearray, random.Random], bytearray]:
    """Claim ``codec`` and replace the records with random bytes, under a valid CRC."""
    def fault(batch: bytearray, rng: random.Random) -> bytearray:
        del batch[rb.HEADER_SIZE:]
        batch += rng.randbytes(rng.randrange(1, 200))
        _I32.pack_into(batch, rb.LENGTH, len(batch) - rb.LOG_OVERHEAD)
        attributes = _I16.unpack_from(batch, rb.ATTRIBUTES)[0] & ~rb.COMPRESSION_CODEC_MASK | codec
        _I16.pack_into(batch, rb.ATTRIBUTES, attributes)
        return _recrc(batch)
    return fault


def _compressed_junk_records(codec: Compression) -> Callable[[bytearray, random.Random], bytearray]:
    """A well-compressed stream of random bytes where the records should be (valid CRC)."""
    def fault(batch: bytearray, rng: random.Random) -> bytearray:
        del batch[rb.HEADER_SIZE:]
        batch += compress(codec, rng.randbytes(rng.randrange(1, 200)))
        _I32.pack_into(batch, rb.LENGTH, len(batch) - rb.LOG_OVERHEAD)
        attributes = _I16.unpack_from(batch, rb.ATTRIBUTES)[0] & ~rb.COMPRESSION_CODEC_MASK | codec
        _I16.pack_into(batch, rb.ATTRIBUTES, attributes)
        return _recrc(batch)
    return fault


def _flip_records(batch: bytearray, rng: random.Random) -> bytearray:
    """Random bytes in the records section, same length, valid CRC (a poison pill)."""
    batch[rb.HEADER_SIZE:] = rng.randbytes(len(batch) - rb.HEADER_SIZE)
    return _recrc(batch)


def _crc_wrong(batch: bytearray, rng: random.Random) -> bytearray:
    batch[rng.randrange(rb.ATTRIBUTES + 4, len(batch))] ^= 1 << rng.randrange(8)
    return batch


def _truncate(batch: bytearray, rng: random.Random) -> bytearray:
    return batch[: rng.randrange(0, len(batch))]


def _trailing(batch: bytearray, rng: random.Random) -> bytearray:
    return batch + rng.randbytes(rng.randrange(1, 70))


BatchFault = Callable[[bytearray, random.Random], bytearray]

#: Bad record batches by name (each takes a valid v2 batch and the case's rng).
BATCH_FAULTS: dict[str, BatchFault] = {
    "crc_wrong": _crc_wrong,
    "length_short": _length(lambda n: n - 1),
    "length_long": _length(lambda n: n + 1),
    "length_huge": _length(lambda n: 2**31 - 1),
    "length_negative": _length(lambda n: -1),
    "length_below_header": _length(lambda n: rb.MIN_BATCH_LENGTH - 1),
    "count_plus_one": lambda b, rng: _set(">i", rb.RECORDS_COUNT, _I32.unpack_from(b, rb.RECORDS_COUNT)[0] + 1, True)(b, rng),
    "count_zero": _set(">i", rb.RECORDS_COUNT, 0, True),
    "count_negative": _set(">i", rb.RECORDS_COUNT, -1, True),
    "count_huge": _set(">i", rb.RECORDS_COUNT, 2**31 - 1, True),
    "last_offset_delta_huge": _set(">i", rb.LAST_OFFSET_DELTA, 2**31 - 1, True),
    "codec_5": _set(">h", rb.ATTRIBUTES, 5, True),
    "codec_6": _set(">h", rb.ATTRIBUTES, 6, True),
    "codec_7": _set(">h", rb.ATTRIBUTES, 7, True),
    "control_flag": _set(">h", rb.ATTRIBUTES, rb.CONTROL_FLAG_MASK, True),
    "transactional_no_pid": _set(">h", rb.ATTRIBUTES, rb.TRANSACTIONAL_FLAG_MASK, True),
    "magic_0": _set(">b", rb.MAGIC, 0),
    "magic_1": _set(">b", rb.MAGIC, 1),
    "magic_3": _set(">b", rb.MAGIC, 3),
    "gzip_garbage": _codec_garbage(Compression.GZIP),
    "snappy_garbage": _codec_garbage(Compression.SNAPPY),
    "lz4_garbage": _codec_garbage(Compression.LZ4),
    "zstd_garbage": _codec_garbage(Compression.ZSTD),
    "gzip_junk_records": _compressed_junk_records(Compression.GZIP),
    "zstd_junk_records": _compressed_junk_records(Compression.ZSTD),
    "plain_junk_records": _flip_records,
    "truncated": _truncate,
    "trailing_bytes": _trailing,
}


def bad_batch(good: bytes, fault: str, rng: random.Random) -> bytes:
    """``good`` (a valid v2 batch) with ``fault`` applied; a second good batch in front of it
    sometimes, so that the validator has to walk past a good one first."""
    bad = bytes(BATCH_FAULTS[fault](bytearray(good), rng))
    return good + bad if rng.random() < 0.2 else bad
