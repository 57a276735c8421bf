"""`pko cluster status`: each node's process (from the state file and psutil) and its place in
the cluster (from the running nodes, over the wire).

The process side — PID, running or paused (SIGSTOPped) or down, uptime, RSS, CPU% — needs no
node to answer. The cluster side is asked of the nodes that run and are not paused, with short
timeouts, while the CPU is being measured: DescribeCluster v2 (``include_fenced_brokers``) says
which brokers are fenced, Metadata v1 (all topics) how many partitions each broker leads, and
DescribeQuorum which node leads the metadata quorum. It is best-effort: when no node answers
(the cluster is down, starting, or a request fails) those fields are None and the rest is shown.

Replication per broker comes from the same Metadata answer (``services.replication``): the
under-replicated partitions it leads (Kafka's UnderReplicatedPartitions), the partitions it hosts
that are offline, and its replicas that are out of the ISR. ISR shrinks and expands per node are
counted from the metadata log on disk (``services.isr_history``, which says why that source),
read from the quorum leader's data dir first: no node needs to answer for them.
Returns dataclasses; never prints.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass

import psutil

from cluster.launcher_process import process_state, running_nodes
from pykafka_ops.config.cluster import ClusterConfig, NodeSpec
from pykafka_ops.models.replication import BrokerReplication, IsrChangeCounts
from pykafka_ops.models.topics import PartitionDescription

#: Seconds over which `status` measures CPU usage (all nodes during the same interval).
CPU_INTERVAL_S = 0.2
#: Bound of each connection and request that asks the cluster about itself, in seconds.
VIEW_TIMEOUT_S = 1.0
#: DescribeCluster's endpoint type of brokers (v1+), and the version that can list fenced brokers.
_BROKER_ENDPOINTS, _FENCED_LISTED_FROM = 1, 2


@dataclass(frozen=True)
class NodeStatus:
    """One node as `pko cluster status` shows it; process figures are None unless it is alive,
    cluster figures None when no running node could tell them."""

    id: int
    roles: tuple[str, ...]
    host: str
    port: int
    controller_port: int | None
    state: str
    """running, paused (SIGSTOPped), fenced (running, but not an unfenced broker) or down."""
    pid: int | None
    uptime_s: float | None
    rss_bytes: int | None
    cpu_percent: float | None
    fenced: bool | None = None
    """A broker: whether the cluster has it fenced (or not registered). None: not a broker, or not known."""
    leader_count: int | None = None
    """A broker: the partitions it leads (Kafka's LeaderCount). None: not a broker, or not known."""
    quorum_leader: bool | None = None
    """Whether it leads the metadata quorum (is the active controller). None: not known."""
    under_replicated: int | None = None
    """A broker: under-replicated partitions it leads (Kafka's UnderReplicatedPartitions)."""
    offline: int | None = None
    """A broker: partitions it hosts a replica of that have no leader."""
    out_of_sync: int | None = None
    """A broker: partitions it hosts a replica of that is not in the ISR."""
    isr_shrinks: int | None = None
    """ISR shrinks that removed this node, from the metadata log (``services.isr_history``)."""
    isr_expands: int | None = None
    """ISR expansions that added this node back, from the metadata log."""
    admin_port: int | None = None
    """The node's admin endpoint port (``admin_port`` in the cluster file), None without one."""


@dataclass(frozen=True)
class ClusterView:
    """What the running nodes say about the cluster; a field is None when no node told it."""

    unfenced: frozenset[int] | None = None
    leader_counts: Mapping[int, int] | None = None
    quorum_leader: int | None = None
    replication: Mapping[int, BrokerReplication] | None = None
    """Per broker id, its partition counts (from the same Metadata answer as ``leader_counts``)."""


def status(config: ClusterConfig, cpu_interval_s: float = CPU_INTERVAL_S) -> list[NodeStatus]:
    """Every node of the cluster file with its process figures (CPU% measured for all nodes over
    the same ``cpu_interval_s`` seconds) and, meanwhile asked of the running nodes, whether it is
    fenced, the partitions it leads and whether it leads the quorum."""
    procs = {node_id: proc for node_id, (_state, proc) in running_nodes(config).items()}
    answering = [config.node(node_id) for node_id, proc in procs.items()
                 if _known(config, node_id) and process_state(proc) == "running"]
    with ThreadPoolExecutor(1) as pool:
        asked = pool.submit(cluster_view, config, answering, VIEW_TIMEOUT_S)
        cpu = _cpu_percent(procs, cpu_interval_s)
        view = asked.result()
    isr_changes = _isr_changes(config, view.quorum_leader)
    return [_node_status(config, node, procs.get(node.id), cpu.get(node.id), view, isr_changes)
            for node in config.nodes]


def _isr_changes(config: ClusterConfig, quorum_leader: int | None) -> dict[int, IsrChangeCounts] | None:
    """ISR changes per node from the metadata log of the quorum leader, else of the first node
    (in file order) whose log can be read; None when none can (never started, or unreadable)."""
    from pykafka_ops.services.isr_history import cluster_isr_changes

    ids = [n.id for n in config.nodes]
    if quorum_leader in ids:
        ids.remove(quorum_leader)
        ids.insert(0, quorum_leader)
    return cluster_isr_changes(config, ids)


def cluster_view(config: ClusterConfig, nodes: Sequence[NodeSpec], timeout_s: float) -> ClusterView:
    """Ask ``nodes`` (running, not paused) about the cluster: the first broker that answers for
    the brokers and leaders, any node for the quorum leader. Never raises."""
    answers = (_ask_broker(config.host_of(n.id), n.port, timeout_s) for n in nodes if n.is_broker)
    unfenced, replication = next((answer for answer in answers if answer is not None), (None, None))
    leader_counts = None if replication is None else {b: r.leaders for b, r in replication.items() if r.leaders}
    return ClusterView(unfenced, leader_counts, _quorum_leader(config, nodes, timeout_s), replication)


def _ask_broker(host: str, port: int,
                timeout_s: float) -> tuple[frozenset[int], dict[int, BrokerReplication]] | None:
    """(unfenced broker ids, partition counts per broker id) as the broker at ``host:port`` says;
    None when it does not answer (starting, stopping, or garbage)."""
    try:
        return _brokers_and_leaders(host, port, timeout_s)
    except Exception:  # noqa: BLE001 - any failure only means: ask the next broker
        return None


def _brokers_and_leaders(host: str, port: int,
                         timeout_s: float) -> tuple[frozenset[int], dict[int, BrokerReplication]]:
    # Imported here: the codec (kio) costs 0.3 s of imports that a cluster that is down never needs.
    from pykafka_ops.client.reassign_requests import adding_replicas
    from pykafka_ops.client.wire import WireClient
    from pykafka_ops.protocol.api_keys import ApiKey

    with WireClient(host, port, timeout=timeout_s) as client:
        versions = client.api_versions()  # asked once per connection (adding_replicas reads it too)
        metadata = client.request(ApiKey.METADATA, 1, {"topics": None})
        unfenced = frozenset(b.node_id for b in metadata.brokers)
        version = versions.get(ApiKey.DESCRIBE_CLUSTER, -1)
        if version >= _FENCED_LISTED_FROM:
            described = client.request(ApiKey.DESCRIBE_CLUSTER, version, {
                "include_cluster_authorized_operations": False, "endpoint_type": _BROKER_ENDPOINTS,
                "include_fenced_brokers": True})
            if described.error_code == 0:
                unfenced = frozenset(b.broker_id for b in described.brokers if not b.is_fenced)
        adding = adding_replicas(client, metadata, int(timeout_s * 1000))
    from pykafka_ops.services.replication import broker_replication

    partitions = [PartitionDescription(t.name, p.partition_index, p.leader_id if p.leader_id >= 0 else None,
                                       tuple(p.replica_nodes), tuple(p.isr_nodes),
                                       adding.get((t.name, p.partition_index), ()))
                  for t in metadata.topics for p in t.partitions]
    return unfenced, broker_replication(partitions, unfenced)


def _quorum_leader(config: ClusterConfig, nodes: Sequence[NodeSpec], timeout_s: float) -> int | None:
    """The quorum leader as DescribeQuorum through any of ``nodes`` names it, or None."""
    if not nodes:
        return None
    from pykafka_ops.client.quorum_requests import describe_metadata_quorum

    servers = ",".join(f"{_bracketed(config.host_of(n.id))}:{n.port}" for n in nodes)
    try:
        leader = describe_metadata_quorum(servers, timeout_s).leader_id
    except Exception:  # noqa: BLE001 - no leader yet, nobody answered, or an error: not known
        return None
    return leader if leader >= 0 else None


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _known(config: ClusterConfig, node_id: int) -> bool:
    """Whether the cluster file (perhaps edited since `up`) still has this node."""
    return any(n.id == node_id for n in config.nodes)


def _node_status(config: ClusterConfig, node: NodeSpec, proc: psutil.Process | None, cpu_percent: float | None,
                 view: ClusterView, isr_changes: Mapping[int, IsrChangeCounts] | None = None) -> NodeStatus:
    fenced = None if not node.is_broker or view.unfenced is None else node.id not in view.unfenced
    leaders = None if not node.is_broker or view.leader_counts is None else view.leader_counts.get(node.id, 0)
    quorum_leader = None if view.quorum_leader is None else view.quorum_leader == node.id
    cluster_side = {"fenced": fenced, "leader_count": leaders, "quorum_leader": quorum_leader,
                    **_replication_side(node, view, isr_changes), "admin_port": node.admin_port}
    where = (node.id, node.roles, config.host_of(node.id), node.port, node.controller_port)
    state = "down" if proc is None else process_state(proc)
    if proc is not None and state != "down":
        try:
            with proc.oneshot():
                uptime_s = round(time.time() - proc.create_time(), 1)
                shown = "fenced" if state == "running" and fenced else state
                return NodeStatus(*where, shown, proc.pid, uptime_s, proc.memory_info().rss, cpu_percent,
                                  **cluster_side)
        except psutil.NoSuchProcess:  # exited while we looked
            pass
    return NodeStatus(*where, "down", None, None, None, None, **cluster_side)


def _replication_side(node: NodeSpec, view: ClusterView,
                      isr_changes: Mapping[int, IsrChangeCounts] | None) -> dict[str, int | None]:
    """The replication fields of ``NodeStatus`` (None where not a broker, or not known)."""
    replication = None
    if node.is_broker and view.replication is not None:
        replication = view.replication.get(node.id, BrokerReplication(node.id))
    changes = None
    if node.is_broker and isr_changes is not None:
        changes = isr_changes.get(node.id, IsrChangeCounts())
    return {"under_replicated": replication.under_replicated if replication else None,
            "offline": replication.offline if replication else None,
            "out_of_sync": replication.out_of_sync if replication else None,
            "isr_shrinks": changes.shrinks if changes else None,
            "isr_expands": changes.expands if changes else None}


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
