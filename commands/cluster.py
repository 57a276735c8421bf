"""`pko cluster up|status|down|logs|kill|restart`: run a cluster defined in YAML on this machine.

Thin: parse flags → one ``cluster.launcher`` call → render. ``-c/--config`` names the cluster
file on every command; without it the built-in single-node cluster is used, with its data under
``$XDG_STATE_HOME/pko/<name>``. psutil and Rich are imported inside the commands so that
`pko --help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from commands import cluster_info, cluster_metadata, cluster_quorum
from commands._exit import USAGE, CliError, handle_errors

if TYPE_CHECKING:
    from cluster.launcher import NodeStatus, StoppedNode, UpResult
    from pykafka_ops.config.cluster import ClusterConfig

app = typer.Typer(
    name="cluster",
    help="Start, stop and inspect a cluster defined in YAML.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
#: `pko cluster info` (kcat -L) talks to any cluster, not to a YAML one: it lives in its own module.
app.command("info")(cluster_info.info)
app.command("quorum")(cluster_quorum.quorum)
app.command("metadata")(cluster_metadata.metadata)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", dir_okay=False,
        help="Cluster YAML file (default: the built-in single-node cluster, data under $XDG_STATE_HOME/pko).",
    ),
]
WaitOption = Annotated[
    float, typer.Option("--wait", min=0, help="Seconds to wait for every node to answer ApiVersions and Metadata.")
]
NodeOption = Annotated[int, typer.Option("--node", help="Node id, as in the cluster file.")]


class Output(StrEnum):
    """`status --output` formats."""

    table = "table"
    json = "json"
    text = "text"


class SignalName(StrEnum):
    """Signals `kill --signal` can send."""

    KILL = "KILL"
    TERM = "TERM"
    STOP = "STOP"
    CONT = "CONT"


@app.command()
@handle_errors
def up(
    config: ConfigOption = None,
    wait: WaitOption = 30.0,
    foreground: Annotated[bool, typer.Option("--foreground", help="Stay attached; Ctrl-C stops every node.")] = False,
) -> None:
    """Start every node and return once clients can use the cluster."""
    from cluster import launcher

    cluster_config = _load(config)
    result = launcher.up(cluster_config, wait_s=wait, foreground=foreground, on_ready=_announce_foreground)
    if foreground:
        _report_stopped(result.stopped)
        if not result.stopped:
            typer.echo(f"every node of cluster {result.cluster!r} is down")
    else:
        typer.echo(_up_line(result))


@app.command()
@handle_errors
def status(
    config: ConfigOption = None,
    output: Annotated[
        Output | None,
        typer.Option(
            "--output", "-o", case_sensitive=False,
            help="table (default on a terminal), text (default when piped) or json.",
        ),
    ] = None,
) -> None:
    """Show each node: roles, PID, port, state (running, paused, down), uptime, RSS and CPU%."""
    from cluster import launcher

    cluster_config = _load(config)
    nodes = launcher.status(cluster_config)
    chosen = output or (Output.table if sys.stdout.isatty() else Output.text)
    if chosen is Output.json:
        typer.echo(json.dumps([_node_json(node) for node in nodes], indent=2))
    elif chosen is Output.text:
        typer.echo(_aligned([list(_HEADER), *map(_node_row, nodes)]))
    else:
        _print_table(cluster_config, nodes)


@app.command()
@handle_errors
def down(
    config: ConfigOption = None,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the data dir: all topics, offsets.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before --purge deletes data.")] = False,
) -> None:
    """Stop every node (SIGTERM, then SIGKILL after a grace period); data is kept unless --purge."""
    from cluster import launcher

    cluster_config = _load(config)
    if purge and not yes:
        _confirm_purge(cluster_config)
    result = launcher.down(cluster_config, purge=purge)
    if not result.stopped:
        typer.echo(f"cluster {result.cluster!r} is not running")
    _report_stopped(result.stopped)
    if result.purged:
        typer.echo(f"deleted {result.data_dir}")
    elif purge:
        typer.echo(f"nothing to purge: {result.data_dir} does not exist")
    elif result.stopped:
        typer.echo(f"cluster {result.cluster!r} is down; data kept in {result.data_dir}")


@app.command()
@handle_errors
def logs(
    config: ConfigOption = None,
    node: Annotated[int | None, typer.Option("--node", help="Only this node's log.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")] = False,
) -> None:
    """Print the node logs (each line prefixed by its node when there are several)."""
    from cluster import launcher

    cluster_config = _load(config)
    if node is not None:
        _require_node(cluster_config, node)
    prefixed = node is None and len(cluster_config.nodes) > 1
    try:
        for node_id, line in launcher.logs(cluster_config, node, follow):
            text = line.rstrip("\n")
            typer.echo(f"node-{node_id} | {text}" if prefixed else text)
    except KeyboardInterrupt:
        if not follow:
            raise
    except BrokenPipeError:  # `pko cluster logs | head`: the reader is gone, nothing left to do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@app.command()
@handle_errors
def kill(
    node: NodeOption,
    config: ConfigOption = None,
    signal_name: Annotated[
        SignalName,
        typer.Option("--signal", "-s", case_sensitive=False, help="KILL, TERM, STOP (pause) or CONT (resume)."),
    ] = SignalName.KILL,
) -> None:
    """Send a signal to one node's process (fault injection: kill -9, pause, resume)."""
    from cluster import launcher

    cluster_config = _load(config)
    _require_node(cluster_config, node)
    result = launcher.kill(cluster_config, node, signal_name.value)
    typer.echo(f"sent {result.signal} to node {result.node} (pid {result.pid}): it is {result.state}")


