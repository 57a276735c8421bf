"""How `pko skew` shows a ``SkewReport``: Kafka-style tables for text/csv, a Rich report with a
per-partition bar chart on a TTY, the report itself for json/yaml (``dataclasses.asdict`` plus
a schema ``version``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from commands._render import Output, Table, cell, plain_text, render, resolve_output
from pykafka_ops.models.skew import SkewReport

#: The JSON/YAML schema version: fields are only ever added within a version (README, `pko skew`).
JSON_VERSION = 1
_BLOCKS = " ▏▎▍▌▋▊▉█"
BAR_WIDTH = 32


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def partition_table(report: SkewReport) -> Table:
    """One row per partition: records, share, bytes, z-score, hot flag, rate, lag and owner."""
    columns = ["PARTITION", "RECORDS", "SHARE", "BYTES", "NULL-KEYS", "Z-SCORE", "HOT"]
    with_rate = any(p.rate_per_s is not None for p in report.partitions)
    columns += ["RATE/S"] if with_rate else []
    columns += ["LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"] if report.group else []
    rows: list[Sequence[Any]] = []
    for p in report.partitions:
        row: list[Any] = [p.partition, p.records, _pct(p.share), p.bytes, p.null_keys, f"{p.z_score:.2f}",
                          "HOT" if p.hot else ""]
        row += [None if p.rate_per_s is None else f"{p.rate_per_s:.1f}"] if with_rate else []
        row += [p.lag, p.consumer_id, p.host, p.client_id] if report.group else []
        rows.append(row)
    numeric = frozenset({"PARTITION", "RECORDS", "SHARE", "BYTES", "NULL-KEYS", "Z-SCORE", "RATE/S", "LAG"})
    return Table(columns, rows, "Partitions", numeric)


def heavy_table(report: SkewReport) -> Table:
    """The heavy-hitter keys, most frequent first."""
    rows: list[Sequence[Any]] = [[h.key, h.partition, h.count, _pct(h.share_of_topic), _pct(h.share_of_partition)]
            for h in report.heavy_hitters]
    title = f"Heavy hitters (COUNT ≤ true count ≤ COUNT + {report.heavy_hitter_error})"
    return Table(["KEY", "PARTITION", "COUNT", "SHARE-OF-TOPIC", "SHARE-OF-PARTITION"], rows, title,
                 frozenset({"PARTITION", "COUNT", "SHARE-OF-TOPIC", "SHARE-OF-PARTITION"}))


def forensics_table(report: SkewReport) -> Table | None:
    """How many sampled key placements each candidate partitioner explains."""
    if report.forensics is None or not report.forensics.placements:
        return None
    rows: list[Sequence[Any]] = [[f.partitioner, f.explained, f.only, _pct(f.share)] for f in report.forensics.fits]
    title = f"Partitioner forensics ({report.forensics.placements} key placements)"
    return Table(["PARTITIONER", "EXPLAINED", "ONLY", "SHARE"], rows, title,
                 frozenset({"EXPLAINED", "ONLY", "SHARE"}))


def what_if_table(report: SkewReport) -> Table | None:
    """Current and predicted max/mean for each what-if scenario."""
    if not report.what_if:
        return None
    rows: list[Sequence[Any]] = [[w.key_template, w.partitions, w.partitioner, w.sampled, f"{w.current.max_over_mean:.2f}",
             f"{w.predicted.max_over_mean:.2f}", f"{w.predicted.gini:.2f}",
             None if w.excess_cut is None else _pct(w.excess_cut)] for w in report.what_if]
    columns = ["KEY-TEMPLATE", "PARTITIONS", "PARTITIONER", "SAMPLED", "MAX/MEAN-NOW", "MAX/MEAN-PREDICTED",
               "GINI-PREDICTED", "EXCESS-CUT"]
    return Table(columns, rows, "What-if (from the sampled records)",
                 frozenset({"PARTITIONS", "SAMPLED", "MAX/MEAN-NOW", "MAX/MEAN-PREDICTED", "GINI-PREDICTED",
                            "EXCESS-CUT"}))


def tables(report: SkewReport) -> list[Table]:
    """Every table of the report, in display order."""
    found = [partition_table(report), heavy_table(report), forensics_table(report), what_if_table(report)]
    return [t for t in found if t is not None]


def summary(report: SkewReport) -> list[str]:
    """The report's headline lines: what was read, the imbalance, each hot partition and its top key."""
    what = "keys" if report.mode == "keys-file" else "records"
    placed = f" placed by {report.partitioner}" if report.partitioner else ""
    lines = [(f"{report.source}: {report.partition_count} partitions, {report.records} {what}{placed}; "
              f"read {report.scanned} ({report.mode}) in {report.elapsed_s:.1f} s")]
    imb = report.imbalance
    hot = ", ".join(map(str, imb.hot_partitions)) or "none"
    lines.append(f"imbalance: max/mean {imb.max_over_mean:.2f}, CV {imb.cv:.2f}, Gini {imb.gini:.2f}; "
                 f"hot partitions (z > {imb.hot_k:g}): {hot}")
    for partition in (p for p in report.partitions if p.hot):
        line = f"hot partition {partition.partition}: {_pct(partition.share)} of records"
        top = next((h for h in report.heavy_hitters if h.partition == partition.partition), None)
        if top is not None:
            line += (f"; top key {top.key!r} carries {_pct(top.share_of_topic)} of the topic "
                     f"({_pct(top.share_of_partition)} of the partition)")
        if partition.consumer_id:
            line += f"; owned by {partition.consumer_id} ({partition.client_id}, {partition.host})"
        lines.append(line)
    approx = "" if report.distinct_keys_exact else f" ≈ (±{report.distinct_keys_error * 100:.1f}%)"
    lines.append(f"distinct keys: {report.distinct_keys}{approx}; NULL keys: {report.null_keys}; "
                 f"empty keys: {report.empty_keys}")
    if report.forensics is not None:
        lines.append(_partitioner_line(report.forensics.partitioners, report.forensics.mixed))
    lines.extend(f"warning: {w}" for w in report.warnings)
    return lines


