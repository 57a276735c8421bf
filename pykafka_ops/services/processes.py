"""Node processes of a cluster started by `pko cluster up`: PID, CPU and RSS from its ``cluster.json``.

Only a cluster the launcher started has a state file; for any other Kafka the monitor shows no
processes. CPU is psutil's ``cpu_percent`` since the previous sample, so the first sample of a
process has none.
"""

from __future__ import annotations

from pathlib import Path

import psutil

from pykafka_ops.models.monitor import NodeProcess
from pykafka_ops.state import StateFileError, read_state


def find_state_file(bootstrap_servers: str, cluster_config: Path | None) -> Path | None:
    """The state file of ``cluster_config`` (a cluster YAML), else the default local cluster's when
    it serves one of ``bootstrap_servers``, else None."""
    from pykafka_ops.config.cluster import load, load_default

    if cluster_config is not None:
        return load(cluster_config).state_file
    path = load_default().state_file
    try:
        state = read_state(path)
    except StateFileError:
        return None
    wanted = {s.strip() for s in bootstrap_servers.split(",")}
    if state is None or not wanted & set(state.bootstrap_servers.split(",")):
        return None
    return path


class NodeSampler:
    """Samples the node processes named by a state file; keeps psutil handles between samples."""

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file
        self._procs: dict[int, psutil.Process] = {}

    def sample(self) -> tuple[NodeProcess, ...]:
        """Every node of the state file (none when the file is missing or unreadable)."""
        try:
            state = read_state(self.state_file)
        except StateFileError:
            return ()
        if state is None:
            return ()
        nodes = []
        seen = set()
        for node in sorted(state.nodes.values(), key=lambda n: n.id):
            seen.add(node.pid)
            nodes.append(self._node(state.host, node.id, node.port, node.pid, tuple(node.roles)))
        self._procs = {pid: p for pid, p in self._procs.items() if pid in seen}
        return tuple(nodes)

    def _node(self, host: str, node_id: int, port: int, pid: int, roles: tuple[str, ...]) -> NodeProcess:
        first = pid not in self._procs
        try:
            proc = self._procs[pid] if not first else psutil.Process(pid)
            self._procs[pid] = proc
            with proc.oneshot():
                if proc.status() == psutil.STATUS_ZOMBIE:
                    raise psutil.NoSuchProcess(pid)
                cpu = proc.cpu_percent(None)
                rss = proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            self._procs.pop(pid, None)
            return NodeProcess(node_id, host, port, pid, roles, False)
        return NodeProcess(node_id, host, port, pid, roles, True, None if first else round(cpu, 1), rss)
