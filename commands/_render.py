"""One renderer for every read command: Rich table on a TTY, the Kafka tool's plain layout when
piped, or ``--output text|table|json|yaml|csv`` to force one.

A command builds a ``Table`` (Kafka's column names, rows of plain values; ``None`` shows as
``-`` as kafka-consumer-groups does) and, for the machine formats, a JSON-able payload with a
stable schema. Colours appear only on a TTY (Rich decides from the stream).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import typer


class Output(StrEnum):
    """`--output` choices."""

    text = "text"
    table = "table"
    json = "json"
    yaml = "yaml"
    csv = "csv"


def resolve_output(chosen: Output | None) -> Output:
    """The format to use: the one asked for, else a table on a TTY and plain text when piped."""
    if chosen is not None:
        return chosen
    return Output.table if sys.stdout.isatty() else Output.text


@dataclass
class Table:
    """Rows under Kafka's column names; ``title`` is printed above a Rich table only."""

    columns: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)
    title: str | None = None
    numeric: frozenset[str] = frozenset()
    """Columns right-aligned in the Rich table."""


def cell(value: Any) -> str:
    """Kafka's text for a value: ``-`` for unknown/None, lower-case booleans."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def plain_text(table: Table, separator: str = " ") -> str:
    """Left-aligned columns padded to their widest cell (kafka-consumer-groups' layout)."""
    rows = [list(table.columns)] + [[cell(v) for v in row] for row in table.rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(table.columns))]
    return "\n".join(separator.join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)


def print_rich(table: Table) -> None:
    """A Rich table on stdout, never narrower than its content: on a small terminal the lines
    wrap instead of values being cut to ``…``."""
    from rich.console import Console
    from rich.table import Table as RichTable

    rich_table = RichTable(title=table.title, header_style="bold", box=None, pad_edge=False)
    for column in table.columns:
        rich_table.add_column(column, justify="right" if column in table.numeric else "left", no_wrap=True)
    texts = [[cell(v) for v in row] for row in table.rows]
    for row in texts:
        rich_table.add_row(*row)
    widths = [max(len(r[i]) for r in [list(table.columns), *texts]) for i in range(len(table.columns))]
    console = Console()
    console.width = max(console.width, sum(widths) + rich_table.padding[1] * 2 * len(widths))
    console.print(rich_table)


def to_csv(table: Table) -> str:
    """CSV with a header row (None → empty cell)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows([["" if v is None else v for v in row] for row in table.rows])
    return out.getvalue().rstrip("\n")


def dump(payload: Any, output: Output) -> str:
    """JSON (indented, stable key order as built) or YAML text of ``payload``."""
    if output is Output.yaml:
        import yaml

        return yaml.safe_dump(payload, sort_keys=False, allow_unicode=True).rstrip("\n")
    return json.dumps(payload, indent=2, ensure_ascii=False)


def render(
    output: Output | None,
    tables: Sequence[Table],
    payload: Any,
    text: Callable[[], str] | None = None,
) -> None:
    """Print ``tables`` (or ``text()``, the Kafka tool's own layout) or ``payload`` per ``output``."""
    chosen = resolve_output(output)
    if chosen in (Output.json, Output.yaml):
        typer.echo(dump(payload, chosen))
    elif chosen is Output.csv:
        typer.echo("\n\n".join(to_csv(t) for t in tables))
    elif chosen is Output.table:
        for table in tables:
            print_rich(table)
    elif text is not None:
        body = text()
        if body:  # nothing to show prints nothing, as the Kafka tools do (not a blank line)
            typer.echo(body)
    else:
        typer.echo("\n\n".join(plain_text(t) for t in tables))
