"""`pko dump-log --files F[,F…]`: kafka-dump-log.sh (Kafka's ``DumpLogSegments``), offline.

Reads segment files of a node's data dir (``<data_dir>/node-N/<topic>-<partition>/``) read-only,
while the node runs or after it stopped. The text is kafka-dump-log's, line for line::

    Dumping 00000000000000000000.log
    Log starting offset: 0
    baseOffset: 0 lastOffset: 2 count: 3 baseSequence: 0 lastSequence: 2 producerId: 1000 …
    | offset: 0 CreateTime: 1700000000000 keySize: 1 valueSize: 5 sequence: 0 headerKeys: [] key: k payload: hello

``.index`` files print ``offset: N position: P`` and ``.timeindex`` files ``timestamp: T offset: N``,
each checked against the ``.log`` beside it; mismatches, out-of-order timestamps and
non-consecutive offsets go to stderr at the end with Kafka's wording. Bytes after the last whole
batch end the file with ``Found N invalid bytes at the end of NAME`` and a bad CRC shows as
``isvalid: false``: neither is an error (exit 0). ``--output json|yaml`` gives one object per file
(schema in ``_file_payload``) for scripts that compare replicas: offsets, leader epochs, producer
ids and epochs, sequences, CRCs. A missing file is one line and exit 1, before anything is printed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands._exit import USAGE, CliError, handle_errors

if TYPE_CHECKING:
    from pykafka_ops.services.dump_log import (
        DumpedBatch,
        DumpedRecord,
        IndexDump,
        InvalidTail,
    )

app = typer.Typer(add_completion=False, rich_markup_mode=None)

#: Kafka's prefix of a record line (``DumpLogSegments.RecordIndent``).
RECORD_INDENT = "|"


class DumpOutput(StrEnum):
    """``--output`` choices: kafka-dump-log's text, or a machine format."""

    text = "text"
    json = "json"
    yaml = "yaml"


def _bool(value: bool) -> str:
    return str(value).lower()


def batch_line(b: DumpedBatch) -> str:
    """Kafka's ``printBatchLevel`` line of a v2 batch (a ``DumpedBatch``)."""
    horizon = "OptionalLong.empty" if b.delete_horizon_ms is None else f"OptionalLong[{b.delete_horizon_ms}]"
    return (f"baseOffset: {b.base_offset} lastOffset: {b.last_offset} count: {b.count} "
            f"baseSequence: {b.base_sequence} lastSequence: {b.last_sequence} producerId: {b.producer_id} "
            f"producerEpoch: {b.producer_epoch} partitionLeaderEpoch: {b.partition_leader_epoch} "
            f"isTransactional: {_bool(b.is_transactional)} isControl: {_bool(b.is_control)} "
            f"deleteHorizonMs: {horizon} position: {b.position} {b.timestamp_type}: {b.max_timestamp} "
            f"size: {b.size} magic: {b.magic} compresscodec: {b.compression} crc: {b.crc} "
            f"isvalid: {_bool(b.crc_valid)}")


def _string(raw: bytes) -> str:
    # Kafka's StringDecoder: new String(bytes, UTF_8), bad bytes replaced.
    return raw.decode("utf-8", "replace")


def record_line(b: DumpedBatch, r: DumpedRecord, print_data: bool, skip_metadata: bool = False) -> str:
    """Kafka's deep-iteration line of record ``r`` of batch ``b``, quirks included (with
    ``--skip-record-metadata`` and a null key the payload comes without the ``|``)."""
    line, prefix = "", f"{RECORD_INDENT} "
    if not skip_metadata:
        header_keys = ",".join(r.header_keys)
        line = (f"{prefix}offset: {r.offset} {b.timestamp_type}: {r.timestamp} keySize: {r.key_size} "
                f"valueSize: {r.value_size} sequence: {r.sequence} headerKeys: [{header_keys}]")
        if r.control is not None:
            line += f" {r.control}"
        prefix = " "
    if print_data and not b.is_control:
        if r.key is not None:
            line += f"{prefix}key: {_string(r.key)}"
        if r.value is not None:
            line += f" payload: {_string(r.value)}"
    return line


def log_text(name: str, items: Iterable[DumpedBatch | InvalidTail], deep: bool, print_data: bool, skip_metadata: bool = False,
             gaps: list[tuple[int, int]] | None = None) -> Iterator[str]:
    """The lines of a ``.log`` dump after its ``Log starting offset`` line; offset gaps found by deep
    iteration are appended to ``gaps`` as (offset, next offset)."""
    from pykafka_ops.services.dump_log import InvalidTail

    last = -1
    for item in items:
        if isinstance(item, InvalidTail):
            yield f"Found {item.size} invalid bytes at the end of {name}"
            continue
        yield batch_line(item)
        if not deep:
            continue
        for record in item.records or ():
            if last != -1 and record.offset != last + 1 and gaps is not None:
                gaps.append((last, record.offset))
            last = record.offset
            yield record_line(item, record, print_data, skip_metadata)
        if item.records_error is not None:
            yield f"Found invalid records in the batch at position {item.position}: {item.records_error}"


