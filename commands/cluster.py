"""`pko cluster up|status|down|logs|kill|pause|resume|restart`: run a cluster defined in YAML on this machine.

Thin: parse flags → one ``cluster.launcher`` call → render. ``-c/--config`` names the cluster
file on every command; without it the built-in single-node cluster is used, with its data under
``$XDG_STATE_HOME/pko/<name>``. psutil and Rich are imported inside the commands so that
`pko --help` stays fast.
"""

from __future__ import annotations

import os
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from commands import cluster_info, cluster_metadata, cluster_quorum, cluster_status
from commands._exit import USAGE, CliError, handle_errors

if TYPE_CHECKING:
    from cluster.launcher import KillResult, StoppedNode, UpResult
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
    float, typer.Option("--wait", min=0, help="Seconds to wait for every node to answer, every broker to be "
                                              "registered and unfenced, and every partition to have a leader.")
]
NodeOption = Annotated[int, typer.Option("--node", help="Node id, as in the cluster file.")]


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


#: `pko cluster status` also asks the running nodes over the wire: it lives in its own module.
app.command("status")(cluster_status.status)


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
def pause(node: NodeOption, config: ConfigOption = None) -> None:
    """Freeze one node (SIGSTOP): a broker is fenced once broker.session.timeout.ms has passed."""
    from cluster import launcher

    cluster_config = _load(config)
    _require_node(cluster_config, node)
    _report_signal("paused", launcher.pause(cluster_config, node))


@app.command()
@handle_errors
def resume(node: NodeOption, config: ConfigOption = None) -> None:
    """Let a paused node run again (SIGCONT): a fenced broker is unfenced once it heartbeats."""
    from cluster import launcher

    cluster_config = _load(config)
    _require_node(cluster_config, node)
    _report_signal("resumed", launcher.resume(cluster_config, node))


@app.command()
@handle_errors
def restart(
    node: Annotated[int | None, typer.Option("--node", help="Node id, as in the cluster file.")] = None,
    rolling: Annotated[bool, typer.Option(
        "--rolling", help="Restart every node, one at a time, each once no partition is under-replicated "
                          "(the active controller last).")] = False,
    config: ConfigOption = None, wait: WaitOption = 30.0,
) -> None:
    """Stop one node gracefully (its leadership moves first) and start it again; return once it
    serves clients. With --rolling, every node in turn."""
    from cluster import launcher

    if (node is None) == (not rolling):
        raise CliError("give exactly one of --node N and --rolling", USAGE)
    cluster_config = _load(config)
    if rolling:
        began = time.monotonic()
        results = launcher.rolling_restart(cluster_config, wait_s=wait, on_progress=typer.echo)
        typer.echo(f"cluster {cluster_config.name!r}: {len(results)} node(s) restarted one at a time, "
                   f"every partition in sync ({time.monotonic() - began:.1f} s)")
        return
    assert node is not None
    _require_node(cluster_config, node)
    result = launcher.restart(cluster_config, node, wait_s=wait)
    _report_stopped((result.stopped,) if result.stopped else ())
    address = f"{cluster_config.host_of(node)}:{cluster_config.node(node).port}"
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
    outside = sorted({str(d) for n in config.nodes for d in n.log_dirs if config.data_dir not in d.parents})
    what = ", ".join([str(config.data_dir), *outside])
    question = f"Delete {what} (every topic and offset of cluster {config.name!r})?"
    if not sys.stdin.isatty():
        raise CliError(f"--purge would delete {what}: add --yes to confirm (no terminal to ask on)", USAGE)
    typer.confirm(question, abort=True)


def _up_line(result: UpResult) -> str:
    count = len(result.nodes)
    return f"cluster {result.cluster!r} is up: {result.bootstrap_servers} ({count} node{'s' if count != 1 else ''})"


def _announce_foreground(result: UpResult) -> None:
    typer.echo(f"{_up_line(result)}; Ctrl-C stops it")


def _report_stopped(stopped: tuple[StoppedNode, ...]) -> None:
    for node in stopped:
        typer.echo(f"stopped node {node.id} (pid {node.pid}) with {node.signal}")


def _report_signal(done: str, result: KillResult) -> None:
    """``paused node 2 (pid 123)``, or what the node is instead when the signal did not take."""
    expected = {"paused": "paused", "resumed": "running"}[done]
    if result.state != expected:
        raise CliError(f"sent {result.signal} to node {result.node} (pid {result.pid}) but it is {result.state}")
    typer.echo(f"{done} node {result.node} (pid {result.pid})")
