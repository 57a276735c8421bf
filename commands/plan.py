"""`pko plan partitions`: how many partitions a topic needs, from measured throughput.

    pko plan partitions --topic T | --target-mb-s N [--record-size B] [--growth 2]
                        [--producer-mb-s-per-partition P] [--consumer-mb-s-per-partition C] | --measure [--yes]
                        [--probe-seconds 5] [--probe-max-mb-s 50] [--producer-props "acks=all …"]
                        [--max-partitions-per-broker 4000] [--output text|json|yaml]

The target is ``--target-mb-s``, or ``--topic``'s produce rate measured over ``--window`` seconds;
per-partition throughputs are given, or measured with ``--measure`` on a scratch topic (after a
confirmation). Exit codes: 0 ok, 1 cluster or Kafka error, 2 usage error.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands._exit import USAGE, CliError, handle_errors
from commands._options import BootstrapOption, CommandConfigOption, OutputOption, TimeoutOption
from commands._render import Output, Table, render, resolve_output

if TYPE_CHECKING:
    from pykafka_ops.client.connection import ClientSettings
    from pykafka_ops.services.plan_partitions import PartitionPlan
    from pykafka_ops.services.plan_probe import ClusterLayout, ProbeResult, TopicLoad

app = typer.Typer(name="plan", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Plan capacity from measurements: partition counts.")



@app.callback()
def plan_group() -> None:
    """Plan capacity from measurements: partition counts."""


DEFAULT_WINDOW_S = 10.0
DEFAULT_PROBE_SECONDS = 5.0
DEFAULT_PROBE_MAX_MB_S = 50.0
#: Probe record size when neither --record-size nor a topic's records give one.
DEFAULT_RECORD_SIZE = 1024


def _check_usage(topic: str | None, target_mb_s: float | None, window: float | None, measure: bool,
                 producer_mb_s: float | None, consumer_mb_s: float | None, probe_only: dict[str, object]) -> None:
    if topic is None and target_mb_s is None:
        raise CliError("give --topic T (its measured produce rate is the target) or --target-mb-s N", USAGE)
    if window is not None and (topic is None or target_mb_s is not None):
        raise CliError("--window samples --topic's produce rate: not with --target-mb-s", USAGE)
    if measure and (producer_mb_s is not None or consumer_mb_s is not None):
        raise CliError("--measure measures both per-partition throughputs: leave out "
                       "--producer-mb-s-per-partition and --consumer-mb-s-per-partition", USAGE)
    if not measure and producer_mb_s is None and consumer_mb_s is None:
        raise CliError("give --measure, or --producer-mb-s-per-partition and/or --consumer-mb-s-per-partition",
                       USAGE)
    given = [name for name, value in probe_only.items() if value]
    if given and not measure:
        raise CliError(f"{', '.join(given)} only go with --measure", USAGE)


def _confirm(settings: ClientSettings, probe_topic: str, replication_factor: int, seconds: float,
             cap_mb_s: float) -> None:
    """y/N on stderr, answered on stdin (a TTY or a pipe); no answer refuses (exit 2)."""
    question = (f"--measure creates topic {probe_topic} (replication factor {replication_factor}) on "
                f"{settings.bootstrap_servers}, writes to it for {seconds:g} s at up to {cap_mb_s:g} MB/s, reads it "
                "back and deletes it. Continue?")
    try:
        answer = typer.confirm(question, default=False, err=True)
    except typer.Abort:
        answer = False
    if not answer:
        raise CliError("not measuring without a confirmation (add --yes)", USAGE)


@contextmanager
def _status() -> Iterator[Callable[[str], None] | None]:
    """A Rich spinner line on stderr when it is a TTY (else nothing); yields its update callback."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console

    with Console(stderr=True).status("planning …") as status:
        yield lambda line: status.update(line)


def _figures_table(payload: dict[str, Any]) -> Table:
    names = ("target_mb_s", "growth", "planned_mb_s", "producer_mb_s_per_partition", "consumer_mb_s_per_partition",
             "by_producer", "by_consumer", "needed", "current_partitions", "recommended", "brokers",
             "projected_max_per_broker", "command")
    return Table(["NAME", "VALUE"], [[name, payload[name]] for name in names])


