"""The launcher's state file, ``<data_dir>/cluster.json``: which node runs as which PID.

Written by ``cluster.launcher`` and read the same way by ``pko cluster …``, the other commands
(to find the default local cluster's bootstrap servers) and the TUI (PID, CPU, RSS per node).
Writes are atomic (temp file + rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FORMAT_VERSION = 1
#: On-disk format of a node's data directory (logs, metadata log); bumped on incompatible changes.
STORAGE_FORMAT_VERSION = 1


@dataclass
class NodeState:
    """One node process as the launcher started it."""

    id: int
    pid: int
    port: int
    roles: list[str]
    started_at: float
    """Unix time (seconds) when the launcher spawned the process."""
    log_file: str
    host: str | None = None
    """The node's own address when the cluster file names one (else the cluster's ``host``)."""
    controller_port: int | None = None
    """The controller listener of a combined node in a quorum of several controllers."""


@dataclass
class ClusterState:
    """Everything ``cluster.json`` holds."""

    cluster: str
    config: str
    """The YAML file the cluster was started from (or ``<built-in default>``)."""
    data_dir: str
    host: str
    nodes: dict[int, NodeState] = field(default_factory=dict)
    format_version: int = STATE_FORMAT_VERSION
    storage_format_version: int = STORAGE_FORMAT_VERSION

    @property
    def bootstrap_servers(self) -> str:
        """host:port of every broker node."""
        return ",".join(f"{n.host or self.host}:{n.port}" for n in self.nodes.values() if "broker" in n.roles)


class StateFileError(ValueError):
    """A state file that exists but cannot be read, or cannot be written."""


def read_state(path: Path) -> ClusterState | None:
    """The state in ``path``, or None when there is no file."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateFileError(f"{path}: cannot read the cluster state file: {exc}") from None
    try:
        nodes = {int(k): NodeState(**v) for k, v in raw.pop("nodes", {}).items()}
        return ClusterState(nodes=nodes, **raw)
    except TypeError as exc:
        raise StateFileError(f"{path}: unexpected content in the cluster state file: {exc}") from None


def write_state(path: Path, state: ClusterState) -> None:
    """Write ``state`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(state)
    data["nodes"] = {str(k): v for k, v in data["nodes"].items()}
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError as exc:  # a full disk: name the file, as every other failure here does
        raise StateFileError(f"{path}: cannot write the cluster state file: {exc.strerror or exc}") from None
