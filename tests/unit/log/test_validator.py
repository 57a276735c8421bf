"""LogValidator: validate_record_set error codes (Kafka's) and assign_offsets in-place patches."""

from __future__ import annotations

import pytest
from crc32c import crc32c

from cluster.log.validator import RecordValidationError, assign_offsets, validate_record_set
from pykafka_ops.errors import ErrorCode
from pykafka_ops.records import Compression, RecordBatch
from pykafka_ops.records.batch import read_batch_header

from .helpers import T0, batch, produced

MAX = 1 << 20
SEGMENT = 1 << 30


def _error(records: memoryview, max_message_bytes: int = MAX, segment_bytes: int = SEGMENT, **kw) -> ErrorCode:
    with pytest.raises(RecordValidationError) as info:
        validate_record_set(records, max_message_bytes, segment_bytes, **kw)
    return info.value.error_code


def test_valid_record_set_yields_every_batch_with_its_position() -> None:
    first, second = batch(3), batch(2, compression=Compression.GZIP)
    validated = validate_record_set(produced(first, second), MAX, SEGMENT)
    assert [(v.position, v.header.records_count) for v in validated] == [(0, 3), (len(first), 2)]


def test_bad_crc_is_corrupt_message() -> None:
    records = produced(batch(3))
    records[-1] ^= 0x01
    assert _error(records) == ErrorCode.corrupt_message


def test_batch_larger_than_max_message_bytes_is_message_too_large() -> None:
    big = batch(1, value_size=2000)
    assert _error(produced(big), max_message_bytes=len(big) - 1) == ErrorCode.message_too_large
    validate_record_set(produced(big), len(big), SEGMENT)  # exactly max.message.bytes is fine


def test_batch_larger_than_segment_bytes_is_record_list_too_large() -> None:
    big = batch(1, value_size=2000)
    assert _error(produced(big), segment_bytes=len(big) - 1) == ErrorCode.record_list_too_large


def test_size_is_checked_before_the_crc() -> None:
    # Kafka checks batch size (RecordTooLargeException) before ensureValid() (CorruptRecordException).
    records = produced(batch(1, value_size=2000))
    records[-1] ^= 0x01
    assert _error(records, max_message_bytes=100) == ErrorCode.message_too_large


def test_control_batch_from_a_client_is_invalid_record() -> None:
    control = batch(1, producer_id=5, epoch=0, seq=0, is_control=True, is_transactional=True)
    assert _error(produced(control)) == ErrorCode.invalid_record
    validate_record_set(produced(control), MAX, SEGMENT, from_client=False)  # the coordinator may


def test_partial_trailing_batch_is_corrupt_message() -> None:
    whole = batch(2)
    assert _error(produced(whole, whole[:-1])) == ErrorCode.corrupt_message
    assert _error(produced(whole, whole[:30])) == ErrorCode.corrupt_message  # a torn batch header
    assert _error(produced(whole[:60])) == ErrorCode.corrupt_message


def test_empty_record_set_is_corrupt_message() -> None:
    assert _error(produced()) == ErrorCode.corrupt_message


def test_legacy_magic_is_refused() -> None:
    records = produced(batch(1))
    records[16] = 1
    assert _error(records) in (ErrorCode.invalid_record, ErrorCode.corrupt_message)


def test_record_count_must_match_the_offset_delta() -> None:
    records = produced(batch(3))
    records[57:61] = (2).to_bytes(4, "big")  # recordsCount is inside the CRC: fix it up
    records[17:21] = crc32c(records[21:]).to_bytes(4, "big")
    assert _error(records) == ErrorCode.invalid_record


def test_an_empty_batch_is_refused_from_a_client_and_copied_by_a_replica() -> None:
    """The cleaner keeps batches without records (RETAIN_EMPTY); a follower copies them as they are."""
    from cluster.log.cleaner_transactions import empty_batch

    records = memoryview(bytearray(produced(batch(3))))
    header = read_batch_header(records, 0)
    empty = memoryview(bytearray(empty_batch(header, keep_producer=False)))
    assert read_batch_header(empty, 0).records_count == 0
    assert _error(empty) == ErrorCode.invalid_record
    (only,) = validate_record_set(empty, MAX, SEGMENT, from_client=False)
    assert only.header.last_offset == header.last_offset


def test_assign_offsets_patches_base_offsets_and_leader_epoch_in_place() -> None:
    first, second, third = batch(3), batch(1), batch(4, compression=Compression.LZ4)
    records = produced(first, second, third)
    frame = records.obj
    validated = validate_record_set(records, MAX, SEGMENT)
    infos = assign_offsets(records, validated, 500, 7, None)
    assert [(i.position_in_write, i.size, i.last_offset) for i in infos] == [
        (0, len(first), 502), (len(first), len(second), 503), (len(first) + len(second), len(third), 507)]
    assert [i.max_timestamp for i in infos] == [T0 + 2, T0, T0 + 3]
    assert records.obj is frame  # patched in place, not copied
    offsets = []
    for info in infos:
        rb = RecordBatch(frame, info.position_in_write)
        rb.validate_crc()  # base offset and leader epoch sit outside the CRC
        assert rb.header.partition_leader_epoch == 7
        assert rb.header.crc == read_batch_header(bytes(first + second + third), info.position_in_write).crc
        offsets += [r.offset for r in rb.records()]
    assert offsets == list(range(500, 508))


def test_log_append_time_sets_max_timestamp_and_recomputes_the_crc() -> None:
    original = batch(3, compression=Compression.ZSTD)
    records = produced(original)
    validated = validate_record_set(records, MAX, SEGMENT)
    [info] = assign_offsets(records, validated, 0, 1, T0 + 99_999)
    assert info.max_timestamp == T0 + 99_999
    rb = RecordBatch(records.obj)
    rb.validate_crc()
    assert rb.header.crc != read_batch_header(original).crc
    assert rb.header.timestamp_type == 1 and rb.header.max_timestamp == T0 + 99_999
    assert [r.timestamp for r in rb.records()] == [T0 + 99_999] * 3