def _text(payload: dict[str, Any], layout: ClusterLayout, load: TopicLoad | None, probe: ProbeResult | None) -> str:
    from pykafka_ops.services.plan_partitions import mb_s

    lines = []
    topic = payload["topic"]
    if layout.topic_partitions is not None:
        lines.append(f"topic {topic}: {layout.topic_partitions} partitions, replication factor "
                     f"{layout.topic_replication_factor}, {layout.brokers} broker{'s' if layout.brokers > 1 else ''}")
    if load is not None and load.records_per_s is not None:
        lines.append(f"measured load: {load.records_per_s:.1f} records/s × {payload['record_size']:.0f} B = "
                     f"{mb_s(payload['target_mb_s'])} MB/s over {load.window_s:g} s")
    if probe is not None:
        lines.append(f"probe {probe.topic} (1 partition, replication factor {probe.replication_factor}, "
                     f"{probe.record_size} B records, ≤ {probe.seconds:g} s, cap {probe.rate_cap_mb_s:g} MB/s): "
                     f"producer {mb_s(probe.producer_mb_s)} MB/s ({probe.produced_records} records, p99 "
                     f"{probe.producer_p99_ms:.0f} ms), consumer {mb_s(probe.consumer_mb_s)} MB/s "
                     f"({probe.consumed_records} records); scratch topic deleted")
    lines += payload["arithmetic"]
    lines += [f"note: {n}" for n in payload["notes"]]
    lines += [f"WARNING: {w}" for w in payload["warnings"]]
    lines.append(f"apply: {payload['command']}" if payload["command"] else "apply: nothing to do")
    return "\n".join(lines)


