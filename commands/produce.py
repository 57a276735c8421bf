"""`pko produce TOPIC [FILE…]`: lines (or JSON objects) from stdin or files → records.

The console producer's reader properties are flags here (``--parse-key``, ``-K/--key-separator``,
``--parse-headers``, ``--headers-delimiter``, ``--headers-separator``, ``--headers-key-separator``,
``--null-marker``, ``--ignore-error``) and are also accepted as ``--property name=value``. kcat's
``-H k=v`` adds fixed headers, ``-Z/--tombstone`` turns an empty key or value into null. Unlike
both tools, a run where any record was not delivered exits 1 and says how many.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from commands._exit import USAGE, CliError, handle_errors
from commands._options import BootstrapOption, CommandConfigOption, TimeoutOption
from commands._properties import key_values, properties

if TYPE_CHECKING:
    from pykafka_ops.models.records import Headers, ProducerRecord
    from pykafka_ops.services.record_codec import LineFormat

app = typer.Typer(add_completion=False, rich_markup_mode=None)


class InputFormat(StrEnum):
    """`--format`: text lines (console producer grammar) or one JSON object per line."""

    text = "text"
    json = "json"


#: ``--property`` names (the console producer's reader properties) → LineFormat fields.
READER_PROPERTIES = {"parse.key": "parse_key", "key.separator": "key_separator", "parse.headers": "parse_headers",
                     "headers.delimiter": "headers_delimiter", "headers.separator": "headers_separator",
                     "headers.key.separator": "headers_key_separator", "null.marker": "null_marker",
                     "ignore.error": "ignore_error"}


def line_format(fields: dict[str, Any], reader_properties: list[str]) -> LineFormat:
    """The reader's settings from the flags, overridden by ``--property`` (escapes like ``\\t`` allowed)."""
    from pykafka_ops.services.record_codec import LineFormat, unescape

    for name, value in properties(reader_properties, "--property").items():
        if name not in READER_PROPERTIES:
            raise CliError(f"--property {name!r} is not a reader property (known: {', '.join(READER_PROPERTIES)})",
                           USAGE)
        field = READER_PROPERTIES[name]
        fields[field] = value.lower() == "true" if field in ("parse_key", "parse_headers", "ignore_error") else value
    converted: dict[str, Any] = {k: unescape(v) if isinstance(v, str) else v for k, v in fields.items()}
    fmt = LineFormat(**converted)
    try:
        fmt.check()
    except ValueError as exc:
        raise CliError(str(exc), USAGE) from None
    return fmt


def _lines(stream: BinaryIO, advance: Any) -> Iterator[bytes]:
    for line in stream:
        advance(len(line))
        yield line.rstrip(b"\n").removesuffix(b"\r")


def _stdin() -> BinaryIO:
    """stdin for the reader thread: a private reader on a duplicate of fd 0 when there is one, so a
    read still blocked when Ctrl-C ends the run does not hold sys.stdin's lock at interpreter exit."""
    try:
        return open(os.dup(sys.stdin.fileno()), "rb")  # noqa: SIM115 (closed by the caller's with)
    except (OSError, ValueError, io.UnsupportedOperation):  # no real fd (e.g. CliRunner)
        return sys.stdin.buffer


def read_records(files: list[Path], fmt: LineFormat | None, fixed: Headers, advance: Any) -> Iterator[ProducerRecord]:
    """Records from each file (``-`` or none: stdin); ``fmt`` None = JSON lines."""
    from pykafka_ops.services.record_codec import InputError, parse_json_line

    for path in files or [Path("-")]:
        with (open(path, "rb") if str(path) != "-" else _stdin()) as stream:  # noqa: SIM115
            for number, line in enumerate(_lines(stream, advance), start=1):
                try:
                    if fmt is not None:
                        yield fmt.parse(line, number, fixed)
                    elif line.strip():
                        yield parse_json_line(line, number, fixed)
                except InputError as exc:
                    raise InputError(f"{path}: {exc}" if str(path) != "-" else str(exc)) from None


