"""Storage format and identity (issue 14 item 1), with the real `pko` binary and real nodes.

`pko cluster up` formats a new cluster's storage as `kafka-storage format` does: the cluster id is
chosen once and written to the node dir's meta.properties, and the cluster reports that id to its
clients. A node dir that belongs to another cluster or another node is refused with one line.
(Dirs from before formatting: tests/integration/test_upgrade.py.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration_helpers import wire

from cluster import launcher
from cluster.meta_properties import (
    MetaProperties,
    read_meta_properties,
    write_meta_properties,
)
from cluster.pytest_plugin import RunningCluster, free_ports
from pykafka_ops.config.cluster import ClusterConfig, load
from pykafka_ops.protocol.api_keys import ApiKey

_SCRIPT = Path(sys.executable).parent / "pko"
PKO = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "commands.main"]


def pko(*args: object) -> subprocess.CompletedProcess[str]:
    """The real `pko` binary; stdout and stderr are pipes."""
    env = {k: v for k, v in os.environ.items() if k not in ("PKO_BOOTSTRAP", "PKO_DEBUG")}
    return subprocess.run([*PKO, *map(str, args)], check=False, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=90)


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[dict[str, ClusterConfig]]:
    """Two single-node cluster files, ``a`` and ``b``, each with its own data dir; stopped at the end."""
    configs = {}
    for name, port in zip("ab", free_ports(2), strict=True):
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"cluster: {{name: {name}, data_dir: data-{name}, host: 127.0.0.1}}\n"
                        f"nodes:\n  - {{id: 1, port: {port}}}\n")
        configs[name] = load(path)
    try:
        yield configs
    finally:
        for config in configs.values():
            launcher.down(config, grace_s=5)


def _up(config: ClusterConfig) -> None:
    result = pko("cluster", "up", "-c", config.source, "--wait", 30)
    assert result.returncode == 0, result.stderr


def _reported_cluster_ids(config: ClusterConfig) -> tuple[str, str]:
    """The cluster id as DescribeCluster and Metadata answer it."""
    with wire(RunningCluster(config, config.source)) as client:
        described = client.request(ApiKey.DESCRIBE_CLUSTER, 0, {"include_cluster_authorized_operations": False})
        metadata = client.request(ApiKey.METADATA, 12, {"topics": None, "allow_auto_topic_creation": False,
                                                        "include_topic_authorized_operations": False})
    return described.cluster_id, metadata.cluster_id


def test_cluster_up_formats_a_new_cluster_and_reports_that_id(clusters: dict[str, ClusterConfig]) -> None:
    config = clusters["a"]
    _up(config)
    meta = read_meta_properties(config.node_dir(1))
    assert meta is not None and meta.node_id == 1 and len(meta.cluster_id) == 22
    assert _reported_cluster_ids(config) == (meta.cluster_id, meta.cluster_id)
    assert pko("cluster", "down", "-c", config.source).returncode == 0
    _up(config)  # started again: the same cluster
    assert read_meta_properties(config.node_dir(1)) == meta
    assert _reported_cluster_ids(config) == (meta.cluster_id, meta.cluster_id)


def test_a_node_dir_of_another_cluster_is_refused_with_one_line(clusters: dict[str, ClusterConfig]) -> None:
    """Node 1's dir holds cluster a's metadata log but cluster b's meta.properties (a dir put
    together from two clusters): the node refuses to start, `cluster up` fails."""
    a, b = clusters["a"], clusters["b"]
    for config in (a, b):
        _up(config)
        launcher.down(config, grace_s=5)
    a_id = read_meta_properties(a.node_dir(1)).cluster_id
    b_id = read_meta_properties(b.node_dir(1)).cluster_id
    assert a_id != b_id
    shutil.copy(b.node_dir(1) / "meta.properties", a.node_dir(1) / "meta.properties")
    log_file = a.data_dir / "logs" / "node-1.log"
    logged_before = len(log_file.read_text().splitlines())

    result = pko("cluster", "up", "-c", a.source, "--wait", 30)

    refusal = (f"node 1 cannot start: {a.node_dir(1)} belongs to cluster {b_id} (meta.properties), "
               f"but its metadata log to cluster {a_id}")
    assert result.returncode == 1
    assert result.stderr.startswith("pko: node 1 exited with code 1 during start-up") and refusal in result.stderr
    new_lines = log_file.read_text().splitlines()[logged_before:]
    errors = [line for line in new_lines if " ERROR " in line]
    assert len(errors) == 1 and errors[0].endswith(refusal), new_lines
    assert not any("Traceback" in line for line in new_lines)
    assert read_meta_properties(a.node_dir(1)).cluster_id == b_id  # left as it was


def test_a_node_dir_of_another_node_is_refused_before_anything_starts(clusters: dict[str, ClusterConfig]) -> None:
    config = clusters["a"]
    write_meta_properties(config.node_dir(1), MetaProperties(2, "AAAAAAAAAAAAAAAAAAAAAA"))
    result = pko("cluster", "up", "-c", config.source, "--wait", 30)
    assert (result.returncode, result.stderr) == (
        1, f"pko: {config.node_dir(1)} belongs to node 2, not to node 1 (node.id in its meta.properties)\n")
    assert not (config.data_dir / "logs").exists()  # no node was started
