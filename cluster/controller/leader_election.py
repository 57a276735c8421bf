"""LeaderElectionControl: leader elections asked for by an operator (ElectLeaders, key 43, KIP-460)
and the automatic move of leadership back to preferred replicas (``auto.leader.rebalance.enable``).

A mixin of ``QuorumController``, as Kafka's ``ReplicationControlManager.electLeaders`` and
``QuorumController.maybeScheduleNextBalancePartitionLeaders``.

**ElectLeaders.** Per partition (``partitions=None``: every partition of every topic):

* PREFERRED: the preferred replica (the first of the assignment) becomes leader when it is
  unfenced and in the ISR. A partition it leads already answers ELECTION_NOT_NEEDED; one where it
  cannot lead answers PREFERRED_LEADER_NOT_AVAILABLE (and keeps its leader). As Kafka's
  ``PartitionChangeBuilder.electPreferredLeader``, a partition without a valid leader whose
  preferred replica cannot lead gets the ordinary online election (``partition_change.elect``).
* UNCLEAN: only a partition without a leader is elected (else ELECTION_NOT_NEEDED): an ISR member
  if one is unfenced, else the first unfenced replica with ISR = [it], whatever the topic's
  ``unclean.leader.election.enable`` (the operator asked for it); none → ELIGIBLE_LEADERS_NOT_AVAILABLE.
* An unknown topic or partition answers UNKNOWN_TOPIC_OR_PARTITION.

With ``partitions=None`` the partitions answering ELECTION_NOT_NEEDED are left out of the answer
(Kafka's controller does the same; ``kafka-leader-election --all-topic-partitions`` then prints
only what changed or failed). The changes are one ``PartitionChangeRecord`` each, committed
together; the leader epoch and partition epoch go up when they are replayed (``MetadataDelta``).

**Automatic rebalance** (KRaft's scheme, ``QuorumController``): a partition is *imbalanced* when its
leader is not its preferred replica (no leader included). After every write of the active
controller that leaves an imbalanced partition, a balance is scheduled, unless one is scheduled
already, ``leader.imbalance.check.interval.seconds`` later; it then tries a preferred election on
every imbalanced partition (at most ``MAX_ELECTIONS_PER_IMBALANCE`` changes per write; if it hit
that bound the next one runs 10 ms later instead of an interval later). A partition whose
preferred replica is not back in the ISR stays imbalanced and is tried again an interval later. A
new active controller looks at its whole image once. The timer is cancelled when the leadership
of the quorum is lost. ``auto.leader.rebalance.enable=false`` turns all this off (ElectLeaders still
works). ``leader.imbalance.per.broker.percentage`` is accepted and, as by Kafka's KRaft controller,
not used: any imbalanced partition is balanced (only the ZooKeeper controller compared a broker's
share of non-preferred leaders with it).

Simplifications against Kafka: Kafka keeps the set of imbalanced partitions up to date on every
replayed record; here a write's own records are checked and the whole image is scanned only when a
balance has run (once an interval while partitions stay imbalanced) or leadership is gained. The
number of partitions one ElectLeaders may change is not bounded (Kafka: 10 000 records per write).

Concurrency: part of the controller, on the node's event loop; elections go through its event queue;
the balance timer is one task, alive only while this node is the active controller.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Collection, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.event_queue import queued as _queued
from cluster.controller.metadata_image import MetadataImage, PartitionImage, TopicImage
from cluster.controller.partition_change import NO_LEADER, change_record, elect
from cluster.controller.records import MetadataRecord
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.controller.controller import QuorumController

    _Base = QuorumController
else:
    _Base = object

log = logging.getLogger(__name__)

#: Kafka's ``ElectionType`` values (ElectLeaders v1+; v0 is always PREFERRED).
PREFERRED, UNCLEAN = 0, 1
ELECTION_TYPES = {PREFERRED: "PREFERRED", UNCLEAN: "UNCLEAN"}
#: Kafka's ``ReplicationControlManager.MAX_ELECTIONS_PER_IMBALANCE``: changes one balance writes.
MAX_ELECTIONS_PER_IMBALANCE = 1_000
#: Kafka's delay of a balance rescheduled at once (it did not elect every partition it could).
IMMEDIATE_RESCHEDULE_S = 0.01
AUTO_REBALANCE = "auto.leader.rebalance.enable"
CHECK_INTERVAL = "leader.imbalance.check.interval.seconds"


@dataclass(frozen=True)
class ElectionResult:
    """One partition's answer to ElectLeaders."""

    topic: str
    partition: int
    error_code: ErrorCode = ErrorCode.none
    error_message: str | None = None


