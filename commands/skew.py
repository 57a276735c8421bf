"""`pko skew`: hot partitions, the keys behind them, mixed partitioners, and what-if for a fix.

    pko skew TOPIC [--group G] [--sample N | --full] [--since 1h] [--max-seconds S]
                   [--what-if-partitions N] [--what-if-key '{key}:{offset%8}'] [--fail-on-imbalance X]
    pko skew --keys-file F --partitions N [--partitioner murmur2]

Exit codes: 0 ok, 1 cluster or Kafka error, 2 usage error, 3 max/mean above ``--fail-on-imbalance``.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from commands._exit import THRESHOLD, USAGE, CliError, exit_with_error, handle_errors
from commands._options import (
    BootstrapOption,
    CommandConfigOption,
    OutputOption,
    TimeoutOption,
)
from pykafka_ops.partitioner import Partitioner

app = typer.Typer(add_completion=False, rich_markup_mode=None)

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SHORT_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration_ms(text: str, option: str) -> int:
    """``90s``, ``15m``, ``1h30m``, ``2d``, ``500ms`` or ISO-8601 ``PT1H`` → milliseconds."""
    if _SHORT_DURATION.fullmatch(text):
        return round(sum(float(n) * _UNITS_MS[unit] for n, unit in _DURATION_PART.findall(text)))
    from pykafka_ops.services.offsets import parse_duration

    try:
        millis = parse_duration(text)
    except ValueError:
        raise CliError(f"{option} {text!r}: expected a duration such as 90s, 15m, 1h30m, 2d or PT1H", USAGE) from None
    if millis <= 0:
        raise CliError(f"{option} {text!r}: the duration must be positive", USAGE)
    return millis


def _check_usage(topic: str | None, keys_file: Path | None, partitions: int | None, sample: int | None,
                 full: bool, cluster_only: dict[str, object]) -> None:
    if (topic is None) == (keys_file is None):
        raise CliError("give a TOPIC, or --keys-file with --partitions (not both)", USAGE)
    if sample is not None and full:
        raise CliError("--sample and --full cannot be used together", USAGE)
    if keys_file is None and partitions is not None:
        raise CliError("--partitions goes with --keys-file (for a topic use --what-if-partitions)", USAGE)
    if keys_file is not None:
        if partitions is None:
            raise CliError("--keys-file needs --partitions", USAGE)
        given = [name for name, value in cluster_only.items() if value]
        if given:
            raise CliError(f"{', '.join(given)} cannot be used with --keys-file (no cluster is read)", USAGE)


@contextmanager
def _progress_bar(label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A Rich progress bar on stderr when it is a TTY (else nothing); yields the callback."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@app.command(no_args_is_help=True)
@handle_errors
def skew(
    topic: Annotated[str | None, typer.Argument(help="The topic to analyse.", show_default=False)] = None,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 10000,
    output: OutputOption = None,
    group: Annotated[str | None, typer.Option("--group", help="Show this consumer group's lag and partition owners.")] = None,
    sample: Annotated[int | None, typer.Option(
        "--sample", min=1, help="Read N records in total, newest first, split by partition size [default: 100000].")] = None,
    full: Annotated[bool, typer.Option("--full", help="Read every record in range.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="Only records newer than this (90s, 15m, 1h30m, 2d, PT1H).")] = None,
    max_seconds: Annotated[float | None, typer.Option(
        "--max-seconds", min=0.001, help="Stop reading after S seconds; the report says it is partial.")] = None,
    rate_window: Annotated[str | None, typer.Option(
        "--rate-window", help="Show each partition's produce rate over this window (e.g. 5m).")] = None,
    top: Annotated[int, typer.Option("--top", min=1, max=1000, help="Heavy-hitter keys to show.")] = 10,
    hot_k: Annotated[float, typer.Option(
        "--hot-k", min=0.0, help="Hot partition: records > mean + K·σ (population σ).")] = 2.0,
    what_if_partitions: Annotated[list[int] | None, typer.Option(
        "--what-if-partitions", min=1, help="Predict the balance with N partitions (repeatable).")] = None,
    what_if_key: Annotated[list[str] | None, typer.Option(
        "--what-if-key", help="Predict the balance with this key template, e.g. '{key}:{header.region}', "
                              "'{key}:{value.region}', '{key}:{offset%8}' (repeatable).")] = None,
    partitioner: Annotated[Partitioner | None, typer.Option(
        "--partitioner", case_sensitive=False,
        help="Partitioner for --keys-file [default: murmur2] and for what-if [default: the one found in use].")] = None,
    keys_file: Annotated[Path | None, typer.Option(
        "--keys-file", exists=True, dir_okay=False, help="Predict the distribution of these keys (one per line); no cluster.")] = None,
    partitions: Annotated[int | None, typer.Option("--partitions", min=1, help="Partition count for --keys-file.")] = None,
    fail_on_imbalance: Annotated[float | None, typer.Option(
        "--fail-on-imbalance", min=1.0, help="Exit 3 when max/mean records per partition exceeds X.")] = None,
) -> None:
    """Find hot partitions and the keys behind them, detect mixed partitioners, and test a fix."""
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.models.skew import SkewOptions
    from pykafka_ops.services.skew import analyse_topic, predict_keys, what_if_templates

    _check_usage(topic, keys_file, partitions, sample, full, {
        "--group": group, "--since": since, "--rate-window": rate_window, "--full": full, "--sample": sample,
        "-b/--bootstrap-server": bootstrap_server})
    since_ms = None
    if since is not None:
        import time

        since_ms = int(time.time() * 1000) - parse_duration_ms(since, "--since")
    options = SkewOptions(
        sample=None if full else (sample or SkewOptions.sample), since_ms=since_ms, max_seconds=max_seconds,
        top=top, hot_k=hot_k, group=group,
        rate_window_s=parse_duration_ms(rate_window, "--rate-window") / 1000 if rate_window else None,
        what_if_partitions=tuple(what_if_partitions or ()), what_if_keys=tuple(what_if_key or ()),
        partitioner=partitioner.value if partitioner else None)
    try:
        what_if_templates(options)
    except ValueError as exc:
        raise CliError(str(exc), USAGE) from None

    from commands.skew_view import show

    if keys_file is not None:
        assert partitions is not None
        with _progress_bar(f"placing {keys_file.name}") as progress:
            report = asyncio.run(predict_keys(keys_file, partitions, partitioner or Partitioner.murmur2, options,
                                              progress))
    else:
        assert topic is not None
        settings = client_settings(bootstrap_server, command_config, timeout)
        with _progress_bar(f"reading {topic}") as progress:
            report = asyncio.run(analyse_topic(settings, topic, options, progress))
    show(report, output)
    if fail_on_imbalance is not None and report.imbalance.max_over_mean > fail_on_imbalance:
        exit_with_error(f"max/mean {report.imbalance.max_over_mean:.2f} exceeds --fail-on-imbalance "
                        f"{fail_on_imbalance:g}", THRESHOLD)