def _rounded(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


def _payload(topic: str | None, record_size: float | None, layout: ClusterLayout, load: TopicLoad | None,
             probe: ProbeResult | None, result: PartitionPlan) -> dict[str, Any]:
    from pykafka_ops.services.plan_partitions import apply_command, arithmetic

    i = result.inputs
    warnings = list(result.warnings)
    if probe is not None and probe.capped:
        warnings.insert(0, f"the producer probe reached its rate cap ({probe.rate_cap_mb_s:g} MB/s): one partition "
                           "sustains at least that much (raise --probe-max-mb-s to find out more)")
    payload = {
        "topic": topic, "exists": i.current_partitions is not None, "record_size": record_size,
        "load": {k: _rounded(v) for k, v in asdict(load).items()} if load is not None else None,
        "probe": {k: _rounded(v) for k, v in asdict(probe).items()} | {"capped": probe.capped} if probe else None,
        "target_mb_s": i.target_mb_s, "growth": i.growth, "planned_mb_s": result.planned_mb_s,
        "producer_mb_s_per_partition": i.producer_mb_s, "consumer_mb_s_per_partition": i.consumer_mb_s,
        "by_producer": result.by_producer, "by_consumer": result.by_consumer, "needed": result.needed,
        "current_partitions": i.current_partitions, "recommended": result.recommended,
        "rounded_to_brokers": result.rounded_to_brokers, "change": result.change, "brokers": i.brokers,
        "replication_factor": i.replication_factor,
        "replicas_per_broker": {str(b): n for b, n in sorted(layout.replicas_per_broker.items())},
        "max_partitions_per_broker": i.max_partitions_per_broker,
        "projected_max_per_broker": result.projected_max_per_broker,
        "arithmetic": arithmetic(result), "notes": list(result.notes), "warnings": warnings,
        "command": apply_command(result, topic),
    }
    return {k: _rounded(v) for k, v in payload.items()}


@app.command("partitions")
@handle_errors
def partitions(
    topic: Annotated[str | None, typer.Option(
        "--topic", help="The topic to size: its produce rate is the target (unless --target-mb-s); "
                        "a new topic's name with --target-mb-s.")] = None,
    target_mb_s: Annotated[float | None, typer.Option(
        "--target-mb-s", min=0.0, help="Target throughput in MB/s (MB = 1024 × 1024 bytes).")] = None,
    window: Annotated[float | None, typer.Option(
        "--window", min=0.1, help=f"Seconds over which --topic's produce rate is sampled [default: "
                                  f"{DEFAULT_WINDOW_S:g}].")] = None,
    record_size: Annotated[int | None, typer.Option(
        "--record-size", min=1, help="Bytes per record, for records/s → MB/s and the probe [default: the topic's "
                                     f"mean, else {DEFAULT_RECORD_SIZE}].")] = None,
    growth: Annotated[float, typer.Option("--growth", min=1.0, help="Multiply the target by this (headroom).")] = 2.0,
    producer_mb_s: Annotated[float | None, typer.Option(
        "--producer-mb-s-per-partition", min=0.001, help="What one partition sustains for a producer, MB/s.")] = None,
    consumer_mb_s: Annotated[float | None, typer.Option(
        "--consumer-mb-s-per-partition", min=0.001, help="What one partition sustains for a consumer, MB/s.")] = None,
    measure: Annotated[bool, typer.Option(
        "--measure", help="Measure both on a scratch topic (produce, consume back, delete).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before --measure.")] = False,
    probe_seconds: Annotated[float | None, typer.Option(
        "--probe-seconds", min=0.5, max=60.0, help=f"Longest produce and consume probe, seconds [default: "
                                                   f"{DEFAULT_PROBE_SECONDS:g}].")] = None,
    probe_max_mb_s: Annotated[float | None, typer.Option(
        "--probe-max-mb-s", min=0.01, help=f"Rate cap of the produce probe, MB/s [default: "
                                           f"{DEFAULT_PROBE_MAX_MB_S:g}].")] = None,
    producer_props: Annotated[list[str] | None, typer.Option(
        "--producer-props", help="Probe producer settings k=v, e.g. \"acks=all linger.ms=5\" (repeatable; "
                                 "default acks=all).")] = None,
    replication_factor: Annotated[int | None, typer.Option(
        "--replication-factor", min=1, help="A new topic's replication factor [default: min(3, brokers)].")] = None,
    max_partitions_per_broker: Annotated[int, typer.Option(
        "--max-partitions-per-broker", min=1, help="Warn past this many partition replicas on a broker.")] = 4000,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 10000,
    output: OutputOption = None,
) -> None:
    """Recommend a partition count from a target throughput and measured per-partition throughput."""
    from commands.perf import split_props
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.models.perf import MB
    from pykafka_ops.services.plan_partitions import PlanInputs, plan
    from pykafka_ops.services.plan_probe import cluster_layout, measure as probe, probe_topic_name, topic_load

    _check_usage(topic, target_mb_s, window, measure, producer_mb_s, consumer_mb_s, {
        "--yes": yes, "--probe-seconds": probe_seconds, "--probe-max-mb-s": probe_max_mb_s,
        "--producer-props": producer_props})
    props = split_props(producer_props or [], "--producer-props")
    settings = client_settings(bootstrap_server, command_config, timeout)
    layout = asyncio.run(cluster_layout(settings, topic))
    exists = layout.topic_partitions is not None
    if topic is not None and not exists and target_mb_s is None:
        raise CliError(f"Topic '{topic}' does not exist (give --target-mb-s N to plan it as a new topic)")
    if exists and replication_factor is not None:
        raise CliError(f"--replication-factor is for a new topic: {topic} has replication factor "
                       f"{layout.topic_replication_factor}", USAGE)
    rf = layout.topic_replication_factor or replication_factor or min(3, layout.brokers)
    scratch = probe_topic_name()
    seconds, cap = probe_seconds or DEFAULT_PROBE_SECONDS, probe_max_mb_s or DEFAULT_PROBE_MAX_MB_S
    if measure and not yes:
        _confirm(settings, scratch, rf, seconds, cap)

    with _status() as say:
        load = None
        if exists and topic is not None:
            sampled = None if target_mb_s is not None else (window or DEFAULT_WINDOW_S)
            if say is not None and sampled:
                say(f"sampling {topic}'s log-end offsets for {sampled:g} s")
            load = asyncio.run(topic_load(settings, topic, layout.topic_partitions or 0, sampled))
        size = record_size or (load.record_bytes if load is not None else None)
        measured = None
        if measure:
            measured = asyncio.run(probe(settings, scratch, rf, max(1, round(size or DEFAULT_RECORD_SIZE)), cap, seconds,
                                       props, say))
    if target_mb_s is None:
        assert load is not None and load.records_per_s is not None
        target_mb_s = load.records_per_s * (size or 0) / MB
    inputs = PlanInputs(target_mb_s, growth, measured.producer_mb_s if measured else producer_mb_s,
                        measured.consumer_mb_s if measured else consumer_mb_s, layout.brokers, rf,
                        layout.topic_partitions, layout.replicas_per_broker, max_partitions_per_broker,
                        keyed=bool(load and load.keyed))
    recommendation = plan(inputs)
    payload = _payload(topic, size, layout, load, measured, recommendation)
    chosen = resolve_output(output)
    render(Output.text if chosen is Output.table else chosen, [_figures_table(payload)], payload,
           text=lambda: _text(payload, layout, load, measured))
