"""Header layout, CRC coverage, in-place patches, iter_batches and sequence wrap-around."""

from __future__ import annotations

import struct

import pytest

from pykafka_ops.records import (
    Compression,
    CorruptRecordError,
    RecordBatch,
    RecordBatchBuilder,
    TimestampType,
    UnsupportedMagicError,
    crc_ok,
    increment_sequence,
    iter_batches,
    read_batch_header,
    set_base_offset,
    set_log_append_time,
    set_partition_leader_epoch,
)
from pykafka_ops.records import batch as batch_mod

from .helpers import build, ours

INT32_MAX = 2**31 - 1


def small_batch(**builder_args) -> bytes:
    return build(
        [(b"key", b"value", [("h", b"x")], 1_000), (None, b"v2", [], 1_005)], **builder_args
    )


def test_offset_constants_match_the_wire_layout() -> None:
    batch = small_batch(
        base_offset=0x0102030405060708,
        partition_leader_epoch=11,
        producer_id=77,
        producer_epoch=5,
        base_sequence=99,
    )
    h = read_batch_header(batch)
    assert struct.unpack_from(">q", batch, batch_mod.BASE_OFFSET)[0] == h.base_offset
    assert (
        struct.unpack_from(">i", batch, batch_mod.LENGTH)[0] == len(batch) - batch_mod.LOG_OVERHEAD
    )
    assert struct.unpack_from(">i", batch, batch_mod.PARTITION_LEADER_EPOCH)[0] == 11
    assert batch[batch_mod.MAGIC] == 2
    assert struct.unpack_from(">I", batch, batch_mod.CRC)[0] == h.crc
    assert struct.unpack_from(">h", batch, batch_mod.ATTRIBUTES)[0] == h.attributes
    assert struct.unpack_from(">i", batch, batch_mod.LAST_OFFSET_DELTA)[0] == 1
    assert struct.unpack_from(">q", batch, batch_mod.BASE_TIMESTAMP)[0] == 1_000
    assert struct.unpack_from(">q", batch, batch_mod.MAX_TIMESTAMP)[0] == 1_005
    assert struct.unpack_from(">q", batch, batch_mod.PRODUCER_ID)[0] == 77
    assert struct.unpack_from(">h", batch, batch_mod.PRODUCER_EPOCH)[0] == 5
    assert struct.unpack_from(">i", batch, batch_mod.BASE_SEQUENCE)[0] == 99
    assert struct.unpack_from(">i", batch, batch_mod.RECORDS_COUNT)[0] == 2
    assert batch_mod.HEADER_SIZE == 61


def test_read_batch_header_accepts_bytes_bytearray_and_memoryview() -> None:
    batch = small_batch()
    headers = {read_batch_header(b) for b in (batch, bytearray(batch), memoryview(batch))}
    assert len(headers) == 1


@pytest.mark.parametrize("remaining", [0, 12, 60])
def test_fewer_than_61_bytes_is_corrupt(remaining: int) -> None:
    with pytest.raises(CorruptRecordError):
        read_batch_header(small_batch()[:remaining])


@pytest.mark.parametrize("magic", [0, 1, 3])
def test_other_magic_values_are_unsupported(magic: int) -> None:
    batch = bytearray(small_batch())
    batch[batch_mod.MAGIC] = magic
    with pytest.raises(UnsupportedMagicError):
        read_batch_header(batch)
    with pytest.raises(UnsupportedMagicError):  # a short legacy message set too
        read_batch_header(batch[:40])


def test_batch_length_below_49_is_corrupt() -> None:
    batch = bytearray(small_batch())
    struct.pack_into(">i", batch, batch_mod.LENGTH, 48)
    with pytest.raises(CorruptRecordError):
        read_batch_header(batch)


def test_unknown_compression_codec_is_corrupt() -> None:
    batch = bytearray(small_batch())
    batch[batch_mod.ATTRIBUTES + 1] |= 0x07
    with pytest.raises(CorruptRecordError):
        _ = read_batch_header(batch).compression


def test_crc_detects_any_flipped_byte_it_covers_and_ignores_the_others() -> None:
    batch = small_batch(compression=Compression.LZ4)
    for i in range(len(batch)):
        flipped = bytearray(batch)
        flipped[i] ^= 0x01
        if (
            i in (batch_mod.LENGTH + 3, batch_mod.MAGIC)
            or batch_mod.CRC <= i < batch_mod.ATTRIBUTES
        ):
            continue  # changing the length, magic or stored crc breaks parsing, not coverage
        header = read_batch_header(flipped)
        assert crc_ok(flipped, 0, header) == (i < batch_mod.CRC), f"byte {i}"
    flipped = bytearray(batch)
    flipped[-1] ^= 0x80
    with pytest.raises(CorruptRecordError):
        RecordBatch(flipped).validate_crc()


