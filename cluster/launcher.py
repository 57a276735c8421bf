"""Start, stop and inspect the node processes of a cluster defined in YAML (`pko cluster …`).

One OS process per node (``pko node --config <yaml> --node-id N``), each in its own session with
stdout and stderr appended to ``<data_dir>/logs/node-<id>.log``. Which PID runs which node is kept
in the state file ``<data_dir>/cluster.json`` (``pykafka_ops.state``), written before the launcher
waits for readiness, so that `status`/`down`/`kill` work even on a cluster that failed to start.
Every function returns plain dataclasses and never prints; ``commands/cluster.py`` renders them.

Simplifications against a real Kafka deployment: one broker node (brokers on several nodes need
broker registration and replication; a quorum of controller-only nodes runs), and processes are
found by PID, not by a supervisor.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

import psutil

from cluster.launcher_process import (
    BUILTIN_SOURCE,
    LauncherError,
    has_exited,
    log_path,
    owned_process,
    port_problem,
    send_signal,
    spawn,
    stop,
    wait_until,
)
from pykafka_ops.config.cluster import ClusterConfig, ConfigError, NodeSpec
from pykafka_ops.state import ClusterState, NodeState, read_state, write_state

if TYPE_CHECKING:
    from cluster.launcher_probe import StartingNode

__all__ = [
    "DownResult", "KillResult", "LauncherError", "NodeStatus", "RestartResult", "SIGNALS",
    "StoppedNode", "UpResult", "down", "kill", "logs", "restart", "status", "up",
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
#: Seconds over which `status` measures CPU usage (all nodes during the same interval).
CPU_INTERVAL_S = 0.2


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
class NodeStatus:
    """One node as `pko cluster status` shows it; process figures are None unless it is alive."""

    id: int
    roles: tuple[str, ...]
    port: int
    state: str
    """running, paused (SIGSTOPped) or down."""
    pid: int | None
    uptime_s: float | None
    rss_bytes: int | None
    cpu_percent: float | None


@dataclass(frozen=True)
class DownResult:
    """What `down` stopped (empty when the cluster was not running); ``purged``: data_dir deleted."""

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
    _refuse_multi_node(config)
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


def status(config: ClusterConfig, cpu_interval_s: float = CPU_INTERVAL_S) -> list[NodeStatus]:
    """Every node of the cluster file with its state, PID, uptime, RSS and CPU% (measured for all
    nodes over the same ``cpu_interval_s`` seconds)."""
    procs = {node_id: proc for node_id, (_state, proc) in _running(config).items()}
    cpu = _cpu_percent(procs, cpu_interval_s)
    return [_node_status(node, procs.get(node.id), cpu.get(node.id)) for node in config.nodes]


def down(config: ClusterConfig, grace_s: float = DEFAULT_GRACE_S, purge: bool = False) -> DownResult:
    """Stop every running node (SIGTERM, then SIGKILL after ``grace_s`` seconds) and keep the data,
    or delete the data directory with ``purge``. A cluster that is not running is not an error."""
    if purge:
        _refuse_unsafe_purge(config)
    stopped = _stop_running(config, grace_s)
    purged = purge and config.data_dir.exists()
    if purged:
        shutil.rmtree(config.data_dir)
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
    entry = _running(config).get(node)
    if entry is None:
        raise LauncherError(f"node {node} of cluster {config.name!r} is not running")
    proc = entry[1]
    sig = SIGNALS[signal_name]
    send_signal(proc, sig)
    expected = {signal.SIGSTOP: "paused", signal.SIGCONT: "running"}.get(sig, "down")
    wait_until(lambda: _process_state(proc) == expected, timeout_s)
    return KillResult(node, proc.pid, sig.name, _process_state(proc))


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
    entry = _running(config, state).get(node)
    if entry is not None:
        stopped = StoppedNode(node, entry[1].pid, stop({node: entry[1]}, grace_s)[node])
    _refuse_busy_port(config, spec)
    began = time.monotonic()
    (started,) = _launch(config, [spec], state, wait_s)
    return RestartResult(node, stopped, started.proc.pid, time.monotonic() - began)


def _start(config: ClusterConfig, wait_s: float) -> UpResult:
    began = time.monotonic()
    state = ClusterState(config.name, str(config.source), str(config.data_dir), config.host)
    _launch(config, config.nodes, state, wait_s)
    nodes = tuple(state.nodes.values())
    return UpResult(config.name, config.bootstrap_servers, nodes, time.monotonic() - began)


def _launch(config: ClusterConfig, nodes: Sequence[NodeSpec], state: ClusterState, wait_s: float) -> list[StartingNode]:
    """Spawn ``nodes``, record them in the state file, wait until ready; stop them on any failure."""
    # Imported here: the probe needs the codec (kio), 0.3 s of imports that status/down/kill skip.
    from cluster.launcher_probe import StartingNode, wait_ready

    starting: list[StartingNode] = []
    try:
        for node in nodes:
            path = log_path(config, node.id)
            offset = path.stat().st_size if path.exists() else 0
            proc = spawn(config, node.id)
            starting.append(StartingNode(node, proc, path, offset))
            state.nodes[node.id] = NodeState(node.id, proc.pid, node.port, list(node.roles), time.time(), str(path))
        write_state(config.state_file, state)
        wait_ready(config, starting, wait_s)
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
        if _running(config):
            down_since = None
        elif down_since is None:
            down_since = time.monotonic()
        time.sleep(FOREGROUND_POLL_S)


def _running(config: ClusterConfig, state: ClusterState | None = None) -> dict[int, tuple[NodeState, psutil.Process]]:
    """The nodes of the state file whose PID is alive and still runs that node."""
    if state is None:
        state = read_state(config.state_file)
    if state is None:
        return {}
    running = {}
    for node_id, node_state in sorted(state.nodes.items()):
        proc = owned_process(config, node_id, node_state.pid)
        if proc is not None:
            running[node_id] = (node_state, proc)
    return running


def _stop_running(config: ClusterConfig, grace_s: float) -> tuple[StoppedNode, ...]:
    procs = {node_id: proc for node_id, (_state, proc) in _running(config).items()}
    signals = stop(procs, grace_s)
    return tuple(StoppedNode(node_id, procs[node_id].pid, signals[node_id]) for node_id in procs)


def _refuse_multi_node(config: ClusterConfig) -> None:
    """Several nodes run as a quorum of controller-only nodes; brokers on several nodes need
    broker registration and replication, which are not supported yet."""
    brokers = [n for n in config.nodes if n.is_broker]
    if len(config.nodes) > 1 and brokers:
        raise ConfigError(
            "clusters of several nodes with brokers need broker registration and replication, which are "
            f"not supported yet: {config.source} has {len(config.nodes)} nodes, {len(brokers)} with the broker "
            "role (a quorum of controller-only nodes runs)"
        )


def _refuse_if_running(config: ClusterConfig) -> None:
    running = _running(config)
    if running:
        node_id, (_state, proc) = next(iter(running.items()))
        raise LauncherError(f"cluster {config.name!r} is already running (node {node_id} pid {proc.pid})")


def _refuse_busy_port(config: ClusterConfig, node: NodeSpec) -> None:
    problem = port_problem(config.host, node.port)
    if problem is not None:
        index = config.nodes.index(node)
        key = ("cluster", "host") if problem.startswith("cannot resolve host") else ("nodes", index, "port")
        raise LauncherError(f"cannot start node {node.id}: {config.where(key)}: {problem}")


def _prepare_data_dir(config: ClusterConfig) -> None:
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LauncherError(f"{config.where(('cluster', 'data_dir'))}: cannot create {config.data_dir}: "
                            f"{exc.strerror or exc}") from None


def _refuse_unsafe_purge(config: ClusterConfig) -> None:
    """Never delete a directory that holds the cluster file, the working directory or $HOME."""
    data_dir = config.data_dir.resolve()
    precious = [Path.cwd(), Path.home()]
    if str(config.source) != BUILTIN_SOURCE:
        precious.append(config.source.resolve())
    for path in precious:
        if path == data_dir or data_dir in path.parents:
            raise LauncherError(f"refusing to purge {data_dir}: it contains {path}")


def _process_state(proc: psutil.Process) -> str:
    try:
        if has_exited(proc):
            return "down"
        return "paused" if proc.status() == psutil.STATUS_STOPPED else "running"
    except psutil.NoSuchProcess:
        return "down"


def _node_status(node: NodeSpec, proc: psutil.Process | None, cpu_percent: float | None) -> NodeStatus:
    state = "down" if proc is None else _process_state(proc)
    if proc is not None and state != "down":
        try:
            with proc.oneshot():
                uptime_s = round(time.time() - proc.create_time(), 1)
                return NodeStatus(node.id, node.roles, node.port, state, proc.pid, uptime_s,
                                  proc.memory_info().rss, cpu_percent)
        except psutil.NoSuchProcess:  # exited while we looked
            pass
    return NodeStatus(node.id, node.roles, node.port, "down", None, None, None, None)


def _cpu_percent(procs: dict[int, psutil.Process], interval_s: float) -> dict[int, float]:
    """CPU% of each process over one shared interval (psutil measures between two calls)."""
    for proc in procs.values():
        with suppress(psutil.Error):
            proc.cpu_percent(None)
    if procs:
        time.sleep(interval_s)
    result = {}
    for node_id, proc in procs.items():
        with suppress(psutil.Error):
            result[node_id] = round(proc.cpu_percent(None), 1)
    return result


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
