"""`pko perf produce` / `pko perf consume`: kafka-producer-perf-test and kafka-consumer-perf-test.

The options and the summary lines are the Java tools' (``N records sent, X records/sec (Y MB/sec),
… ms 99.9th.`` and the consumer's ``start.time, end.time, data.consumed.in.MB, …`` CSV row);
``--output json`` prints the summary as one JSON object instead. Unlike the Java tools, a run
with failed deliveries or a consumer that stopped short of ``--messages`` exits 1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands._exit import USAGE, CliError, handle_errors
from commands._options import BootstrapOption, CommandConfigOption, OutputOption, TimeoutOption
from commands._properties import properties
from commands._render import Output, Table, render, resolve_output

if TYPE_CHECKING:
    from pykafka_ops.models.perf import ConsumerPerfResult, ProducerPerfResult, ProducerPerfWindow

app = typer.Typer(name="perf", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Producer and consumer performance tests (kafka-*-perf-test).")

CONSUMER_HEADER = ("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
                   "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")


def split_props(values: list[str], flag: str) -> dict[str, str]:
    """``--producer-props "acks=1 linger.ms=5"`` (repeatable; whitespace-separated, as the Java tool's list)."""
    return properties([item for value in values for item in value.split()], flag)


def _payloads(record_size: int | None, payload_file: Path | None, delimiter: str) -> list[bytes]:
    from pykafka_ops.services.perf import random_payload
    from pykafka_ops.services.record_codec import unescape

    if (record_size is None) == (payload_file is None):
        raise CliError("give exactly one of --record-size and --payload-file", USAGE)
    if payload_file is None:
        return [random_payload(record_size or 0)]
    payloads = [p for p in payload_file.read_bytes().split(unescape(delimiter)) if p]
    if not payloads:
        raise CliError(f"{payload_file}: no payloads found", USAGE)
    return payloads


def _window_line(w: ProducerPerfWindow) -> str:
    return (f"{w.records} records sent, {w.records_per_s:.1f} records/sec ({w.mb_per_s:.2f} MB/sec), "
            f"{w.avg_latency_ms:.1f} ms avg latency, {w.max_latency_ms:.1f} ms max latency.")


def _producer_summary(r: ProducerPerfResult) -> str:
    t = r.total
    return (f"{t.records} records sent, {t.records_per_s:f} records/sec ({t.mb_per_s:.2f} MB/sec), "
            f"{t.avg_latency_ms:.2f} ms avg latency, {t.max_latency_ms:.2f} ms max latency, {int(r.p50_ms)} ms 50th, "
            f"{int(r.p95_ms)} ms 95th, {int(r.p99_ms)} ms 99th, {int(r.p999_ms)} ms 99.9th.")


def _producer_payload(r: ProducerPerfResult) -> dict[str, Any]:
    t = r.total
    return {"records": t.records, "records_per_sec": round(t.records_per_s, 3), "mb_per_sec": round(t.mb_per_s, 3),
            "avg_latency_ms": round(t.avg_latency_ms, 3), "max_latency_ms": round(t.max_latency_ms, 3),
            "p50_ms": round(r.p50_ms, 3), "p95_ms": round(r.p95_ms, 3), "p99_ms": round(r.p99_ms, 3),
            "p999_ms": round(r.p999_ms, 3), "elapsed_s": round(t.elapsed_s, 3), "failed": r.failed,
            "transactions": r.transactions}


#: The Java tool's transactional id when only --transaction-duration-ms is given (plus a random uuid).
DEFAULT_TRANSACTIONAL_ID_PREFIX = "performance-producer-"
#: The Java tool's transaction duration when only a transactional id is given.
DEFAULT_TRANSACTION_DURATION_MS = 3000


def transactional(props: dict[str, str], transactional_id: str | None,
                  duration_ms: int | None) -> int | None:
    """kafka-producer-perf-test's rules: ``--transactional-id`` overrides ``transactional.id`` of the
    producer properties; a duration without an id gets ``performance-producer-<uuid>``; an id without a
    duration commits every 3000 ms. Sets ``props["transactional.id"]``; the duration, or None (no transactions)."""
    import uuid

    if transactional_id is not None:
        props["transactional.id"] = transactional_id
    if duration_ms is not None and "transactional.id" not in props:
        props["transactional.id"] = f"{DEFAULT_TRANSACTIONAL_ID_PREFIX}{uuid.uuid4()}"
    if "transactional.id" not in props:
        return None
    return duration_ms if duration_ms is not None else DEFAULT_TRANSACTION_DURATION_MS


@app.command("produce")
@handle_errors
def produce(
    topic: Annotated[str, typer.Option("--topic", help="Topic to write to.")],
    num_records: Annotated[int, typer.Option("--num-records", min=1, help="How many records to send.")],
    record_size: Annotated[int | None, typer.Option("--record-size", min=0, help="Bytes per record.")] = None,
    payload_file: Annotated[Path | None, typer.Option(
        "--payload-file", exists=True, dir_okay=False, help="Payloads to pick from at random (instead of sizes).")]
    = None,
    payload_delimiter: Annotated[str, typer.Option("--payload-delimiter", help="Splits --payload-file.")] = "\\n",
    throughput: Annotated[float, typer.Option(
        "--throughput", help="At most this many records/s; -1: no limit.")] = -1,
    producer_props: Annotated[list[str] | None, typer.Option(
        "--producer-props", help="Producer settings k=v, e.g. \"acks=1 linger.ms=5\" (repeatable).")] = None,
    transactional_id: Annotated[str | None, typer.Option(
        "--transactional-id", help="Produce in transactions with this transactional.id (overrides "
                                   "--producer-props).")] = None,
    transaction_duration_ms: Annotated[int | None, typer.Option(
        "--transaction-duration-ms", min=1, help="Commit a transaction every MS ms (default 3000 with a "
                                                 "transactional id; alone: id performance-producer-<uuid>).")] = None,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 60000,
    output: OutputOption = None,
) -> None:
    """Measure producer throughput and latency (kafka-producer-perf-test). --timeout bounds the final flush."""
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.services.perf import producer_perf

    payloads = _payloads(record_size, payload_file, payload_delimiter)
    props = split_props(producer_props or [], "--producer-props")
    duration_ms = transactional(props, transactional_id, transaction_duration_ms)
    settings = client_settings(bootstrap_server or props.pop("bootstrap.servers", None), command_config, timeout)
    progress = resolve_output(output) in (Output.text, Output.table)
    result = asyncio.run(producer_perf(settings, topic, num_records, payloads, throughput, props,
                                       on_window=(lambda w: typer.echo(_window_line(w))) if progress else None,
                                       transaction_duration_ms=duration_ms))
    table = Table(["RECORDS", "RECORDS/SEC", "MB/SEC", "AVG-LATENCY-MS", "MAX-LATENCY-MS", "P50", "P95", "P99",
                   "P99.9", "TRANSACTIONS"],
                  [[result.total.records, f"{result.total.records_per_s:.1f}", f"{result.total.mb_per_s:.2f}",
                    f"{result.total.avg_latency_ms:.2f}", f"{result.total.max_latency_ms:.2f}", int(result.p50_ms),
                    int(result.p95_ms), int(result.p99_ms), int(result.p999_ms), result.transactions]])
    summary = _producer_summary(result)
    if duration_ms is not None:
        summary += f"\n{result.transactions} transactions committed (every {duration_ms} ms)."
    render(output, [table], _producer_payload(result), text=lambda: summary)
    if result.failed:
        raise CliError(f"{result.failed} of {num_records} records were not delivered: {result.first_error}")


def _date(ms: int) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000)
    return moment.strftime("%Y-%m-%d %H:%M:%S:") + f"{ms % 1000:03d}"


