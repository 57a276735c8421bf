"""`pko offsets [TOPIC]`: GetOffsetShell — ``topic:partition:offset`` for a time spec.

TOPIC is a regular expression (whole name; all topics when left out). Partitions without an
offset for the time (a timestamp after the last record) are left out, as GetOffsetShell does;
per-partition errors go to stderr as ``Skip getting offsets for topic-partition t-p …``. Rows are
sorted by topic, then partition number.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from commands._exit import USAGE, CliError, handle_errors
from commands._options import BootstrapOption, CommandConfigOption, OutputOption, TimeoutOption
from commands._render import Table, render

app = typer.Typer(add_completion=False, rich_markup_mode=None)


def parse_partitions(text: str | None) -> list[int]:
    """``--partitions 0,1,2`` → [0, 1, 2]."""
    if not text:
        return []
    try:
        return [int(p) for p in text.split(",")]
    except ValueError:
        raise CliError(f"--partitions expects a comma-separated list of partition ids, got {text!r}", USAGE) from None


@app.command()
@handle_errors
def offsets(
    topic: Annotated[str | None, typer.Argument(help="Topic regex (whole name); default: every topic.")] = None,
    time: Annotated[str, typer.Option(
        "--time", help="latest (-1), earliest (-2), max-timestamp (-3) or a timestamp in ms.")] = "latest",
    partitions: Annotated[str | None, typer.Option("--partitions", help="Only these partition ids: 0,1,2.")] = None,
    exclude_internal_topics: Annotated[bool, typer.Option(
        "--exclude-internal-topics", help="Leave out internal topics.")] = False,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 10000,
    output: OutputOption = None,
) -> None:
    """Print the offset of each partition for a time (GetOffsetShell), sorted numerically."""
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.services.offsets_shell import get_offsets, time_spec

    try:
        spec = time_spec(time)
    except ValueError as exc:
        raise CliError(str(exc), USAGE) from None
    settings = client_settings(bootstrap_server, command_config, timeout)
    found = asyncio.run(get_offsets(settings, topic, spec, parse_partitions(partitions), exclude_internal_topics))
    for row in found:
        if row.error:
            typer.echo(f"Skip getting offsets for topic-partition {row.topic}-{row.partition} due to error: "
                       f"{row.error}", err=True)
    rows = [r for r in found if r.error is None and r.offset >= 0]
    table = Table(["TOPIC", "PARTITION", "OFFSET", "TIMESTAMP"],
                  [[r.topic, r.partition, r.offset, r.timestamp] for r in rows],
                  numeric=frozenset({"PARTITION", "OFFSET", "TIMESTAMP"}))
    payload = [{"topic": r.topic, "partition": r.partition, "offset": r.offset, "timestamp": r.timestamp}
               for r in rows]
    render(output, [table], payload, text=lambda: "\n".join(f"{r.topic}:{r.partition}:{r.offset}" for r in rows))
