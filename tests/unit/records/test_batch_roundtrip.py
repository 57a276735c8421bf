"""RecordBatchBuilder → RecordBatch round trips, for every codec and header field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from pykafka_ops.records import (
    Compression,
    RecordBatch,
    RecordBatchBuilder,
    TimestampType,
    crc_ok,
    read_batch_header,
)

from .helpers import CODECS, build, expected, ours, record_specs


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@settings(max_examples=40, deadline=None)
@given(specs=record_specs)
def test_build_then_read_returns_the_same_records(codec: Compression, specs) -> None:
    batch = build(specs, base_offset=1000, compression=codec)
    header = read_batch_header(batch)
    assert header.size == len(batch)
    assert header.compression == codec
    assert header.records_count == len(specs)
    assert header.last_offset_delta == len(specs) - 1
    assert header.last_offset == 1000 + len(specs) - 1
    assert header.base_timestamp == specs[0][3]  # Kafka: the first record's timestamp
    assert header.max_timestamp == max(ts for *_, ts in specs)
    assert crc_ok(batch, 0, header)
    assert ours(batch) == expected(specs, base_offset=1000)


def test_producer_and_flag_fields_round_trip() -> None:
    builder = RecordBatchBuilder(
        base_offset=7,
        producer_id=123456789012,
        producer_epoch=3,
        base_sequence=42,
        is_transactional=True,
        is_control=True,
        partition_leader_epoch=9,
        compression=Compression.ZSTD,
    )
    builder.append(b"k", b"v", timestamp_ms=1)
    header = RecordBatch(builder.build()).header
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (
        123456789012,
        3,
        42,
    )
    assert header.is_transactional and header.is_control
    assert header.partition_leader_epoch == 9
    assert header.timestamp_type == TimestampType.CREATE_TIME
    assert header.attributes == 0x10 | 0x20 | Compression.ZSTD


def test_defaults_mean_no_producer_and_no_sequence() -> None:
    builder = RecordBatchBuilder()
    builder.append(None, b"v", timestamp_ms=5)
    header = read_batch_header(builder.build())
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (-1, -1, -1)
    assert header.last_sequence == -1
    assert header.partition_leader_epoch == -1
    assert not header.is_transactional and not header.is_control


def test_log_append_time_batch_gives_every_record_max_timestamp() -> None:
    builder = RecordBatchBuilder(timestamp_type=TimestampType.LOG_APPEND_TIME)
    for ts in (10, 30, 20):
        builder.append(b"k", b"v", timestamp_ms=ts)
    batch = RecordBatch(builder.build())
    assert batch.header.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert [r.timestamp for r in batch.records()] == [30, 30, 30]


def test_append_returns_offset_deltas_and_defaults_timestamp_to_now() -> None:
    builder = RecordBatchBuilder()
    assert [builder.append(b"k", None) for _ in range(3)] == [0, 1, 2]
    assert len(builder) == 3
    header = read_batch_header(builder.build())
    assert header.base_timestamp > 1_600_000_000_000  # ms, not s


def test_building_an_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError):
        RecordBatchBuilder().build()


def test_validate_crc_passes_on_a_built_batch() -> None:
    RecordBatch(build([(b"k", b"v", [], 1)])).validate_crc()


def test_record_batch_reads_at_a_position_inside_a_larger_buffer() -> None:
    first = build([(b"a", b"1", [], 1)], base_offset=0)
    second = build([(b"b", b"2", [("h", None)], 2)], base_offset=1, compression=Compression.GZIP)
    buf = memoryview(bytearray(first + second))
    assert ours(buf, len(first)) == [(1, 2, b"b", b"2", [("h", None)])]
