"""Partition reassignment data shared by `pko reassign` and its services (kafka-reassign-partitions).

A partition is named as Kafka's ``TopicPartition.toString`` (``topic-partition``), a replica as
``TopicPartitionReplica.toString`` (``topic-partition-broker``). Replica lists keep their order:
the first replica is the preferred leader.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The log dir meaning "wherever the broker chooses" in a reassignment JSON file (Kafka's ANY_LOG_DIR).
ANY_LOG_DIR = "any"


@dataclass(frozen=True)
class PartitionTarget:
    """One entry of a reassignment JSON file: where the partition's replicas should be, and in
    which log dir of each broker (``any`` when the broker chooses)."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    log_dirs: tuple[str, ...]

    @property
    def name(self) -> str:
        """Kafka's ``topic-partition``."""
        return f"{self.topic}-{self.partition}"

    @property
    def log_dir_moves(self) -> dict[int, str]:
        """Broker → the log dir asked for, for the replicas not left to the broker (``any``)."""
        return {b: d for b, d in zip(self.replicas, self.log_dirs) if d != ANY_LOG_DIR}


@dataclass(frozen=True)
class BrokerInfo:
    """A broker as DescribeCluster names it (``rack`` None when it has none)."""

    broker_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True)
class OngoingReassignment:
    """A reassignment in progress (ListPartitionReassignments): every replica, those being added
    and those being removed."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    adding: tuple[int, ...]
    removing: tuple[int, ...]

    @property
    def name(self) -> str:
        """Kafka's ``topic-partition``."""
        return f"{self.topic}-{self.partition}"


@dataclass(frozen=True)
class GeneratedPlan:
    """--generate's answer: the current assignment of the topics and the proposed one."""

    current: tuple[PartitionTarget, ...]
    proposed: tuple[PartitionTarget, ...]


@dataclass(frozen=True)
class PartitionMove:
    """Where a partition's data comes from (``sources``: its replicas before the move) and goes
    to (``destinations``: brokers that do not hold it yet) — Kafka's ``PartitionMove``."""

    sources: frozenset[int]
    destinations: frozenset[int]


@dataclass(frozen=True)
class ThrottlePlan:
    """The throttle configs --execute sets: per topic, the ``partition:broker`` lists of
    ``leader.replication.throttled.replicas`` (the replicas sending) and
    ``follower.replication.throttled.replicas`` (the replicas receiving), and the brokers whose
    ``leader/follower.replication.throttled.rate`` is set."""

    leader_replicas: dict[str, str]
    follower_replicas: dict[str, str]
    brokers: tuple[int, ...]


@dataclass(frozen=True)
class PartitionError:
    """A partition the cluster refused, with Kafka's error name and message."""

    topic: str
    partition: int
    error: str
    message: str

    @property
    def name(self) -> str:
        """Kafka's ``topic-partition``."""
        return f"{self.topic}-{self.partition}"


@dataclass(frozen=True)
class ExecuteReport:
    """What --execute did: the assignment before (for rollback), the throttles set, the partitions
    whose reassignment started and the partitions refused."""

    current: tuple[PartitionTarget, ...]
    throttle: int | None
    log_dir_throttle: int | None
    started: tuple[str, ...]
    errors: tuple[PartitionError, ...] = ()


#: Partition states of --verify.
COMPLETED, IN_PROGRESS, DIFFERENT = "completed", "in_progress", "different"
#: Log-dir move states of --verify (Kafka's ``LogDirMoveState`` classes).
MOVE_COMPLETED, MOVE_ACTIVE, MOVE_CANCELLED, MOVE_MISSING_REPLICA, MOVE_MISSING_LOG_DIR = (
    "completed", "active", "cancelled", "missing_replica", "missing_log_dir")


@dataclass(frozen=True)
class PartitionStatus:
    """A partition of the plan under --verify: its replicas now, the target, and whether its
    reassignment is over (``done``: none is going on for it)."""

    topic: str
    partition: int
    current_replicas: tuple[int, ...]
    target_replicas: tuple[int, ...]
    done: bool

    @property
    def name(self) -> str:
        """Kafka's ``topic-partition``."""
        return f"{self.topic}-{self.partition}"

    @property
    def state(self) -> str:
        """``completed``, ``in_progress``, or ``different`` (no reassignment going on, but the
        replicas are not the target's)."""
        if not self.done:
            return IN_PROGRESS
        return COMPLETED if self.current_replicas == self.target_replicas else DIFFERENT


@dataclass(frozen=True)
class LogDirMoveStatus:
    """A replica asked to move to ``target_dir``: where it is (``current_dir``) and where its
    future log is being written (``future_dir``), with Kafka's state."""

    topic: str
    partition: int
    broker: int
    target_dir: str
    current_dir: str | None
    future_dir: str | None
    state: str

    @property
    def done(self) -> bool:
        """Whether nothing is left to do (Kafka: completed or cancelled; a missing replica or log
        dir is not done)."""
        return self.state in (MOVE_COMPLETED, MOVE_CANCELLED)

    @property
    def name(self) -> str:
        """Kafka's ``TopicPartitionReplica.toString``: ``topic-partition-broker``."""
        return f"{self.topic}-{self.partition}-{self.broker}"


@dataclass(frozen=True)
class ThrottlesCleared:
    """The brokers and topics whose throttle configs were removed."""

    brokers: tuple[int, ...]
    topics: tuple[str, ...]


@dataclass(frozen=True)
class VerifyReport:
    """--verify's answer. ``partitions_ongoing`` is true while any reassignment goes on in the
    cluster (not only those of the plan), as Kafka's tool decides whether to clear throttles."""

    partitions: tuple[PartitionStatus, ...]
    moves: tuple[LogDirMoveStatus, ...]
    partitions_ongoing: bool
    moves_ongoing: bool
    cleared: ThrottlesCleared | None


@dataclass(frozen=True)
class CancelReport:
    """--cancel's answer: the reassignments cancelled, the log-dir moves put back and the
    throttles removed (None with --preserve-throttles)."""

    cancelled: tuple[str, ...]
    moves_cancelled: tuple[str, ...]
    cleared: ThrottlesCleared | None
    errors: tuple[PartitionError, ...] = ()
