"""Turn a snapshot plus the monitor's history into the views of a ``MonitorFrame``.

Pure functions, no I/O and no awaits: the history has already recorded the poll. Groups come
first because topics use their lag (retention risk) and the overview their rates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Mapping, Sequence

from pykafka_ops.models.groups import GroupLag
from pykafka_ops.models.monitor import (
    QUORUM_FOLLOWER,
    QUORUM_LEADER,
    QUORUM_OBSERVER,
    BrokerState,
    BrokerView,
    ClusterSnapshot,
    GroupView,
    HotPartition,
    MetadataQuorum,
    NodeProcess,
    Overview,
    PartitionOffsets,
    PartitionView,
    TopicPartitionView,
    TopicView,
)
from pykafka_ops.models.replication import BrokerReplication
from pykafka_ops.models.topics import BrokerInfo, TopicDescription
from pykafka_ops.models.transactions import HangingTransaction
from pykafka_ops.services.history import MonitorHistory, known
from pykafka_ops.services.replication import broker_replication, is_not_preferred
from pykafka_ops.services.skew_stats import z_scores
from pykafka_ops.services.status import group_status, partition_status
from pykafka_ops.services.time_lag import TimeLagEstimator


def _total(values: Sequence[float | None]) -> float | None:
    """The sum of the known values, None when none is known."""
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def group_view(now: float, group: GroupLag, history: MonitorHistory, time_lag: TimeLagEstimator) -> GroupView:
    """One group with a view (time lag, rates, status) of each of its partitions."""
    gid, state, window = group.group_id, group.description.state, history.options.window
    tracks, log_ends, estimate = history.partitions, history.log_ends, time_lag.estimate
    rows = []
    for r in group.partitions:
        topic, partition, offset = r.topic, r.partition, r.current_offset
        track = tracks[(gid, topic, partition)]
        log_end = log_ends.get((topic, partition))
        lag = r.lag
        seconds, method = estimate(topic, partition, offset, lag, now, log_end)
        status, reason = partition_status(track, window, r, lag, state)
        rows.append(PartitionView(gid, topic, partition, offset, r.log_end_offset, lag, seconds, method,
                                  log_end.produce_rate if log_end is not None else None, track.consume_rate,
                                  r.consumer_id, r.host, r.client_id, status, reason))
    error = group.description.error or group.error
    status, reason = group_status(rows, error)
    timed = [p for p in rows if p.lag_seconds is not None]
    oldest = max(timed, key=lambda p: p.lag_seconds or 0.0) if timed else None
    ring = history.group_lags.get(gid)
    total_lag = sum(p.lag for p in rows if p.lag is not None and p.lag > 0)
    return GroupView(gid, state, len(group.description.members), total_lag,
                     oldest.lag_seconds if oldest else None, oldest.lag_method if oldest else None,
                     _total([p.consume_rate for p in rows]), status, reason, ring.values() if ring else (),
                     tuple(rows), group.description, error)


#: Per lagging (topic, partition): the largest lag of any group on it and the largest time lag (s).
PartitionLags = dict[tuple[str, int], tuple[int, float | None]]


def partition_lags(groups: Sequence[GroupView]) -> PartitionLags:
    """Per lagging partition: the largest lag of any group, and the largest time lag (s)."""
    worst: PartitionLags = {}
    for g in groups:
        if not g.total_lag:
            continue
        for p in g.partitions:
            lag = p.lag
            if not lag or lag <= 0:
                continue
            key = (p.topic, p.partition)
            seconds = p.lag_seconds
            if key in worst:
                top, top_seconds = worst[key]
                lag = max(lag, top)
                if seconds is None or (top_seconds is not None and top_seconds > seconds):
                    seconds = top_seconds
            worst[key] = (lag, seconds)
    return worst


def _risk(lags: PartitionLags, snapshot: ClusterSnapshot) -> dict[str, tuple[float | None, float | None]]:
    """Per topic: the largest lag as a share of the retained range, and the least time (s) until the
    oldest unconsumed record reaches retention.ms, over every group and partition."""
    ranges = {(o.topic, o.partition): (o.log_end_offset - o.log_start_offset)
              for o in snapshot.offsets if o.log_end_offset is not None and o.log_start_offset is not None}
    risk: dict[str, tuple[float | None, float | None]] = {}
    for (topic, partition), (lag, seconds) in lags.items():
        share, loss = risk.get(topic, (None, None))
        retained = ranges.get((topic, partition))
        if retained:
            share = max(share or 0.0, lag / retained)
        retention_ms = snapshot.retention_ms.get(topic)
        if retention_ms is not None and seconds is not None:
            left = retention_ms / 1000 - seconds
            loss = left if loss is None else min(loss, left)
        risk[topic] = (share, loss)
    return risk


def topic_view(topic: TopicDescription, snapshot: ClusterSnapshot, history: MonitorHistory,
               offsets: dict[tuple[str, int], PartitionOffsets], risk: tuple[float | None, float | None],
               hanging: dict[tuple[str, int], HangingTransaction]) -> TopicView:
    """One topic: per-partition rates, hot flags and hanging transactions, totals, skew and retention risk."""
    tracks = [history.log_ends.get((topic.name, p.partition)) for p in topic.partitions]
    rates = [t.produce_rate if t is not None else None for t in tracks]
    known_rates = [r for r in rates if r is not None]
    scores = z_scores([r or 0.0 for r in rates]) if known_rates else [0.0] * len(rates)
    hot_k = history.options.hot_k
    views = []
    for p, rate, z in zip(topic.partitions, rates, scores):
        o = offsets.get((topic.name, p.partition)) or PartitionOffsets(topic.name, p.partition, None, None)
        views.append(TopicPartitionView(p.partition, p.leader, p.replicas, p.isr, o.log_start_offset, o.log_end_offset,
                                        rate, z, rate is not None and z > hot_k, o.last_stable_offset,
                                        hanging.get((topic.name, p.partition)), p.adding_replicas))
    partitions = tuple(views)
    records = [v.records for v in partitions if v.records is not None]
    mean = sum(known_rates) / len(known_rates) if known_rates else 0.0
    skew = max(known_rates) / mean if len(known_rates) > 1 and mean > 0 else None
    ring = history.topic_rates.get(topic.name)
    return TopicView(topic.name, topic.is_internal, partitions, topic.replication_factor,
                     sum(p.under_replicated for p in topic.partitions), sum(p.unavailable for p in topic.partitions),
                     _total(rates), sum(records) if records else None, snapshot.retention_ms.get(topic.name), skew,
                     risk[0], risk[1], tuple(v if known(v) else 0.0 for v in ring.values()) if ring else (),
                     sum(is_not_preferred(p) for p in topic.partitions))


def topic_views(snapshot: ClusterSnapshot, history: MonitorHistory, lags: PartitionLags) -> tuple[TopicView, ...]:
    """Every topic, by name (``lags``: ``partition_lags`` of this poll's groups)."""
    offsets = {(o.topic, o.partition): o for o in snapshot.offsets}
    hanging = {(h.topic, h.partition): h for h in snapshot.hanging_transactions}
    risk = _risk(lags, snapshot)
    return tuple(topic_view(t, snapshot, history, offsets, risk.get(t.name, (None, None)), hanging)
                 for t in sorted(snapshot.topics, key=lambda t: t.name))


def quorum_role(quorum: MetadataQuorum | None, node_id: int) -> str | None:
    """``Leader``, ``Follower`` or ``Observer`` (kafka-metadata-quorum's names); None when the
    node is not in the quorum's answer or there is no answer."""
    if quorum is None:
        return None
    if node_id == quorum.leader_id:
        return QUORUM_LEADER
    if node_id in quorum.voters:
        return QUORUM_FOLLOWER
    return QUORUM_OBSERVER if node_id in quorum.observers else None


def _state(node_id: int, node: NodeProcess | None, is_broker: bool, running: Container[int],
           fenced: Container[int]) -> BrokerState | None:
    """First match wins: a dead process is down (a killed broker stays registered and unfenced
    until its session times out); a fenced broker is fenced; a broker in Metadata runs; any other
    broker is down; a controller runs when its process does, and is unknown without one."""
    if node is not None and not node.running:
        return BrokerState.DOWN
    if node_id in fenced:
        return BrokerState.FENCED
    if node_id in running:
        return BrokerState.RUNNING
    if is_broker:
        return BrokerState.DOWN
    return BrokerState.RUNNING if node is not None else None


def broker_views(snapshot: ClusterSnapshot, seen: Mapping[int, BrokerInfo] | None = None) -> tuple[BrokerView, ...]:
    """Every node this poll knows of, by id: Metadata's brokers, the fenced brokers (DescribeCluster
    v2), brokers of an earlier poll (``seen``) and the nodes of the state file, broker or not, and
    the quorum's voters (controllers), each with its state (``_state``), roles, quorum role and
    replication counts (``services.replication.broker_replication``)."""
    replication = broker_replication(p for topic in snapshot.topics for p in topic.partitions)
    nodes = {n.node_id: n for n in snapshot.nodes}
    running = {b.id: b for b in snapshot.brokers}
    fenced = {b.id: b for b in snapshot.fenced_brokers or ()}
    quorum = snapshot.quorum
    voters = set(quorum.voters) if quorum is not None else set()
    endpoints = {e.id: e for e in quorum.voter_endpoints} if quorum is not None else {}
    brokers = {**(seen or {}), **fenced, **running}  # the freshest address wins
    views = []
    for node_id in sorted(brokers.keys() | nodes.keys() | voters):
        node = nodes.get(node_id)
        if node is not None:
            roles = node.roles
        else:
            roles = tuple(role for role, has in (("broker", node_id in brokers), ("controller", node_id in voters))
                          if has)
        address: BrokerInfo | NodeProcess | None = brokers.get(node_id) or node or endpoints.get(node_id)
        counts = replication.get(node_id) or BrokerReplication(node_id)
        views.append(BrokerView(node_id, address.host if address else None, address.port if address else None,
                                _state(node_id, node, "broker" in roles or node_id in brokers, running, fenced),
                                roles, quorum_role(quorum, node_id), counts.leaders, counts.replicas,
                                counts.under_replicated, node, counts.preferred_leaders, counts.offline,
                                counts.out_of_sync))
    return tuple(views)


def overview(snapshot: ClusterSnapshot, topics: Sequence[TopicView], groups: Sequence[GroupView],
             brokers: Sequence[BrokerView]) -> Overview:
    """Cluster-wide counts and rates (produce rate over non-internal topics); brokers are the nodes
    with the broker role."""
    states = Counter(g.state for g in groups)
    counts = Counter(b.state for b in brokers if b.is_broker)
    fenced = counts[BrokerState.FENCED] if snapshot.fenced_brokers is not None else None
    return Overview(snapshot.cluster_id, snapshot.controller_id, counts[BrokerState.RUNNING], fenced,
                    counts[BrokerState.DOWN], len(topics), sum(len(t.partitions) for t in topics),
                    sum(t.under_replicated for t in topics), sum(t.offline for t in topics),
                    tuple(sorted(states.items())), _total([t.produce_rate for t in topics if not t.internal]),
                    _total([g.consume_rate for g in groups]), snapshot.nodes, snapshot.quorum,
                    sum(t.not_preferred for t in topics), sum(t.hanging for t in topics))


def hot_partitions(topics: Sequence[TopicView], lags: PartitionLags) -> tuple[HotPartition, ...]:
    """Hot partitions of every user topic, hottest first, with the largest lag any group has on
    them (0 when none lags). Internal topics are left out: ``__consumer_offsets`` puts each
    group's commits on one partition by design, so it always looks skewed."""
    hot = [HotPartition(t.name, p.partition, p.produce_rate or 0.0, p.z_score, lags.get((t.name, p.partition), (0,))[0])
           for t in topics if not t.internal for p in t.partitions if p.hot]
    return tuple(sorted(hot, key=lambda h: -h.z_score))