@dataclass(frozen=True)
class ElectLeadersResult:
    """The answer: a top-level error (then each requested partition carries it too) and one
    result per partition, in request order (or topic by topic for every partition)."""

    error_code: ErrorCode
    results: tuple[ElectionResult, ...] = ()
    error_message: str | None = None


def elect_preferred(partition: PartitionImage, alive: AbstractSet[int]) -> tuple[int, tuple[int, ...]]:
    """(leader, ISR) after a preferred election: the first replica when it is unfenced and in the
    ISR, else the ordinary online election (the current leader stays if it is still valid)."""
    preferred = partition.replicas[0] if partition.replicas else NO_LEADER
    if preferred in partition.isr and preferred in alive:
        return preferred, partition.isr
    return elect(partition, alive, unclean=False)


def is_imbalanced(partition: PartitionImage) -> bool:
    """Whether the leader is not the preferred replica (Kafka's ``!hasPreferredLeader()``)."""
    return bool(partition.replicas) and partition.leader != partition.replicas[0]


def imbalanced_partitions(image: MetadataImage) -> Iterator[tuple[TopicImage, PartitionImage]]:
    """Every imbalanced partition of ``image``, topic by topic."""
    for topic in image.topics.values():
        for partition in topic.partitions.values():
            if is_imbalanced(partition):
                yield topic, partition


def _touched_imbalanced(image: MetadataImage, records: Sequence[MetadataRecord]) -> bool:
    """Whether a partition that ``records`` created or changed is imbalanced in ``image``."""
    for record in records:
        if record.get("type") not in ("PartitionRecord", "PartitionChangeRecord"):
            continue
        topic = image.topic_by_id(uuid.UUID(record["topic_id"]))
        partition = topic.partitions.get(record["partition"]) if topic is not None else None
        if partition is not None and is_imbalanced(partition):
            return True
    return False


