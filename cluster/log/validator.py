"""LogValidator (Kafka's `LogValidator`): checks a produced record set and assigns its offsets.

Checks, with Kafka's error codes: magic 2 only and a whole number of batches (CORRUPT_MESSAGE),
CRC-32C (CORRUPT_MESSAGE), batch size ≤ max.message.bytes (MESSAGE_TOO_LARGE) and ≤
segment.bytes (RECORD_LIST_TOO_LARGE), a known compression codec (CORRUPT_MESSAGE), record count
consistent with the offset delta, a sequence number for every producer id, and no
client-written control batches (INVALID_RECORD, ``LogValidator.validateBatch``). Then the
records themselves, as Kafka iterates them (``DefaultRecordBatch.RecordIterator``,
``DefaultRecord.readFrom``): a compressed batch is decompressed (bounded, see
``pykafka_ops.records.compression``) and every batch's records are walked without decoding
them (``pykafka_ops.records.record_walk``: C, no Python object per record) — a malformed
record, a count that does not match, bytes after the last record or an offset delta out of
order is INVALID_RECORD. A stream that does not decompress (or decompresses to more than the
bound) is CORRUPT_MESSAGE (see ``DECOMPRESSION_ERROR``). Compacted topics also need a key on every record
(``require_keys``: INVALID_RECORD, ``LogValidator.validateKey``).

Per-record errors (KIP-467): where Kafka's ``LogValidator`` throws a ``RecordValidationException``
with ``RecordError``s, ``RecordValidationError.record_errors`` lists every bad record by its index
in the batch, and the Produce answer (v8+) carries them, so a client fails only those records with
INVALID_RECORD (librdkafka fails the others with ``_INVALID_DIFFERENT_RECORD``, to be resent).
Kafka does so for a record without a key on a compacted topic (every such record, with a
message) and for the first record whose offset delta breaks the sequence (no message); the
timestamp checks, which Kafka also reports per record, are not implemented.
Offsets are assigned *in place*: baseOffset and partitionLeaderEpoch are outside the CRC, so
only LogAppendTime topics need a CRC rewrite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from cluster.log.segment import BatchInfo
from pykafka_ops.errors import ErrorCode
from pykafka_ops.records.batch import (
    HEADER_SIZE,
    BatchHeader,
    Compression,
    CorruptRecordError,
    RecordBatch,
    UnsupportedMagicError,
    crc_ok,
    read_batch_header,
    set_base_offset,
    set_log_append_time,
    set_partition_leader_epoch,
)
from pykafka_ops.records.compression import decompressed
from pykafka_ops.records.record_walk import walk_records

#: What a records section that does not decompress answers. Kafka's codecs throw a plain
#: KafkaException there ("Failed to decompress record stream"), which ``Errors.forException``
#: turns into UNKNOWN_SERVER_ERROR, an answer that says nothing of the cause; the bad-input table
#: (reliability.md: "wrong size/corrupt") and the issue ask for CORRUPT_MESSAGE, which clients
#: report as a corrupt batch and do not retry.
DECOMPRESSION_ERROR = ErrorCode.corrupt_message


class RecordError(NamedTuple):
    """Kafka's ``ProduceResponse.RecordError``: a record's index in its batch and why (or None)."""

    batch_index: int
    message: str | None = None

    def __str__(self) -> str:  # as Kafka's RecordError.toString, quoted in the partition's message
        message = "null" if self.message is None else f"'{self.message}'"
        return f"RecordError(batchIndex={self.batch_index}, message={message})"


class RecordValidationError(Exception):
    """The record set is refused; ``error_code`` is what the partition answers and
    ``record_errors`` the records at fault (Kafka's ``RecordValidationException``, KIP-467)."""

    def __init__(self, error_code: ErrorCode, message: str, record_errors: tuple[RecordError, ...] = ()) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.record_errors = record_errors


#: The walker's message for an offset delta out of sequence: "record <index>: offsetDelta …".
_OFFSET_DELTA_PROBLEM = re.compile(r"record (\d+): offsetDelta ")


def _invalid_records(errors: list[RecordError]) -> RecordValidationError:
    """Kafka's ``LogValidator.processRecordErrors`` for INVALID_RECORD record errors."""
    return RecordValidationError(
        ErrorCode.invalid_record,
        f"One or more records have been rejected due to {len(errors)} record errors in total, and only "
        f"showing the first three errors at most: [{', '.join(map(str, errors[:3]))}]",
        tuple(errors))


@dataclass(frozen=True)
class ValidatedBatch:
    """A batch found in a produced record set: its position in the set and its header."""

    position: int
    header: BatchHeader


def validate_record_set(
    records: memoryview, max_message_bytes: int, segment_bytes: int, from_client: bool = True,
    allow_control: bool = False,
) -> list[ValidatedBatch]:
    """Parse and check every batch of ``records``; raise RecordValidationError on the first problem.
    ``allow_control``: a transaction coordinator's markers (Kafka's ``AppendOrigin.COORDINATOR``)."""
    batches: list[ValidatedBatch] = []
    pos, end = 0, len(records)
    if end == 0:
        raise RecordValidationError(ErrorCode.corrupt_message, "empty record set")
    while pos < end:
        try:
            header = read_batch_header(records, pos)
        except UnsupportedMagicError as exc:  # Produce v3+ carries magic-2 batches only
            raise RecordValidationError(ErrorCode.invalid_record, str(exc)) from None
        except CorruptRecordError as exc:
            raise RecordValidationError(ErrorCode.corrupt_message, str(exc)) from None
        if pos + header.size > end:
            raise RecordValidationError(ErrorCode.corrupt_message, "record set ends inside a batch")
        if header.size > max_message_bytes:  # before segment.bytes, as UnifiedLog checks them
            raise RecordValidationError(
                ErrorCode.message_too_large,
                f"batch of {header.size} bytes exceeds max.message.bytes={max_message_bytes}",
            )
        if header.size > segment_bytes:
            raise RecordValidationError(
                ErrorCode.record_list_too_large, f"batch of {header.size} bytes exceeds segment.bytes"
            )
        if not crc_ok(records, pos, header):
            raise RecordValidationError(ErrorCode.corrupt_message, "record batch CRC mismatch")
        try:
            codec = header.compression  # raises for codec ids 5-7, which Kafka's CompressionType.forId refuses
        except CorruptRecordError as exc:
            raise RecordValidationError(ErrorCode.corrupt_message, str(exc)) from None
        if from_client and header.is_control and not allow_control:
            raise RecordValidationError(ErrorCode.invalid_record, "clients may not write control batches")
        # A replica's batches may be empty: the cleaner keeps a batch without records for a
        # producer's last sequence or a segment's last offset (Kafka's RETAIN_EMPTY), and
        # followers copy the leader's log as it is (appendAsFollower does not validate counts).
        empty_from_client = from_client and header.records_count == 0
        if header.records_count < 0 or empty_from_client or (
                from_client and header.records_count != header.last_offset_delta + 1):
            raise RecordValidationError(  # compressed or not, as Kafka's LogValidator.validateBatch
                ErrorCode.invalid_record,
                f"record count {header.records_count} does not match last offset delta {header.last_offset_delta}",
            )
        if from_client and header.is_transactional and header.producer_id < 0:  # KIP-98: a txn needs an id
            raise RecordValidationError(ErrorCode.invalid_record, "a transactional batch without a producer id")
        if from_client and header.producer_id >= 0 and header.base_sequence < 0 and not header.is_control:
            raise RecordValidationError(
                ErrorCode.invalid_record,
                f"invalid sequence number {header.base_sequence} for producer {header.producer_id}")
        _validate_records(records, pos, header, codec)
        batches.append(ValidatedBatch(pos, header))
        pos += header.size
    return batches


def _validate_records(records: memoryview, pos: int, header: BatchHeader, codec: Compression) -> None:
    """Walk the records of the batch at ``pos`` (decompressed first): Kafka's record iteration in
    ``LogValidator.assignOffsetsNonCompressed`` / ``validateMessagesAndAssignOffsetsCompressed``."""
    section = records[pos + HEADER_SIZE : pos + header.size]
    if codec == Compression.NONE:
        problem = walk_records(section, header.records_count, header.last_offset_delta)
    else:
        try:
            with decompressed(codec, section) as plain:  # a view of this thread's scratch map
                problem = walk_records(plain, header.records_count, header.last_offset_delta)
        except (ValueError, OSError, MemoryError) as exc:  # OSError/MemoryError: the bound's map
            raise RecordValidationError(DECOMPRESSION_ERROR, f"Failed to decompress record stream: {exc}") from None
    if problem is None:
        return
    out_of_sequence = _OFFSET_DELTA_PROBLEM.match(problem)
    record_errors = (RecordError(int(out_of_sequence[1])),) if out_of_sequence else ()  # as Kafka: no message
    raise RecordValidationError(ErrorCode.invalid_record, f"Found invalid record structure: {problem}", record_errors)


def require_keys(records: memoryview, batches: list[ValidatedBatch], topic_partition: str) -> None:
    """A compacted topic keeps the newest record per key, so every record needs one: each keyless
    record is a RecordError (Kafka's ``LogValidator.validateKey``), all of them reported."""
    for batch in batches:
        try:
            errors = [RecordError(index, f"Compacted topic cannot accept message without key in topic partition "
                                         f"{topic_partition}.")
                      for index, record in enumerate(RecordBatch(records, batch.position).records())
                      if record.key is None]
        except CorruptRecordError as exc:
            raise RecordValidationError(ErrorCode.corrupt_message, str(exc)) from None
        if errors:
            raise _invalid_records(errors)


def assign_offsets(
    records: memoryview,
    batches: list[ValidatedBatch],
    first_offset: int,
    leader_epoch: int,
    log_append_time_ms: int | None,
) -> list[BatchInfo]:
    """Patch base offsets (and leader epoch, and LogAppendTime) in place; return index info."""
    infos: list[BatchInfo] = []
    next_offset = first_offset
    for batch in batches:
        header = batch.header
        set_base_offset(records, batch.position, next_offset)
        set_partition_leader_epoch(records, batch.position, leader_epoch)
        max_timestamp = header.max_timestamp
        if log_append_time_ms is not None:
            set_log_append_time(records, batch.position, log_append_time_ms)
            max_timestamp = log_append_time_ms
        last_offset = next_offset + header.last_offset_delta
        infos.append(BatchInfo(batch.position, header.size, last_offset, max_timestamp))
        next_offset = last_offset + 1
    return infos
