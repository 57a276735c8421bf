"""pytest plugin: real pko clusters (real node processes) on free 127.0.0.1 ports, for your tests.

Installed with pykafka-ops (entry point ``pytest11: pykafka_ops``); nothing to import.

Fixtures
    ``pko_cluster`` (session scope): one single-node cluster shared by the session, with
    test-friendly broker settings (``TEST_CLUSTER_YAML``); yields a ``RunningCluster``.
    ``pko_cluster_factory`` (function scope): ``factory(yaml=None, **broker_overrides)`` starts a
    fresh cluster for a test that needs its own (or will kill it); all are stopped at teardown.

Functions
    ``start_cluster(yaml_text_or_path, tmp_dir, **broker_overrides) -> RunningCluster`` and
    ``free_ports(count)``, for fixtures of your own; ``wait_until(predicate, timeout_s, what)``
    to wait for a condition with a deadline.

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

Several nodes work the same way (``nodes:`` of the spec; every ``port`` and the ``controller_port``
of each combined node of a multi-voter quorum get free ports, on the node's own ``host`` if it
names one, e.g. 127.0.0.2; every node's ``admin_port`` gets a free port on ``admin.bind.address``,
so ``http://127.0.0.1:<config.node(n).admin_port>/v1/produce-clients`` answers). A cluster of
several nodes also gets ``MULTI_NODE_TEST_SETTINGS`` (short broker session and quorum timeouts)
unless the spec or the overrides set them::

    def test_fenced_after_pause(pko_cluster_factory):
        cluster = pko_cluster_factory(THREE_NODES_YAML)
        cluster.pause(2)            # SIGSTOP: fenced after broker.session.timeout.ms
        cluster.resume(2)

Each cluster lives in its own temp dir: ``<tmp_dir>/cluster.yaml`` (the generated file, so
``pko cluster status -c <tmp_dir>/cluster.yaml`` works while a test runs) and ``<tmp_dir>/data``.
Nodes are stopped by PID at teardown: SIGTERM, then SIGKILL after ``STOP_GRACE_S``.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import yaml

from pykafka_ops.config.cluster import ROLES

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
#: Broker settings of every test cluster of several nodes, unless the spec or the overrides set
#: them: a broker is fenced 2 s after its last heartbeat, and the quorum elects a new leader within
#: about a second of losing one (the timeouts of tests/perf/bench_quorum.py --test-timeouts).
MULTI_NODE_TEST_SETTINGS = {
    "broker.session.timeout.ms": 2000,
    "broker.heartbeat.interval.ms": 200,
    "controller.quorum.election.timeout.ms": 300,
    "controller.quorum.fetch.timeout.ms": 600,
    "controller.quorum.election.backoff.max.ms": 300,
    "controller.quorum.request.timeout.ms": 1000,
    # a lagging follower leaves the ISR after 2 s; followers' long polls are short
    "replica.lag.time.max.ms": 2000,
    "replica.fetch.wait.max.ms": 200,
    "replica.fetch.backoff.ms": 100,
}
#: Kafka's default offsets.topic.replication.factor; a test cluster with fewer brokers gets its
#: broker count unless its file sets one (as configs/single.yaml sets 1).
OFFSETS_REPLICATION_FACTOR = 3
#: Kafka's defaults of transaction.state.log.replication.factor and .min.isr; a test cluster with
#: fewer brokers gets its broker count as the factor and one fewer (at least 1) as the minimum ISR,
#: so that its transactions survive one broker's loss, unless its file sets them.
TXN_LOG_REPLICATION_FACTOR, TXN_LOG_MIN_ISR = 3, 2
#: Seconds between two tries of ``wait_until``.
POLL_S = 0.02
#: Seconds a node gets to stop after SIGTERM at teardown before SIGKILL.
STOP_GRACE_S = 5.0
#: Seconds a node gets after SIGTERM when a test's cluster is torn down (its data is thrown away):
#: a whole multi-node cluster stopping at once would wait out its controlled shutdowns, which
#: cannot commit once the quorum lost its majority (about a second per cluster). Tests that check
#: a clean stop call ``down()``, which waits ``STOP_GRACE_S``.
TEARDOWN_GRACE_S = 0.3
#: Seconds a cluster gets to become ready.
START_WAIT_S = 30.0

T = TypeVar("T")
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
        self.down(grace_s=TEARDOWN_GRACE_S)

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

    def pause(self, node: int) -> KillResult:
        """SIGSTOP ``node``: a broker is fenced once broker.session.timeout.ms has passed."""
        from cluster import launcher

        return launcher.pause(self.config, node)

    def resume(self, node: int) -> KillResult:
        """SIGCONT a paused ``node``."""
        from cluster import launcher

        return launcher.resume(self.config, node)

    def restart(self, node: int, wait_s: float = START_WAIT_S) -> None:
        """Stop ``node`` gracefully if it runs, start it again, return once it answers (within
        ``wait_s``: a node recovering thousands of logs on a busy machine may need longer)."""
        from cluster import launcher

        launcher.restart(self.config, node, wait_s=wait_s, grace_s=STOP_GRACE_S)

    def down(self, purge: bool = False, grace_s: float = STOP_GRACE_S) -> None:
        """Stop every node (SIGTERM, then SIGKILL after ``grace_s``); idempotent. ``purge``
        deletes the data dir."""
        from cluster import launcher

        launcher.down(self.config, grace_s=grace_s, purge=purge)


def wait_until(predicate: Callable[[], T], timeout_s: float, what: str) -> T:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout_s`` passes
    (AssertionError naming ``what``). Exceptions from the predicate count as "not yet": the
    deadline poller a test waits with, never a sleep."""
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - "not yet" until the deadline
            last_error = exc
        if time.monotonic() >= deadline:
            suffix = f" (last error: {last_error!r})" if last_error is not None else ""
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}{suffix}")
        time.sleep(POLL_S)


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

    Node ports (``port``, and ``controller_port`` where a combined node of a quorum of several
    needs one) are replaced by free ports on 127.0.0.1 (or the node's own ``host``), every node
    gets a free ``admin_port`` on ``admin.bind.address``, the data dir
    is ``<tmp_dir>/data``, a cluster of several nodes gets ``MULTI_NODE_TEST_SETTINGS``, and
    ``broker_overrides`` (``num_partitions=3`` or ``**{"num.partitions": 3}``) are merged into
    the ``broker`` section. Returns once every node answers, every broker is registered and
    unfenced and every partition has a leader (at most ``wait_s`` seconds).
    """
    from cluster import launcher
    from pykafka_ops.config.cluster import load

    directory = Path(tmp_dir)
    directory.mkdir(parents=True, exist_ok=True)
    spec = _with_test_overrides(_read_yaml(yaml_text_or_path), directory, broker_overrides)
    _assign_free_admin_ports(spec["nodes"], spec["broker"].get("admin.bind.address", "127.0.0.1"))
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
    _assign_free_ports(nodes)
    broker = dict(MULTI_NODE_TEST_SETTINGS) if len(nodes) > 1 else {}
    brokers = sum(1 for node in nodes if "broker" in node.get("roles", ["broker"]))
    if brokers < OFFSETS_REPLICATION_FACTOR:  # Kafka's default of 3 could never be met: groups would not work
        broker["offsets.topic.replication.factor"] = max(brokers, 1)
    if brokers < TXN_LOG_REPLICATION_FACTOR:  # nor Kafka's 3 replicas of __transaction_state
        broker["transaction.state.log.replication.factor"] = max(brokers, 1)
        broker["transaction.state.log.min.isr"] = max(min(brokers - 1, TXN_LOG_MIN_ISR), 1)
    broker.update(spec.get("broker") or {})
    broker.update({key.replace("_", "."): value for key, value in broker_overrides.items()})
    cluster = {**(spec.get("cluster") or {}), "data_dir": str(directory / "data"), "host": "127.0.0.1"}
    return {**spec, "cluster": cluster, "nodes": nodes, "broker": broker}


def _assign_free_ports(nodes: list[dict[str, Any]]) -> None:
    """A free ``port`` for every node, and a free ``controller_port`` for every node that has one
    or needs one (a combined node of a quorum of several controllers), on each node's host."""
    roles = [{node["roles"]} if isinstance(node.get("roles"), str) else set(node.get("roles", ROLES)) for node in nodes]
    several_controllers = sum(1 for r in roles if "controller" in r) > 1
    keys = [("port", "controller_port") if "controller_port" in node or (several_controllers and r >= set(ROLES))
            else ("port",) for node, r in zip(nodes, roles, strict=True)]
    per_host: dict[str, int] = {}
    for node, node_keys in zip(nodes, keys, strict=True):
        host = node.get("host", "127.0.0.1")
        per_host[host] = per_host.get(host, 0) + len(node_keys)
    ports = {host: iter(free_ports(count, host)) for host, count in per_host.items()}
    for node, node_keys in zip(nodes, keys, strict=True):
        for key in node_keys:
            node[key] = next(ports[node.get("host", "127.0.0.1")])


def _assign_free_admin_ports(nodes: list[dict[str, Any]], bind_address: str) -> None:
    """A free ``admin_port`` for every node (all of them listen on ``bind_address``), none of the
    nodes' other ports (the cluster file refuses a port twice on one host)."""
    taken = {node.get(key) for node in nodes for key in ("port", "controller_port")}
    ports = (port for port in free_ports(2 * len(nodes), bind_address) if port not in taken)
    for node in nodes:
        node["admin_port"] = next(ports)


@pytest.fixture(scope="session")
def pko_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """A single-node cluster shared by the whole test session."""
    with start_cluster(TEST_CLUSTER_YAML, tmp_path_factory.mktemp("pko-cluster")) as cluster:
        yield cluster


@contextmanager
def cluster_factory(directory: Path) -> Iterator[ClusterFactory]:
    """``factory(yaml=None, **broker_overrides)``: a fresh cluster per call (default:
    ``TEST_CLUSTER_YAML``), each in its own directory under ``directory``; all stopped on exit
    (what ``pko_cluster_factory`` gives a test; scripts such as the fault soak use it directly)."""
    started: list[RunningCluster] = []
    numbers = itertools.count()

    def factory(yaml_text_or_path: str | os.PathLike[str] | None = None, **broker_overrides: Any) -> RunningCluster:
        cluster = start_cluster(yaml_text_or_path or TEST_CLUSTER_YAML, directory / f"pko-cluster-{next(numbers)}",
                                **broker_overrides)
        started.append(cluster)
        return cluster

    try:
        yield factory
    finally:
        for cluster in started:
            cluster.down(grace_s=TEARDOWN_GRACE_S)


@pytest.fixture
def pko_cluster_factory(tmp_path: Path) -> Iterator[ClusterFactory]:
    """``cluster_factory`` under the test's ``tmp_path``: clusters stopped at teardown."""
    with cluster_factory(tmp_path) as factory:
        yield factory
