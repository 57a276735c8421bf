"""Node processes of a launched cluster: command line, spawning, PID ownership, stopping.

Helpers of ``cluster.launcher``. A PID from the state file is trusted only while the process is
alive *and* its command line ends with the ``node [--config <yaml>] --node-id N`` arguments we
spawned it with, so a recycled PID is never reported as a node, nor signalled.

The ``Popen`` objects of the nodes *this* process started are kept in ``_CHILDREN`` and reaped
as soon as they exit: a long-lived caller (the pytest plugin) would otherwise accumulate zombies,
and a zombie still has a PID. A node whose parent is gone is reaped by init; until then its
zombie counts as exited.
"""

from __future__ import annotations

import errno
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import psutil

from pykafka_ops.config.cluster import ClusterConfig
from pykafka_ops.state import ClusterState, NodeState, read_state

#: ``ClusterConfig.source`` of the built-in default config (see ``config.cluster.load_default``).
BUILTIN_SOURCE = "<built-in default>"
#: How often the launcher polls processes and probes while waiting, in seconds.
POLL_S = 0.05
#: How long to wait for a SIGKILLed process to disappear, in seconds.
KILL_WAIT_S = 5.0

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class LauncherError(RuntimeError):
    """A launcher operation that cannot be done; the message is meant for the user (exit 1)."""


def node_args(config: ClusterConfig, node_id: int) -> list[str]:
    """The ``pko`` arguments that run node ``node_id``: ``node [--config <abs yaml>] --node-id N``."""
    args = ["node"]
    if str(config.source) != BUILTIN_SOURCE:
        args += ["--config", str(config.source.resolve())]
    return [*args, "--node-id", str(node_id)]


def node_command(config: ClusterConfig, node_id: int) -> list[str]:
    """The full command line: the ``pko`` script next to this Python, else ``python -m commands.main``."""
    script = Path(sys.executable).parent / "pko"
    program = [str(script)] if script.exists() else [sys.executable, "-m", "commands.main"]
    return [*program, *node_args(config, node_id)]


def log_path(config: ClusterConfig, node_id: int) -> Path:
    """Where node ``node_id``'s stdout and stderr go: ``<data_dir>/logs/node-<id>.log``."""
    return config.data_dir / "logs" / f"node-{node_id}.log"


def spawn(config: ClusterConfig, node_id: int) -> subprocess.Popen[bytes]:
    """Start node ``node_id`` in its own session, its output appended to its log file."""
    path = log_path(config, node_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as log:
        proc = subprocess.Popen(
            node_command(config, node_id),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the launcher's terminal must not reach the nodes
        )
    _CHILDREN[proc.pid] = proc
    return proc


def _reap_children() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


def owned_process(config: ClusterConfig, node_id: int, pid: int) -> psutil.Process | None:
    """The live process ``pid`` if it is still the ``pko node`` we started for ``node_id``, else None."""
    _reap_children()
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        cmdline = proc.cmdline()
    except psutil.Error:  # gone, a zombie, or not ours to inspect
        return None
    expected = node_args(config, node_id)
    return proc if cmdline[-len(expected):] == expected else None


def running_nodes(config: ClusterConfig, state: ClusterState | None = None) -> dict[int, tuple[NodeState, psutil.Process]]:
    """The nodes of the state file (read unless given) whose PID is alive and still runs that node."""
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


def process_state(proc: psutil.Process) -> str:
    """``running``, ``paused`` (SIGSTOPped) or ``down`` (gone, or a zombie)."""
    try:
        if has_exited(proc):
            return "down"
        return "paused" if proc.status() == psutil.STATUS_STOPPED else "running"
    except psutil.NoSuchProcess:
        return "down"


def has_exited(proc: psutil.Process) -> bool:
    """True once ``proc`` is gone or a zombie (reaping it if it is our child).

    After SIGKILL the thread-group leader turns zombie while the node's worker threads are still
    exiting, and its files (the listening socket) stay open until the last one has: only a
    zombie without other threads has let go of its port.
    """
    _reap_children()
    try:
        return proc.status() == psutil.STATUS_ZOMBIE and proc.num_threads() <= 1
    except psutil.NoSuchProcess:
        return True


def send_signal(proc: psutil.Process, sig: int) -> None:
    """Send ``sig``, ignoring a process that has just exited."""
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        pass


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``predicate`` every POLL_S seconds until it is true (→ True) or ``timeout_s`` passes (→ False)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)
    return True


def stop(procs: Mapping[int, psutil.Process], grace_s: float) -> dict[int, str]:
    """Stop nodes: SIGTERM (plus SIGCONT, so a paused node can act on it), then SIGKILL after
    ``grace_s`` seconds. Returns node id → the signal that ended it ("SIGTERM" or "SIGKILL")."""
    for proc in procs.values():
        send_signal(proc, signal.SIGTERM)
        send_signal(proc, signal.SIGCONT)
    wait_until(lambda: all(has_exited(p) for p in procs.values()), grace_s)
    killed = {node_id for node_id, proc in procs.items() if not has_exited(proc)}
    for node_id in killed:
        send_signal(procs[node_id], signal.SIGKILL)
    if not wait_until(lambda: all(has_exited(procs[i]) for i in killed), KILL_WAIT_S):
        pids = ", ".join(str(procs[i].pid) for i in sorted(killed))
        raise LauncherError(f"pid {pids} still alive {KILL_WAIT_S:g} s after SIGKILL")
    return {node_id: "SIGKILL" if node_id in killed else "SIGTERM" for node_id in procs}


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or None when it is free.

    Binds with SO_REUSEADDR, as the node's listener does, so a port that only has connections in
    TIME_WAIT counts as free.
    """
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        return f"cannot resolve host {host!r}: {exc.strerror}"
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use"
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"{host} is not an address of this machine: run this node with `pko node` where it is"
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None
