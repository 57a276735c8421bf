"""AlterPartitionControl: ISR changes asked for by a partition's leader (AlterPartition, key 56),
as Kafka's ``ReplicationControlManager.alterPartition`` and ``validateAlterPartitionData``.

A mixin of ``QuorumController``. A leader shrinks the ISR when a follower has not caught up for
``replica.lag.time.max.ms`` and expands it when the follower catches up again; the controller
checks the request against the image and commits a ``PartitionChangeRecord`` with the new ISR
(partition epoch + 1, leader epoch unchanged: the leader stays). An ISR equal to the current one
commits nothing and answers the current state.

Checks, in Kafka's order and with Kafka's error codes:

* request: NOT_CONTROLLER on a controller that does not lead the quorum; STALE_BROKER_EPOCH for
  a requester that is not registered or whose broker epoch is not its registration's
  (``ClusterControlManager.checkBrokerEpoch``);
* topic: UNKNOWN_TOPIC_ID (v2+ name topics by id); partition: UNKNOWN_TOPIC_OR_PARTITION;
* epochs: a leader or partition epoch above the image's → NOT_CONTROLLER (the requester has seen
  a newer controller); a lower leader epoch → FENCED_LEADER_EPOCH; a requester that is not the
  leader → INVALID_REQUEST (Kafka's code for it, not NOT_LEADER_OR_FOLLOWER); a lower partition
  epoch → INVALID_UPDATE_VERSION;
* new ISR: INVALID_REQUEST when it is not a duplicate-free subset of the replicas, lacks the
  leader (an empty ISR does), or asks for RECOVERING (every partition here is RECOVERED: an
  unclean election writes RECOVERED at once, see ``partition_change``, and Kafka too refuses
  RECOVERED → RECOVERING); INELIGIBLE_REPLICA when a member is not registered, fenced (a
  broker in controlled shutdown is fenced at once here) or, v3, named with a stale broker epoch.

An ISR change that puts every replica an ongoing reassignment adds into the ISR completes the
reassignment in the same record (``reassignment.build_change``); if that removes the leader, the
partition gets a new one and the requester is answered NEW_LEADER_ELECTED (Kafka's answer for
v2+: fetch the new metadata).

Several entries for one partition in one request are checked in turn, each against the state the
previous one left. Simplifications against Kafka: no eligible leader replicas (KIP-966) and no
leader recovery state in the image (always RECOVERED, unclean elections included).

Concurrency: part of the controller, on the node's event loop; runs on its event queue.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.event_queue import queued as _queued
from cluster.controller.metadata_image import PartitionImage, merge_change
from cluster.controller.reassignment import build_change
from cluster.controller.records import MetadataRecord
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.controller.controller import QuorumController

    _Base = QuorumController
else:
    _Base = object

log = logging.getLogger(__name__)

#: Kafka's ``LeaderRecoveryState``: RECOVERED (0), RECOVERING (1, after an unclean election).
RECOVERED, RECOVERING = 0, 1


@dataclass(frozen=True)
class IsrMember:
    """A replica of a requested ISR (v3's ``BrokerState``; v2 sends ids only: epoch -1)."""

    broker_id: int
    broker_epoch: int = -1
    """-1: not checked (Kafka skips the check for -1)."""


@dataclass(frozen=True)
class PartitionIsrRequest:
    """One partition of an AlterPartition request."""

    partition: int
    leader_epoch: int
    new_isr: tuple[IsrMember, ...]
    partition_epoch: int
    """The partition epoch the leader knows: the change applies only to that version."""
    leader_recovery_state: int = RECOVERED


@dataclass(frozen=True)
class TopicIsrRequest:
    """One topic of an AlterPartition request."""

    topic_id: uuid.UUID
    partitions: tuple[PartitionIsrRequest, ...]


@dataclass(frozen=True)
class PartitionIsrResult:
    """One partition's answer: the error, or the partition's state after the request."""

    partition: int
    error_code: ErrorCode
    leader_id: int = -1
    leader_epoch: int = -1
    isr: tuple[int, ...] = ()
    partition_epoch: int = -1
    leader_recovery_state: int = RECOVERED


@dataclass(frozen=True)
class AlterPartitionResult:
    """The answer: a top-level error (then no topics), or one result per requested partition."""

    error_code: ErrorCode
    topics: tuple[tuple[uuid.UUID, tuple[PartitionIsrResult, ...]], ...] = ()


class AlterPartitionControl(_Base):
    """ISR changes from partition leaders (see module docstring)."""

    @_queued
    async def alter_partition(self, broker_id: int, broker_epoch: int,
                              topics: Sequence[TopicIsrRequest]) -> AlterPartitionResult:
        """AlterPartition from leader ``broker_id``: check every partition, commit the valid ISR
        changes together, answer each partition's new state (see module docstring)."""
        if not self.is_active:
            return AlterPartitionResult(ErrorCode.not_controller)
        requester = self.image.brokers.get(broker_id)
        if requester is None or requester.epoch != broker_epoch:
            log.info("AlterPartition from broker %d refused: epoch %d is not its registration's (%s)", broker_id,
                     broker_epoch, "not registered" if requester is None else requester.epoch)
            return AlterPartitionResult(ErrorCode.stale_broker_epoch)
        pending: dict[tuple[uuid.UUID, int], PartitionImage] = {}
        alive = {b.broker_id for b in self.image.live_brokers}
        records: list[MetadataRecord] = []
        answer: list[tuple[uuid.UUID, tuple[PartitionIsrResult, ...]]] = []
        for topic_request in topics:
            topic = self.image.topic_by_id(topic_request.topic_id)
            if topic is None:
                answer.append((topic_request.topic_id, tuple(PartitionIsrResult(p.partition, ErrorCode.unknown_topic_id)
                                                              for p in topic_request.partitions)))
                continue
            results = []
            for request in topic_request.partitions:
                key = (topic.topic_id, request.partition)
                current = pending.get(key) or topic.partitions.get(request.partition)
                error = self._check_isr_request(broker_id, current, request)
                if error != ErrorCode.none or current is None:
                    log.info("AlterPartition from broker %d for %s-%d refused: %s", broker_id, topic.name,
                             request.partition, error.name)
                    results.append(PartitionIsrResult(request.partition, error))
                    continue
                new_isr = tuple(m.broker_id for m in request.new_isr)
                record = build_change(topic, current, alive, isr=new_isr) if new_isr != current.isr else None
                if record is not None:
                    records.append(record)
                    current = pending[key] = merge_change(current, record)
                    log.info("broker %d altered the ISR of %s-%d to %s (partition epoch %d)", broker_id,
                             topic.name, request.partition, list(new_isr), current.partition_epoch)
                    if "replicas" in record:
                        log.info("the ISR change completed the reassignment of %s-%d: replicas %s, leader %d",
                                 topic.name, request.partition, list(current.replicas), current.leader)
                    if current.leader != broker_id:  # Kafka: the leader must fetch the new metadata
                        results.append(PartitionIsrResult(request.partition, ErrorCode.new_leader_elected))
                        continue
                results.append(PartitionIsrResult(request.partition, ErrorCode.none, current.leader,
                                                  current.leader_epoch, current.isr, current.partition_epoch))
            answer.append((topic.topic_id, tuple(results)))
        if records:
            try:
                await self._commit(records)
            except MetadataCommitError as exc:
                return AlterPartitionResult(exc.error_code)
        return AlterPartitionResult(ErrorCode.none, tuple(answer))

    def _check_isr_request(self, broker_id: int, partition: PartitionImage | None,
                           request: PartitionIsrRequest) -> ErrorCode:
        """Kafka's ``validateAlterPartitionData``, in its order (see module docstring)."""
        if partition is None:
            return ErrorCode.unknown_topic_or_partition
        if request.leader_epoch > partition.leader_epoch or request.partition_epoch > partition.partition_epoch:
            return ErrorCode.not_controller  # the leader heard from a newer controller
        if request.leader_epoch < partition.leader_epoch:
            return ErrorCode.fenced_leader_epoch
        if broker_id != partition.leader:
            return ErrorCode.invalid_request
        if request.partition_epoch < partition.partition_epoch:
            return ErrorCode.invalid_update_version
        new_isr = [m.broker_id for m in request.new_isr]
        if (len(set(new_isr)) != len(new_isr) or not set(new_isr) <= set(partition.replicas)
                or partition.leader not in new_isr):
            return ErrorCode.invalid_request
        if request.leader_recovery_state != RECOVERED:  # RECOVERED → RECOVERING is refused by Kafka too
            return ErrorCode.invalid_request
        if any(self._ineligible(member) for member in request.new_isr):
            return ErrorCode.ineligible_replica
        return ErrorCode.none

    def _ineligible(self, member: IsrMember) -> bool:
        """Kafka's ``ineligibleReplicasForIsr``: not registered, fenced (controlled shutdown
        fences at once here), or a broker epoch (v3) that is not the registration's."""
        broker = self.image.brokers.get(member.broker_id)
        return (broker is None or broker.fenced
                or (member.broker_epoch != -1 and member.broker_epoch != broker.epoch))