@app.command(no_args_is_help=True)
@handle_errors
def produce(
    topic: Annotated[str, typer.Argument(help="Topic to write to.")],
    files: Annotated[list[Path] | None, typer.Argument(
        help="Files to read, line by line (default, or -: stdin).", show_default=False)] = None,
    input_format: Annotated[InputFormat, typer.Option(
        "--format", help="text: console producer lines; json: one object per line, as `pko consume --format json` "
                         "writes (key, payload/value, headers, partition, ts; {\"base64\": …} for bytes).")]
    = InputFormat.text,
    parse_key: Annotated[bool, typer.Option("--parse-key", help="Lines are key<separator>value.")] = False,
    key_separator: Annotated[str | None, typer.Option(
        "-K", "--key-separator", help="Key separator (implies --parse-key; default \\t); split at the first one.")]
    = None,
    parse_headers: Annotated[bool, typer.Option(
        "--parse-headers", help="Lines start with h1:v1,h2:v2<headers-delimiter>.")] = False,
    headers_delimiter: Annotated[str, typer.Option("--headers-delimiter", help="Ends the headers.")] = "\\t",
    headers_separator: Annotated[str, typer.Option("--headers-separator", help="Between headers.")] = ",",
    headers_key_separator: Annotated[str, typer.Option(
        "--headers-key-separator", help="Between a header's name and value.")] = ":",
    null_marker: Annotated[str | None, typer.Option(
        "--null-marker", help="A key, value or header value equal to this is sent as null.")] = None,
    ignore_error: Annotated[bool, typer.Option(
        "--ignore-error", help="A line without key separator is a value without key (no error).")] = False,
    tombstone: Annotated[bool, typer.Option(
        "-Z", "--tombstone", help="Send an empty key or value as null (kcat -Z): `k:` is a tombstone.")] = False,
    prop: Annotated[list[str] | None, typer.Option(
        "--property", help="A console producer reader property, e.g. parse.key=true (repeatable).")] = None,
    header: Annotated[list[str] | None, typer.Option(
        "-H", "--header", help="A header k=v added to every record (repeatable; k alone: null value).")] = None,
    partition: Annotated[int | None, typer.Option("-p", "--partition", min=0, help="Send every record here.")]
    = None,
    acks: Annotated[str, typer.Option("--acks", help="0, 1 or all.")] = "all",
    idempotent: Annotated[bool, typer.Option("--idempotent", help="Idempotent producer (needs --acks all).")]
    = False,
    compression: Annotated[str, typer.Option("--compression", "-z", help="none, gzip, snappy, lz4 or zstd.")]
    = "none",
    partitioner: Annotated[str, typer.Option(
        "--partitioner", help="librdkafka's names: murmur2_random (default: Java-compatible, keys land where Java "
                              "clients put them), murmur2, consistent_random (librdkafka's default, CRC-32), "
                              "consistent, fnv1a, fnv1a_random, random; aliases: java, crc32.")] = "murmur2_random",
    rate: Annotated[float | None, typer.Option("--rate", min=0.001, help="At most this many records per second.")]
    = None,
    producer_property: Annotated[list[str] | None, typer.Option(
        "-X", "--producer-property", help="A librdkafka producer setting k=v (repeatable).")] = None,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 30000,
) -> None:
    """Produce records from stdin or files. Exits 1 (with a count) if any record was not delivered.

    --timeout is the delivery timeout of each record (librdkafka's message.timeout.ms).
    """
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.services.produce import ACKS, COMPRESSION_TYPES, PARTITIONERS, ProduceOptions, produce

    for value, allowed, flag in ((acks, ACKS, "--acks"), (compression, COMPRESSION_TYPES, "--compression"),
                                 (partitioner, tuple(PARTITIONERS), "--partitioner")):
        if value not in allowed:
            raise CliError(f"{flag} must be one of {', '.join(allowed)}, got {value!r}", USAGE)
    if idempotent and acks not in ("all", "-1"):
        raise CliError("--idempotent needs --acks all", USAGE)
    missing = [str(f) for f in files or [] if str(f) != "-" and not f.is_file()]
    if missing:
        raise CliError(f"no such file: {missing[0]}", USAGE)
    fmt = None
    if input_format is InputFormat.text:
        fmt = line_format({"parse_key": parse_key or key_separator is not None, "key_separator": key_separator or "\\t",
                           "parse_headers": parse_headers, "headers_delimiter": headers_delimiter,
                           "headers_separator": headers_separator, "headers_key_separator": headers_key_separator,
                           "null_marker": null_marker, "ignore_error": ignore_error, "empty_as_null": tombstone},
                          prop or [])
    fixed = tuple((k, v.encode() if v is not None else None) for k, v in key_values(header or [], "-H"))
    options = ProduceOptions(acks, idempotent, compression, partitioner, partition, rate,
                             properties=properties(producer_property or [], "-X"))
    settings = client_settings(bootstrap_server, command_config, timeout)
    with _FileProgress(files or []) as advance:
        report = asyncio.run(produce(settings, topic, read_records(files or [], fmt, fixed, advance), options))
    _finish(report)


def _finish(report: Any) -> None:
    """Exit 0 when every record read was delivered, else 1 with the counts."""
    counts = f"{report.sent} sent, {report.delivered} delivered"
    if report.input_error:
        raise CliError(f"{report.input_error} ({counts})")
    if report.failed:
        raise CliError(f"{report.failed} of {report.sent} records were not delivered to {report.topic}: "
                       f"{report.first_error}")
    if report.interrupted:
        typer.echo(f"pko: interrupted: {counts}", err=True)


class _FileProgress:
    """A Rich progress bar over the bytes of ``files`` on a TTY (stderr); a no-op otherwise."""

    def __init__(self, files: list[Path]) -> None:
        real = [f for f in files if str(f) != "-"]
        self.total = sum(f.stat().st_size for f in real if f.exists())
        self.bar: Any = None
        if real and self.total and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress

            self.bar = Progress(console=Console(stderr=True), transient=True)

    def __enter__(self) -> Any:
        if self.bar is None:
            return lambda n: None
        self.bar.start()
        task = self.bar.add_task("producing", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
