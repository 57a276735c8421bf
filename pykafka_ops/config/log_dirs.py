"""``nodes[].log_dirs`` of the cluster file: a node's log dirs (Kafka's ``log.dirs``, JBOD).

Each entry is a path; a relative one resolves against the cluster's ``data_dir``. A node without
``log_dirs`` keeps its partitions in its node dir (``<data_dir>/node-<id>``), which in every case
holds ``meta.properties`` and the ``__cluster_metadata`` log (Kafka's ``metadata.log.dir``).

``resolve_log_dirs`` refuses what would let two nodes, or two dirs of one node, see the same
partition directories: a path given twice, or one inside another (a node dir counts too, except
that a node may name its own node dir as one of its log dirs).

Pure functions; no state.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class LogDirProblem(ValueError):
    """A bad ``log_dirs``: the position of the node in ``nodes``, of the entry (``()``: the whole
    list) and the reason, for a ConfigError."""

    def __init__(self, node: int, index: tuple[int, ...], reason: str) -> None:
        super().__init__(reason)
        self.node, self.index, self.reason = node, index, reason


def node_dir_name(node_id: int) -> str:
    """A node dir's name under the data dir."""
    return f"node-{node_id}"


def resolve_log_dirs(nodes: Sequence[tuple[int, Any]], data_dir: Path) -> dict[int, tuple[Path, ...]]:
    """node id → absolute log dirs, from (node id, ``log_dirs`` value or None) in file order;
    LogDirProblem for a value that is not a non-empty list of paths, or paths that overlap."""
    owned: list[tuple[Path, int, str]] = []  # (path, position of its node, what it is)
    result: dict[int, tuple[Path, ...]] = {}
    for position, (node_id, _value) in enumerate(nodes):
        owned.append((data_dir / node_dir_name(node_id), position, "node dir"))
    for position, (node_id, value) in enumerate(nodes):
        if value is None:
            result[node_id] = ()
            continue
        if not isinstance(value, list) or not value:
            raise LogDirProblem(position, (), "expected a non-empty list of directories")
        paths: list[Path] = []
        for i, entry in enumerate(value):
            if not isinstance(entry, str) or not entry.strip():
                raise LogDirProblem(position, (i,), "expected a directory path")
            path = Path(os.path.abspath(data_dir / os.path.expanduser(entry)))
            own_node_dir = data_dir / node_dir_name(node_id)
            for other, other_position, what in owned:
                if other_position == position and other == own_node_dir and path == other:
                    continue  # a node may keep partitions in its own node dir
                if _overlap(path, other):
                    node = "its" if other_position == position else f"node {nodes[other_position][0]}'s"
                    raise LogDirProblem(position, (i,), f"{path} {_relation(path, other)} {node} {what} ({other})")
            paths.append(path)
            owned.append((path, position, f"log_dirs[{i}]"))
        result[node_id] = tuple(paths)
    return result


def _is_inside(path: Path, parent: Path) -> bool:
    return path != parent and path.is_relative_to(parent)


def _overlap(a: Path, b: Path) -> bool:
    return a == b or _is_inside(a, b) or _is_inside(b, a)


def _relation(a: Path, b: Path) -> str:
    return "is" if a == b else "is inside" if _is_inside(a, b) else "contains"