def _consumer_figures(r: ConsumerPerfResult) -> dict[str, Any]:
    """The Java tool's columns (dots as underscores), unrounded; times in ms since the epoch."""
    from pykafka_ops.models.perf import MB

    mb, fetch_s = r.bytes / MB, r.fetch_ms / 1000
    return {"start_time": r.start_ms, "end_time": r.end_ms, "data_consumed_in_mb": mb, "mb_sec": mb / r.elapsed_s,
            "data_consumed_in_nmsg": r.messages, "nmsg_sec": r.messages / r.elapsed_s,
            "rebalance_time_ms": r.rebalance_ms, "fetch_time_ms": r.fetch_ms, "fetch_mb_sec": mb / fetch_s,
            "fetch_nmsg_sec": r.messages / fetch_s}


def _consumer_row(f: dict[str, Any]) -> list[Any]:
    return [_date(f["start_time"]), _date(f["end_time"]), f"{f['data_consumed_in_mb']:.4f}", f"{f['mb_sec']:.4f}",
            f["data_consumed_in_nmsg"], f"{f['nmsg_sec']:.4f}", f["rebalance_time_ms"], f["fetch_time_ms"],
            f"{f['fetch_mb_sec']:.4f}", f"{f['fetch_nmsg_sec']:.4f}"]


@app.command("consume")
@handle_errors
def consume(
    topic: Annotated[str, typer.Option("--topic", help="Topic to read.")],
    messages: Annotated[int, typer.Option("--messages", min=1, help="How many records to read.")],
    group: Annotated[str | None, typer.Option(
        "--group", help="Subscribe as this group (default: assign every partition, no group).")] = None,
    from_latest: Annotated[bool, typer.Option("--from-latest", help="Start at the end, not the beginning.")] = False,
    consumer_props: Annotated[list[str] | None, typer.Option(
        "--consumer-props", help="Consumer settings k=v, e.g. \"fetch.max.bytes=52428800\" (repeatable).")] = None,
    hide_header: Annotated[bool, typer.Option("--hide-header", help="No CSV header line.")] = False,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 10000,
    output: OutputOption = None,
) -> None:
    """Measure consumer throughput (kafka-consumer-perf-test). --timeout is the longest wait for a record."""
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.services.perf import consumer_perf

    settings = client_settings(bootstrap_server, command_config, timeout)
    result = asyncio.run(consumer_perf(settings, topic, messages, group, from_latest, timeout,
                                       split_props(consumer_props or [], "--consumer-props")))
    figures = _consumer_figures(result)
    row = _consumer_row(figures)
    text = ", ".join(map(str, row)) if hide_header else f"{CONSUMER_HEADER}\n" + ", ".join(map(str, row))
    payload = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
    render(output, [Table([c.strip() for c in CONSUMER_HEADER.split(",")], [row])],
           payload | {"timed_out": result.timed_out}, text=lambda: text)
    if result.timed_out:
        raise CliError(f"WARNING: Exiting before consuming the expected number of messages: timeout ({timeout} ms) "
                       "exceeded. You can use the --timeout option to increase the timeout.")
