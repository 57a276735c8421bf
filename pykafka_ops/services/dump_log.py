"""Read segment files offline, as Kafka's ``DumpLogSegments`` (kafka-dump-log.sh) does.

A ``.log`` file gives its batches (Kafka's ``printBatchLevel`` fields) and, with deep iteration,
their records; a ``.index`` its (offset, position) entries and a ``.timeindex`` its (timestamp,
offset) entries, each checked against the ``.log`` beside it as Kafka does. Files are only ever
opened for reading and read with ``os.pread`` one batch at a time, so a segment of a running node
can be dumped (what is past the size seen at open is ignored) and memory stays at one batch.

Bytes after the last complete batch (a torn write, a batch still being appended, zeros) are not an
error: they end the iteration as ``InvalidTail`` (Kafka's "Found N invalid bytes at the end of"),
and a batch whose CRC does not match is reported with ``crc_valid`` false. Records of a batch that
cannot be decoded become ``records_error`` instead of an exception. Legacy message sets (magic 0/1)
are not decoded: they end the iteration as an ``InvalidTail`` naming the magic.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pykafka_ops.records.batch import (
    DELETE_HORIZON_FLAG_MASK,
    HEADER_SIZE,
    LOG_OVERHEAD,
    NO_SEQUENCE,
    RecordBatch,
    TimestampType,
    crc_ok,
    increment_sequence,
    read_batch_header,
)
from pykafka_ops.records.record import ControlRecord, CorruptRecordError

LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX = ".log", ".index", ".timeindex"
#: Bytes up to and including the magic byte (Kafka's ``Records.HEADER_SIZE_UP_TO_MAGIC``).
HEADER_SIZE_UP_TO_MAGIC = 17
#: The smallest record of any format (``LegacyRecord.RECORD_OVERHEAD_V0``).
RECORD_OVERHEAD_V0 = 14
#: kafka-dump-log's ``--max-message-size`` default (5 MiB).
DEFAULT_MAX_MESSAGE_SIZE = 5 * 1024 * 1024
#: Kafka's control record types (``ControlRecordType``), for markers we only name.
CONTROL_TYPES = {0: "ABORT", 1: "COMMIT", 2: "LEADER_CHANGE", 3: "SNAPSHOT_HEADER", 4: "SNAPSHOT_FOOTER",
                 5: "KRAFT_VERSION", 6: "KRAFT_VOTERS"}
COMPRESSION_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
TIMESTAMP_TYPE_NAMES = {TimestampType.CREATE_TIME: "CreateTime", TimestampType.LOG_APPEND_TIME: "LogAppendTime"}

_LENGTH_PREFIX = struct.Struct(">qi")  # baseOffset, batchLength
_OFFSET_ENTRY = struct.Struct(">ii")  # relative offset, position
_TIME_ENTRY = struct.Struct(">qi")  # timestamp, relative offset


@dataclass(frozen=True)
class DumpedRecord:
    """One record as ``--deep-iteration`` shows it (sizes are -1 for a null key or value)."""

    offset: int
    timestamp: int
    key_size: int
    value_size: int
    sequence: int
    header_keys: tuple[str, ...]
    key: bytes | None
    value: bytes | None
    control: str | None = None
    """For a control batch: ``endTxnMarker: COMMIT coordinatorEpoch: 0`` or ``controlType: NAME(id)``."""


@dataclass(frozen=True)
class DumpedBatch:
    """One v2 batch with the fields of Kafka's ``printBatchLevel``; ``records`` only when deep."""

    position: int
    base_offset: int
    last_offset: int
    count: int
    base_sequence: int
    last_sequence: int
    producer_id: int
    producer_epoch: int
    partition_leader_epoch: int
    is_transactional: bool
    is_control: bool
    delete_horizon_ms: int | None
    timestamp_type: str
    max_timestamp: int
    size: int
    magic: int
    compression: str
    crc: int
    crc_valid: bool
    records: tuple[DumpedRecord, ...] | None = None
    records_error: str | None = None


@dataclass(frozen=True)
class InvalidTail:
    """Bytes after the last complete batch: ``size`` bytes from ``position``, and why."""

    position: int
    size: int
    reason: str


@dataclass(frozen=True)
class IndexEntry:
    """An entry of a ``.index`` (offset, position) or a ``.timeindex`` (timestamp, offset)."""

    offset: int
    position: int | None = None
    timestamp: int | None = None


@dataclass
class IndexDump:
    """The entries of an index file and what checking them against the ``.log`` found."""

    path: Path
    kind: str
    """``index`` or ``timeindex``."""
    entries: list[IndexEntry] = field(default_factory=list)
    mismatches: list[tuple[int, int]] = field(default_factory=list)
    """``.index``: (index offset, log offset) of entries not at a batch's last offset, as found."""
    timestamp_mismatches: list[tuple[int, int]] = field(default_factory=list)
    """``.timeindex``: (index timestamp, the batch's max record timestamp)."""
    out_of_order: list[tuple[int, int]] = field(default_factory=list)
    """``.timeindex``: (index timestamp, previous index timestamp) that do not increase."""
    offsets_not_found: list[tuple[int, int]] = field(default_factory=list)
    """``.timeindex``: (indexed offset, last offset of the first batch reaching it, or -1)."""


