"""What `pko monitor` and `pko lag` show: one poll of a cluster and the views built from the polls.

``ClusterSnapshot`` is what one poll reads (``services.snapshot``): metadata, watermarks, every
consumer group's committed offsets and lag rows, topic retention, node processes, fenced
brokers and the metadata quorum. The monitor (``services.monitor``) keeps bounded history across
polls and turns each snapshot into a ``MonitorFrame``: views with rates (records/s from offset
deltas), time lag, lag trends and a Burrow-style ``Status`` per partition and group, and each
node's state (running / fenced / down) and part in the quorum. Both the TUI and `pko lag` render frames.

Rates are records per second; times are seconds; ``None`` means unknown (shown as ``-``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import NamedTuple

from pykafka_ops.models.groups import GroupDescription, GroupLag, TopicPartition
from pykafka_ops.models.replication import ReplicationAlert
from pykafka_ops.models.topics import BrokerInfo, TopicDescription
from pykafka_ops.models.transactions import HangingTransaction


class Status(IntEnum):
    """A consumer's health over the status window, least to most severe (Burrow's names).

    OK: keeping up. WARN: lag above zero and never decreasing over the window while it grew.
    REWIND: the committed offset went back. STALL: a member owns the partition but the committed
    offset did not move over the window while lag > 0. STOP: the same with no live owner (group
    Empty or partition unassigned). ERR: the offsets could not be read.
    """

    OK = 0
    WARN = 1
    REWIND = 2
    STALL = 3
    STOP = 4
    ERR = 5


class TimeLagMethod:
    """How a time lag was obtained (shown next to it; see ``services.time_lag``)."""

    RECORD = "record"
    """now − timestamp of the record at the committed offset (read, then cached)."""
    INTERPOLATED = "interpolated"
    """now − when the log-end offset passed the committed offset, from the monitor's history."""
    EXTRAPOLATED = "extrapolated"
    """The committed offset is older than the history: the history's mean rate carried back."""


@dataclass(frozen=True)
class MonitorOptions:
    """How much history the monitor keeps and how it judges it (all bounded: memory stays flat)."""

    window: int = 5
    """Polls in the status window (Burrow's rules look at this many polls)."""
    rate_window: int = 5
    """Rates are offset deltas over the last ``rate_window`` polls."""
    trend_length: int = 30
    """Lag values kept per partition and group for sparklines."""
    interpolation_points: int = 60
    """Log-end offset history points kept per partition for interpolated time lag."""
    max_record_reads: int = 20
    """Records read per poll for time lag (the rest come from the cache or interpolation)."""
    hot_k: float = 2.0
    """A partition is hot when its produce rate exceeds its topic's mean + hot_k · σ."""

    def __post_init__(self) -> None:
        if self.window < 2 or self.rate_window < 1 or self.trend_length < 2 or self.interpolation_points < 2:
            raise ValueError("the status window needs at least 2 polls, the rate window 1, histories 2 points")
        if self.max_record_reads < 0:
            raise ValueError("max_record_reads cannot be negative")


@dataclass(frozen=True)
class PartitionOffsets:
    """A partition's log-start and log-end offsets (ListOffsets earliest / latest: the high
    watermark) and last stable offset (latest for read_committed, KIP-98; None when unknown)."""

    topic: str
    partition: int
    log_start_offset: int | None
    log_end_offset: int | None
    last_stable_offset: int | None = None


@dataclass(frozen=True)
class NodeProcess:
    """A node of a cluster started by `pko cluster up` (from its ``cluster.json``), sampled with psutil."""

    node_id: int
    host: str
    port: int
    pid: int
    roles: tuple[str, ...]
    running: bool
    cpu_percent: float | None = None
    rss_bytes: int | None = None


@dataclass(frozen=True)
class MetadataQuorum:
    """The KRaft metadata quorum as DescribeQuorum answers it (Kafka's ``QuorumInfo``, by node id)."""

    leader_id: int | None
    """The quorum leader, i.e. the active controller; None while an election runs (Kafka answers -1)."""
    leader_epoch: int
    voters: tuple[int, ...]
    """The controllers that vote, the leader included."""
    observers: tuple[int, ...] = ()
    """Nodes that replicate the metadata log without voting: the brokers."""
    voter_endpoints: tuple[BrokerInfo, ...] = ()
    """Where each voter listens (DescribeQuorum v2 ``nodes``, its first listener): how a
    controller-only node, which Metadata never lists, gets an address."""


