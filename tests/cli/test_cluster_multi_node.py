"""`pko cluster …` on clusters of several nodes: the shipped three-brokers and dedicated-controllers
configs (on free ports, with the plugin's test timeouts) come up, and `status` follows pause,
resume, kill -9 and restart — fenced brokers, partitions led, the quorum leader.

Real `pko` binary, real node processes. Waits poll `status` with deadlines; nothing sleeps to wait.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_cluster_cli import REPO, pko

from cluster.pytest_plugin import _with_test_overrides

Nodes = list[dict[str, Any]]
#: broker.session.timeout.ms of the test settings is 2 s: fencing and unfencing take about that.
WAIT_S = 15.0


def _cluster_file(tmp_path: Path, name: str) -> Path:
    """configs/<name> with free ports, data in ``tmp_path``, and the plugin's test timeouts."""
    spec = yaml.safe_load((REPO / "configs" / name).read_text())
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(_with_test_overrides(spec, tmp_path, {}), sort_keys=False))
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg-state")}
    environment.pop("PKO_DEBUG", None)
    return environment


@pytest.fixture
def three(tmp_path: Path, env: dict[str, str]) -> Iterator[Path]:
    path = _cluster_file(tmp_path, "three-brokers.yaml")
    result = pko("cluster", "up", "-c", path, env=env)
    assert result.returncode == 0, result.stderr
    yield path
    pko("cluster", "down", "-c", path, env=env)


