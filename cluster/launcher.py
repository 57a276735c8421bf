"""Start, stop and inspect the node processes of a cluster defined in YAML (`pko cluster …`).

One OS process per node (``pko node --config <yaml> --node-id N``), each in its own session with
stdout and stderr appended to ``<data_dir>/logs/node-<id>.log``. Which PID runs which node is kept
in the state file ``<data_dir>/cluster.json`` (``pykafka_ops.state``), written before the launcher
waits for readiness, so that `status`/`down`/`kill` work even on a cluster that failed to start.
Every function returns plain dataclasses and never prints; ``commands/cluster.py`` renders them.

Every node of the cluster file runs on this machine (each on its own ``host`` when it names one,
which must then be an address of this machine; on separate machines run ``pko node`` on each).
All nodes are spawned before any is waited for: a broker serves clients only once the quorum
has a leader and has registered it. Simplification against a real Kafka deployment: processes
are found by PID, not by a supervisor.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

import psutil

from cluster.launcher_process import (
    BUILTIN_SOURCE,
    LauncherError,
    log_path,
    port_problem,
    process_state,
    running_nodes,
    send_signal,
    spawn,
    stop,
    wait_until,
)
from cluster.launcher_status import NodeStatus, status
from pykafka_ops.config.cluster import ClusterConfig, NodeSpec
from pykafka_ops.state import ClusterState, NodeState, read_state, write_state

if TYPE_CHECKING:
    from cluster.launcher_probe import StartingNode

__all__ = [
    "SIGNALS", "DownResult", "KillResult", "LauncherError", "NodeStatus", "RestartResult", "StoppedNode",
    "UpResult", "down", "kill", "logs", "pause", "restart", "resume", "rolling_restart", "status", "up",
]

#: Signals `pko cluster kill` may send, by their Kafka-ops names.
SIGNALS: dict[str, signal.Signals] = {
    "KILL": signal.SIGKILL, "TERM": signal.SIGTERM, "STOP": signal.SIGSTOP, "CONT": signal.SIGCONT,
}
#: Seconds given to a node to stop after SIGTERM before it gets SIGKILL.
DEFAULT_GRACE_S = 10.0
DEFAULT_WAIT_S = 30.0
#: Grace given to the nodes of a failed start-up before SIGKILL, in seconds.
FAILED_START_GRACE_S = 5.0
#: How often a foreground launcher, or `logs --follow`, looks again, in seconds.
FOREGROUND_POLL_S = 0.2
#: How long every node must have been down before a foreground launcher detaches, in seconds.
FOREGROUND_DOWN_S = 1.0


@dataclass(frozen=True)
class StoppedNode:
    """A node process that was stopped, and the signal that ended it (SIGTERM or SIGKILL)."""

    id: int
    pid: int
    signal: str


@dataclass(frozen=True)
class UpResult:
    """A started cluster; ``stopped`` is filled in foreground mode once it has been stopped."""

    cluster: str
    bootstrap_servers: str
    nodes: tuple[NodeState, ...]
    ready_after_s: float
    stopped: tuple[StoppedNode, ...] = ()


@dataclass(frozen=True)
class DownResult:
    """What `down` stopped (empty when the cluster was not running); ``purged``: data_dir deleted
    (and the nodes' log dirs outside it)."""

    cluster: str
    stopped: tuple[StoppedNode, ...]
    data_dir: Path
    purged: bool


@dataclass(frozen=True)
class KillResult:
    """A signal sent to a node, and the node's state once the signal took effect."""

    node: int
    pid: int
    signal: str
    state: str


@dataclass(frozen=True)
class RestartResult:
    """A node restarted: ``stopped`` is None when it was not running before."""

    node: int
    stopped: StoppedNode | None
    pid: int
    ready_after_s: float


def up(
    config: ClusterConfig,
    wait_s: float = DEFAULT_WAIT_S,
    foreground: bool = False,
    on_ready: Callable[[UpResult], None] | None = None,
) -> UpResult:
    """Start every node and return once all are ready (at most ``wait_s`` seconds).

    With ``foreground``, call ``on_ready`` once ready, then stay attached until SIGINT/SIGTERM
    (or until every node is down), stop the nodes and return what was stopped. Nodes already
    started are stopped again when start-up fails.
    """
    _refuse_if_running(config)
    for node in config.nodes:
        _refuse_busy_port(config, node)
    _prepare_data_dir(config)
    if not foreground:
        return _start(config, wait_s)
    with _sigterm_as_interrupt():
        result = _start(config, wait_s)
        if on_ready is not None:
            on_ready(result)
        try:
            _wait_until_all_down(config)
        except KeyboardInterrupt:
            pass
        return replace(result, stopped=_stop_running(config, DEFAULT_GRACE_S))


def down(config: ClusterConfig, grace_s: float = DEFAULT_GRACE_S, purge: bool = False) -> DownResult:
    """Stop every running node (SIGTERM, then SIGKILL after ``grace_s`` seconds) and keep the data,
    or delete the data directory with ``purge``. A cluster that is not running is not an error."""
    purged_dirs = _purged_dirs(config) if purge else []
    stopped = _stop_running(config, grace_s)
    purged = purge and config.data_dir.exists()
    for directory in purged_dirs:
        shutil.rmtree(directory)
    return DownResult(config.name, stopped, config.data_dir, purged)


def logs(config: ClusterConfig, node: int | None = None, follow: bool = False) -> Iterator[tuple[int, str]]:
    """Yield ``(node id, line)`` from the node log(s), oldest first; with ``follow``, keep yielding
    new lines as they are written until the caller stops iterating (Ctrl-C)."""
    node_ids = [node] if node is not None else [n.id for n in config.nodes]
    paths = [(node_id, log_path(config, node_id)) for node_id in node_ids]
    handles = [(node_id, path.open(errors="replace")) for node_id, path in paths if path.exists()]
    if not handles:
        raise LauncherError(f"no node log in {config.data_dir / 'logs'}: cluster {config.name!r} was never started")
    carry = dict.fromkeys((node_id for node_id, _handle in handles), "")
    try:
        while True:
            got_any = False
            for node_id, handle in handles:
                lines, carry[node_id] = _read_lines(handle, carry[node_id], final=not follow)
                got_any = got_any or bool(lines)
                yield from ((node_id, line) for line in lines)
            if not follow:
                return
            if not got_any:
                time.sleep(FOREGROUND_POLL_S)
    finally:
        for _node_id, handle in handles:
            handle.close()


def kill(config: ClusterConfig, node: int, signal_name: str = "KILL", timeout_s: float = 5.0) -> KillResult:
    """Send ``signal_name`` (KILL, TERM, STOP or CONT) to node ``node``, then wait up to
    ``timeout_s`` seconds for it to take effect (down, paused or running again)."""
    entry = running_nodes(config).get(node)
    if entry is None:
        raise LauncherError(f"node {node} of cluster {config.name!r} is not running")
    proc = entry[1]
    sig = SIGNALS[signal_name]
    send_signal(proc, sig)
    expected = {signal.SIGSTOP: "paused", signal.SIGCONT: "running"}.get(sig, "down")
    wait_until(lambda: process_state(proc) == expected, timeout_s)
    return KillResult(node, proc.pid, sig.name, process_state(proc))


def pause(config: ClusterConfig, node: int) -> KillResult:
    """Freeze node ``node`` (SIGSTOP): it answers nothing, sends no heartbeat, and a broker is
    fenced once ``broker.session.timeout.ms`` has passed, as a long GC pause would do."""
    return kill(config, node, "STOP")


def resume(config: ClusterConfig, node: int) -> KillResult:
    """Let a paused node ``node`` run again (SIGCONT): a fenced broker heartbeats and is unfenced."""
    return kill(config, node, "CONT")


def restart(
    config: ClusterConfig, node: int, wait_s: float = DEFAULT_WAIT_S, grace_s: float = DEFAULT_GRACE_S
) -> RestartResult:
    """Stop node ``node`` gracefully (if it runs), start it again with the same command line,
    record its new PID in the state file and return once it is ready again."""
    state = read_state(config.state_file)
    if state is None:
        raise LauncherError(f"cluster {config.name!r} was never started (no {config.state_file})")
    spec = config.node(node)
    stopped = None
    entry = running_nodes(config, state).get(node)
    if entry is not None:
        stopped = StoppedNode(node, entry[1].pid, stop({node: entry[1]}, grace_s)[node])
    _refuse_busy_port(config, spec)
    began = time.monotonic()
    (started,) = _launch(config, [spec], state, wait_s, brokers=[node] if spec.is_broker else [])
    return RestartResult(node, stopped, started.proc.pid, time.monotonic() - began)


def rolling_restart(
    config: ClusterConfig, wait_s: float = DEFAULT_WAIT_S, grace_s: float = DEFAULT_GRACE_S,
    on_progress: Callable[[str], None] = lambda _line: None,
) -> list[RestartResult]:
    """Restart every running node, one at a time, as operators roll a Kafka cluster: each stops
    with a controlled shutdown (its leadership moves first), and the next goes only once no
    partition is under-replicated again, so a replicated topic never loses two copies at once.
    The active controller goes last (one quorum election, not one per node). ``on_progress``
    hears one line per step."""
    # imported here: the probe needs the codec, as in _launch
    from cluster.launcher_probe import wait_in_sync

    nodes = sorted(status(config), key=lambda node: (bool(node.quorum_leader), node.id))
    running = [node.id for node in nodes if node.pid is not None]
    if not running:
        raise LauncherError(f"cluster {config.name!r} is not running")
    results = []
    for number, node in enumerate(running, 1):
        on_progress(f"[{number}/{len(running)}] restarting node {node}")
        result = restart(config, node, wait_s, grace_s)
        on_progress(f"[{number}/{len(running)}] node {node} is up again ({result.ready_after_s:.1f} s)")
        results.append(result)
        took = wait_in_sync(config, wait_s, lambda lagging: on_progress(
            f"[{number}/{len(running)}] waiting for {len(lagging)} under-replicated partition(s) to catch up"))
        on_progress(f"[{number}/{len(running)}] every partition is in sync ({took:.1f} s)")
    return results


def _start(config: ClusterConfig, wait_s: float) -> UpResult:
    from cluster.meta_properties import StorageFormatError, format_storage

    began = time.monotonic()
    try:
        format_storage(config)  # kafka-storage format: the cluster id, chosen once
    except StorageFormatError as exc:
        raise LauncherError(str(exc)) from None
    state = ClusterState(config.name, str(config.source), str(config.data_dir), config.host)
    _launch(config, config.nodes, state, wait_s, brokers=[n.id for n in config.nodes if n.is_broker])
    nodes = tuple(state.nodes.values())
    return UpResult(config.name, config.bootstrap_servers, nodes, time.monotonic() - began)


def _launch(config: ClusterConfig, nodes: Sequence[NodeSpec], state: ClusterState, wait_s: float,
            brokers: Sequence[int]) -> list[StartingNode]:
    """Spawn ``nodes``, record them in the state file, wait until they are ready and their
    Metadata lists ``brokers`` (registered and unfenced); stop them on any failure."""
    # Imported here: the probe needs the codec (kio), 0.3 s of imports that status/down/kill skip.
    from cluster.launcher_probe import StartingNode, wait_ready

    starting: list[StartingNode] = []
    try:
        for node in nodes:
            path = log_path(config, node.id)
            offset = path.stat().st_size if path.exists() else 0
            proc = spawn(config, node.id)
            starting.append(StartingNode(node, proc, path, offset))
            state.nodes[node.id] = NodeState(node.id, proc.pid, node.port, list(node.roles), time.time(), str(path),
                                             node.host, node.controller_port)
        write_state(config.state_file, state)
        wait_ready(config, starting, wait_s, brokers)
    except BaseException:
        stop({item.node.id: psutil.Process(item.proc.pid) for item in starting if item.proc.poll() is None},
             FAILED_START_GRACE_S)
        raise
    return starting


def _wait_until_all_down(config: ClusterConfig) -> None:
    """Return once no node has run for FOREGROUND_DOWN_S seconds: `kill` or `down` from another
    terminal ends a foreground launcher, a `restart` (down for a moment) does not."""
    down_since = None
    while down_since is None or time.monotonic() - down_since < FOREGROUND_DOWN_S:
        if running_nodes(config):
            down_since = None
        elif down_since is None:
            down_since = time.monotonic()
        time.sleep(FOREGROUND_POLL_S)


def _stop_running(config: ClusterConfig, grace_s: float) -> tuple[StoppedNode, ...]:
    """Stop the broker-only nodes first, so that their controlled shutdown still finds an active
    controller, then the others (each wave at once)."""
    procs = {node_id: proc for node_id, (_state, proc) in running_nodes(config).items()}
    broker_only = {n.id for n in config.nodes if not n.is_controller}
    signals: dict[int, str] = {}
    for wave in (procs.keys() & broker_only, procs.keys() - broker_only):
        signals |= stop({node_id: procs[node_id] for node_id in wave}, grace_s)
    return tuple(StoppedNode(node_id, procs[node_id].pid, signals[node_id]) for node_id in procs)


def _refuse_if_running(config: ClusterConfig) -> None:
    running = running_nodes(config)
    if running:
        node_id, (_state, proc) = next(iter(running.items()))
        stopped = [n.id for n in config.nodes if n.id not in running]
        hint = f"; start node {stopped[0]} with `pko cluster restart --node {stopped[0]}`" if stopped else ""
        raise LauncherError(f"cluster {config.name!r} is already running (node {node_id} pid {proc.pid}){hint}")


def _refuse_busy_port(config: ClusterConfig, node: NodeSpec) -> None:
    index = config.nodes.index(node)
    host = config.host_of(node.id)
    for key, port in (("port", node.port), ("controller_port", node.controller_port)):
        problem = None if port is None else port_problem(host, port)
        if problem is None:
            continue
        if problem.startswith("cannot resolve host") or " is not an address of this machine" in problem:
            path: tuple[object, ...] = ("nodes", index, "host") if node.host else ("cluster", "host")
        else:
            path = ("nodes", index, key)
        raise LauncherError(f"cannot start node {node.id}: {config.where(path)}: {problem}")


def _prepare_data_dir(config: ClusterConfig) -> None:
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LauncherError(f"{config.where(('cluster', 'data_dir'))}: cannot create {config.data_dir}: "
                            f"{exc.strerror or exc}") from None


def _purged_dirs(config: ClusterConfig) -> list[Path]:
    """What ``down --purge`` deletes: the data dir, and the nodes' log dirs outside it
    (``nodes[].log_dirs``); refused (LauncherError) when one holds the cluster file, the working
    directory or $HOME."""
    data_dir = config.data_dir.resolve()
    outside = {d.resolve() for n in config.nodes for d in n.log_dirs} - {data_dir}
    dirs = [data_dir, *sorted(d for d in outside if data_dir not in d.parents and d.exists())]
    precious = [Path.cwd(), Path.home()]
    if str(config.source) != BUILTIN_SOURCE:
        precious.append(config.source.resolve())
    for directory in dirs:
        for path in precious:
            if path == directory or directory in path.parents:
                raise LauncherError(f"refusing to purge {directory}: it contains {path}")
    return [d for d in dirs if d.exists()]


def _read_lines(handle: IO[str], carry: str, final: bool) -> tuple[list[str], str]:
    """Complete lines newly readable from ``handle`` and the unfinished tail, which waits in
    ``carry`` for its newline unless ``final`` (no further read will come)."""
    lines = (carry + handle.read()).splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n") and not final:
        return lines[:-1], lines[-1]
    return lines, ""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While attached in the foreground, SIGTERM acts like Ctrl-C, so the nodes get stopped too."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