def _pairs(pairs: list[tuple[int, int]], first: str, second: str) -> list[dict[str, int]]:
    return [{first: a, second: b} for a, b in pairs]


def _batch_payload(b: DumpedBatch, print_data: bool) -> dict[str, Any]:
    from pykafka_ops.services.record_codec import encode_bytes

    records = None
    if b.records is not None:
        records = []
        for r in b.records:
            record: dict[str, Any] = {"offset": r.offset, "timestamp": r.timestamp, "key_size": r.key_size,
                                      "value_size": r.value_size, "sequence": r.sequence,
                                      "header_keys": list(r.header_keys), "control": r.control}
            if print_data:
                record["key"], record["payload"] = encode_bytes(r.key), encode_bytes(r.value)
            records.append(record)
    return {"base_offset": b.base_offset, "last_offset": b.last_offset, "count": b.count,
            "base_sequence": b.base_sequence, "last_sequence": b.last_sequence, "producer_id": b.producer_id,
            "producer_epoch": b.producer_epoch, "partition_leader_epoch": b.partition_leader_epoch,
            "is_transactional": b.is_transactional, "is_control": b.is_control,
            "delete_horizon_ms": b.delete_horizon_ms, "position": b.position, "timestamp_type": b.timestamp_type,
            "max_timestamp": b.max_timestamp, "size": b.size, "magic": b.magic, "compression": b.compression,
            "crc": b.crc, "crc_valid": b.crc_valid, "records": records, "records_error": b.records_error}


def _file_payload(name: str, kind: str | None, path: Path, deep: bool, print_data: bool,
                  max_message_size: int, max_bytes: int | None) -> dict[str, Any]:
    """One file as JSON. log: ``log_start_offset, batches[], invalid_bytes, invalid_position,
    invalid_reason, non_consecutive_offsets[]`` (each batch's ``records`` is a list with
    ``--deep-iteration``, else null; ``key``/``payload`` only with ``--print-data-log``);
    index: ``entries[{offset, position}], mismatches[{index_offset, log_offset}]``; timeindex:
    ``entries[{timestamp, offset}], timestamp_mismatches, out_of_order, offsets_not_found``."""
    from pykafka_ops.services import dump_log as service

    if kind == "log":
        batches, tail = [], None
        for item in service.iter_log(path, deep, max_bytes):
            if isinstance(item, service.InvalidTail):
                tail = item
            else:
                batches.append(item)
        return {"file": name, "type": kind, "log_start_offset": service.base_offset_of(path),
                "batches": [_batch_payload(b, print_data) for b in batches],
                "invalid_bytes": tail.size if tail else 0, "invalid_position": tail.position if tail else None,
                "invalid_reason": tail.reason if tail else None,
                "non_consecutive_offsets": [list(gap) for gap in service.offset_gaps(batches)]}
    if kind == "index":
        dump = service.dump_offset_index(path, max_message_size)
        return {"file": name, "type": kind, "entries": [{"offset": e.offset, "position": e.position}
                                                        for e in dump.entries],
                "mismatches": _pairs(dump.mismatches, "index_offset", "log_offset")}
    if kind == "timeindex":
        dump = service.dump_time_index(path)
        return {"file": name, "type": kind, "entries": [{"timestamp": e.timestamp, "offset": e.offset}
                                                        for e in dump.entries],
                "timestamp_mismatches": _pairs(dump.timestamp_mismatches, "index_timestamp", "log_timestamp"),
                "out_of_order": _pairs(dump.out_of_order, "index_timestamp", "previous_timestamp"),
                "offsets_not_found": _pairs(dump.offsets_not_found, "index_offset", "log_offset")}
    return {"file": name, "type": None}


class _Problems:
    """What Kafka prints on stderr after every file: index mismatches, time-index errors, gaps."""

    def __init__(self) -> None:
        self._index: list[str] = []
        self._time: list[str] = []
        self._gaps: list[str] = []

    def index(self, path: Path, mismatches: list[tuple[int, int]]) -> None:
        if mismatches:  # Kafka prepends to a list, so the last found prints first
            self._index += [f"Mismatches in :{path.absolute()}"]
            self._index += [f"  Index offset: {a}, log offset: {b}" for a, b in reversed(mismatches)]

    def time_index(self, dump: IndexDump) -> None:
        where = dump.path.absolute()
        if dump.timestamp_mismatches:
            self._time += [f"Found timestamp mismatch in :{where}"]
            self._time += [f"  Index timestamp: {a}, log timestamp: {b}" for a, b in dump.timestamp_mismatches]
        if dump.out_of_order:
            self._time += [f"Found out of order timestamp in :{where}"]
            self._time += [f"  Index timestamp: {a}, Previously indexed timestamp: {b}" for a, b in dump.out_of_order]
        if dump.offsets_not_found:
            self._time += ["The following indexed offsets are not found in the log."]
            self._time += [f"Indexed offset: {a}, found log offset: {b}" for a, b in dump.offsets_not_found]

    def gaps(self, path: Path, gaps: list[tuple[int, int]]) -> None:
        if gaps:
            self._gaps += [f"Non-consecutive offsets in {path.absolute()}"]
            self._gaps += [f"  {a} is followed by {b}" for a, b in reversed(gaps)]

    def all(self) -> list[str]:
        return self._index + self._time + self._gaps