def base_offset_of(path: Path) -> int:
    """The base offset a segment file is named by (``00000000000000000042.log`` → 42)."""
    stem = path.name.split(".")[0]
    try:
        return int(stem)
    except ValueError:
        raise ValueError(f"{path}: not named by a base offset (20 digits)") from None


def file_kind(path: Path) -> str | None:
    """``log``, ``index`` or ``timeindex`` from the suffix, as Kafka picks; None for any other file."""
    suffix = path.name[path.name.rfind("."):] if "." in path.name else ""
    return {LOG_SUFFIX: "log", INDEX_SUFFIX: "index", TIME_INDEX_SUFFIX: "timeindex"}.get(suffix)


def _records(raw: bytes, header_is_control: bool) -> tuple[tuple[DumpedRecord, ...], str | None]:
    """Decode a batch's records; a failure keeps those decoded before it and gives the reason."""
    batch = RecordBatch(raw)
    header = batch.header
    out: list[DumpedRecord] = []
    try:
        for record in batch.records():
            delta = record.offset - header.base_offset
            sequence = NO_SEQUENCE if header.base_sequence < 0 else increment_sequence(header.base_sequence, delta)
            control = _control_text(record.key, record.value) if header_is_control else None
            out.append(DumpedRecord(
                record.offset, record.timestamp, -1 if record.key is None else len(record.key),
                -1 if record.value is None else len(record.value), sequence,
                tuple(h.key for h in record.headers), record.key, record.value, control))
    except CorruptRecordError as exc:
        return tuple(out), str(exc) or type(exc).__name__
    return tuple(out), None


def _control_text(key: bytes | None, value: bytes | None) -> str:
    """Kafka's deep-iteration text of a control record."""
    if key is None or len(key) < 4:
        return "controlType: UNKNOWN(-1)"
    type_id = struct.unpack_from(">h", key, 2)[0]
    if type_id in (0, 1):
        try:
            marker = ControlRecord.decode(key, value)
        except CorruptRecordError:
            return f"controlType: {CONTROL_TYPES[type_id]}({type_id})"
        return f"endTxnMarker: {marker.type.name} coordinatorEpoch: {marker.coordinator_epoch}"
    return f"controlType: {CONTROL_TYPES.get(type_id, 'UNKNOWN')}({type_id})"


def _batch(raw: bytes, position: int, deep: bool) -> DumpedBatch:
    header = read_batch_header(raw)
    records: tuple[DumpedRecord, ...] | None = None
    error = None
    if deep:
        records, error = _records(raw, header.is_control)
    compression = COMPRESSION_NAMES.get(header.attributes & 0x07, f"unknown({header.attributes & 0x07})")
    return DumpedBatch(
        position=position, base_offset=header.base_offset, last_offset=header.last_offset,
        count=header.records_count, base_sequence=header.base_sequence, last_sequence=header.last_sequence,
        producer_id=header.producer_id, producer_epoch=header.producer_epoch,
        partition_leader_epoch=header.partition_leader_epoch, is_transactional=header.is_transactional,
        is_control=header.is_control,
        delete_horizon_ms=header.base_timestamp if header.attributes & DELETE_HORIZON_FLAG_MASK else None,
        timestamp_type=TIMESTAMP_TYPE_NAMES[header.timestamp_type], max_timestamp=header.max_timestamp,
        size=header.size, magic=header.magic, compression=compression, crc=header.crc,
        crc_valid=crc_ok(raw, 0, header), records=records, records_error=error)


