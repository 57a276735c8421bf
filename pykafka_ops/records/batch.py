"""The v2 record batch (magic 2): layout, header reader, CRC check, in-place patches, reader.

Writing a batch is ``builder.RecordBatchBuilder``'s job; this module holds what reads or
patches one (the broker's produce and fetch paths). Names and layout follow Kafka's
``DefaultRecordBatch`` (the offsets below). The CRC-32C covers
attributes through the end of the batch, so the broker may rewrite baseOffset and
partitionLeaderEpoch in place without recomputing it. For a compressed batch, the records
after recordsCount are one compressed stream. Older magic values (message sets v0/v1) are
rejected with ``UnsupportedMagicError``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from enum import IntEnum
from typing import NamedTuple, NoReturn

from crc32c import crc32c

from pykafka_ops.records.compression import BytesLike, Compression, decompress
from pykafka_ops.records.record import CorruptRecordError, Record, read_record

__all__ = [
    "BatchHeader",
    "Compression",
    "CorruptRecordError",
    "RecordBatch",
    "TimestampType",
    "UnsupportedMagicError",
    "crc_ok",
    "encode_batch",
    "increment_sequence",
    "iter_batches",
    "read_batch_header",
    "set_base_offset",
    "set_log_append_time",
    "set_partition_leader_epoch",
]

# Field offsets inside a batch (DefaultRecordBatch.*_OFFSET).
BASE_OFFSET = 0  # int64, assigned by the broker
LENGTH = 8  # int32, bytes after this field
PARTITION_LEADER_EPOCH = 12  # int32, assigned by the broker
MAGIC = 16  # int8, always 2 here
CRC = 17  # uint32, CRC-32C of attributes .. end of batch
ATTRIBUTES = 21  # int16, the bits below
LAST_OFFSET_DELTA = 23  # int32, also the last sequence delta
BASE_TIMESTAMP = 27  # int64 ms
MAX_TIMESTAMP = 35  # int64 ms
PRODUCER_ID = 43  # int64, -1 = none
PRODUCER_EPOCH = 51  # int16
BASE_SEQUENCE = 53  # int32, -1 = none
RECORDS_COUNT = 57  # int32, then the records
HEADER_SIZE = 61  # DefaultRecordBatch.RECORD_BATCH_OVERHEAD
LOG_OVERHEAD = 12  # baseOffset + batchLength (Records.LOG_OVERHEAD)
MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD

# Attribute bits.
COMPRESSION_CODEC_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_FLAG_MASK = 0x10
CONTROL_FLAG_MASK = 0x20
DELETE_HORIZON_FLAG_MASK = 0x40

CURRENT_MAGIC = 2
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1
NO_TIMESTAMP = -1
_INT32_MAX = 2**31 - 1

HEADER_STRUCT = struct.Struct(">qiibIhiqqqhii")
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT64 = struct.Struct(">q")
assert HEADER_STRUCT.size == HEADER_SIZE


class UnsupportedMagicError(CorruptRecordError):
    """A batch with a magic other than 2 (legacy message sets v0/v1 are not supported)."""


class TimestampType(IntEnum):
    """Attribute bit 3, as in Kafka's ``TimestampType``."""

    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


def increment_sequence(sequence: int, increment: int) -> int:
    """``sequence + increment``, wrapping past INT32_MAX to 0.

    Copies ``DefaultRecordBatch.incrementSequence``; the producer-state checks use it too.
    """
    if sequence > _INT32_MAX - increment:
        return increment - (_INT32_MAX - sequence) - 1
    return sequence + increment