@dataclass(frozen=True)
class ClusterSnapshot:
    """Everything one poll reads. ``retention_ms`` maps a topic to its ``retention.ms`` when
    records are deleted by time (None: compacted only, or unlimited).

    ``brokers`` are Metadata's: the registered, unfenced brokers. ``fenced_brokers`` are the
    registered brokers that are fenced (DescribeCluster v2 with ``include_fenced_brokers``), None
    when the cluster could not say (an older broker, an error, a TLS or SASL listener); ``quorum``
    is None when DescribeQuorum was not answered (no KRaft quorum, an older broker, an error)."""

    cluster_id: str | None
    controller_id: int | None
    brokers: tuple[BrokerInfo, ...]
    topics: tuple[TopicDescription, ...]
    offsets: tuple[PartitionOffsets, ...]
    groups: tuple[GroupLag, ...]
    retention_ms: dict[str, int | None]
    nodes: tuple[NodeProcess, ...] = ()
    errors: tuple[str, ...] = ()
    """What could not be read this poll (the rest of the snapshot is still valid)."""
    fenced_brokers: tuple[BrokerInfo, ...] | None = None
    quorum: MetadataQuorum | None = None
    hanging_transactions: tuple[HangingTransaction, ...] = ()
    """Partitions whose LSO is stuck behind the high watermark (``services.hanging_transactions``)."""


class PartitionView(NamedTuple):
    """One partition of a group: offsets, lag in records and seconds, rates, owner, status.

    Immutable like the other models, but a ``NamedTuple`` rather than a frozen dataclass: a poll
    of 1 000 groups × 50 partitions builds 50 000 of them, ten times faster as tuples, and a
    tuple of plain values costs the garbage collector nothing once untracked.
    """

    group_id: str
    topic: str
    partition: int
    current_offset: int | None
    log_end_offset: int | None
    lag: int | None
    lag_seconds: float | None
    lag_method: str | None
    produce_rate: float | None
    consume_rate: float | None
    consumer_id: str | None
    host: str | None
    client_id: str | None
    status: Status
    reason: str

    @property
    def topic_partition(self) -> TopicPartition:
        """The partition."""
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True)
class GroupView:
    """A consumer group: the worst partition's status and why, totals, and its lag trend."""

    group_id: str
    state: str
    members: int
    total_lag: int
    max_lag_seconds: float | None
    lag_method: str | None
    """The method of the partition with the largest time lag."""
    consume_rate: float | None
    status: Status
    reason: str
    lag_history: tuple[float, ...]
    partitions: tuple[PartitionView, ...]
    description: GroupDescription
    error: str | None = None


class TopicPartitionView(NamedTuple):
    """One partition of a topic: replicas, retained range, produce rate, hot flag (a NamedTuple
    for the same reason as ``PartitionView``: one per partition per poll)."""

    partition: int
    leader: int | None
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    log_start_offset: int | None
    log_end_offset: int | None
    produce_rate: float | None
    z_score: float
    hot: bool
    last_stable_offset: int | None = None
    hanging: HangingTransaction | None = None
    """The transaction holding the LSO, when it has been open past ``transaction.max.timeout.ms``."""
    adding_replicas: tuple[int, ...] = ()
    """Replicas an ongoing reassignment is adding (not counted as missing from the ISR)."""

    @property
    def records(self) -> int | None:
        """Records retained: log-end − log-start offset."""
        if self.log_start_offset is None or self.log_end_offset is None:
            return None
        return self.log_end_offset - self.log_start_offset


@dataclass(frozen=True)
class TopicView:
    """A topic: replication health, size, produce rate, skew and retention risk.

    ``lag_share`` is the largest lag of any group on any partition as a share of the partition's
    retained range; ``loss_in_s`` the least time until the oldest unconsumed record of any group
    reaches ``retention.ms`` (negative: already due for deletion).
    """

    name: str
    internal: bool
    partitions: tuple[TopicPartitionView, ...]
    replication_factor: int
    under_replicated: int
    offline: int
    produce_rate: float | None
    records: int | None
    retention_ms: int | None
    skew: float | None
    """max / mean of the per-partition produce rates (1.0 = even)."""
    lag_share: float | None
    loss_in_s: float | None
    rate_history: tuple[float, ...] = ()
    not_preferred: int = 0
    """Partitions not led by their preferred leader, the first replica (offline ones included,
    as Kafka's PreferredReplicaImbalanceCount)."""

    @property
    def hanging(self) -> int:
        """Partitions with a hanging transaction."""
        return sum(p.hanging is not None for p in self.partitions)


