"""Walk the records of a v2 batch without decoding them: the produce path's record check.

``walk_records(data, records_count, last_offset_delta)`` returns None when ``data`` (a batch's
records section, decompressed) holds exactly ``records_count`` well-formed records, or a message
saying why not, which the log validator answers INVALID_RECORD. It is the C extension
``pykafka_ops.records._recordwalk`` when that was built (``setup.py``, an optional extension),
else ``walk_records_py``, the pure-Python reference below; ``IMPLEMENTATION`` says which.
Both follow the same rules and give the same messages (tests/unit/records/test_record_walk.py
checks that on random valid and mutated sections).

The rules are those of Kafka's readers on the broker's produce path (``LogValidator`` iterating
a batch through ``DefaultRecordBatch.RecordIterator`` and ``DefaultRecord.readFrom``), where
every failure is an ``InvalidRecordException`` — INVALID_RECORD (87):

* each record: ``length`` varint, then within that length: attributes (int8), timestampDelta
  (varlong), offsetDelta (varint), keyLength (varint; negative = null) and key, valueLength and
  value, headerCount (varint; negative is invalid, and it cannot exceed the bytes left), and per
  header a headerKeyLength (negative is invalid), key, headerValueLength (negative = null) and
  value; the fields must end exactly at the record's declared length (``readFrom``: "Invalid
  record size");
* varints as ``ByteUtils.readVarint``/``readVarlong``: at most 5 (10) bytes. Kafka drops the
  bits of the last byte beyond 32 (64); we refuse them ("does not fit"), because librdkafka
  decodes every varint as 64 bits and would read another length than Java;
* exactly records_count records: too few bytes is "premature EOF", bytes left after the last
  record "records still remaining" (``RecordIterator.next``).

One rule is ours: offset deltas must increase and stay within lastOffsetDelta (with the client
rule count == lastOffsetDelta + 1 that makes them 0, 1, 2 …). Kafka does not refuse other
deltas: it rebuilds a compressed batch whose inner offsets are not sequential
(``validateMessagesAndAssignOffsetsCompressed``: ``inPlaceAssignment = false``) and keeps an
uncompressed batch's as sent. We store batches as produced, so a delta the consumer would
misread is refused instead. Kafka's in-place compressed path (``DefaultRecord.readPartiallyFrom``)
does not check a record's length against its fields; we do, as ``readFrom`` does, so what we
store every client can read.
"""

from __future__ import annotations

from collections.abc import Callable

from pykafka_ops.records.compression import BytesLike

__all__ = ["IMPLEMENTATION", "WalkRecords", "walk_records", "walk_records_py"]

#: ``(data, records_count, last_offset_delta) -> None | why not``
WalkRecords = Callable[[BytesLike, int, int], "str | None"]


class _Invalid(Exception):
    """Internal: the section is not well formed; ``args[0]`` is the message."""


class _Truncated(_Invalid):
    """Internal: a varint runs past its limit."""


def _unsigned(buf: memoryview, pos: int, limit: int, bits: int, index: int, field: str) -> tuple[int, int]:
    """An unsigned varint of ``bits`` bits (5 or 10 bytes at most) from ``buf[pos:limit]``:
    (value, next pos). Bits beyond ``bits`` in the last byte, which Kafka drops, are refused."""
    max_bytes = (bits + 6) // 7
    value = 0
    for i in range(max_bytes):
        if pos >= limit:
            raise _Truncated(f"record {index}: {field} runs past the end of the record")
        byte = buf[pos]
        pos += 1
        if byte < 0x80 and i == max_bytes - 1 and byte >> (bits - 7 * i):
            raise _Invalid(f"record {index}: {field} varint does not fit {bits} bits")
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return value, pos
    raise _Invalid(f"record {index}: {field} varint is longer than {max_bytes} bytes")


def _varint(buf: memoryview, pos: int, limit: int, index: int, field: str) -> tuple[int, int]:
    """A zigzag varint (int32), as Kafka's ``ByteUtils.readVarint``."""
    raw, pos = _unsigned(buf, pos, limit, 32, index, field)
    return (raw >> 1) ^ -(raw & 1), pos


