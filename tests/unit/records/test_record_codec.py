"""Zigzag varints, single-record encoding and transaction control records."""

from __future__ import annotations

import pytest
from aiokafka.record.control_record import ABORT_MARKER, COMMIT_MARKER
from aiokafka.record.control_record import ControlRecord as AioControlRecord
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.record.util import decode_varint as kafka_decode_varint
from kafka.record.util import encode_varint as kafka_encode_varint

from pykafka_ops.records import (
    ControlRecord,
    ControlRecordType,
    CorruptRecordError,
    RecordBatch,
    RecordBatchBuilder,
)
from pykafka_ops.records.record import (
    Header,
    Record,
    decode_varint,
    decode_varlong,
    encode_varint,
    encode_varlong,
    read_record,
    write_record,
)

INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (-1, "01"),
        (1, "02"),
        (63, "7e"),
        (-64, "7f"),
        (64, "8001"),
        (-65, "8101"),
        (2**31 - 1, "feffffff0f"),
        (-(2**31), "ffffffff0f"),
    ],
)
def test_varint_matches_kafka_byte_utils_vectors(value: int, encoded: str) -> None:
    assert encode_varint(value).hex() == encoded
    assert decode_varint(bytes.fromhex(encoded), 0) == (value, len(encoded) // 2)


def test_varlong_extremes() -> None:
    assert encode_varlong(2**63 - 1).hex() == "feffffffffffffffff01"
    assert encode_varlong(-(2**63)).hex() == "ffffffffffffffffff01"
    assert decode_varlong(bytes.fromhex("ffffffffffffffffff01"), 0) == (-(2**63), 10)


@settings(max_examples=300)
@given(INT32)
def test_varint_round_trips_and_matches_kafka_python(value: int) -> None:
    encoded = encode_varint(value)
    assert decode_varint(b"\xaa" + encoded + b"\xbb", 1) == (value, 1 + len(encoded))
    out = bytearray()
    kafka_encode_varint(value, out.append)
    assert bytes(out) == encoded
    assert kafka_decode_varint(encoded, 0) == (value, len(encoded))


@settings(max_examples=300)
@given(INT64)
def test_varlong_round_trips(value: int) -> None:
    encoded = encode_varlong(value)
    assert decode_varlong(memoryview(encoded), 0) == (value, len(encoded))


def test_out_of_range_values_are_refused() -> None:
    with pytest.raises(OverflowError):
        encode_varint(2**31)
    with pytest.raises(OverflowError):
        encode_varlong(-(2**63) - 1)


def test_overlong_and_truncated_varints_are_corrupt() -> None:
    with pytest.raises(CorruptRecordError):
        decode_varint(b"\x80\x80\x80\x80\x80\x01", 0)  # 6 bytes > 5
    with pytest.raises(CorruptRecordError):
        decode_varint(b"\x80\x80", 0)
    with pytest.raises(CorruptRecordError):
        decode_varint(b"", 0)


def encode_one(key, value, headers, timestamp_delta=-3, offset_delta=2) -> bytes:
    out = bytearray()
    write_record(out, offset_delta, timestamp_delta, key, value, headers)
    return bytes(out)


def test_write_then_read_one_record_with_absolute_offset_and_timestamp() -> None:
    data = encode_one(b"k", None, [Header("a", b"1"), ("b", None)])
    record, end = read_record(data, 0, base_offset=100, base_timestamp=1_000)
    assert end == len(data)
    assert record == Record(102, 997, b"k", None, (Header("a", b"1"), Header("b", None)))


def test_exact_record_bytes() -> None:
    # length 11 | attrs 0 | ts delta 1 | offset delta 0 | key "k" | value null | 1 header h="v"
    data = encode_one(b"k", None, [("h", b"v")], timestamp_delta=1, offset_delta=0)
    assert (
        data.hex()
        == "16" + "00" + "02" + "00" + "02" + "6b" + "01" + "02" + "02" + "68" + "02" + "76"
    )


@pytest.mark.parametrize(
    "data",
    [
        "0a00000002",  # declares 5 body bytes, has 4
        "0a" + "00" + "00" + "00" + "01" + "01" + "03",  # header count -2
        "0c" + "00" + "00" + "00" + "01" + "01" + "02" + "01",  # header key null
        "0e" + "00" + "00" + "00" + "01" + "01" + "00" + "00",  # body longer than its fields
        "0a" + "00" + "00" + "00" + "20" + "01" + "00",  # key overruns the record
    ],
)
def test_malformed_records_are_corrupt(data: str) -> None:
    with pytest.raises(CorruptRecordError):
        read_record(bytes.fromhex(data), 0, 0, 0)


def test_invalid_utf8_header_keys_are_replaced_like_java() -> None:
    data = bytearray(encode_one(None, None, [("ab", None)]))
    data[data.index(b"ab")] = 0xFF
    record, _ = read_record(bytes(data), 0, 0, 0)
    assert record.headers[0].key == "\ufffdb"


@pytest.mark.parametrize(
    ("marker", "key", "value"),
    [
        (ControlRecord(ControlRecordType.COMMIT, 5), "00000001", "000000000005"),
        (ControlRecord(ControlRecordType.ABORT, 2**31 - 1), "00000000", "00007fffffff"),
    ],
)
def test_control_record_bytes_match_end_transaction_marker(marker, key, value) -> None:
    assert marker.encode_key().hex() == key
    assert marker.encode_value().hex() == value
    assert ControlRecord.decode(bytes.fromhex(key), bytes.fromhex(value)) == marker


def test_control_batch_is_read_by_aiokafka_as_a_marker() -> None:
    markers = {ControlRecordType.COMMIT: COMMIT_MARKER, ControlRecordType.ABORT: ABORT_MARKER}
    for marker_type, aio_marker in markers.items():
        marker = ControlRecord(marker_type, 3)
        builder = RecordBatchBuilder(
            base_offset=10, producer_id=4, producer_epoch=1, is_transactional=True, is_control=True
        )
        builder.append(marker.encode_key(), marker.encode_value(), timestamp_ms=1)
        batch = RecordBatch(builder.build())
        assert batch.header.is_control and batch.header.is_transactional
        (record,) = batch.records()
        assert ControlRecord.decode(record.key, record.value) == marker
        assert AioControlRecord.parse(record.key) == aio_marker


def test_control_records_accept_newer_versions_with_extra_bytes() -> None:
    marker = ControlRecord.decode(bytes.fromhex("000100010000"), bytes.fromhex("000100000007ffff"))
    assert marker == ControlRecord(ControlRecordType.COMMIT, 7)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (None, "000000000001"),
        ("000000", "000000000001"),
        ("00000001", "0000"),
        ("00000002", "000000000001"),  # LEADER_CHANGE is not a transaction marker
        ("ffff0001", "000000000001"),  # negative version
    ],
)
def test_malformed_control_records_are_corrupt(key, value) -> None:
    with pytest.raises(CorruptRecordError):
        ControlRecord.decode(None if key is None else bytes.fromhex(key), bytes.fromhex(value))
