"""`pko consume TOPIC`: records to stdout, with kcat's offsets and formats and the console
consumer's ``print.*`` layout.

Output, first match wins: ``--format json`` / ``-J`` (kcat -J's envelope, headers as a map,
bytes that are not UTF-8 as ``{"base64": …}``); ``-f FORMAT`` (kcat tokens plus ``%F``, a
readable UTC time); else the console consumer's layout (``--print-*``; default: the value
alone). stderr gets kcat's ``% Reached end of topic t [p] at offset N`` lines with ``-e`` and the
console consumer's ``Processed a total of N messages`` at the end (``-q`` silences both). Ctrl-C
ends the run cleanly (exit 0).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands._exit import USAGE, CliError, handle_errors
from commands._options import BootstrapOption, CommandConfigOption, TimeoutOption
from commands._properties import properties

if TYPE_CHECKING:
    from pykafka_ops.models.records import ConsumedRecord, PartitionEnd
    from pykafka_ops.services.record_format import Formatter

app = typer.Typer(add_completion=False, rich_markup_mode=None)

#: ``--property`` names (the console consumer's formatter properties) → ConsoleLayout fields.
FORMATTER_PROPERTIES = {"print.timestamp": "print_timestamp", "print.partition": "print_partition",
                        "print.offset": "print_offset", "print.headers": "print_headers", "print.key": "print_key",
                        "print.value": "print_value", "key.separator": "key_separator",
                        "line.separator": "line_separator", "headers.separator": "headers_separator",
                        "null.literal": "null_literal"}


class StdoutSink:
    """Writes formatted records to stdout (binary), a batch per write; stderr for -e notices."""

    def __init__(self, formatter: Formatter, quiet: bool) -> None:
        self.formatter = formatter
        self.quiet = quiet

    def write(self, records: list[ConsumedRecord]) -> int:
        """Write and flush a batch; 0 when stdout was closed (e.g. `| head`)."""
        try:
            sys.stdout.buffer.write(b"".join(map(self.formatter, records)))
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            return 0
        return len(records)

    def partition_end(self, end: PartitionEnd, last: bool) -> None:
        """kcat's notice for -e."""
        if not self.quiet:
            suffix = ": exiting" if last else ""
            typer.echo(f"% Reached end of topic {end.topic} [{end.partition}] at offset {end.offset}{suffix}",
                       err=True)


def _formatter(json_output: bool, format_string: str | None, layout: dict[str, Any],
               formatter_properties: list[str]) -> Formatter:
    from pykafka_ops.services.record_codec import unescape
    from pykafka_ops.services.record_format import ConsoleLayout, compile_format, json_line

    layout_asked = any(v for k, v in layout.items() if k != "print_value") or formatter_properties
    if json_output and (format_string or layout_asked):
        raise CliError("--format json can't be used with -f or --print-*/--property", USAGE)
    if json_output:
        return json_line
    if format_string is not None:
        if layout_asked:
            raise CliError("-f can't be used with --print-*/--property", USAGE)
        try:
            return compile_format(format_string)
        except ValueError as exc:
            raise CliError(str(exc), USAGE) from None
    for name, value in properties(formatter_properties, "--property").items():
        if name not in FORMATTER_PROPERTIES:
            raise CliError(f"--property {name!r} is not a formatter property (known: "
                           f"{', '.join(FORMATTER_PROPERTIES)})", USAGE)
        field = FORMATTER_PROPERTIES[name]
        layout[field] = value.lower() == "true" if field.startswith("print_") else value
    fields: dict[str, Any] = {k: (unescape(v) if isinstance(v, str) else v)
                              for k, v in layout.items() if v is not None}
    return ConsoleLayout(**fields).format