def _skip_varlong(buf: memoryview, pos: int, limit: int, index: int, field: str) -> int:
    """Past a zigzag varlong (``ByteUtils.readVarlong``); its value is not needed."""
    _raw, pos = _unsigned(buf, pos, limit, 64, index, field)
    return pos


def _skip_bytes(buf: memoryview, pos: int, end: int, index: int, length_field: str, field: str) -> int:
    """Past a length-prefixed field whose negative length means null (``Utils.readBytes``)."""
    length, pos = _varint(buf, pos, end, index, length_field)
    if length >= 0:
        if length > end - pos:
            raise _Invalid(f"record {index}: {field} of {length} bytes overruns the record")
        pos += length
    return pos


def _walk_one(buf: memoryview, pos: int, size: int, index: int, records_count: int,
              previous_delta: int, last_offset_delta: int) -> tuple[int, int]:
    """Check the record at ``pos``; returns (position after it, its offset delta)."""
    try:
        length, pos = _varint(buf, pos, size, index, "length")
    except _Truncated:
        raise _Invalid(f"record {index}: length runs past the end of the records "
                       f"({records_count} declared)") from None
    if length < 0 or length > size - pos:
        raise _Invalid(f"record {index}: length {length} is invalid, {size - pos} bytes remain")
    start, end = pos, pos + length
    if pos >= end:
        raise _Invalid(f"record {index}: attributes runs past the end of the record")
    pos = _skip_varlong(buf, pos + 1, end, index, "timestampDelta")
    offset_delta, pos = _varint(buf, pos, end, index, "offsetDelta")
    if offset_delta <= previous_delta or offset_delta > last_offset_delta:
        raise _Invalid(f"record {index}: offsetDelta {offset_delta} does not follow {previous_delta} "
                       f"within lastOffsetDelta {last_offset_delta}")
    pos = _skip_bytes(buf, pos, end, index, "keyLength", "key")
    pos = _skip_bytes(buf, pos, end, index, "valueLength", "value")
    header_count, pos = _varint(buf, pos, end, index, "headerCount")
    if header_count < 0:
        raise _Invalid(f"record {index}: invalid negative headerCount {header_count}")
    if header_count > end - pos:
        raise _Invalid(f"record {index}: headerCount {header_count} exceeds the {end - pos} bytes left in the record")
    for _ in range(header_count):
        key_length, pos = _varint(buf, pos, end, index, "headerKeyLength")
        if key_length < 0:
            raise _Invalid(f"record {index}: invalid negative headerKeyLength {key_length}")
        if key_length > end - pos:
            raise _Invalid(f"record {index}: headerKey of {key_length} bytes overruns the record")
        pos = _skip_bytes(buf, pos + key_length, end, index, "headerValueLength", "headerValue")
    if pos != end:
        raise _Invalid(f"record {index}: length {length} but its fields end after {pos - start} bytes")
    return pos, offset_delta


def walk_records_py(data: BytesLike, records_count: int, last_offset_delta: int) -> str | None:
    """The reference walker: None if ``data`` holds exactly ``records_count`` well-formed records."""
    if records_count < 0:
        return f"invalid record count {records_count}"
    buf = memoryview(data).cast("B")
    size = len(buf)
    pos, previous_delta = 0, -1
    try:
        for index in range(records_count):
            pos, previous_delta = _walk_one(buf, pos, size, index, records_count, previous_delta,
                                            last_offset_delta)
    except _Invalid as exc:
        return str(exc)
    if pos != size:
        return f"{size - pos} bytes remain after the last of {records_count} records"
    return None


def _select() -> tuple[WalkRecords, str]:
    try:
        from pykafka_ops.records._recordwalk import walk_records as c_walk_records
    except ImportError:  # the optional extension was not built: the reference walker does the job
        return walk_records_py, "python"
    return c_walk_records, "c"


walk_records, IMPLEMENTATION = _select()