def iter_log(path: Path, deep: bool = False, max_bytes: int | None = None,
             start: int = 0) -> Iterator[DumpedBatch | InvalidTail]:
    """The batches of a ``.log`` file from byte ``start``, then an ``InvalidTail`` if bytes are left.

    Follows Kafka's ``FileLogInputStream``: fewer than 17 bytes, or a batch that would run past
    the end, end the iteration quietly (the rest is the tail). Where Kafka would throw (a length
    below 14, a legacy magic, a header that does not parse) the tail starts there, with the
    reason. ``max_bytes`` reads only the batches wholly inside the first ``max_bytes`` bytes and
    then reports no tail (kafka-dump-log's ``--max-bytes``). Raises OSError if unreadable.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        end = size if max_bytes is None else min(size, max_bytes)
        position = start
        reason = "a truncated batch"
        while end - position >= HEADER_SIZE_UP_TO_MAGIC:
            prefix = os.pread(fd, HEADER_SIZE_UP_TO_MAGIC, position)
            _base_offset, length = _LENGTH_PREFIX.unpack_from(prefix)
            if length < RECORD_OVERHEAD_V0:
                reason = f"record size {length} smaller than minimum record overhead ({RECORD_OVERHEAD_V0})"
                break
            if position + LOG_OVERHEAD + length > end:
                break
            if prefix[16] != 2:
                reason = f"magic {prefix[16]} is not supported (only v2 record batches)"
                break
            if LOG_OVERHEAD + length < HEADER_SIZE:
                reason = f"batch length {length} is shorter than a v2 batch header"
                break
            raw = os.pread(fd, LOG_OVERHEAD + length, position)
            if len(raw) != LOG_OVERHEAD + length:  # the file shrank while we read it
                break
            try:
                yield _batch(raw, position, deep)
            except CorruptRecordError as exc:
                reason = str(exc)
                break
            position += len(raw)
        if max_bytes is None and size > position:
            yield InvalidTail(position, size - position, reason)
    finally:
        os.close(fd)


def offset_gaps(batches: Iterable[DumpedBatch]) -> list[tuple[int, int]]:
    """(offset, next offset) wherever deep-iterated records do not follow each other (compaction)."""
    gaps, last = [], -1
    for batch in batches:
        for record in batch.records or ():
            if last != -1 and record.offset != last + 1:
                gaps.append((last, record.offset))
            last = record.offset
    return gaps


def _read_entries(path: Path, entry: struct.Struct) -> list[tuple[int, int]]:
    with open(path, "rb") as f:
        data = f.read()
    usable = len(data) - len(data) % entry.size
    return list(entry.iter_unpack(data[:usable]))


def _first_batch(log_path: Path, position: int, limit: int | None = None) -> DumpedBatch | None:
    """The first complete batch at ``position`` of ``log_path`` (within ``limit`` bytes), or None."""
    end = None if limit is None else position + limit
    for item in iter_log(log_path, max_bytes=end, start=position):
        return item if isinstance(item, DumpedBatch) else None
    return None


def dump_offset_index(path: Path, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> IndexDump:
    """The entries of a ``.index`` file, each checked to be the last offset of the batch at its
    position in the ``.log`` beside it (Kafka's ``dumpIndex``; not checked if that is missing).

    Like Kafka, an entry equal to the base offset after the first one ends the entries (the zeros
    of a preallocated file)."""
    base = base_offset_of(path)
    log_path = path.with_name(f"{path.name.split('.')[0]}{LOG_SUFFIX}")
    dump = IndexDump(path, "index")
    for i, (relative, position) in enumerate(_read_entries(path, _OFFSET_ENTRY)):
        offset = base + relative
        if offset == base and i > 0:
            break
        dump.entries.append(IndexEntry(offset, position=position))
        if log_path.exists():
            batch = _first_batch(log_path, position, max_message_size)
            found = batch.last_offset if batch is not None else -1
            if found != offset:
                dump.mismatches.append((offset, found))
    return dump


def _floor_position(index_entries: list[tuple[int, int]], base: int, offset: int) -> int:
    """Kafka's ``OffsetIndex.lookup``: position of the largest entry with offset ≤ ``offset``, else 0."""
    best = 0
    for relative, position in index_entries:
        if base + relative > offset:
            break
        best = position
    return best


def dump_time_index(path: Path) -> IndexDump:
    """The entries of a ``.timeindex`` file, checked as Kafka's ``dumpTimeIndex`` does: the entry's
    offset is a batch's last offset, its timestamp that batch's largest record timestamp, and the
    timestamps increase."""
    base = base_offset_of(path)
    stem = path.name.split(".")[0]
    log_path = path.with_name(f"{stem}{LOG_SUFFIX}")
    index_path = path.with_name(f"{stem}{INDEX_SUFFIX}")
    index_entries = _read_entries(index_path, _OFFSET_ENTRY) if index_path.exists() else []
    dump = IndexDump(path, "timeindex")
    previous = -1
    for i, (timestamp, relative) in enumerate(_read_entries(path, _TIME_ENTRY)):
        offset = base + relative
        if offset == base and i > 0:
            break
        dump.entries.append(IndexEntry(offset, timestamp=timestamp))
        if log_path.exists():
            _check_time_entry(dump, log_path, _floor_position(index_entries, base, offset), timestamp, offset,
                              previous)
        previous = timestamp
    return dump


def _check_time_entry(dump: IndexDump, log_path: Path, position: int, timestamp: int, offset: int,
                      previous: int) -> None:
    found: DumpedBatch | None = None
    for item in iter_log(log_path, start=position):
        if isinstance(item, DumpedBatch) and item.last_offset >= offset:
            found = item
            break
    if found is None:
        dump.offsets_not_found.append((offset, -1))
        return
    if found.last_offset != offset:
        dump.offsets_not_found.append((offset, found.last_offset))
        return
    deep = next(b for b in iter_log(log_path, deep=True, start=found.position) if isinstance(b, DumpedBatch))
    max_timestamp = max((r.timestamp for r in deep.records or ()), default=-1)
    if max_timestamp != timestamp:
        dump.timestamp_mismatches.append((timestamp, max_timestamp))
    if previous >= timestamp:
        dump.out_of_order.append((timestamp, previous))