class BrokerState(StrEnum):
    """What a node is doing, as `pko cluster status` names it."""

    RUNNING = "running"
    """A broker in Metadata (registered and unfenced), or a controller whose process runs."""
    FENCED = "fenced"
    """Registered but fenced by the active controller (missed heartbeats, or still catching up):
    it leads nothing and clients do not see it. Known only from DescribeCluster v2."""
    DOWN = "down"
    """Its process is gone, or a broker that a state file or an earlier poll knows is in neither
    Metadata nor the fenced brokers (without DescribeCluster v2, a fenced broker looks like this)."""


#: A node's part in the metadata quorum, as ``kafka-metadata-quorum describe --replication`` names it.
QUORUM_LEADER, QUORUM_FOLLOWER, QUORUM_OBSERVER = "Leader", "Follower", "Observer"


@dataclass(frozen=True)
class BrokerView:
    """A node (broker, controller or both): address, state, roles, part in the metadata quorum,
    partitions it leads or replicates, and its process when we know it. ``host``/``port`` and
    ``state`` are None when unknown (a controller known only as a voter of an older quorum)."""

    id: int
    host: str | None
    port: int | None
    state: BrokerState | None
    roles: tuple[str, ...]
    """``broker`` and/or ``controller``: from the state file, else from Metadata and the quorum's voters."""
    quorum_role: str | None
    """``Leader``, ``Follower`` (another voter) or ``Observer``; None when not in the quorum or unknown."""
    leaders: int
    replicas: int
    under_replicated: int
    """Under-replicated partitions this broker leads (Kafka's UnderReplicatedPartitions)."""
    node: NodeProcess | None = None
    preferred_leaders: int = 0
    """Partitions whose preferred leader (first replica) it is: what it should lead."""
    offline: int = 0
    """Partitions it hosts a replica of that have no leader."""
    out_of_sync: int = 0
    """Partitions it hosts a replica of that is not in the ISR (Kafka's out-of-sync replicas)."""

    @property
    def up(self) -> bool:
        """Running."""
        return self.state is BrokerState.RUNNING

    @property
    def is_broker(self) -> bool:
        """Has the broker role."""
        return "broker" in self.roles


@dataclass(frozen=True)
class HotPartition:
    """A partition whose produce rate is above its topic's mean + k·σ (klag's rule)."""

    topic: str
    partition: int
    produce_rate: float
    z_score: float
    max_lag: int
    """The largest lag any group has on the partition (0 when none lags)."""


@dataclass(frozen=True)
class Overview:
    """The cluster at a glance."""

    cluster_id: str | None
    controller_id: int | None
    """Metadata's controller id: on KRaft, a live broker Kafka picks (the active controller is
    ``quorum.leader_id``); on ZooKeeper-mode Kafka, the controller."""
    brokers_running: int
    brokers_fenced: int | None
    """None when the cluster could not say (no DescribeCluster v2): fenced brokers count as down."""
    brokers_down: int
    topics: int
    partitions: int
    under_replicated: int
    offline: int
    groups_by_state: tuple[tuple[str, int], ...]
    produce_rate: float | None
    consume_rate: float | None
    nodes: tuple[NodeProcess, ...]
    quorum: MetadataQuorum | None = None
    not_preferred: int = 0
    """Partitions not led by their preferred leader (``TopicView.not_preferred`` summed)."""
    hanging_transactions: int = 0
    """Partitions with a hanging transaction (``TopicView.hanging`` summed)."""


@dataclass(frozen=True)
class StatusChange:
    """A group whose status changed this poll to WARN or worse (what the bell rings for)."""

    group_id: str
    previous: Status | None
    status: Status
    reason: str


@dataclass(frozen=True)
class MonitorFrame:
    """One poll as the monitor shows it. ``taken_at`` is wall time (s); ``poll`` counts from 1."""

    taken_at: float
    poll: int
    window: int
    """Polls in the status window."""
    overview: Overview
    groups: tuple[GroupView, ...]
    topics: tuple[TopicView, ...]
    brokers: tuple[BrokerView, ...]
    hot_partitions: tuple[HotPartition, ...]
    changes: tuple[StatusChange, ...] = ()
    errors: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    """How long the poll took."""
    alerts: tuple[ReplicationAlert, ...] = ()
    """Topics with under-replicated or offline partitions (``services.replication``)."""
    new_alerts: tuple[ReplicationAlert, ...] = ()
    """The ``alerts`` not raised, or not with these partitions, at the previous poll (what the bell rings for)."""
