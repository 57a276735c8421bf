"""`pko lag`: the monitor's consumer-group rows and statuses, headless (for scripts and CI).

    pko lag [-b B] [--group G …] [--window N] [--interval S] [--watch S]
            [--output text|table|json|yaml|csv] [--fail-on WARN|REWIND|STALL|STOP|ERR]

The rows and statuses come from the same ``MonitorServices`` frames as `pko monitor`'s groups
and group-detail screens. A status needs history: a run polls ``--window`` times,
``--interval`` seconds apart, and prints the last frame; ``--watch S`` polls every S seconds and
prints every frame (JSON as one line per frame) until Ctrl-C. With ``--group``, the partition
rows of those groups follow the group rows.

Alerts, as `pko monitor` raises them (``services.replication``): a topic the shown groups
consume that has under-replicated partitions (level WARN), offline ones (ERR), or hanging
transactions (ERR: a last stable offset stuck behind the high watermark for longer than
transaction.max.timeout.ms, with the producer id holding it; ``services.hanging_transactions``).
In JSON and YAML they are the frame's ``alerts`` field; otherwise one line per alert on stderr
(``pko: WARN topic 'orders': 1 under-replicated partition (2)``), beside the errors, so the
tables on stdout keep their layout.

Exit codes: 0 ok, 1 cluster error, 2 usage error, 3 a group's status, or the level of a
replication alert, reached ``--fail-on`` (in the order OK < WARN < REWIND < STALL < STOP < ERR).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from commands._exit import THRESHOLD, USAGE, CliError, handle_errors
from commands._options import (
    BootstrapOption,
    CommandConfigOption,
    OutputOption,
    TimeoutOption,
)
from commands._render import Output, Table, render, resolve_output
from pykafka_ops.models.monitor import GroupView, MonitorFrame, MonitorOptions, Status
from pykafka_ops.models.replication import ReplicationAlert
from pykafka_ops.services.monitor import MonitorServices
from pykafka_ops.services.monitor_rows import (
    GROUP_COLUMNS,
    PARTITION_COLUMNS,
    alert_text,
    group_cells,
    partition_cells,
)
from pykafka_ops.services.replication import alerts_of_topics

app = typer.Typer(add_completion=False, rich_markup_mode=None)

SCHEMA_VERSION = 1
_NUMERIC = frozenset({"MEMBERS", "LAG", "TIME-LAG", "CONSUME/S", "PRODUCE/S", "PARTITION", "CURRENT-OFFSET",
                      "LOG-END-OFFSET"})


def parse_status(text: str | None) -> Status | None:
    """``--fail-on`` → a status (any case); OK is refused: every group would fail."""
    if text is None:
        return None
    try:
        status = Status[text.upper()]
    except KeyError:
        status = Status.OK
    if status is Status.OK:
        raise CliError(f"--fail-on takes one of {', '.join(s.name for s in Status if s is not Status.OK)}, "
                       f"got {text!r}", USAGE)
    return status


def tables(frame: MonitorFrame, services: MonitorServices, with_partitions: bool) -> list[Table]:
    """The groups table, and with ``--group`` one table of the partitions of those groups."""
    result = [Table(GROUP_COLUMNS, [group_cells(g) for g in frame.groups], numeric=_NUMERIC)]
    if with_partitions:
        rows: list[Sequence[Any]] = []
        for g in frame.groups:
            trends = services.partition_trends(g.group_id)
            rows += [(g.group_id, *partition_cells(p, trends.get(p.topic_partition, ()))) for p in g.partitions]
        result.append(Table(("GROUP", *PARTITION_COLUMNS), rows, numeric=_NUMERIC))
    return result


def _group_payload(g: GroupView) -> dict[str, Any]:
    return {"group": g.group_id, "state": g.state, "members": g.members, "total_lag": g.total_lag,
            "max_lag_seconds": g.max_lag_seconds, "lag_method": g.lag_method, "consume_rate": g.consume_rate,
            "status": g.status.name, "reason": g.reason, "error": g.error, "lag_history": list(g.lag_history),
            "partitions": [{"topic": p.topic, "partition": p.partition, "current_offset": p.current_offset,
                            "log_end_offset": p.log_end_offset, "lag": p.lag, "lag_seconds": p.lag_seconds,
                            "lag_method": p.lag_method, "produce_rate": p.produce_rate,
                            "consume_rate": p.consume_rate, "status": p.status.name, "reason": p.reason,
                            "consumer_id": p.consumer_id, "host": p.host, "client_id": p.client_id}
                           for p in g.partitions]}


def alerts(frame: MonitorFrame) -> tuple[ReplicationAlert, ...]:
    """The frame's replication alerts of the topics its groups consume (the topics `pko lag` shows)."""
    return alerts_of_topics(frame.alerts, (p.topic for g in frame.groups for p in g.partitions))