class BatchHeader(NamedTuple):
    """The 61-byte header of a v2 batch, fields in wire order (timestamps in ms)."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes the whole batch occupies, offset and length fields included."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        """Offset of the batch's last record (or last compacted-away record)."""
        return self.base_offset + self.last_offset_delta

    @property
    def compression(self) -> Compression:
        """The codec of the records section; CorruptRecordError for ids 5-7."""
        codec = self.attributes & COMPRESSION_CODEC_MASK
        try:
            return Compression(codec)
        except ValueError:
            raise CorruptRecordError(f"unknown compression codec {codec}") from None

    @property
    def is_transactional(self) -> bool:
        """Attribute bit 4: the batch belongs to a transaction."""
        return bool(self.attributes & TRANSACTIONAL_FLAG_MASK)

    @property
    def is_control(self) -> bool:
        """Attribute bit 5: the batch holds a control record (transaction marker)."""
        return bool(self.attributes & CONTROL_FLAG_MASK)

    @property
    def timestamp_type(self) -> TimestampType:
        """Attribute bit 3: CREATE_TIME (0) or LOG_APPEND_TIME (1)."""
        if self.attributes & TIMESTAMP_TYPE_MASK:
            return TimestampType.LOG_APPEND_TIME
        return TimestampType.CREATE_TIME

    @property
    def last_sequence(self) -> int:
        """Sequence of the last record, wrapping at INT32_MAX; -1 when the batch has none."""
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return increment_sequence(self.base_sequence, self.last_offset_delta)


_unpack_header = HEADER_STRUCT.unpack_from
_new_tuple = tuple.__new__  # skips NamedTuple._make's Python-level length check


def read_batch_header(buf: BytesLike, pos: int = 0) -> BatchHeader:
    """Decode the batch header at ``pos`` with one struct call (the broker's hot path).

    Raises ``UnsupportedMagicError`` for magic != 2 and ``CorruptRecordError`` if fewer than
    61 bytes remain or batchLength is below the 49-byte minimum. It does not check that the
    whole batch is present: compare ``pos + header.size`` with the buffer's end for that.
    """
    if len(buf) - pos < HEADER_SIZE:
        _raise_short_header(buf, pos)
    fields = _unpack_header(buf, pos)
    if fields[3] != CURRENT_MAGIC:
        raise UnsupportedMagicError(f"batch at {pos} has magic {fields[3]}, not 2")
    if fields[1] < MIN_BATCH_LENGTH:
        raise CorruptRecordError(f"batch at {pos} has length {fields[1]} < 49")
    return _new_tuple(BatchHeader, fields)


def _raise_short_header(buf: BytesLike, pos: int) -> NoReturn:
    # The magic byte sits at offset 16 in every format, so report a legacy message set as such.
    if len(buf) - pos > MAGIC and buf[pos + MAGIC] != CURRENT_MAGIC:
        raise UnsupportedMagicError(f"batch at {pos} has magic {buf[pos + MAGIC]}, not 2")
    raise CorruptRecordError(f"only {len(buf) - pos} bytes at {pos}, a batch header needs 61")


def crc_ok(buf: BytesLike, pos: int, header: BatchHeader) -> bool:
    """True if the CRC-32C over attributes .. end of the batch at ``pos`` matches ``header.crc``."""
    end = pos + LOG_OVERHEAD + header.batch_length
    return crc32c(memoryview(buf)[pos + ATTRIBUTES : end]) == header.crc


def iter_batches(
    buf: BytesLike, pos: int = 0, end: int | None = None
) -> Iterator[tuple[int, BatchHeader]]:
    """Yield ``(position, header)`` for each complete batch in ``buf[pos:end]``.

    Stops silently at a truncated tail (a fetch response may end mid-batch, as Kafka's
    ``ByteBufferLogInputStream`` allows); a caller detects it when the position after the
    last batch it saw is short of ``end``. A corrupt or legacy batch raises.
    """
    end = len(buf) if end is None else end
    while end - pos >= HEADER_SIZE:
        header = read_batch_header(buf, pos)
        if pos + header.size > end:
            return
        yield pos, header
        pos += header.size


# --- in-place patches for the broker (buf: bytearray or writable memoryview) ---


def set_base_offset(buf: bytearray | memoryview, pos: int, offset: int) -> None:
    """Write baseOffset of the batch at ``pos``; outside the CRC, so no recompute."""
    _INT64.pack_into(buf, pos + BASE_OFFSET, offset)


