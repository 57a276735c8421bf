"""`pko cluster quorum [--status | --replication]` (kafka-metadata-quorum describe): the KRaft quorum.

Piped, the Kafka tool's own layout. ``--status`` (the default)::

    ClusterId:              q1Sh-9_ISia_zwGINzRvyQ
    LeaderId:               1
    LeaderEpoch:            1
    HighWatermark:          12
    MaxFollowerLag:         0
    MaxFollowerLagTimeMs:   0
    CurrentVoters:          [{"id": 1, "endpoints": ["PLAINTEXT://127.0.0.1:9092"]}]
    CurrentObservers:       []

``--replication``: ``NodeId LogEndOffset Lag LastFetchTimestamp LastCaughtUpTimestamp Status``,
tab-separated (Status is Leader, Follower or Observer; a timestamp is -1 when unknown). On a
terminal a table; ``--output json|yaml`` a stable schema. It asks any cluster — ours, or Apache
Kafka 3.3+ in KRaft mode — through ``-b``, else the running cluster of ``-c FILE``, else
``$PKO_BOOTSTRAP`` or the default local cluster. Registered on the ``cluster`` group by
``commands/cluster.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands._exit import USAGE, CliError, handle_errors
from commands._options import (
    BootstrapOption,
    CommandConfigOption,
    OutputOption,
    TimeoutOption,
)
from commands._render import Table, plain_text, render

if TYPE_CHECKING:
    from pykafka_ops.services.quorum import QuorumMember, QuorumStatus, ReplicationRow

_REPLICATION_COLUMNS = ("NodeId", "LogEndOffset", "Lag", "LastFetchTimestamp", "LastCaughtUpTimestamp", "Status")


def _members_text(members: tuple[QuorumMember, ...]) -> str:
    return "[" + ", ".join(m.kafka_text() for m in members) + "]"


def _status_fields(status: QuorumStatus) -> list[tuple[str, Any]]:
    return [("ClusterId", status.cluster_id), ("LeaderId", status.leader_id), ("LeaderEpoch", status.leader_epoch),
            ("HighWatermark", status.high_watermark), ("MaxFollowerLag", status.max_follower_lag),
            ("MaxFollowerLagTimeMs", status.max_follower_lag_time_ms),
            ("CurrentVoters", _members_text(status.current_voters)),
            ("CurrentObservers", _members_text(status.current_observers))]


def _status_text(status: QuorumStatus) -> str:
    return "\n".join(f"{name + ':':<24}{'' if value is None else value}" for name, value in _status_fields(status))


def _member_json(member: QuorumMember) -> dict[str, Any]:
    return {"id": member.id, "directory_id": member.directory_id, "endpoints": list(member.endpoints)}


def _status_payload(status: QuorumStatus) -> dict[str, Any]:
    return {"cluster_id": status.cluster_id, "leader_id": status.leader_id, "leader_epoch": status.leader_epoch,
            "high_watermark": status.high_watermark, "max_follower_lag": status.max_follower_lag,
            "max_follower_lag_time_ms": status.max_follower_lag_time_ms,
            "current_voters": [_member_json(m) for m in status.current_voters],
            "current_observers": [_member_json(m) for m in status.current_observers]}


def _replication_table(rows: list[ReplicationRow]) -> Table:
    return Table(_REPLICATION_COLUMNS,
                 [[r.node_id, r.log_end_offset, r.lag, r.last_fetch_timestamp, r.last_caught_up_timestamp, r.status]
                  for r in rows], title="metadata quorum replication",
                 numeric=frozenset(_REPLICATION_COLUMNS[:5]))


def _replication_payload(rows: list[ReplicationRow]) -> list[dict[str, Any]]:
    return [{"node_id": r.node_id, "directory_id": r.directory_id, "log_end_offset": r.log_end_offset, "lag": r.lag,
             "last_fetch_timestamp": r.last_fetch_timestamp, "last_caught_up_timestamp": r.last_caught_up_timestamp,
             "status": r.status} for r in rows]


@handle_errors
def quorum(
    status: Annotated[bool, typer.Option("--status", help="A short summary of the quorum (the default).")] = False,
    replication: Annotated[bool, typer.Option(
        "--replication", help="Each voter's and observer's log end offset, lag, last fetch and caught-up times.",
    )] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", exists=True, dir_okay=False,
        help="Cluster YAML of a `pko cluster up` cluster: ask it when -b is not given.")] = None,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 10000,
    output: OutputOption = None,
) -> None:
    """Describe the KRaft metadata quorum: leader, epoch, high watermark, voters, observers, lag."""
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.services.quorum import describe_replication, describe_status

    if status and replication:
        raise CliError("Only one of --status or --replication should be specified", USAGE)
    settings = client_settings(bootstrap_server, command_config, timeout, config)
    if replication:
        rows = asyncio.run(describe_replication(settings))
        table = _replication_table(rows)
        render(output, [table], _replication_payload(rows), text=lambda: plain_text(table, separator="\t"))
    else:
        summary = asyncio.run(describe_status(settings))
        table = Table(["Field", "Value"], [list(f) for f in _status_fields(summary)], title="metadata quorum")
        render(output, [table], _status_payload(summary), text=lambda: _status_text(summary))
