"""`pko topics`: kafka-topics with its action flags (--create, --list, --describe, --alter, --delete).

Piped, ``--list`` and ``--describe`` print kafka-topics' own lines (``Topic: t⇥TopicId: …`` and
``⇥Topic: t⇥Partition: 0⇥Leader: 1⇥Replicas: 1⇥Isr: 1⇥Elr: N/A⇥LastKnownElr: N/A``), so
existing scripts keep working; on a TTY a Rich table; ``--output json`` a stable schema. Unlike
kafka-topics, usage errors exit 2 and runtime errors (missing topic, Kafka error) exit 1.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands._exit import USAGE, CliError, handle_errors
from commands._options import (
    BootstrapOption,
    CommandConfigOption,
    OutputOption,
    TimeoutOption,
)
from commands._render import Table, render

if TYPE_CHECKING:
    from pykafka_ops.models.topics import PartitionDescription, TopicDescription

app = typer.Typer(add_completion=False, rich_markup_mode=None)

ACTIONS = "--list, --describe, --create, --alter or --delete"
MAX_REPLICATION_FACTOR = 32767
#: Kafka's ``Uuid.ZERO_UUID``: kafka-topics omits the TopicId field for it.
ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA"


def parse_assignment(text: str) -> list[list[int]]:
    """kafka-topics' ``--replica-assignment 1:2,3:4`` → replicas per partition ([[1, 2], [3, 4]])."""
    try:
        assignment = [[int(b) for b in part.split(":")] for part in text.split(",")]
    except ValueError:
        raise CliError(f"invalid --replica-assignment {text!r}: expected broker ids like 1:2,3:4", USAGE) from None
    for replicas in assignment:
        if len(set(replicas)) != len(replicas):
            raise CliError(f"Partition replica lists may not contain duplicate entries: {text}", USAGE)
    return assignment