def set_partition_leader_epoch(buf: bytearray | memoryview, pos: int, epoch: int) -> None:
    """Write partitionLeaderEpoch of the batch at ``pos``; outside the CRC, so no recompute."""
    _INT32.pack_into(buf, pos + PARTITION_LEADER_EPOCH, epoch)


def set_log_append_time(buf: bytearray | memoryview, pos: int, ts_ms: int) -> None:
    """Mark the batch at ``pos`` LogAppendTime with maxTimestamp = ``ts_ms``, then re-CRC.

    Both fields are covered by the CRC (Kafka's ``DefaultRecordBatch.setMaxTimestamp``).
    """
    (batch_length,) = _INT32.unpack_from(buf, pos + LENGTH)
    end = pos + LOG_OVERHEAD + batch_length
    if end > len(buf):
        raise CorruptRecordError(f"batch at {pos} is truncated: ends at {end} > {len(buf)}")
    (attributes,) = _INT16.unpack_from(buf, pos + ATTRIBUTES)
    _INT16.pack_into(buf, pos + ATTRIBUTES, attributes | TIMESTAMP_TYPE_MASK)
    _INT64.pack_into(buf, pos + MAX_TIMESTAMP, ts_ms)
    _UINT32.pack_into(buf, pos + CRC, crc32c(memoryview(buf)[pos + ATTRIBUTES : end]))


def encode_batch(header: BatchHeader, section: BytesLike) -> bytes:
    """A batch of ``header``'s fields around the records ``section`` (compressed per its
    attributes); batchLength and the CRC are computed here, whatever ``header`` says."""
    batch = bytearray(HEADER_STRUCT.pack(*header._replace(batch_length=MIN_BATCH_LENGTH + len(section), crc=0)))
    batch += section
    _UINT32.pack_into(batch, CRC, crc32c(memoryview(batch)[ATTRIBUTES:]))
    return bytes(batch)


# --- reading whole batches ---


class RecordBatch:
    """Read one batch at ``buf[pos:]``: its header, CRC check and records.

    Holds a reference to ``buf`` without copying it; records are decoded (and decompressed)
    on each call to ``records()``.
    """

    __slots__ = ("_buf", "_pos", "header")

    def __init__(self, buf: BytesLike, pos: int = 0) -> None:
        self.header = read_batch_header(buf, pos)
        if pos + self.header.size > len(buf):
            raise CorruptRecordError(
                f"batch at {pos} needs {self.header.size} bytes, {len(buf) - pos} remain"
            )
        self._buf = buf
        self._pos = pos

    def validate_crc(self) -> None:
        """Raise CorruptRecordError if the stored CRC does not match (Kafka's ``ensureValid``)."""
        if not crc_ok(self._buf, self._pos, self.header):
            raise CorruptRecordError(f"batch at offset {self.header.base_offset}: CRC mismatch")

    def records(self) -> Iterator[Record]:
        """Decode the records with absolute offsets and timestamps (ms).

        In a LogAppendTime batch every record takes maxTimestamp (``DefaultRecordBatch``).
        Raises CorruptRecordError on malformed or undecompressable data.
        """
        header = self.header
        if header.records_count < 0:
            raise CorruptRecordError(f"invalid record count {header.records_count}")
        section = memoryview(self._buf)[self._pos + HEADER_SIZE : self._pos + header.size]
        codec = header.compression
        if codec == Compression.NONE:
            data: BytesLike = section
        else:
            try:
                data = decompress(codec, section)
            except ValueError as exc:
                raise CorruptRecordError(str(exc)) from exc
        log_append_time = (
            header.max_timestamp if header.timestamp_type == TimestampType.LOG_APPEND_TIME else None
        )
        pos = 0
        for _ in range(header.records_count):
            record, pos = read_record(
                data, pos, header.base_offset, header.base_timestamp, log_append_time
            )
            yield record
        if pos != len(data):
            raise CorruptRecordError(
                f"{len(data) - pos} bytes remain after {header.records_count} records"
            )