def _dump_text(name: str, kind: str | None, path: Path, deep: bool, print_data: bool, skip_metadata: bool,
               verify_only: bool, max_message_size: int, max_bytes: int | None, problems: _Problems) -> None:
    from pykafka_ops.services import dump_log as service

    typer.echo(f"Dumping {name}")
    if kind == "log":
        typer.echo(f"Log starting offset: {service.base_offset_of(path)}")
        gaps: list[tuple[int, int]] = []
        for line in log_text(path.name, service.iter_log(path, deep, max_bytes), deep, print_data,
                             skip_metadata, gaps):
            typer.echo(line)
        problems.gaps(path, gaps)
    elif kind == "index":
        dump = service.dump_offset_index(path, max_message_size)
        if not dump.entries:
            typer.echo(f"{name} is empty.")
        elif not verify_only:
            for entry in dump.entries:
                typer.echo(f"offset: {entry.offset} position: {entry.position}")
        problems.index(path, dump.mismatches)
    elif kind == "timeindex":
        time_dump = service.dump_time_index(path)
        if not verify_only:
            for entry in time_dump.entries:
                typer.echo(f"timestamp: {entry.timestamp} offset: {entry.offset}")
        problems.time_index(time_dump)
    else:
        typer.echo(f"Ignoring unknown file {name}", err=True)


def _check_files(names: list[str]) -> list[Path]:
    """Each named file as a Path; CliError (exit 1) for the first one missing or not a file."""
    from pykafka_ops.services.dump_log import base_offset_of, file_kind

    paths = []
    for name in names:
        path = Path(name)
        if not path.exists():
            raise CliError(f"{name}: no such file")
        if not path.is_file():
            raise CliError(f"{name}: not a file")
        if file_kind(path) is not None:
            try:
                base_offset_of(path)
            except ValueError as exc:
                raise CliError(str(exc)) from None
        paths.append(path)
    return paths


@app.command()
@handle_errors
def dump_log(
    files: Annotated[str, typer.Option(
        "--files", help="REQUIRED: comma-separated .log, .index and .timeindex files to dump.")],
    print_data_log: Annotated[bool, typer.Option(
        "--print-data-log", help="Print each record's key and payload (implies --deep-iteration).")] = False,
    deep_iteration: Annotated[bool, typer.Option(
        "--deep-iteration", help="Print every record (offset, CreateTime, sizes, sequence, header keys).")] = False,
    verify_index_only: Annotated[bool, typer.Option(
        "--verify-index-only", help="Check index files against the log without printing their entries.")] = False,
    skip_record_metadata: Annotated[bool, typer.Option(
        "--skip-record-metadata", help="Leave a record's offset, timestamp, sizes … out of its line.")] = False,
    max_message_size: Annotated[int, typer.Option(
        "--max-message-size", min=1, help="Size of the largest message, in bytes (index checks).")]
    = 5 * 1024 * 1024,
    max_bytes: Annotated[int | None, typer.Option(
        "--max-bytes", min=1, help="Read only the batches within the first N bytes of each .log.")] = None,
    output: Annotated[DumpOutput, typer.Option(
        "--output", case_sensitive=False, help="text (kafka-dump-log's), json or yaml.")] = DumpOutput.text,
) -> None:
    """Dump segment files: batches and records of .log, entries of .index and .timeindex (kafka-dump-log)."""
    from commands._render import Output, dump
    from pykafka_ops.services.dump_log import file_kind

    names = [name.strip() for name in files.split(",") if name.strip()]
    if not names:
        raise CliError("--files: no file named", USAGE)
    paths = _check_files(names)
    deep = deep_iteration or print_data_log
    if output is not DumpOutput.text:
        payload = [_file_payload(name, file_kind(path), path, deep, print_data_log, max_message_size, max_bytes)
                   for name, path in zip(names, paths)]
        typer.echo(dump(payload, Output(output.value)))
        return
    problems = _Problems()
    for name, path in zip(names, paths):
        _dump_text(name, file_kind(path), path, deep, print_data_log, skip_record_metadata, verify_index_only,
                   max_message_size, max_bytes, problems)
    for line in problems.all():
        typer.echo(line, err=True)
