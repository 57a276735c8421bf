"""``__transaction_state`` record formats and placement (Kafka's TransactionLog)."""

from __future__ import annotations

import struct

import pytest

from cluster.group.offsets_topic import java_string_hash
from cluster.txn.transaction_log import (
    CorruptTransactionLogRecordError,
    TransactionLogValue,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
    partition_for,
)


def test_partition_is_abs_java_hash_code_modulo_the_partition_count() -> None:
    # "hello".hashCode() == 99162322 in Java; 99162322 % 50 == 22
    assert java_string_hash("hello") == 99162322
    assert partition_for("hello", 50) == 22
    # Utils.abs(Integer.MIN_VALUE) == 0: "polygenelubricants".hashCode() == Integer.MIN_VALUE
    assert java_string_hash("polygenelubricants") == -(2**31)
    assert partition_for("polygenelubricants", 50) == 0


def test_key_bytes_are_version_0_then_an_int16_string() -> None:
    assert encode_key("tx") == b"\x00\x00\x00\x02tx"
    assert decode_key(encode_key("exactly-once-é")) == "exactly-once-é"


def test_value_v0_bytes_field_by_field() -> None:
    value = TransactionLogValue(7, 3, 60_000, 1, frozenset({("b", 1), ("a", 0), ("a", 2)}), 1000, 900)
    expected = (struct.pack(">hqhib", 0, 7, 3, 60_000, 1) + struct.pack(">i", 2)
                + struct.pack(">h", 1) + b"a" + struct.pack(">iii", 2, 0, 2)
                + struct.pack(">h", 1) + b"b" + struct.pack(">ii", 1, 1)
                + struct.pack(">qq", 1000, 900))
    assert encode_value(value) == expected
    assert decode_value(expected) == value


def test_an_empty_transaction_writes_null_partitions() -> None:
    data = encode_value(TransactionLogValue(7, 0, 60_000, 0, frozenset(), 5, -1))
    assert data[2 + 8 + 2 + 4 + 1:][:4] == b"\xff\xff\xff\xff"
    assert decode_value(data).partitions == frozenset()


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def test_value_v1_flexible_with_tagged_fields_is_read() -> None:
    data = (struct.pack(">hqhib", 1, 9, 4, 30_000, 2) + _uvarint(2)  # one topic
            + _uvarint(2) + b"t" + _uvarint(3) + struct.pack(">ii", 0, 5) + _uvarint(0)
            + struct.pack(">qq", 2000, 1500)
            + _uvarint(2) + _uvarint(0) + _uvarint(8) + struct.pack(">q", 8)  # PreviousProducerId
            + _uvarint(2) + _uvarint(2) + struct.pack(">h", 1))  # ClientTransactionVersion
    value = decode_value(data)
    assert value == TransactionLogValue(9, 4, 30_000, 2, frozenset({("t", 0), ("t", 5)}), 2000, 1500,
                                        previous_producer_id=8)


@pytest.mark.parametrize("data", [b"", b"\x00\x05", encode_value(TransactionLogValue(1, 0, 1, 1))[:-3],
                                  encode_value(TransactionLogValue(1, 0, 1, 1)) + b"x",
                                  struct.pack(">hqhib", 0, 1, 0, 1, 1) + struct.pack(">i", 1_000_000)])
def test_broken_values_raise(data: bytes) -> None:
    with pytest.raises(CorruptTransactionLogRecordError):
        decode_value(data)


def test_broken_keys_raise() -> None:
    for data in (b"\x00\x01\x00\x00", b"\x00\x00\x00\x05ab", b"\x00\x00\xff\xff"):
        with pytest.raises(CorruptTransactionLogRecordError):
            decode_key(data)