def payload(frame: MonitorFrame) -> dict[str, Any]:
    """A frame's groups and replication alerts as JSON (schema in README, `pko lag`)."""
    return {"version": SCHEMA_VERSION, "taken_at": frame.taken_at, "poll": frame.poll, "window": frame.window,
            "errors": list(frame.errors), "groups": [_group_payload(g) for g in frame.groups],
            "alerts": [_alert_payload(a) for a in alerts(frame)]}


def _alert_payload(a: ReplicationAlert) -> dict[str, Any]:
    """An alert; a hanging-transaction alert adds each transaction's partition, producer and offsets."""
    fields: dict[str, Any] = {"level": a.level, "kind": a.kind, "topic": a.topic, "partitions": list(a.partitions),
                              "message": a.message}
    if a.transactions:
        fields["transactions"] = [{"partition": t.partition, "producer_id": t.producer_id,
                                   "producer_epoch": t.producer_epoch, "last_stable_offset": t.last_stable_offset,
                                   "high_watermark": t.high_watermark, "started_ms": t.started_ms}
                                  for t in a.transactions]
    return fields


def breach(frame: MonitorFrame, fail_on: Status | None) -> str | None:
    """The first group whose status, or else the first replication alert whose level, reached
    ``fail_on``, described."""
    if fail_on is None:
        return None
    for g in frame.groups:
        if g.status >= fail_on:
            return f"group '{g.group_id}' is {g.status.name}: {g.reason} (--fail-on {fail_on.name})"
    for a in alerts(frame):
        if Status[a.level] >= fail_on:
            return f"{alert_text(a)} (--fail-on {fail_on.name})"
    return None


def show(frame: MonitorFrame, services: MonitorServices, output: Output | None, with_partitions: bool,
         watching: bool) -> None:
    """Print one frame; a watched JSON frame is one line, other formats a blank line apart."""
    for error in frame.errors:
        typer.echo(f"pko: {error}", err=True)
    chosen = resolve_output(output)
    if chosen not in (Output.json, Output.yaml):
        for alert in alerts(frame):
            typer.echo(f"pko: {alert_text(alert)}", err=True)
    if watching and chosen is Output.json:
        typer.echo(json.dumps(payload(frame), ensure_ascii=False))
        return
    render(output, tables(frame, services, with_partitions), payload(frame))
    if watching:
        typer.echo("")


async def run(services: MonitorServices, polls: int | None, interval_s: float, output: Output | None,
              with_partitions: bool, fail_on: Status | None) -> int:
    """Poll ``polls`` times (None: until cancelled, printing every frame); the exit code."""
    watching = polls is None
    count = 0
    try:
        while True:
            frame = await services.poll()
            count += 1
            last = polls is not None and count >= polls
            if watching or last:
                show(frame, services, output, with_partitions, watching)
                found = breach(frame, fail_on)
                if found is not None:
                    typer.echo(f"pko: {found}", err=True)
                    return THRESHOLD
            if last:
                return 0
            await asyncio.sleep(interval_s)
    finally:
        services.close()


@app.command()
@handle_errors
def lag(
    group: Annotated[list[str] | None, typer.Option(
        "--group", metavar="GROUP", help="Only this group (repeatable); adds its partition rows.")] = None,
    window: Annotated[int, typer.Option("--window", min=2, metavar="N",
                                        help="Polls in the status window (Burrow's rules look at N polls).")] = 5,
    interval: Annotated[float, typer.Option("--interval", min=0.1, metavar="S",
                                            help="Seconds between the polls of a run.")] = 1.0,
    watch: Annotated[float | None, typer.Option("--watch", min=0.1, metavar="S",
                                                help="Poll every S seconds and print every frame until Ctrl-C.")] = None,
    fail_on: Annotated[str | None, typer.Option(
        "--fail-on", metavar="STATUS",
        help="Exit 3 when a group's status, or an alert of a topic it consumes (WARN: under-replicated, "
             "ERR: offline or a hanging transaction), is STATUS or worse: WARN, STALL, STOP …")] = None,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 5000,
    output: OutputOption = None,
) -> None:
    """Consumer-group lag in records and seconds, rates and Burrow-style status (pko monitor, headless),
    and alerts for under-replicated (WARN), offline (ERR) and hanging-transaction (ERR) partitions of
    the topics the groups consume."""
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.services.snapshot import KafkaClusterSource

    threshold = parse_status(fail_on)
    settings = client_settings(bootstrap_server, command_config, timeout)
    services = MonitorServices(KafkaClusterSource(settings, groups=tuple(group or ())), MonitorOptions(window=window))
    code = asyncio.run(run(services, None if watch is not None else window, watch or interval, output,
                           bool(group), threshold))
    if code:
        raise typer.Exit(code)