def test_crc_of_a_truncated_batch_is_not_ok() -> None:
    batch = small_batch()
    assert not crc_ok(batch[:-1], 0, read_batch_header(batch))


def test_set_base_offset_and_leader_epoch_keep_the_crc_valid() -> None:
    buf = bytearray(b"\xff" * 5 + small_batch(base_offset=0))
    set_base_offset(buf, 5, 2**40)
    set_partition_leader_epoch(memoryview(buf), 5, 17)
    header = read_batch_header(buf, 5)
    assert (header.base_offset, header.partition_leader_epoch) == (2**40, 17)
    assert crc_ok(buf, 5, header)
    assert [r.offset for r in RecordBatch(buf, 5).records()] == [2**40, 2**40 + 1]


@pytest.mark.parametrize("codec", [Compression.NONE, Compression.SNAPPY], ids=lambda c: c.name)
def test_set_log_append_time_recomputes_the_crc(codec: Compression) -> None:
    first = small_batch()
    buf = bytearray(first + small_batch(compression=codec, is_transactional=True))
    set_log_append_time(memoryview(buf), len(first), 1_700_000_000_123)
    header = read_batch_header(buf, len(first))
    assert crc_ok(buf, len(first), header)
    assert header.timestamp_type == TimestampType.LOG_APPEND_TIME
    assert header.max_timestamp == 1_700_000_000_123
    assert header.compression == codec and header.is_transactional  # other bits kept
    assert [r.timestamp for r in RecordBatch(buf, len(first)).records()] == [1_700_000_000_123] * 2
    assert crc_ok(buf, 0, read_batch_header(buf))  # the neighbour is untouched


def test_set_log_append_time_refuses_a_truncated_batch() -> None:
    with pytest.raises(CorruptRecordError):
        set_log_append_time(bytearray(small_batch()[:-1]), 0, 1)


def three_batches() -> tuple[bytes, list[int]]:
    batches = [small_batch(base_offset=o) for o in (0, 2, 4)]
    starts = [0, len(batches[0]), len(batches[0]) + len(batches[1])]
    return b"".join(batches), starts


def test_iter_batches_yields_each_batch_position_and_header() -> None:
    buf, starts = three_batches()
    found = list(iter_batches(buf))
    assert [pos for pos, _ in found] == starts
    assert [h.base_offset for _, h in found] == [0, 2, 4]
    assert [pos for pos, _ in iter_batches(buf, starts[1])] == starts[1:]
    assert [pos for pos, _ in iter_batches(buf, 0, starts[2])] == starts[:2]


def test_iter_batches_stops_before_a_truncated_tail_at_every_cut() -> None:
    buf, starts = three_batches()
    for cut in range(starts[2] + 1, len(buf)):
        found = list(iter_batches(buf[:cut]))
        assert [pos for pos, _ in found] == starts[:2], f"cut at {cut}"
        last_pos, last = found[-1]
        assert last_pos + last.size == starts[2] < cut  # how a caller spots the tail


def test_iter_batches_raises_on_a_corrupt_batch_mid_stream() -> None:
    buf, starts = three_batches()
    corrupt = bytearray(buf)
    struct.pack_into(">i", corrupt, starts[1] + batch_mod.LENGTH, 10)
    with pytest.raises(CorruptRecordError):
        list(iter_batches(corrupt))


def test_record_batch_refuses_a_truncated_batch() -> None:
    with pytest.raises(CorruptRecordError):
        RecordBatch(small_batch()[:-1])


@pytest.mark.parametrize(
    ("sequence", "increment", "result"),
    [
        (0, 0, 0),
        (5, 3, 8),
        (INT32_MAX - 1, 1, INT32_MAX),
        (INT32_MAX, 1, 0),
        (INT32_MAX - 1, 3, 1),
        (INT32_MAX - 4, 10, 5),
    ],
)
def test_increment_sequence_wraps_at_int32_max_like_kafka(sequence, increment, result) -> None:
    assert increment_sequence(sequence, increment) == result


def test_last_sequence_wraps_and_minus_one_stays() -> None:
    builder = RecordBatchBuilder(producer_id=1, producer_epoch=0, base_sequence=INT32_MAX - 1)
    for _ in range(3):
        builder.append(b"k", b"v", timestamp_ms=0)
    header = read_batch_header(builder.build())
    assert (header.base_sequence, header.last_offset_delta, header.last_sequence) == (
        INT32_MAX - 1,
        2,
        0,
    )
    assert read_batch_header(small_batch()).last_sequence == -1


def test_records_of_a_batch_with_trailing_garbage_are_corrupt() -> None:
    batch = bytearray(small_batch())
    batch += b"\x00"
    struct.pack_into(">i", batch, batch_mod.LENGTH, len(batch) - batch_mod.LOG_OVERHEAD)
    with pytest.raises(CorruptRecordError):
        list(RecordBatch(batch).records())
    assert ours(small_batch())  # the untouched batch reads fine