def parse_configs(pairs: list[str]) -> dict[str, str]:
    """Repeated ``--config k=v`` → a dict."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError('Invalid topic config: all configs to be added must be in the format "key=val".', USAGE)
        result[key] = value
    return result


def _check_usage(actions: dict[str, bool], topic: str | None, opts: dict[str, Any]) -> str:
    chosen = [name for name, on in actions.items() if on]
    if len(chosen) != 1:
        raise CliError(f"Command must include exactly one action: {ACTIONS}", USAGE)
    action = chosen[0]
    if action in ("create", "alter", "delete") and not topic:
        raise CliError(f"--{action} needs --topic", USAGE)
    allowed = {
        "create": {"partitions", "replication_factor", "replica_assignment", "config", "if_not_exists"},
        "alter": {"partitions", "replica_assignment", "if_exists"},
        "delete": {"if_exists"},
        "list": {"exclude_internal"},
        "describe": {"exclude_internal", "if_exists", "under_replicated_partitions", "under_min_isr_partitions",
                     "at_min_isr_partitions", "unavailable_partitions", "topics_with_overrides"},
    }[action]
    for name, value in opts.items():
        if value and name not in allowed:
            flag = "--" + name.replace("_", "-")
            hint = " (change topic configs with `pko configs --alter`)" if name == "config" else ""
            raise CliError(f"{flag} can't be used with --{action}{hint}", USAGE)
    return action


@app.command(no_args_is_help=True)
@handle_errors
def topics(
    create: Annotated[bool, typer.Option("--create", help="Create a topic.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List topic names, sorted.")] = False,
    describe: Annotated[bool, typer.Option("--describe", help="Describe topics and their partitions.")] = False,
    alter: Annotated[bool, typer.Option("--alter", help="Raise the partition count of topics.")] = False,
    delete: Annotated[bool, typer.Option("--delete", help="Delete topics.")] = False,
    topic: Annotated[str | None, typer.Option(
        "--topic", help="Topic name with --create; a regular expression (whole name) otherwise.")] = None,
    partitions: Annotated[int | None, typer.Option(
        "--partitions", help="Partitions (--create: default num.partitions; --alter: the new count).")] = None,
    replication_factor: Annotated[int | None, typer.Option(
        "--replication-factor", help="Replication factor (default: the broker's default.replication.factor).")] = None,
    replica_assignment: Annotated[str | None, typer.Option(
        "--replica-assignment", help="Broker ids per partition, e.g. 1:2,2:3 (partition 0 on 1 and 2 …).")] = None,
    config: Annotated[list[str] | None, typer.Option(
        "--config", help="A topic config override k=v (repeatable).")] = None,
    if_exists: Annotated[bool, typer.Option("--if-exists", help="No error when the topic does not exist.")] = False,
    if_not_exists: Annotated[bool, typer.Option(
        "--if-not-exists", help="No error when the topic already exists.")] = False,
    exclude_internal: Annotated[bool, typer.Option(
        "--exclude-internal", help="Leave out internal topics (__consumer_offsets …).")] = False,
    under_replicated_partitions: Annotated[bool, typer.Option(
        "--under-replicated-partitions", help="Only partitions whose ISR is smaller than their replicas.")] = False,
    under_min_isr_partitions: Annotated[bool, typer.Option(
        "--under-min-isr-partitions", help="Only partitions whose ISR is below min.insync.replicas.")] = False,
    at_min_isr_partitions: Annotated[bool, typer.Option(
        "--at-min-isr-partitions", help="Only partitions whose ISR equals min.insync.replicas.")] = False,
    unavailable_partitions: Annotated[bool, typer.Option(
        "--unavailable-partitions", help="Only partitions without a leader.")] = False,
    topics_with_overrides: Annotated[bool, typer.Option(
        "--topics-with-overrides", help="Only topics that override a config (topic lines only).")] = False,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 30000,
    output: OutputOption = None,
) -> None:
    """Create, list, describe, alter or delete topics, with kafka-topics' flags."""
    opts = {"partitions": partitions is not None, "replication_factor": replication_factor is not None,
            "replica_assignment": replica_assignment is not None, "config": bool(config), "if_exists": if_exists,
            "if_not_exists": if_not_exists, "exclude_internal": exclude_internal,
            "under_replicated_partitions": under_replicated_partitions,
            "under_min_isr_partitions": under_min_isr_partitions, "at_min_isr_partitions": at_min_isr_partitions,
            "unavailable_partitions": unavailable_partitions, "topics_with_overrides": topics_with_overrides}
    action = _check_usage({"list": list_, "describe": describe, "create": create, "alter": alter, "delete": delete},
                          topic, opts)
    from pykafka_ops.client.connection import client_settings

    settings = client_settings(bootstrap_server, command_config, timeout)
    assignment = parse_assignment(replica_assignment) if replica_assignment else None
    if action == "create":
        _create(settings, topic or "", partitions, replication_factor, assignment, parse_configs(config or []),
                if_not_exists)
    elif action == "alter":
        from pykafka_ops.services.topics import alter_partitions

        if partitions is None:
            raise CliError("--alter needs --partitions (the new partition count)", USAGE)
        asyncio.run(alter_partitions(settings, topic or "", partitions, assignment, if_exists))
    elif action == "delete":
        from pykafka_ops.services.topics import delete_topics

        asyncio.run(delete_topics(settings, topic or "", if_exists))
    elif action == "list":
        from pykafka_ops.services.topics import list_topics

        names = asyncio.run(list_topics(settings, topic, exclude_internal))
        render(output, [Table(["TOPIC"], [[n] for n in names])], names, text=lambda: "\n".join(names))
    else:
        _describe(settings, topic, exclude_internal, if_exists, output, under_replicated_partitions,
                  under_min_isr_partitions, at_min_isr_partitions, unavailable_partitions, topics_with_overrides)


def _create(settings: Any, name: str, partitions: int | None, replication_factor: int | None,
            assignment: list[list[int]] | None, config: dict[str, str], if_not_exists: bool) -> None:
    from pykafka_ops.services.topics import create_topic

    if assignment and (partitions is not None or replication_factor is not None):
        raise CliError("--replica-assignment can't be used with --partitions or --replication-factor", USAGE)
    if partitions is not None and partitions < 1:
        raise CliError("The partitions must be greater than 0", USAGE)
    if replication_factor is not None and not 1 <= replication_factor <= MAX_REPLICATION_FACTOR:
        raise CliError(f"The replication factor must be between 1 and {MAX_REPLICATION_FACTOR} inclusive", USAGE)
    if "." in name or "_" in name:
        typer.echo("WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') "
                   "could collide. To avoid issues it is best to use either, but not both.", err=True)
    created = asyncio.run(create_topic(settings, name, -1 if partitions is None else partitions,
                                       -1 if replication_factor is None else replication_factor,
                                       assignment, config, if_not_exists))
    if created:
        typer.echo(f"Created topic {name}.")


def _selected(topic: TopicDescription, filters: dict[str, bool],
              live_brokers: frozenset[int] | None = None) -> list[PartitionDescription]:
    """kafka-topics' partition filters (TopicCommand's ``PartitionDescription``): no filter, every
    partition; several, the partitions that pass any of them, as kafka-topics prints them.

    Under-replicated is the ISR smaller than the replicas, whether or not there is a leader (an
    offline partition keeps its last ISR, so kafka-topics does not list it unless that ISR is
    short); under min ISR includes every partition without a leader; unavailable is no leader, or
    a leader that is not a live broker (``live_brokers``, Metadata's: registered and unfenced)."""
    min_isr = topic.min_insync_replicas or 1
    tests = {
        "under_replicated": lambda p: p.under_replicated,
        "under_min_isr": lambda p: p.unavailable or len(p.isr) < min_isr,
        "at_min_isr": lambda p: len(p.isr) == min_isr,
        "unavailable": lambda p: p.unavailable or (live_brokers is not None and p.leader not in live_brokers),
    }
    active = [tests[name] for name, on in filters.items() if on]
    return [p for p in topic.partitions if not active or any(test(p) for test in active)]


