"""ReassignmentControl: AlterPartitionReassignments and ListPartitionReassignments (KIP-455) on
the active controller, as Kafka's ``ReplicationControlManager.alterPartitionReassignments`` /
``listPartitionReassignments``.

A mixin of ``QuorumController``. Each requested partition is checked on its own (unknown topic or
partition: UNKNOWN_TOPIC_OR_PARTITION; a target that is empty, repeats a broker or names an
unregistered one, or whose brokers are all fenced: INVALID_REPLICA_ASSIGNMENT, Kafka's
``validateManualPartitionAssignment``; a replication factor change with v1's
``allow_replication_factor_change`` false: INVALID_REPLICATION_FACTOR, KIP-860; cancelling a
partition that is not being reassigned: NO_REASSIGNMENT_IN_PROGRESS); the records of the valid
ones are committed together (``ControllerResult.atomicOf``). The stages of a reassignment and
their records are ``reassignment``'s; the stage that completes one is the ISR change that
AlterPartition commits (``alter_partition``).

Concurrency: part of the controller, on the node's event loop; writes go through its event queue.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.event_queue import queued as _queued
from cluster.controller.metadata_image import PartitionImage
from cluster.controller.partition_change import unclean_election_enabled
from cluster.controller.reassignment import (
    ReassignmentError,
    cancel,
    in_progress,
    original_replicas,
    reassign,
)
from cluster.controller.records import MetadataRecord
from cluster.controller.topics import TopicError
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.controller.controller import QuorumController

    _Base = QuorumController
else:
    _Base = object

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReassignmentRequest:
    """One partition of an AlterPartitionReassignments request; ``replicas`` None cancels."""

    topic: str
    partition: int
    replicas: tuple[int, ...] | None


@dataclass(frozen=True)
class ReassignmentResult:
    """One partition's answer."""

    topic: str
    partition: int
    error_code: ErrorCode = ErrorCode.none
    error_message: str | None = None


class ReassignmentControl(_Base):
    """Partition reassignments (see module docstring)."""

    @_queued
    async def alter_partition_reassignments(self, requests: Sequence[ReassignmentRequest],
                                            allow_replication_factor_change: bool = True) -> list[ReassignmentResult]:
        """Start, replace or cancel the reassignment of each requested partition."""
        if not self.is_active:
            return [ReassignmentResult(r.topic, r.partition, ErrorCode.not_controller,
                                       "this controller is not the active one") for r in requests]
        results: list[ReassignmentResult] = []
        records: list[MetadataRecord] = []
        for request in requests:
            try:
                record = self._reassignment_record(request, allow_replication_factor_change)
            except (ReassignmentError, TopicError) as exc:
                log.info("Unable to alter partition reassignment for %s:%d because of %s: %s", request.topic,
                         request.partition, exc.error_code.name, exc)
                results.append(ReassignmentResult(request.topic, request.partition, exc.error_code, str(exc)))
                continue
            if record is not None:
                records.append(record)
            results.append(ReassignmentResult(request.topic, request.partition))
        if records:
            try:
                await self._commit(records)
            except MetadataCommitError as exc:
                return [ReassignmentResult(r.topic, r.partition, exc.error_code, str(exc)) for r in requests]
        done = sum(r.error_code == ErrorCode.none for r in results)
        log.info("Successfully altered %d out of %d partition reassignment(s).", done, len(results))
        return results

    def _reassignment_record(self, request: ReassignmentRequest, allow_rf_change: bool) -> MetadataRecord | None:
        topic = self.image.topics.get(request.topic)
        if topic is None:
            raise ReassignmentError(ErrorCode.unknown_topic_or_partition,
                                    f"Unable to find a topic named {request.topic}.")
        partition = topic.partitions.get(request.partition)
        if partition is None:
            raise ReassignmentError(ErrorCode.unknown_topic_or_partition,
                                    f"Unable to find partition {request.topic}:{request.partition}.")
        alive = {b.broker_id for b in self.image.live_brokers}
        if request.replicas is None:
            return cancel(topic, partition, alive, unclean_election_enabled(topic, self.broker_defaults))
        self._check_assignments({request.partition: request.replicas}, expect_from=request.partition)
        rf = len(original_replicas(partition))
        if not allow_rf_change and len(request.replicas) != rf:
            raise ReassignmentError(ErrorCode.invalid_replication_factor,
                                    f"The replication factor is changed from {rf} to {len(request.replicas)} but "
                                    "allowReplicationFactorChange is false.")
        return reassign(topic, partition, request.replicas, alive)

    def list_partition_reassignments(self, topics: Sequence[tuple[str, Sequence[int]]] | None
                                     ) -> list[tuple[str, list[PartitionImage]]]:
        """The partitions being reassigned, by topic: all of them (``topics`` None) or those named
        (unknown topics and partitions, and partitions not being reassigned, are left out)."""
        image = self.image
        wanted = ((name, None) for name in sorted(image.topics)) if topics is None else topics
        listed = []
        for name, indexes in wanted:
            topic = image.topics.get(name)
            if topic is None:
                continue
            chosen = sorted(topic.partitions) if indexes is None else indexes
            partitions = [topic.partitions[i] for i in chosen if i in topic.partitions and
                          in_progress(topic.partitions[i])]
            if partitions:
                listed.append((name, partitions))
        return listed
