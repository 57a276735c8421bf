"""`pko doctor`: the design document's pitfalls found on a live cluster, with evidence and the fix.

    pko doctor [-b B | -c cluster.yaml] [--topic REGEX] [--group REGEX] [--critical-topics REGEX]
               [--window SECONDS] [--output text|table|json|yaml] [--fail-on info|warn|error]
               [--report FILE.html]

Polls the cluster across ``--window`` seconds (``services.doctor``) and runs the checks
(``services.doctor_checks``): hot partitions and the keys behind them, growing lag, stalled
groups, offsets about to fall off retention, idle consumers and unbalanced assignments,
partitions per broker (and our nodes' open files), durability of critical topics (and, with
``-c``, producers our nodes saw writing to them with acks=0/1 or without idempotence), hanging
transactions. Text output groups the findings by severity, each with its evidence, why it matters
and the command that fixes it; errors reading part of the cluster go to stderr. ``--report`` also
writes them, with charts of the per-partition produce rates and the groups' lag, to one
self-contained HTML file (``services.doctor_report``), written even when the exit code is 3.

Exit codes: 0 ok, 1 cluster unreachable or Kafka error, 2 usage error, 3 a finding at or above
``--fail-on`` (default error).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from commands._exit import THRESHOLD, USAGE, CliError, handle_errors
from commands._options import BootstrapOption, CommandConfigOption, OutputOption, TimeoutOption
from commands._render import Output, Table, render
from pykafka_ops.models.doctor import DoctorInput, DoctorReport, Finding, Severity

app = typer.Typer(add_completion=False, rich_markup_mode=None)

SCHEMA_VERSION = 1
COLUMNS = ("SEVERITY", "CHECK", "SUBJECT", "EVIDENCE", "FIX")


def parse_severity(text: str) -> Severity:
    """``--fail-on`` → a severity (any case)."""
    try:
        return Severity[text.upper()]
    except KeyError:
        raise CliError(f"--fail-on takes info, warn or error, got {text!r}", USAGE) from None


def parse_regex(text: str | None, option: str) -> re.Pattern[str] | None:
    """A ``--topic``-style regular expression, or a usage error naming the option."""
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise CliError(f"{option} {text!r}: not a regular expression ({exc})", USAGE) from None


def evidence_text(finding: Finding) -> str:
    """``lag=120 time_lag_s=4.2`` (unknown figures left out)."""
    return " ".join(f"{k}={v}" for k, v in finding.evidence.items() if v is not None)


def text(report: DoctorReport) -> str:
    """Findings grouped by severity, worst first, each with evidence, why, fix and caveats."""
    counts = {s: sum(f.severity is s for f in report.findings) for s in Severity}
    summary = ", ".join(f"{n} {s.label}" for s, n in sorted(counts.items(), reverse=True) if n) or "no findings"
    lines = [f"pko doctor: {report.bootstrap_servers}, {report.polls} polls over {report.window_s:g} s, "
             f"{len(report.checks)} checks: {summary}"]
    for severity in sorted(Severity, reverse=True):
        found = [f for f in report.findings if f.severity is severity]
        if found:
            lines += ["", f"{severity.name} ({len(found)})"]
        for f in found:
            lines += [f"  {f.check}  {f.subject}", f"    evidence: {evidence_text(f)}", f"    why: {f.why}",
                      f"    fix: {f.fix}"] + [f"    caveat: {c}" for c in f.caveats]
    if report.skipped:
        lines += ["", "skipped: " + "; ".join(f"{name} ({why})" for name, why in report.skipped)]
    return "\n".join(lines)


def table(report: DoctorReport) -> Table:
    """One row per finding."""
    return Table(COLUMNS, [(f.severity.label, f.check, str(f.subject), evidence_text(f), f.fix)
                           for f in report.findings], title="pko doctor")


def payload(report: DoctorReport) -> dict[str, Any]:
    """The report as JSON (schema in README, `pko doctor`)."""
    return {"version": SCHEMA_VERSION, "bootstrap_servers": report.bootstrap_servers, "taken_at": report.taken_at,
            "window_s": report.window_s, "polls": report.polls, "checks": list(report.checks),
            "skipped": [{"check": c, "why": w} for c, w in report.skipped], "errors": list(report.errors),
            "findings": [{"check": f.check, "severity": f.severity.label,
                          "subject": {"kind": f.subject.kind, "name": f.subject.name,
                                      "partition": f.subject.partition},
                          "evidence": f.evidence, "why": f.why, "fix": f.fix, "caveats": list(f.caveats)}
                         for f in report.findings]}


def write_report(path: Path, report: DoctorReport, data: DoctorInput) -> None:
    """Write the HTML report to ``path`` ("report written to PATH" on stderr); an unwritable path
    is a one-line error (exit 1)."""
    from pykafka_ops.services.doctor_report import render_report

    document = render_report(report, data.frame)
    try:
        path.write_text(document, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write the report to {path}: {exc.strerror or exc}") from None
    typer.echo(f"pko: report written to {path}", err=True)


@app.command()
@handle_errors
def doctor(
    topic: Annotated[str | None, typer.Option("--topic", metavar="REGEX", help="Only topics matching.")] = None,
    group: Annotated[str | None, typer.Option("--group", metavar="REGEX", help="Only groups matching.")] = None,
    critical_topics: Annotated[str | None, typer.Option(
        "--critical-topics", metavar="REGEX",
        help="Topics whose durability is checked: RF, min.insync.replicas, unclean election, min ISR.")] = None,
    window: Annotated[float, typer.Option("--window", min=0.1, metavar="SECONDS",
                                          help="Sample the cluster over this many seconds.")] = 15.0,
    polls: Annotated[int, typer.Option("--polls", min=2, max=60, help="Polls in the window.")] = 4,
    fail_on: Annotated[str, typer.Option("--fail-on", metavar="SEVERITY",
                                         help="Exit 3 when a finding is info, warn or error or worse.")] = "error",
    hot_z: Annotated[float, typer.Option("--hot-z", min=0.0, help="Hot partition: produce-rate z-score above.")] = 2.0,
    size_skew: Annotated[float, typer.Option(
        "--size-skew", min=1.0, help="Hot partition: rate (or topic: records) max/mean at or above.")] = 2.0,
    key_share: Annotated[float, typer.Option(
        "--key-share", min=0.0, max=1.0, help="Hot key: share of a topic's sampled writes at or above.")] = 0.25,
    key_sample: Annotated[int, typer.Option("--key-sample", min=1, help="Records sampled per topic for keys.")] = 5000,
    key_topics: Annotated[int, typer.Option("--key-topics", min=0, help="Largest topics whose keys are sampled.")] = 10,
    retention_margin: Annotated[float, typer.Option(
        "--retention-margin", min=0.0, metavar="SECONDS",
        help="Warn when a group's oldest unread record is deleted within this time.")] = 3600.0,
    max_assignment_ratio: Annotated[float, typer.Option(
        "--max-assignment-ratio", min=1.0, help="Unbalanced: most/fewest partitions per member at or above.")] = 2.0,
    max_partitions_per_broker: Annotated[int, typer.Option(
        "--max-partitions-per-broker", min=1, help="Partition replicas a broker may host.")] = 4000,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", exists=True, dir_okay=False,
        help="Cluster YAML of a `pko cluster up` cluster: check it (without -b), with its nodes' open files "
             "and the producers' acks their admin endpoints saw.")] = None,
    report_file: Annotated[Path | None, typer.Option(
        "--report", metavar="FILE.html", dir_okay=False,
        help="Also write the findings and charts to this self-contained HTML file.")] = None,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 5000,
    output: OutputOption = None,
) -> None:
    """Find hot partitions and keys, growing lag, stalled groups, retention risk, idle consumers, too many
    partitions, weak durability and hanging transactions; print the evidence and the fix."""
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.models.doctor import DoctorOptions
    from pykafka_ops.services.doctor import Sampling, diagnose
    from pykafka_ops.config.cluster import load
    from pykafka_ops.services.doctor_producers import admin_endpoints
    from pykafka_ops.services.processes import find_state_file

    threshold = parse_severity(fail_on)
    if output is Output.csv:
        raise CliError("--output takes text, table, json or yaml", USAGE)
    options = DoctorOptions(parse_regex(topic, "--topic"), parse_regex(group, "--group"),
                            parse_regex(critical_topics, "--critical-topics"), hot_z=hot_z, size_skew=size_skew,
                            key_share=key_share, retention_margin_s=retention_margin,
                            max_assignment_ratio=max_assignment_ratio,
                            max_partitions_per_broker=max_partitions_per_broker)
    settings = client_settings(bootstrap_server, command_config, timeout, config)
    if not settings.any_server_accepts():
        raise settings.unreachable("connection refused or no route to host")
    state_file = find_state_file(settings.bootstrap_servers, config)
    endpoints = admin_endpoints(load(config)) if config is not None else []
    report, checked = asyncio.run(diagnose(settings, options, Sampling(window, polls, key_topics, key_sample),
                                           state_file, endpoints))
    for error in report.errors:
        typer.echo(f"pko: {error}", err=True)
    render(output, [table(report)], payload(report), text=lambda: text(report))
    if report_file is not None:
        write_report(report_file, report, checked)
    worst = report.worst
    if worst is not None and worst >= threshold:
        typer.echo(f"pko: a finding is {worst.label} (--fail-on {threshold.label})", err=True)
        raise typer.Exit(THRESHOLD)
