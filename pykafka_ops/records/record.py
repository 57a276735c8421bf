"""One record inside a v2 batch, its headers, and transaction control records.

Record layout (Kafka's ``DefaultRecord``; varints are zigzag, as in protobuf)::

    length          varint   bytes after this field
    attributes      int8     unused, written as 0
    timestampDelta  varlong  from the batch's baseTimestamp, in ms
    offsetDelta     varint   from the batch's baseOffset
    keyLength       varint   -1 = null key
    key             bytes
    valueLength     varint   -1 = null value
    value           bytes
    headerCount     varint
    headers         [headerKeyLength varint, headerKey utf-8,
                     headerValueLength varint (-1 = null), headerValue]
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "ControlRecord",
    "ControlRecordType",
    "CorruptRecordError",
    "Header",
    "HeaderLike",
    "Record",
    "decode_varint",
    "decode_varlong",
    "encode_varint",
    "encode_varlong",
    "read_record",
    "write_record",
]


class CorruptRecordError(ValueError):
    """Bytes that are not a well-formed v2 record or batch (Kafka's ``CorruptRecordException``)."""


@dataclass(frozen=True, slots=True)
class Header:
    """A record header: a UTF-8 key and an optional value."""

    key: str
    value: bytes | None


HeaderLike = Header | tuple[str, bytes | None]
"""What builders accept for a header: a ``Header`` or a ``(key, value)`` pair."""


@dataclass(frozen=True, slots=True)
class Record:
    """A decoded record with absolute ``offset`` and ``timestamp`` (ms since the epoch)."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


# --- zigzag varints (Kafka's ByteUtils.writeVarint/readVarint and the varlong forms) ---

_VARINT_MAX_BYTES = 5
_VARLONG_MAX_BYTES = 10
_INT32_RANGE = range(-(2**31), 2**31)
_INT64_RANGE = range(-(2**63), 2**63)


def _encode_zigzag(value: int, bits: int) -> bytes:
    n = ((value << 1) ^ (value >> (bits - 1))) & ((1 << bits) - 1)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _decode_zigzag(buf: bytes | memoryview, pos: int, max_bytes: int) -> tuple[int, int]:
    if pos < len(buf) and buf[pos] < 0x80:  # most lengths and deltas fit one byte
        n = buf[pos]
        return (n >> 1) ^ -(n & 1), pos + 1
    n = 0
    shift = 0
    for i in range(pos, pos + max_bytes):
        try:
            byte = buf[i]
        except IndexError:
            raise CorruptRecordError(f"varint at {pos} runs past the end of the data") from None
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (n >> 1) ^ -(n & 1), i + 1
        shift += 7
    raise CorruptRecordError(f"varint at {pos} is longer than {max_bytes} bytes")


def encode_varint(value: int) -> bytes:
    """Zigzag varint of a signed 32-bit ``value`` (1-5 bytes)."""
    if value not in _INT32_RANGE:
        raise OverflowError(f"{value} does not fit a varint (int32)")
    return _encode_zigzag(value, 32)


def encode_varlong(value: int) -> bytes:
    """Zigzag varlong of a signed 64-bit ``value`` (1-10 bytes)."""
    if value not in _INT64_RANGE:
        raise OverflowError(f"{value} does not fit a varlong (int64)")
    return _encode_zigzag(value, 64)


def decode_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Read a zigzag varint at ``pos``; returns ``(value, position after it)``."""
    return _decode_zigzag(buf, pos, _VARINT_MAX_BYTES)


def decode_varlong(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Read a zigzag varlong at ``pos``; returns ``(value, position after it)``."""
    return _decode_zigzag(buf, pos, _VARLONG_MAX_BYTES)


# --- records (Kafka's DefaultRecord.writeTo / readFrom) ---


def _write_nullable(out: bytearray, data: bytes | None) -> None:
    if data is None:
        out += encode_varint(-1)
    else:
        out += encode_varint(len(data))
        out += data


def write_record(
    out: bytearray,
    offset_delta: int,
    timestamp_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[HeaderLike] = (),
) -> None:
    """Append one encoded record (length prefix included) to ``out``; deltas in offsets/ms."""
    body = bytearray(b"\x00")  # attributes: unused by every Kafka version so far
    body += encode_varlong(timestamp_delta)
    body += encode_varint(offset_delta)
    _write_nullable(body, key)
    _write_nullable(body, value)
    pairs = [(h.key, h.value) if isinstance(h, Header) else h for h in headers]
    body += encode_varint(len(pairs))
    for header_key, header_value in pairs:
        _write_nullable(body, header_key.encode())
        _write_nullable(body, header_value)
    out += encode_varint(len(body))
    out += body


def _read_nullable(buf: bytes | memoryview, pos: int, end: int) -> tuple[bytes | None, int]:
    length, pos = decode_varint(buf, pos)
    if length < 0:
        return None, pos
    if pos + length > end:
        raise CorruptRecordError(f"field of {length} bytes at {pos} overruns its record")
    return bytes(buf[pos : pos + length]), pos + length


def read_record(
    buf: bytes | memoryview,
    pos: int,
    base_offset: int,
    base_timestamp: int,
    log_append_time: int | None = None,
) -> tuple[Record, int]:
    """Decode the record at ``pos``; returns ``(record, position after it)``.

    With ``log_append_time`` (ms) set, every record takes that timestamp, as Kafka's
    ``DefaultRecord.readFrom`` does for LogAppendTime batches.
    """
    size, pos = decode_varint(buf, pos)
    end = pos + size
    if size < 1 or end > len(buf):
        raise CorruptRecordError(f"record of {size} bytes at {pos} overruns the records section")
    timestamp_delta, p = decode_varlong(buf, pos + 1)  # skip the attributes byte
    offset_delta, p = decode_varint(buf, p)
    key, p = _read_nullable(buf, p, end)
    value, p = _read_nullable(buf, p, end)
    header_count, p = decode_varint(buf, p)
    if header_count < 0:
        raise CorruptRecordError(f"invalid negative header count {header_count}")
    headers = []
    for _ in range(header_count):
        header_key, p = _read_nullable(buf, p, end)
        if header_key is None:
            raise CorruptRecordError("invalid negative header key size")
        header_value, p = _read_nullable(buf, p, end)
        # Java decodes header keys with new String(bytes, UTF_8), which replaces bad bytes.
        headers.append(Header(header_key.decode(errors="replace"), header_value))
    if p != end:
        raise CorruptRecordError(f"record at {pos} declares {size} bytes but holds {p - pos}")
    timestamp = base_timestamp + timestamp_delta if log_append_time is None else log_append_time
    return Record(base_offset + offset_delta, timestamp, key, value, tuple(headers)), end


# --- control records (Kafka's ControlRecordType and EndTransactionMarker) ---

_CONTROL_KEY = struct.Struct(">hh")  # version, type
_CONTROL_VALUE = struct.Struct(">hi")  # version, coordinatorEpoch
_CONTROL_VERSION = 0


class ControlRecordType(IntEnum):
    """Transaction marker types (``ControlRecordType``; 2-6 are KRaft-internal, not used here)."""

    ABORT = 0
    COMMIT = 1


@dataclass(frozen=True, slots=True)
class ControlRecord:
    """A COMMIT or ABORT marker: the one record of a control batch (``EndTransactionMarker``)."""

    type: ControlRecordType
    coordinator_epoch: int

    def encode_key(self) -> bytes:
        """The record key: version 0 (int16), type (int16)."""
        return _CONTROL_KEY.pack(_CONTROL_VERSION, self.type)

    def encode_value(self) -> bytes:
        """The record value: version 0 (int16), coordinator epoch (int32)."""
        return _CONTROL_VALUE.pack(_CONTROL_VERSION, self.coordinator_epoch)

    @classmethod
    def decode(cls, key: bytes | None, value: bytes | None) -> ControlRecord:
        """Parse a control record's key and value; raises CorruptRecordError if malformed.

        Like Kafka, newer versions are accepted as long as they start with these fields.
        """
        if key is None or len(key) < _CONTROL_KEY.size:
            raise CorruptRecordError("control record key is shorter than 4 bytes")
        if value is None or len(value) < _CONTROL_VALUE.size:
            raise CorruptRecordError("end transaction marker value is shorter than 6 bytes")
        key_version, type_id = _CONTROL_KEY.unpack_from(key)
        value_version, coordinator_epoch = _CONTROL_VALUE.unpack_from(value)
        if key_version < 0 or value_version < 0:
            raise CorruptRecordError("control record with a negative version")
        try:
            marker_type = ControlRecordType(type_id)
        except ValueError:
            raise CorruptRecordError(f"control record type {type_id} is not ABORT/COMMIT") from None
        return cls(marker_type, coordinator_epoch)