@app.command(no_args_is_help=True)
@handle_errors
def consume(
    topic: Annotated[str, typer.Argument(help="Topic to read.")],
    offset: Annotated[list[str] | None, typer.Option(
        "-o", "--offset", help="beginning | end (default) | stored | N | -N (last N per partition) | s@ms | e@ms "
                               "(stop before this timestamp); s@ and e@ may be combined.")] = None,
    from_beginning: Annotated[bool, typer.Option(
        "--from-beginning", help="Same as -o beginning (with --group: when nothing is committed).")] = False,
    group: Annotated[str | None, typer.Option(
        "-G", "--group", help="Consume as this group; offsets are committed as records are written.")] = None,
    partition: Annotated[list[int] | None, typer.Option("-p", "--partition", min=0, help="Only these partitions.")]
    = None,
    count: Annotated[int | None, typer.Option("-c", "--count", "--max-messages", min=1, help="Stop after N records.")]
    = None,
    exit_at_end: Annotated[bool, typer.Option(
        "-e", "--exit-at-end", help="Stop when every partition is at its end (kcat -e).")] = False,
    timeout_ms: Annotated[int | None, typer.Option(
        "--timeout-ms", min=1, help="Stop after this many ms without a record.")] = None,
    isolation_level: Annotated[str, typer.Option(
        "--isolation-level", help="read_uncommitted or read_committed.")] = "read_uncommitted",
    format_string: Annotated[str | None, typer.Option(
        "-f", "--format-string", help="kcat format: %s %S %R %k %K %t %p %o %T %h %%, %F = readable UTC time; "
                                      "escapes \\n \\t \\xXX.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="text or json (kcat -J's envelope).")] = "text",
    json_flag: Annotated[bool, typer.Option("-J", help="Same as --format json.")] = False,
    key_separator: Annotated[str | None, typer.Option(
        "-K", "--key-separator", help="Print the key, then this separator (implies --print-key).")] = None,
    print_timestamp: Annotated[bool, typer.Option("--print-timestamp", help="CreateTime:ms first.")] = False,
    print_partition: Annotated[bool, typer.Option("--print-partition", help="Partition:p.")] = False,
    print_offset: Annotated[bool, typer.Option("--print-offset", help="Offset:o.")] = False,
    print_headers: Annotated[bool, typer.Option("--print-headers", help="Headers k:v,… or NO_HEADERS.")] = False,
    print_key: Annotated[bool, typer.Option("--print-key", help="The key.")] = False,
    print_value: Annotated[bool, typer.Option("--print-value/--no-print-value", help="The value.")] = True,
    line_separator: Annotated[str | None, typer.Option("--line-separator", help="After each record (\\n).")] = None,
    headers_separator: Annotated[str | None, typer.Option("--headers-separator", help="Between headers (,).")]
    = None,
    null_literal: Annotated[str | None, typer.Option("--null-literal", help="How null prints (null).")] = None,
    prop: Annotated[list[str] | None, typer.Option(
        "--property", help="A console consumer formatter property, e.g. print.key=true (repeatable).")] = None,
    consumer_property: Annotated[list[str] | None, typer.Option(
        "-X", "--consumer-property", help="A librdkafka consumer setting k=v (repeatable).")] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No end-of-partition notices or total.")] = False,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 10000,
) -> None:
    """Consume records to stdout, kcat and console-consumer style. --timeout bounds metadata and offset look-ups."""
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.services.consume import ConsumeRequest, StartOffset, consume, parse_offset

    if output_format not in ("text", "json"):
        raise CliError(f"--format must be text or json, got {output_format!r}", USAGE)
    layout = {"print_timestamp": print_timestamp, "print_partition": print_partition, "print_offset": print_offset,
              "print_headers": print_headers, "print_key": print_key or key_separator is not None,
              "print_value": print_value, "key_separator": key_separator, "line_separator": line_separator,
              "headers_separator": headers_separator, "null_literal": null_literal}
    formatter = _formatter(json_flag or output_format == "json", format_string, layout, prop or [])
    starts, stops = [], []
    for text in (offset or []) + (["beginning"] if from_beginning else []):
        try:
            start, stop_ts = parse_offset(text)
        except ValueError as exc:
            raise CliError(str(exc), USAGE) from None
        starts += [start] if start else []
        stops += [stop_ts] if stop_ts is not None else []
    if len(starts) > 1 or len(stops) > 1:
        raise CliError("give at most one start offset and one e@ stop timestamp", USAGE)
    default_start = StartOffset("stored" if group else "end")
    request = ConsumeRequest(topic, starts[0] if starts else default_start, stops[0] if stops else None,
                             tuple(partition or ()), group, count, exit_at_end, timeout_ms, isolation_level,
                             properties(consumer_property or [], "-X"))
    try:
        request.check()
    except ValueError as exc:
        raise CliError(str(exc), USAGE) from None
    settings = client_settings(bootstrap_server, command_config, timeout)
    report = asyncio.run(consume(settings, request, StdoutSink(formatter, quiet)))
    if not quiet:
        typer.echo(f"Processed a total of {report.count} messages", err=True)