@app.command()
@handle_errors
def restart(node: NodeOption, config: ConfigOption = None, wait: WaitOption = 30.0) -> None:
    """Stop one node gracefully and start it again; return once it serves clients."""
    from cluster import launcher

    cluster_config = _load(config)
    _require_node(cluster_config, node)
    result = launcher.restart(cluster_config, node, wait_s=wait)
    _report_stopped((result.stopped,) if result.stopped else ())
    address = f"{cluster_config.host}:{cluster_config.node(node).port}"
    typer.echo(f"node {node} is up again: pid {result.pid}, {address} ({result.ready_after_s:.1f} s)")


def _load(path: Path | None) -> ClusterConfig:
    from pykafka_ops.config.cluster import load

    return load(path)


def _require_node(config: ClusterConfig, node: int) -> None:
    ids = [n.id for n in config.nodes]
    if node not in ids:
        known = ", ".join(map(str, ids))
        raise CliError(f"--node: no node {node} in {config.source} (nodes: {known})", USAGE)


def _confirm_purge(config: ClusterConfig) -> None:
    question = f"Delete {config.data_dir} (every topic and offset of cluster {config.name!r})?"
    if not sys.stdin.isatty():
        raise CliError(f"--purge would delete {config.data_dir}: add --yes to confirm (no terminal to ask on)", USAGE)
    typer.confirm(question, abort=True)


def _up_line(result: UpResult) -> str:
    count = len(result.nodes)
    return f"cluster {result.cluster!r} is up: {result.bootstrap_servers} ({count} node{'s' if count != 1 else ''})"


def _announce_foreground(result: UpResult) -> None:
    typer.echo(f"{_up_line(result)}; Ctrl-C stops it")


def _report_stopped(stopped: tuple[StoppedNode, ...]) -> None:
    for node in stopped:
        typer.echo(f"stopped node {node.id} (pid {node.pid}) with {node.signal}")


_HEADER = ("NODE", "ROLES", "PID", "PORT", "STATE", "UPTIME", "RSS", "CPU%")


def _node_json(node: NodeStatus) -> dict[str, object]:
    """The stable JSON schema of `status --output json`."""
    return {
        "id": node.id,
        "roles": list(node.roles),
        "pid": node.pid,
        "port": node.port,
        "state": node.state,
        "uptime_s": node.uptime_s,
        "rss_bytes": node.rss_bytes,
        "cpu_percent": node.cpu_percent,
    }


def _node_row(node: NodeStatus) -> list[str]:
    def shown(value: object | None, text: str) -> str:
        return "-" if value is None else text

    return [
        str(node.id),
        ",".join(node.roles),
        shown(node.pid, str(node.pid)),
        str(node.port),
        node.state,
        shown(node.uptime_s, _duration(node.uptime_s or 0.0)),
        shown(node.rss_bytes, _mebibytes(node.rss_bytes or 0)),
        shown(node.cpu_percent, f"{node.cpu_percent or 0.0:.1f}"),
    ]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _mebibytes(count: int) -> str:
    return f"{count / 2**20:.1f}MiB"


def _aligned(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _print_table(config: ClusterConfig, nodes: list[NodeStatus]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    colours = {"running": "green", "paused": "yellow", "down": "red"}
    table = Table(*_HEADER, title=escape(f"cluster {config.name!r} ({config.source})"), title_justify="left")
    for node, row in zip(nodes, map(_node_row, nodes), strict=True):
        row[4] = f"[{colours[node.state]}]{row[4]}[/]"
        table.add_row(*row)
    Console().print(table)
