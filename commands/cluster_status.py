"""`pko cluster status`: each node's roles, host, PID, ports, state, partitions led, quorum role,
uptime, RSS and CPU%, and its replication: under-replicated partitions it leads (URP, Kafka's
UnderReplicatedPartitions), partitions it hosts that are offline (no leader) or where its replica
is out of the ISR, and the ISR shrinks that removed it and expansions that added it back, counted
from the metadata log (``services.isr_history`` says why that source and what the window is).
The replication columns come last, so scripts that read the earlier columns by position keep working.

Piped (or ``--output text``): aligned columns, one line per node, ``-`` where a value is not known
(a node that is down; the cluster columns when no running node answered). On a terminal: a Rich
table with coloured states. ``--output json|yaml``: a list with one object per node (the schema
below; fields are only ever added). Registered on the ``cluster`` group by ``commands/cluster.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands._exit import handle_errors
from commands._render import Output, Table, plain_text, render, resolve_output

if TYPE_CHECKING:
    from cluster.launcher import NodeStatus
    from pykafka_ops.config.cluster import ClusterConfig

HEADER = ("NODE", "ROLES", "HOST", "PID", "PORT", "CONTROLLER-PORT", "STATE", "LEADERS", "QUORUM", "UPTIME", "RSS",
          "CPU%", "URP", "OFFLINE", "OUT-OF-ISR", "ISR-SHRINKS", "ISR-EXPANDS")
_COLOURS = {"running": "green", "paused": "yellow", "fenced": "yellow", "down": "red"}
#: Replication columns coloured when not zero (a Rich console drops colours when not on a terminal).
_TROUBLE = {"URP": "yellow", "OUT-OF-ISR": "yellow", "OFFLINE": "red"}


def node_json(node: NodeStatus) -> dict[str, Any]:
    """The stable JSON schema of one node in `status --output json|yaml`."""
    return {
        "id": node.id,
        "roles": list(node.roles),
        "host": node.host,
        "pid": node.pid,
        "port": node.port,
        "controller_port": node.controller_port,
        "state": node.state,
        "fenced": node.fenced,
        "leader_count": node.leader_count,
        "quorum_leader": node.quorum_leader,
        "uptime_s": node.uptime_s,
        "rss_bytes": node.rss_bytes,
        "cpu_percent": node.cpu_percent,
        "under_replicated_partitions": node.under_replicated,
        "offline_partitions": node.offline,
        "out_of_sync_replicas": node.out_of_sync,
        "isr_shrinks": node.isr_shrinks,
        "isr_expands": node.isr_expands,
        "admin_port": node.admin_port,
    }


def quorum_role(node: NodeStatus) -> str | None:
    """``leader`` (the active controller), ``voter`` (another controller), ``observer`` (a broker-only
    node), or None when nobody could say who leads."""
    if node.quorum_leader is None:
        return None
    if node.quorum_leader:
        return "leader"
    return "voter" if "controller" in node.roles else "observer"


def node_row(node: NodeStatus) -> list[Any]:
    """One row under ``HEADER`` (None shows as ``-``)."""
    return [
        node.id,
        ",".join(node.roles),
        node.host,
        node.pid,
        node.port,
        node.controller_port,
        node.state,
        node.leader_count,
        quorum_role(node),
        None if node.uptime_s is None else _duration(node.uptime_s),
        None if node.rss_bytes is None else f"{node.rss_bytes / 2**20:.1f}MiB",
        None if node.cpu_percent is None else f"{node.cpu_percent:.1f}",
        node.under_replicated,
        node.offline,
        node.out_of_sync,
        node.isr_shrinks,
        node.isr_expands,
    ]


@handle_errors
def status(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", dir_okay=False,
                     help="Cluster YAML file (default: the built-in single-node cluster, data under $XDG_STATE_HOME/pko)."),
    ] = None,
    output: Annotated[
        Output | None,
        typer.Option("--output", "-o", case_sensitive=False,
                     help="table (default on a terminal), text (default when piped), json, yaml or csv."),
    ] = None,
) -> None:
    """Show each node: roles, host, PID, ports, state (running, paused, fenced, down), partitions
    led, quorum role (leader, voter, observer), uptime, RSS and CPU%; then its replication: URP
    (under-replicated partitions it leads), OFFLINE (partitions it hosts without a leader),
    OUT-OF-ISR (its replicas not in the ISR), ISR-SHRINKS / ISR-EXPANDS (times the metadata log
    shows it removed from / added back to an ISR, since the latest metadata snapshot)."""
    from cluster import launcher
    from pykafka_ops.config.cluster import load

    cluster_config = load(config)
    nodes = launcher.status(cluster_config)
    table = Table(HEADER, [node_row(node) for node in nodes])
    if resolve_output(output) is Output.table:
        _print_table(cluster_config, nodes, table)
    else:
        render(output, [table], [node_json(node) for node in nodes], text=lambda: plain_text(table, separator="  "))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _print_table(config: ClusterConfig, nodes: list[NodeStatus], table: Table) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table as RichTable

    from commands._render import cell

    leader = next((node.id for node in nodes if node.quorum_leader), None)
    title = f"cluster {config.name!r} ({config.source})" + (f", quorum leader: node {leader}" if leader is not None
                                                             else "")
    rich_table = RichTable(*table.columns, title=escape(title), title_justify="left")
    state_column = HEADER.index("STATE")
    for node, row in zip(nodes, table.rows, strict=True):
        cells = [escape(cell(value)) for value in row]
        cells[state_column] = f"[{_COLOURS[node.state]}]{cells[state_column]}[/]"
        for column, value in _TROUBLE.items():
            index = HEADER.index(column)
            if row[index]:
                cells[index] = f"[{value}]{cells[index]}[/]"
        rich_table.add_row(*cells)
    Console().print(rich_table)