Rows = list[tuple["TopicDescription", list["PartitionDescription"]]]


def _describe(settings: Any, pattern: str | None, exclude_internal: bool, if_exists: bool, output: Any,
              under_replicated: bool, under_min_isr: bool, at_min_isr: bool, unavailable: bool,
              with_overrides: bool) -> None:
    from pykafka_ops.services.topics import (
        MISSING,
        TopicNotFoundError,
        describe_topics,
        live_broker_ids,
    )

    described = asyncio.run(describe_topics(settings, pattern, exclude_internal))
    live = asyncio.run(live_broker_ids(settings)) if unavailable and described else None
    if pattern is not None and not described and not if_exists:
        raise TopicNotFoundError(MISSING.format(pattern))
    filters = {"under_replicated": under_replicated, "under_min_isr": under_min_isr, "at_min_isr": at_min_isr,
               "unavailable": unavailable}
    show_topics = not any(filters.values())
    rows: Rows = []
    for topic in described:
        if with_overrides and not topic.configs:
            continue
        parts = [] if with_overrides else _selected(topic, filters, live)
        if show_topics or parts:
            rows.append((topic, parts))
    render(output, _tables(rows, show_topics), _payload(rows), text=lambda: _text(rows, show_topics))


def _configs_text(topic: TopicDescription) -> str:
    return ",".join(f"{e.name}={e.value}" for e in topic.configs)


def _topic_line(topic: TopicDescription) -> str:
    topic_id = f"\tTopicId: {topic.topic_id}" if topic.topic_id != ZERO_UUID else ""
    return (f"Topic: {topic.name}{topic_id}\tPartitionCount: {len(topic.partitions)}"
            f"\tReplicationFactor: {topic.replication_factor}\tConfigs: {_configs_text(topic)}")


def _partition_line(p: PartitionDescription) -> str:
    leader = "none" if p.leader is None else p.leader
    moving = (f"\tAdding Replicas: {','.join(map(str, p.adding_replicas))}"
              f"\tRemoving Replicas: {','.join(map(str, p.removing_replicas))}"
              if p.adding_replicas or p.removing_replicas else "")
    return (f"\tTopic: {p.topic}\tPartition: {p.partition}\tLeader: {leader}"
            f"\tReplicas: {','.join(map(str, p.replicas))}\tIsr: {','.join(map(str, p.isr))}{moving}"
            "\tElr: N/A\tLastKnownElr: N/A")


def _text(rows: Rows, show_topics: bool) -> str:
    lines = []
    for topic, parts in rows:
        if show_topics:
            lines.append(_topic_line(topic))
        lines.extend(_partition_line(p) for p in parts)
    return "\n".join(lines)


def _tables(rows: Rows, show_topics: bool) -> list[Table]:
    topics = Table(["TOPIC", "TOPIC-ID", "PARTITION-COUNT", "REPLICATION-FACTOR", "CONFIGS"],
                   [[t.name, t.topic_id, len(t.partitions), t.replication_factor, _configs_text(t)]
                    for t, _ in rows] if show_topics else [],
                   numeric=frozenset({"PARTITION-COUNT", "REPLICATION-FACTOR"}))
    partitions = Table(["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "ADDING", "REMOVING"],
                       [[p.topic, p.partition, "none" if p.leader is None else p.leader,
                         ",".join(map(str, p.replicas)), ",".join(map(str, p.isr)),
                         ",".join(map(str, p.adding_replicas)) or None, ",".join(map(str, p.removing_replicas)) or None]
                        for _, parts in rows for p in parts], numeric=frozenset({"PARTITION", "LEADER"}))
    return [t for t in (topics, partitions) if t.rows]


def _payload(rows: Rows) -> list[dict[str, Any]]:
    return [{"topic": t.name, "topic_id": t.topic_id, "is_internal": t.is_internal,
             "partition_count": len(t.partitions), "replication_factor": t.replication_factor,
             "configs": {e.name: e.value for e in t.configs},
             "partitions": [{"partition": p.partition, "leader": p.leader, "replicas": list(p.replicas),
                             "isr": list(p.isr), "adding_replicas": list(p.adding_replicas),
                             "removing_replicas": list(p.removing_replicas)} for p in parts]}
            for t, parts in rows]
