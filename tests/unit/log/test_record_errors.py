"""Per-record errors of the log validator (Kafka's ``RecordValidationException``, KIP-467)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from crc32c import crc32c

from cluster.log.partition_log import PartitionLog
from cluster.log.validator import RecordError, RecordValidationError, require_keys, validate_record_set
from pykafka_ops.errors import ErrorCode
from pykafka_ops.records import Compression, RecordBatchBuilder
from pykafka_ops.records.batch import ATTRIBUTES, CRC, HEADER_SIZE

from .helpers import DAY_MS, T0, log_config, produced

MAX, SEGMENT = 1 << 20, 1 << 30


def _keyed(keys: list[bytes | None], codec: Compression = Compression.NONE) -> bytes:
    b = RecordBatchBuilder(compression=codec)
    for i, key in enumerate(keys):
        b.append(key, b"v%d" % i, timestamp_ms=T0)
    return b.build()


def _refused(records: memoryview, topic_partition: str = "t-0") -> RecordValidationError:
    with pytest.raises(RecordValidationError) as info:
        require_keys(records, validate_record_set(records, MAX, SEGMENT), topic_partition)
    return info.value


@pytest.mark.parametrize("codec", [Compression.NONE, Compression.GZIP])
def test_every_keyless_record_of_a_compacted_topic_is_listed(codec: Compression) -> None:
    error = _refused(produced(_keyed([b"a", None, b"c", None, None, None], codec)), "orders-2")
    message = "Compacted topic cannot accept message without key in topic partition orders-2."
    assert error.error_code == ErrorCode.invalid_record
    assert error.record_errors == tuple(RecordError(i, message) for i in (1, 3, 4, 5))
    assert str(error) == (  # LogValidator.processRecordErrors: the count and the first three
        "One or more records have been rejected due to 4 record errors in total, and only showing the first three "
        f"errors at most: [RecordError(batchIndex=1, message='{message}'), RecordError(batchIndex=3, "
        f"message='{message}'), RecordError(batchIndex=4, message='{message}')]")


def test_keyed_records_pass() -> None:
    records = produced(_keyed([b"a", b"b"]))
    require_keys(records, validate_record_set(records, MAX, SEGMENT), "t-0")


def test_an_offset_delta_out_of_sequence_names_its_record() -> None:
    """As Kafka's compressed path ("does not have incremental offsets"): RecordError(index), no message."""
    raw = bytearray(_keyed([b"a", b"b", b"c"]))
    first_length = raw[HEADER_SIZE] >> 1  # zigzag varint of one byte: the record's length
    second = HEADER_SIZE + 1 + first_length
    assert raw[second + 3] == 2  # length, attributes, timestampDelta 0, then offsetDelta 1 (zigzag 2)
    raw[second + 3] = 0  # offsetDelta 0 again
    struct.pack_into(">I", raw, CRC, crc32c(bytes(raw[ATTRIBUTES:])))
    with pytest.raises(RecordValidationError) as info:
        validate_record_set(produced(bytes(raw)), MAX, SEGMENT)
    assert info.value.error_code == ErrorCode.invalid_record
    assert info.value.record_errors == (RecordError(1, None),)


def test_batch_level_problems_carry_no_record_errors() -> None:
    raw = bytearray(_keyed([b"a"]))
    raw[-1] ^= 1
    with pytest.raises(RecordValidationError) as info:
        validate_record_set(produced(bytes(raw)), MAX, SEGMENT)
    assert (info.value.error_code, info.value.record_errors) == (ErrorCode.corrupt_message, ())


def test_nothing_of_a_refused_batch_is_appended(tmp_path: Path) -> None:
    log = PartitionLog.open(tmp_path / "t-0", log_config(**{"cleanup.policy": "compact"}), DAY_MS,
                            clean_shutdown=True, recovery_point=0, log_start_offset=0)
    with pytest.raises(RecordValidationError) as info:
        log.append_as_leader(produced(_keyed([b"a", None])), leader_epoch=0, now_ms=T0)
    assert [e.batch_index for e in info.value.record_errors] == [1]
    assert "topic partition t-0." in info.value.record_errors[0].message
    assert log.log_end_offset == 0
    log.append_as_leader(produced(_keyed([b"a"])), leader_epoch=0, now_ms=T0)
    assert log.log_end_offset == 1