def _partitioner_line(found: tuple[str, ...], mixed: bool) -> str:
    if mixed:
        return f"partitioners: MIXED, {' + '.join(found)}"
    if len(found) > 1:
        return f"partitioner: {' or '.join(found)} (the sample cannot tell them apart)"
    return f"partitioner: {found[0] if found else 'unknown (no keyed records read)'}"


def show(report: SkewReport, output: Output | None) -> None:
    """Print ``report`` in the chosen (or TTY-dependent) format."""
    if resolve_output(output) is Output.table:
        _rich(report)
        return

    def text() -> str:
        return "\n\n".join(["\n".join(summary(report))] + [plain_text(t) for t in tables(report)])

    render(output, tables(report), {"version": JSON_VERSION, **dataclasses.asdict(report)}, text=text)


def bar(share: float, largest: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar for ``share`` scaled so that ``largest`` fills ``width`` cells (1/8 steps)."""
    if largest <= 0:
        return ""
    eighths = round(share / largest * width * 8)
    return _BLOCKS[-1] * (eighths // 8) + (_BLOCKS[eighths % 8] if eighths % 8 else "")


def _rich(report: SkewReport) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console()
    for line in summary(report):
        console.print(line, style="yellow" if line.startswith("warning") else None, markup=False, highlight=False)
    largest = max((p.share for p in report.partitions), default=0.0)
    hot = {p.partition for p in report.partitions if p.hot}
    for table in tables(report):
        rich_table = RichTable(header_style="bold", box=None, pad_edge=False)
        for column in table.columns:
            rich_table.add_column(column, justify="right" if column in table.numeric else "left", no_wrap=True)
        is_partitions = table.columns[0] == "PARTITION"
        if is_partitions:
            rich_table.add_column("", no_wrap=True)
        for row, partition in zip(table.rows, report.partitions if is_partitions else [None] * len(table.rows)):
            cells = [cell(v) for v in row]
            if partition is not None:
                cells.append(bar(partition.share, largest))
            rich_table.add_row(*cells, style="bold red" if partition is not None and partition.partition in hot else None)
        console.print()
        console.print(table.title, style="bold italic", markup=False, highlight=False)  # a table title would wrap
        console.print(rich_table)
