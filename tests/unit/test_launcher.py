"""The launcher's pieces that need no node process: readiness from a Metadata answer, the status
of each node from its process and the cluster's view, and the ports the pytest plugin assigns."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from cluster import launcher_status
from cluster.launcher_probe import metadata_problem
from cluster.launcher_status import ClusterView, NodeStatus, cluster_view
from cluster.pytest_plugin import (
    MULTI_NODE_TEST_SETTINGS,
    _with_test_overrides,
    free_ports,
)
from commands.cluster_status import node_json, node_row, quorum_role
from pykafka_ops.config.cluster import ClusterConfig, parse
from pykafka_ops.state import NodeState

THREE = """\
cluster: {name: three}
nodes:
  - {id: 1, port: 9092, controller_port: 9192}
  - {id: 2, port: 9093, controller_port: 9193}
  - {id: 3, port: 9094, controller_port: 9194}
"""


def _metadata(brokers: list[int], partitions: dict[str, list[tuple[int, list[int]]]]) -> Any:
    """A Metadata v1 answer: broker ids, and per topic (leader, replicas) of each partition."""
    return SimpleNamespace(
        brokers=[SimpleNamespace(node_id=b) for b in brokers],
        topics=[SimpleNamespace(name=name, error_code=0, partitions=[
            SimpleNamespace(partition_index=i, leader_id=leader, replica_nodes=replicas)
            for i, (leader, replicas) in enumerate(parts)]) for name, parts in partitions.items()])


def test_a_broker_is_ready_once_every_expected_broker_and_every_leader_is_in_metadata() -> None:
    led = {"orders": [(1, [1]), (2, [2]), (3, [3])]}
    assert metadata_problem(_metadata([1, 2, 3], led), ["orders"], [1, 2, 3]) is None
    assert metadata_problem(_metadata([1, 3], led), ["orders"], [1, 2, 3]) == (
        "broker 2 is not in Metadata yet (not registered, or fenced)")
    assert metadata_problem(_metadata([1, 2, 3], {}), ["orders"], [1, 2, 3]) == "topic 'orders' is not in Metadata yet"
    offline = {"orders": [(1, [1]), (-1, [2]), (3, [3])]}
    assert metadata_problem(_metadata([1, 2, 3], offline), ["orders"], [1, 2, 3]) == (
        "partition orders-1 has no leader yet")


def test_a_restarted_broker_waits_only_for_itself_and_its_own_partitions() -> None:
    """Broker 2 is down on purpose: its partition is offline, which must not hold up broker 1."""
    offline = {"orders": [(-1, [1]), (-1, [2]), (3, [3])]}
    assert metadata_problem(_metadata([1, 3], offline), ["orders"], [1]) == "partition orders-0 has no leader yet"
    led = {"orders": [(1, [1]), (-1, [2]), (3, [3])]}
    assert metadata_problem(_metadata([1, 3], led), ["orders"], [1]) is None


def _config(text: str = THREE) -> ClusterConfig:
    return parse(text, Path("three.yaml"), Path("/tmp"))


def _as_running(monkeypatch: pytest.MonkeyPatch, node_ids: list[int], view: ClusterView) -> None:
    """Nodes ``node_ids`` "run" as this test process; the cluster says ``view``."""
    me = psutil.Process(os.getpid())
    running = {i: (NodeState(i, me.pid, 9091 + i, ["broker", "controller"], time.time(), "log"), me) for i in node_ids}
    monkeypatch.setattr(launcher_status, "running_nodes", lambda _config: running)
    monkeypatch.setattr(launcher_status, "cluster_view", lambda _config, _nodes, _timeout: view)


def test_status_shows_fenced_brokers_leader_counts_and_the_quorum_leader(monkeypatch: pytest.MonkeyPatch) -> None:
    _as_running(monkeypatch, [1, 2], ClusterView(frozenset({1}), {1: 4, 3: 2}, quorum_leader=1))
    nodes = launcher_status.status(_config(), cpu_interval_s=0)
    assert [(n.id, n.state, n.fenced, n.leader_count, n.quorum_leader) for n in nodes] == [
        (1, "running", False, 4, True),
        (2, "fenced", True, 0, False),  # running, but the cluster has it fenced
        (3, "down", True, 2, False),  # killed, but Metadata still names it leader until it is fenced
    ]
    assert nodes[0].pid == os.getpid() and nodes[2].pid is None
    assert [(n.host, n.port, n.controller_port) for n in nodes] == [
        ("127.0.0.1", 9092, 9192), ("127.0.0.1", 9093, 9193), ("127.0.0.1", 9094, 9194)]


def test_status_leaves_the_cluster_columns_unknown_when_nobody_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    _as_running(monkeypatch, [1], ClusterView())
    (first, *_rest) = nodes = launcher_status.status(_config(), cpu_interval_s=0)
    assert (first.state, first.fenced, first.leader_count, first.quorum_leader) == ("running", None, None, None)
    assert [quorum_role(n) for n in nodes] == [None, None, None]
    assert node_row(first)[6:9] == ["running", None, None]


def test_cluster_view_of_nodes_that_do_not_answer_is_unknown_and_quick() -> None:
    config = _config(f"nodes:\n  - {{id: 1, port: {free_ports(1)[0]}}}\n")  # nothing listens there
    started = time.monotonic()
    assert cluster_view(config, config.nodes, timeout_s=0.5) == ClusterView()
    assert time.monotonic() - started < 2


def test_quorum_roles_and_the_json_schema() -> None:
    def node(node_id: int, roles: tuple[str, ...], leader: bool | None) -> NodeStatus:
        return NodeStatus(node_id, roles, "127.0.0.1", 9090 + node_id, None, "running", 10, 1.0, 2**20, 0.5,
                          fenced=False, leader_count=1, quorum_leader=leader)

    nodes = [node(1, ("controller",), True), node(2, ("controller",), False), node(4, ("broker",), False)]
    assert [quorum_role(n) for n in nodes] == ["leader", "voter", "observer"]
    assert list(node_json(nodes[0])) == ["id", "roles", "host", "pid", "port", "controller_port", "state", "fenced",
                                         "leader_count", "quorum_leader", "uptime_s", "rss_bytes", "cpu_percent",
                                         "under_replicated_partitions", "offline_partitions", "out_of_sync_replicas",
                                         "isr_shrinks", "isr_expands", "admin_port"]
    assert node_row(nodes[2]) == [4, "broker", "127.0.0.1", 10, 9094, None, "running", 1, "observer", "0m01s",
                                  "1.0MiB", "0.5", None, None, None, None, None]


def test_the_plugin_gives_every_listener_a_free_port_and_a_multi_node_cluster_fast_timeouts(tmp_path: Path) -> None:
    spec = {"nodes": [{"id": 1, "controller_port": 1}, {"id": 2}, {"id": 3}, {"id": 4, "roles": ["broker"]},
                      {"id": 5, "roles": "broker", "host": "127.0.0.2"}],
            "broker": {"broker.session.timeout.ms": 5000}}
    result = _with_test_overrides(spec, tmp_path, {"num_partitions": 6})
    ports = [(n.get("host", "127.0.0.1"), n[key]) for n in result["nodes"] for key in ("port", "controller_port")
             if key in n]
    assert len(ports) == len(set(ports)) == 8  # combined nodes 1-3 have a controller port, 4 and 5 do not
    assert [("controller_port" in n) for n in result["nodes"]] == [True, True, True, False, False]
    assert result["broker"] == {**MULTI_NODE_TEST_SETTINGS, "broker.session.timeout.ms": 5000, "num.partitions": 6}
    assert result["cluster"] == {"data_dir": str(tmp_path / "data"), "host": "127.0.0.1"}


def test_a_two_broker_test_cluster_gets_a_transaction_log_it_can_place(tmp_path: Path) -> None:
    spec = {"nodes": [{"id": 1, "roles": ["controller"]}, {"id": 2, "roles": ["broker"]}, {"id": 3, "roles": ["broker"]}]}
    result = _with_test_overrides(spec, tmp_path, {})
    assert (result["broker"]["transaction.state.log.replication.factor"],
            result["broker"]["transaction.state.log.min.isr"]) == (2, 1)  # one broker may be lost
    pinned = _with_test_overrides({**spec, "broker": {"transaction.state.log.min.isr": 2}}, tmp_path, {})
    assert pinned["broker"]["transaction.state.log.min.isr"] == 2  # the file's own setting wins


def test_a_single_node_test_cluster_keeps_kafka_timeouts(tmp_path: Path) -> None:
    result = _with_test_overrides({"nodes": [{"id": 1, "port": 9092}]}, tmp_path, {})
    assert result["broker"] == {"offsets.topic.replication.factor": 1,  # Kafka's 3 could never be met
                                "transaction.state.log.replication.factor": 1, "transaction.state.log.min.isr": 1}
    assert "controller_port" not in result["nodes"][0] and result["nodes"][0]["port"] != 9092


def test_purge_deletes_log_dirs_outside_the_data_dir_and_refuses_precious_ones(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from cluster.launcher import LauncherError, down

    outside = tmp_path / "disk2" / "pko"
    text = (f"cluster: {{name: purge, data_dir: {tmp_path / 'data'}}}\n"
            f"nodes:\n  - {{id: 1, port: 9092, log_dirs: [{tmp_path / 'data' / 'd1'}, {outside}]}}\n")
    config = parse(text, tmp_path / "c.yaml", base_dir=tmp_path)
    for directory in (tmp_path / "data" / "d1", outside):
        (directory / "t-0").mkdir(parents=True)
    result = down(config, purge=True)
    assert result.purged and not (tmp_path / "data").exists() and not outside.exists()
    assert (tmp_path / "disk2").exists()  # only the log dir itself goes
    outside.mkdir(parents=True)
    monkeypatch.chdir(outside)
    with pytest.raises(LauncherError, match=f"refusing to purge {outside}: it contains {outside}"):
        down(config, purge=True)
    assert outside.exists()
