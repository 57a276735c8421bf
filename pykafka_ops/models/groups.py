"""Consumer groups as the service layer returns them (names follow Kafka's admin API).

``GroupDescription`` ≈ Kafka's ``ConsumerGroupDescription``, ``MemberDescription`` and
``GroupListing`` keep Kafka's names; ``PartitionLag`` is one row of ``kafka-consumer-groups
--describe`` (Kafka's ``PartitionAssignmentState``) plus the time lag; ``ResetPlan`` is what
``--reset-offsets`` prints and, with ``--execute``, commits. Unknown values are ``None``: the CLI
prints them as ``-`` (Kafka's ``MISSING_COLUMN_VALUE``), JSON as ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pykafka_ops.models.topics import BrokerInfo

#: Kafka's ``GroupState`` names valid for consumer groups (``GroupState.groupStatesForType``).
GROUP_STATES = ("PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Empty", "Assigning",
                "Reconciling")
#: States in which ``kafka-consumer-groups`` warns that the group is rebalancing.
REBALANCING_STATES = frozenset({"PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling"})
#: States in which offsets may be reset (CGC ``resetOffsets``).
INACTIVE_STATES = frozenset({"Empty", "Dead"})

#: ``--reset-offsets`` scenarios, by Kafka's option name.
RESET_SCENARIOS = ("to-earliest", "to-latest", "to-current", "to-offset", "shift-by", "to-datetime",
                   "by-duration", "from-file")


@dataclass(frozen=True, order=True)
class TopicPartition:
    """A partition of a topic; ``str()`` is Kafka's ``topic-partition`` form."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


@dataclass(frozen=True)
class GroupListing:
    """One group of ``--list``; ``state`` is ``Unknown`` when the broker does not report it."""

    group_id: str
    state: str


@dataclass(frozen=True)
class MemberDescription:
    """A group member and the partitions assigned to it."""

    consumer_id: str
    client_id: str
    host: str
    group_instance_id: str | None = None
    assignment: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True)
class GroupDescription:
    """A group's state, coordinator, assignor and members. A missing group has state ``Dead``;
    a group that could not be described has state ``Unknown`` and ``error`` set."""

    group_id: str
    state: str
    coordinator: BrokerInfo | None = None
    partition_assignor: str = ""
    members: tuple[MemberDescription, ...] = ()
    error: str | None = None

    @property
    def exists(self) -> bool:
        """False for a group the coordinator does not know (state ``Dead``)."""
        return self.state != "Dead"


@dataclass(frozen=True)
class PartitionLag:
    """One row of ``--describe --offsets``: committed offset, log-end offset, owner, lag.

    ``lag_seconds`` is the time lag (``--time-lag``): how much older the record at the committed
    offset is than the newest record of the partition; ``lag_seconds_note`` says why it is
    ``None`` when it could not be computed.
    """

    topic: str
    partition: int
    current_offset: int | None
    log_end_offset: int | None
    consumer_id: str | None = None
    host: str | None = None
    client_id: str | None = None
    leader_epoch: int | None = None
    lag_seconds: float | None = None
    lag_seconds_note: str | None = None

    @property
    def lag(self) -> int | None:
        """LOG-END-OFFSET − CURRENT-OFFSET, or None when either is unknown (Kafka's ``getLag``)."""
        if self.current_offset is None or self.current_offset == -1 or self.log_end_offset is None:
            return None
        return self.log_end_offset - self.current_offset


@dataclass(frozen=True)
class GroupLag:
    """A group's description with one ``PartitionLag`` per assigned or committed partition."""

    description: GroupDescription
    partitions: tuple[PartitionLag, ...] = ()
    error: str | None = None
    """Why the offsets could not be read (the description alone is then valid)."""

    @property
    def group_id(self) -> str:
        """The group id."""
        return self.description.group_id

    @property
    def total_lag(self) -> int:
        """The sum of the known partition lags (a negative lag, from a stale log-end offset, counts 0)."""
        return sum(max(p.lag or 0, 0) for p in self.partitions)

    @property
    def max_lag(self) -> int | None:
        """The largest known partition lag, or None when no lag is known."""
        known = [p.lag for p in self.partitions if p.lag is not None]
        return max(known) if known else None

    @property
    def max_lag_seconds(self) -> float | None:
        """The largest known time lag in seconds, or None when none is known."""
        known = [p.lag_seconds for p in self.partitions if p.lag_seconds is not None]
        return max(known) if known else None


@dataclass(frozen=True)
class ResetScenario:
    """What ``--reset-offsets`` resets to: a Kafka scenario name and its argument.

    ``value`` is the offset for ``to-offset``, the delta for ``shift-by``, epoch milliseconds for
    ``to-datetime`` and milliseconds back from now for ``by-duration``; ``plan`` holds the parsed
    ``from-file`` CSV (group → partition → offset).
    """

    name: str
    value: int | None = None
    plan: Mapping[str, Mapping[TopicPartition, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionReset:
    """A partition's committed offset and the offset it is (or was) reset to.

    ``requested_offset`` differs from ``new_offset`` when the request was clamped to
    ``[log-start, log-end]``; ``clamped`` is then ``"log_end"`` or ``"log_start"``.
    """

    topic: str
    partition: int
    current_offset: int | None
    new_offset: int
    requested_offset: int | None = None
    clamped: str | None = None


@dataclass(frozen=True)
class ResetPlan:
    """The offsets ``--reset-offsets`` computed for one group, and whether they were committed.

    ``error`` is set (and ``partitions`` empty) when the group was left alone: it is active, or
    the file had no plan for it. ``empty_partitions`` are those where a timestamp matched no
    record, so the log-end offset was used (Kafka's "Falling back to latest known offset").
    """

    group_id: str
    state: str
    partitions: tuple[PartitionReset, ...] = ()
    error: str | None = None
    executed: bool = False
    empty_partitions: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True)
class GroupDeletion:
    """The outcome of deleting one group; ``error`` is None on success."""

    group_id: str
    error: str | None = None


@dataclass(frozen=True)
class OffsetDeletion:
    """The outcome for one partition of ``--delete-offsets``; ``partition`` None = topic lookup failed."""

    topic: str
    partition: int | None
    error: str | None = None


@dataclass(frozen=True)
class OffsetDeleteResult:
    """``--delete-offsets`` for one group: a top-level Kafka error (or None) and per-partition results."""

    group_id: str
    error: str | None = None
    error_message: str | None = None
    partitions: tuple[OffsetDeletion, ...] = ()