def status(path: Path, env: dict[str, str]) -> Nodes:
    result = pko("cluster", "status", "-c", path, "--output", "json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_for(path: Path, env: dict[str, str], what: str, check: Callable[[Nodes], bool]) -> Nodes:
    """`status` once ``check`` holds for it; fail after WAIT_S seconds, showing the last one."""
    deadline = time.monotonic() + WAIT_S
    nodes = status(path, env)
    while not check(nodes):
        assert time.monotonic() < deadline, f"not {what} within {WAIT_S} s: {nodes}"
        nodes = status(path, env)
    return nodes


def quorum_leader(nodes: Nodes) -> int | None:
    return next((n["id"] for n in nodes if n["quorum_leader"]), None)


def test_three_brokers_come_up_each_leading_partitions(three: Path, env: dict[str, str]) -> None:
    nodes = status(three, env)
    assert [(n["id"], n["state"], n["fenced"]) for n in nodes] == [(1, "running", False), (2, "running", False),
                                                                    (3, "running", False)]
    assert all(n["leader_count"] >= 1 for n in nodes)  # the 3 partitions of `orders` spread over the brokers
    assert quorum_leader(nodes) in (1, 2, 3)
    assert len({(n["port"], n["controller_port"]) for n in nodes}) == 3


def test_a_paused_broker_is_fenced_and_unfenced_once_resumed(three: Path, env: dict[str, str]) -> None:
    node = next(n["id"] for n in status(three, env) if not n["quorum_leader"])
    paused = pko("cluster", "pause", "-c", three, "--node", node, env=env)
    assert paused.returncode == 0, paused.stderr

    def fenced(nodes: Nodes) -> bool:
        return nodes[node - 1]["fenced"] is True and nodes[node - 1]["leader_count"] == 0

    shown = wait_for(three, env, f"node {node} fenced", fenced)[node - 1]
    assert shown["state"] == "paused"
    resumed = pko("cluster", "resume", "-c", three, "--node", node, env=env)
    assert resumed.returncode == 0, resumed.stderr
    wait_for(three, env, f"node {node} unfenced",
             lambda nodes: nodes[node - 1]["state"] == "running" and nodes[node - 1]["fenced"] is False)


def test_kill_of_the_quorum_leader_then_restart(three: Path, env: dict[str, str]) -> None:
    leader = quorum_leader(wait_for(three, env, "a quorum leader", lambda nodes: quorum_leader(nodes) is not None))
    killed = pko("cluster", "kill", "-c", three, "--node", leader, env=env)
    assert killed.returncode == 0, killed.stderr
    nodes = wait_for(three, env, "a new quorum leader", lambda nodes: quorum_leader(nodes) not in (None, leader))
    assert nodes[leader - 1]["state"] == "down"
    again = pko("cluster", "up", "-c", three, env=env)
    assert again.returncode == 1
    assert again.stderr.endswith(f"; start node {leader} with `pko cluster restart --node {leader}`\n")
    restarted = pko("cluster", "restart", "-c", three, "--node", leader, env=env)
    assert restarted.returncode == 0, restarted.stderr
    nodes = status(three, env)  # restart returns once the broker is registered and unfenced
    assert (nodes[leader - 1]["state"], nodes[leader - 1]["fenced"]) == ("running", False)

    # a rolling restart: one node at a time, each once every partition is in sync again, the
    # active controller last
    active = quorum_leader(wait_for(three, env, "a quorum leader", lambda nodes: quorum_leader(nodes) is not None))
    rolled = pko("cluster", "restart", "-c", three, "--rolling", env=env)
    assert rolled.returncode == 0, rolled.stderr
    restarted_order = [int(line.split()[-1]) for line in rolled.stdout.splitlines() if " restarting node " in line]
    assert sorted(restarted_order) == [1, 2, 3] and restarted_order[-1] == active, rolled.stdout
    assert rolled.stdout.count("every partition is in sync") == 3
    assert rolled.stdout.splitlines()[-1].startswith("cluster 'three': 3 node(s) restarted one at a time")
    assert pko("cluster", "restart", "-c", three, "--rolling", "--node", "1", env=env).returncode == 2
    down = pko("cluster", "down", "-c", three, env=env)
    assert down.returncode == 0, down.stderr
    assert {n["state"] for n in status(three, env)} == {"down"}


def test_dedicated_controllers_come_up_with_brokers_as_observers(tmp_path: Path, env: dict[str, str]) -> None:
    path = _cluster_file(tmp_path, "dedicated-controllers.yaml")
    try:
        result = pko("cluster", "up", "-c", path, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.endswith(" (5 nodes)\n") and result.stdout.count(",") == 1  # two brokers to bootstrap
        text = pko("cluster", "status", "-c", path, env=env).stdout.splitlines()
        quorum = [line.split()[8] for line in text[1:]]
        assert sorted(quorum) == ["leader", "observer", "observer", "voter", "voter"]
        assert quorum[3:] == ["observer", "observer"]
        nodes = status(path, env)
        assert [n["fenced"] for n in nodes] == [None, None, None, False, False]
        assert [n["leader_count"] for n in nodes][:3] == [None, None, None]
        assert sum(n["leader_count"] for n in nodes[3:]) >= 4  # `orders` has 4 partitions
    finally:
        pko("cluster", "down", "-c", path, env=env)


def test_nodes_on_their_own_loopback_addresses(tmp_path: Path, env: dict[str, str]) -> None:
    """Each node names its own `host` (127.0.0.2-4, as three machines would have three addresses):
    each listens there, registers that address, and clients are sent there."""
    spec = yaml.safe_load((REPO / "configs" / "three-brokers.yaml").read_text())
    for node, host in zip(spec["nodes"], ("127.0.0.2", "127.0.0.3", "127.0.0.4"), strict=True):
        node["host"] = host
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(_with_test_overrides(spec, tmp_path, {}), sort_keys=False))
    try:
        result = pko("cluster", "up", "-c", path, env=env)
        assert result.returncode == 0, result.stderr
        nodes = status(path, env)
        assert [(n["host"], n["state"], n["fenced"]) for n in nodes] == [
            ("127.0.0.2", "running", False), ("127.0.0.3", "running", False), ("127.0.0.4", "running", False)]
        info = pko("cluster", "info", "-b", f"127.0.0.3:{nodes[1]['port']}", "--output", "json", env=env)
        assert info.returncode == 0, info.stderr
        assert sorted(b["name"] for b in json.loads(info.stdout)["brokers"]) == [
            f"{n['host']}:{n['port']}" for n in nodes]
    finally:
        pko("cluster", "down", "-c", path, env=env)