class LeaderElectionControl(_Base):
    """ElectLeaders and the automatic preferred-leader balance (see module docstring)."""

    _balancing: asyncio.Task[None] | None = None
    """The scheduled balance (Kafka's ``ImbalanceSchedule.SCHEDULED`` while it is not done)."""
    _balance_at_once: bool = False
    """The last balance hit ``MAX_ELECTIONS_PER_IMBALANCE``: the next one runs without waiting."""

    # -- ElectLeaders ------------------------------------------------------------------------

    @_queued
    async def elect_leaders(self, election_type: int,
                            partitions: Collection[tuple[str, int]] | None) -> ElectLeadersResult:
        """ElectLeaders on the active controller: elect, commit the changes together, answer
        per partition (see module docstring); ``partitions=None`` means every partition."""
        requested = list(partitions) if partitions is not None else None
        if not self.is_active:
            return _failed(requested, ErrorCode.not_controller, "this controller is not the active one")
        if election_type not in ELECTION_TYPES:
            return _failed(requested, ErrorCode.invalid_request, f"Unknown election type {election_type}")
        if requested is None:
            requested = [(t.name, p) for t in self.image.topics.values() for p in t.partitions]
        alive = {b.broker_id for b in self.image.live_brokers}
        pending: dict[tuple[str, int], PartitionImage] = {}
        records: list[MetadataRecord] = []
        results = []
        for name, partition_id in requested:
            code, message, record = self._elect_one(name, partition_id, election_type, alive, pending)
            if record is not None:
                records.append(record)
            if code != ErrorCode.election_not_needed or partitions is not None:
                results.append(ElectionResult(name, partition_id, code, message))
        if records:
            try:
                await self._commit(records)
            except MetadataCommitError as exc:
                return _failed(partitions, exc.error_code, str(exc))
            log.info("%s leader election moved the leadership of %d partition(s)", ELECTION_TYPES[election_type],
                     len(records))
        return ElectLeadersResult(ErrorCode.none, tuple(results))

    def _elect_one(self, name: str, partition_id: int, election_type: int, alive: AbstractSet[int],
                   pending: dict[tuple[str, int], PartitionImage],
                   ) -> tuple[ErrorCode, str | None, MetadataRecord | None]:
        """Kafka's ``ReplicationControlManager.electLeader`` for one partition: (error, message,
        the change record or None). ``pending`` holds partitions changed earlier in the request."""
        topic = self.image.topics.get(name)
        if topic is None:
            return ErrorCode.unknown_topic_or_partition, f"No such topic as {name}", None
        partition = pending.get((name, partition_id)) or topic.partitions.get(partition_id)
        if partition is None:
            return ErrorCode.unknown_topic_or_partition, f"No such partition as {name}-{partition_id}", None
        if election_type == PREFERRED:
            if not is_imbalanced(partition):
                return ErrorCode.election_not_needed, None, None
            leader, isr = elect_preferred(partition, alive)
            refused = ErrorCode.preferred_leader_not_available
        else:
            if partition.leader != NO_LEADER:
                return ErrorCode.election_not_needed, None, None
            leader, isr = elect(partition, alive, unclean=True)
            refused = ErrorCode.eligible_leaders_not_available
        record = change_record(topic, partition, leader, isr)
        if record is None:
            return refused, None, None
        pending[(name, partition_id)] = replace(partition, leader=leader, isr=isr)
        return ErrorCode.none, None, record

    # -- automatic rebalance -----------------------------------------------------------------

    def schedule_leader_balance(self, image: MetadataImage | None = None,
                                records: Sequence[MetadataRecord] | None = None) -> None:
        """Kafka's ``maybeScheduleNextBalancePartitionLeaders``: after a write (its ``records``
        applied give ``image``), or with no arguments after a balance or on gaining leadership
        (the whole image is looked at), schedule a balance if a partition is imbalanced."""
        if not self.broker_defaults.get(AUTO_REBALANCE, False) or not self.is_active:
            return
        if self._balancing is not None and not self._balancing.done():
            return
        if records is None:
            imbalanced = next(imbalanced_partitions(self.image), None) is not None
        else:
            imbalanced = _touched_imbalanced(image if image is not None else self.image, records)
        if not imbalanced:
            return
        delay_s = IMMEDIATE_RESCHEDULE_S if self._balance_at_once else float(self.broker_defaults[CHECK_INTERVAL])
        self._balancing = asyncio.get_running_loop().create_task(self._balance_after(delay_s))

    async def _balance_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        try:
            self._balance_at_once = await self.balance_partition_leaders()
        finally:
            self._balancing = None
        self.schedule_leader_balance()

    @_queued
    async def balance_partition_leaders(self) -> bool:
        """Kafka's ``maybeBalancePartitionLeaders``: a preferred election on the imbalanced
        partitions (at most ``MAX_ELECTIONS_PER_IMBALANCE`` changes); whether it hit that bound."""
        if not self.is_active:
            return False
        alive = {b.broker_id for b in self.image.live_brokers}
        records: list[Any] = []
        for topic, partition in imbalanced_partitions(self.image):
            if len(records) >= MAX_ELECTIONS_PER_IMBALANCE:
                break
            record = change_record(topic, partition, *elect_preferred(partition, alive))
            if record is not None:
                records.append(record)
        if not records:
            return False
        try:
            await self._commit(records)
        except MetadataCommitError as exc:
            log.warning("leader balance not written: %s", exc)
            return False
        log.info("auto leader rebalance moved the leadership of %d partition(s) to their preferred replica",
                 len(records))
        return len(records) >= MAX_ELECTIONS_PER_IMBALANCE


def _failed(partitions: Sequence[tuple[str, int]] | Collection[tuple[str, int]] | None, code: ErrorCode,
            message: str) -> ElectLeadersResult:
    """Kafka's ``ElectLeadersRequest.getErrorResponse``: the error at the top and on every
    requested partition (none listed when every partition was asked for)."""
    return ElectLeadersResult(code, tuple(ElectionResult(t, p, code, message) for t, p in partitions or ()),
                              message)
