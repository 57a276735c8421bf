"""pytest plugin: real pko clusters (real node processes) on free 127.0.0.1 ports, for your tests.

Installed with pykafka-ops (entry point ``pytest11: pykafka_ops``); nothing to import.

Fixtures
    ``pko_cluster`` (session scope): one single-node cluster shared by the session, with
    test-friendly broker settings (``TEST_CLUSTER_YAML``); yields a ``RunningCluster``.
    ``pko_cluster_factory`` (function scope): ``factory(yaml=None, **broker_overrides)`` starts a
    fresh cluster for a test that needs its own (or will kill it); all are stopped at teardown.

Functions
    ``start_cluster(yaml_text_or_path, tmp_dir, **broker_overrides) -> RunningCluster`` and
    ``free_ports(count)``, for fixtures of your own.

Broker overrides are Kafka config names; as keyword arguments, write ``_`` for ``.``
(``num_partitions=6`` sets ``num.partitions``). Example::

    from confluent_kafka import Producer

    def test_produce(pko_cluster):
        producer = Producer({"bootstrap.servers": pko_cluster.bootstrap_servers})
        producer.produce("orders", b"hello")
        assert producer.flush(10) == 0

    def test_node_comes_back(pko_cluster_factory):
        cluster = pko_cluster_factory(num_partitions=3)
        cluster.kill(1, "KILL")
        cluster.restart(1)          # returns once the node answers again

Each cluster lives in its own temp dir: ``<tmp_dir>/cluster.yaml`` (the generated file, so
``pko cluster status -c <tmp_dir>/cluster.yaml`` works while a test runs) and ``<tmp_dir>/data``.
Nodes are stopped by PID at teardown: SIGTERM, then SIGKILL after ``STOP_GRACE_S``.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from cluster.launcher import KillResult, NodeStatus
    from pykafka_ops.config.cluster import ClusterConfig

#: The single-node cluster of the ``pko_cluster`` fixture (ports and data dir are filled in).
TEST_CLUSTER_YAML = """\
cluster: {name: pytest}
nodes:
  - {id: 1, roles: [broker, controller]}
broker:
  num.partitions: 1
  default.replication.factor: 1
  min.insync.replicas: 1
  auto.create.topics.enable: true
  log.retention.check.interval.ms: 1000   # retention tests need not wait 5 minutes
"""
#: Seconds a node gets to stop after SIGTERM at teardown before SIGKILL.
STOP_GRACE_S = 5.0
#: Seconds a cluster gets to become ready.
START_WAIT_S = 30.0

#: What ``pko_cluster_factory`` returns: ``factory(yaml=None, **broker_overrides)``.
ClusterFactory = Callable[..., "RunningCluster"]


@dataclass(frozen=True)
class RunningCluster:
    """A cluster started by ``start_cluster``; every method acts on its nodes by PID.

    As a context manager it stops the nodes on exit (``with start_cluster(...) as cluster:``)."""

    config: ClusterConfig
    config_path: Path

    def __enter__(self) -> RunningCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.down()

    @property
    def bootstrap_servers(self) -> str:
        """host:port of every broker, for ``bootstrap.servers``."""
        return self.config.bootstrap_servers

    def status(self) -> list[NodeStatus]:
        """Each node's state (running, paused, down), PID, port, uptime, RSS and CPU%."""
        from cluster import launcher

        return launcher.status(self.config)

    def kill(self, node: int, sig: str = "KILL") -> KillResult:
        """Send KILL, TERM, STOP or CONT to ``node`` and wait for it to take effect."""
        from cluster import launcher

        return launcher.kill(self.config, node, sig)

    def restart(self, node: int) -> None:
        """Stop ``node`` gracefully if it runs, start it again, return once it answers."""
        from cluster import launcher

        launcher.restart(self.config, node, wait_s=START_WAIT_S, grace_s=STOP_GRACE_S)

    def down(self, purge: bool = False) -> None:
        """Stop every node (SIGTERM, then SIGKILL); idempotent. ``purge`` deletes the data dir."""
        from cluster import launcher

        launcher.down(self.config, grace_s=STOP_GRACE_S, purge=purge)


def free_ports(count: int = 1, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports that were free a moment ago (bound to port 0, then released)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in socks]


def start_cluster(
    yaml_text_or_path: str | os.PathLike[str],
    tmp_dir: str | os.PathLike[str],
    wait_s: float = START_WAIT_S,
    **broker_overrides: Any,
) -> RunningCluster:
    """Start a real cluster from a cluster file (a path, or YAML text: a str with a line break)
    in ``tmp_dir``.

    Node ports are replaced by free ports on 127.0.0.1, the data dir is ``<tmp_dir>/data``, and
    ``broker_overrides`` (``num_partitions=3`` or ``**{"num.partitions": 3}``) are merged into
    the ``broker`` section. Returns once every node answers (at most ``wait_s`` seconds).
    """
    from cluster import launcher
    from pykafka_ops.config.cluster import load

    directory = Path(tmp_dir)
    directory.mkdir(parents=True, exist_ok=True)
    spec = _with_test_overrides(_read_yaml(yaml_text_or_path), directory, broker_overrides)
    config_path = directory / "cluster.yaml"
    config_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    config = load(config_path)
    launcher.up(config, wait_s=wait_s)
    return RunningCluster(config, config_path)


def _read_yaml(yaml_text_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    """A str with a line break is YAML text; any other str, or a PathLike, names a file."""
    if isinstance(yaml_text_or_path, str) and "\n" in yaml_text_or_path:
        text = yaml_text_or_path
    else:
        text = Path(yaml_text_or_path).read_text()
    spec = yaml.safe_load(text)
    if not isinstance(spec, dict):
        raise ValueError(f"a cluster file is a YAML mapping, got {type(spec).__name__}")
    return spec


def _with_test_overrides(spec: dict[str, Any], directory: Path, broker_overrides: dict[str, Any]) -> dict[str, Any]:
    nodes = [dict(node) for node in spec.get("nodes") or [{"id": 1}]]
    for node, port in zip(nodes, free_ports(len(nodes)), strict=True):
        node["port"] = port
    broker = dict(spec.get("broker") or {})
    broker.update({key.replace("_", "."): value for key, value in broker_overrides.items()})
    cluster = {**(spec.get("cluster") or {}), "data_dir": str(directory / "data"), "host": "127.0.0.1"}
    return {**spec, "cluster": cluster, "nodes": nodes, "broker": broker}


@pytest.fixture(scope="session")
def pko_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """A single-node cluster shared by the whole test session."""
    with start_cluster(TEST_CLUSTER_YAML, tmp_path_factory.mktemp("pko-cluster")) as cluster:
        yield cluster


@pytest.fixture
def pko_cluster_factory(tmp_path: Path) -> Iterator[ClusterFactory]:
    """``factory(yaml=None, **broker_overrides)``: a fresh cluster per call (default:
    ``TEST_CLUSTER_YAML``), each in its own directory under ``tmp_path``; all stopped at teardown."""
    started: list[RunningCluster] = []
    numbers = itertools.count()

    def factory(yaml_text_or_path: str | os.PathLike[str] | None = None, **broker_overrides: Any) -> RunningCluster:
        directory = tmp_path / f"pko-cluster-{next(numbers)}"
        cluster = start_cluster(yaml_text_or_path or TEST_CLUSTER_YAML, directory, **broker_overrides)
        started.append(cluster)
        return cluster

    try:
        yield factory
    finally:
        for cluster in started:
            cluster.down()
