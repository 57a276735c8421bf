"""ReplicationControl (Kafka's ``ReplicationControlManager``): topics, partitions, replica
placement and leader election.

A mixin of ``QuorumController``: it validates CreateTopics / DeleteTopics / CreatePartitions
with Kafka's error codes, places replicas over the unfenced brokers (``placement``), and when a
broker is fenced or unfenced it writes the ``PartitionChangeRecord`` s that move leadership:
a fenced leader is replaced by another unfenced ISR member, or by no leader (-1) when it was the
only one (the partition is offline); it leaves the ISR unless it is its last member, so that it
can lead again once it is unfenced (Kafka keeps the last ISR member for the same reason).

Simplifications against Kafka: every partition has one replica until replication lands (a
replication factor above 1 is refused); elections visit every partition of the image (Kafka keeps
a broker → partitions index).

Concurrency: part of the controller, on the node's event loop; writes go through its event queue.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.event_queue import queued as _queued
from cluster.controller.metadata_image import MetadataImage
from cluster.controller.placement import place_replicas
from cluster.controller.records import MetadataRecord
from cluster.controller.topics import (
    NewTopic,
    TopicError,
    TopicResult,
    not_written,
    validate_topic_name,
)
from pykafka_ops.config.settings import (
    MAX_PARTITIONS_PER_TOPIC,
    SettingError,
    check_topic_overrides,
)
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.controller.controller import QuorumController

    _Base = QuorumController
else:
    _Base = object

log = logging.getLogger(__name__)

#: Most partitions one CreateTopics may ask for, all topics together (Kafka's
#: ``QuorumController.MAX_PARTITIONS_PER_BATCH``): their records then fit one metadata batch.
MAX_PARTITIONS_PER_BATCH = 10_000
#: Replicas a partition may have until follower replication lands (issue "Replication").
MAX_REPLICATION_FACTOR = 1


class ReplicationControl(_Base):
    """Topic and partition operations (see module docstring)."""

    @_queued
    async def create_topics(self, topics: Sequence[NewTopic], validate_only: bool = False) -> list[TopicResult]:
        """CreateTopics: one result per requested topic; valid ones are committed together."""
        if not self.quorum.node.is_leader:  # Kafka: only the active controller takes writes
            return [TopicResult(topic.name, ErrorCode.not_controller, "this controller is not the active one")
                    for topic in topics]
        if self._requested_partitions(topics) > MAX_PARTITIONS_PER_BATCH:
            return [TopicResult(topic.name, ErrorCode.policy_violation,
                                "Excessively large number of partitions per request.") for topic in topics]
        results: list[TopicResult] = []
        records: list[MetadataRecord] = []
        planned: set[str] = set()
        for topic in topics:
            try:
                topic_records, result = self._plan_topic(topic, planned)
            except TopicError as exc:
                results.append(TopicResult(topic.name, exc.error_code, str(exc)))
                continue
            planned.add(topic.name)
            results.append(result)
            records.extend(topic_records)
        if records and not validate_only:
            try:
                await self._commit(records)
            except MetadataCommitError as exc:
                return [not_written(result, exc) for result in results]
            for result in results:
                if result.error_code == ErrorCode.none:
                    log.info("created topic %s (%d partitions, replication factor %d)",
                             result.name, result.partitions, result.replication_factor)
        return results

    def _requested_partitions(self, topics: Sequence[NewTopic]) -> int:
        """Partitions a CreateTopics asks for (Kafka's ``validateTotalNumberOfPartitions``)."""
        default = self.broker_defaults["num.partitions"]
        return sum(len(t.assignments) if t.assignments else (default if t.partitions == -1 else max(t.partitions, 0))
                   for t in topics)

    def _plan_topic(self, topic: NewTopic, planned: set[str]) -> tuple[list[MetadataRecord], TopicResult]:
        validate_topic_name(topic.name)
        if topic.name in self.image.topics or topic.name in planned:
            raise TopicError(ErrorCode.topic_already_exists, f"topic {topic.name!r} already exists")
        collision = next((t for t in [*self.image.topics, *planned]
                          if t.replace(".", "_") == topic.name.replace(".", "_")), None)
        if collision:
            raise TopicError(ErrorCode.invalid_topic_exception,
                             f"topic {topic.name!r} collides with {collision!r} ('.' and '_' collide in metric names)")
        try:
            config = check_topic_overrides(topic.config)
        except SettingError as exc:
            raise TopicError(ErrorCode.invalid_config, str(exc)) from None
        assignments = self._assign(topic)
        topic_id = uuid.uuid4()
        records: list[MetadataRecord] = [{"type": "TopicRecord", "name": topic.name, "topic_id": str(topic_id)}]
        records.extend(_partition_record(topic_id, p, replicas) for p, replicas in sorted(assignments.items()))
        records.extend({"type": "ConfigRecord", "resource_type": "topic", "resource_name": topic.name,
                        "name": key, "value": value} for key, value in config.items())
        rf = len(next(iter(assignments.values())))
        return records, TopicResult(topic.name, topic_id=topic_id, partitions=len(assignments), replication_factor=rf)

    def _assign(self, topic: NewTopic) -> dict[int, list[int]]:
        brokers = [b.broker_id for b in self.image.live_brokers]
        if topic.assignments:
            if topic.partitions != -1 or topic.replication_factor != -1:
                raise TopicError(ErrorCode.invalid_request,
                                 "give either a replica assignment or partitions and replication factor")
            return self._check_assignments(topic.assignments, brokers, expect_from=0)
        partitions = self.broker_defaults["num.partitions"] if topic.partitions == -1 else topic.partitions
        rf = self.broker_defaults["default.replication.factor"] if topic.replication_factor == -1 else topic.replication_factor
        if partitions < 1 or partitions > MAX_PARTITIONS_PER_TOPIC:
            raise TopicError(ErrorCode.invalid_partitions,
                             f"number of partitions must be between 1 and {MAX_PARTITIONS_PER_TOPIC}, got {partitions}")
        _check_replication_factor(rf, len(brokers))
        return place_replicas(brokers, partitions, rf)

    def _check_assignments(self, assignments: Mapping[int, Sequence[int]], brokers: list[int],
                           expect_from: int) -> dict[int, list[int]]:
        if sorted(assignments) != list(range(expect_from, expect_from + len(assignments))):
            raise TopicError(ErrorCode.invalid_replica_assignment,
                             f"partitions of a replica assignment must be consecutive from {expect_from}")
        sizes = {len(r) for r in assignments.values()}
        for replicas in assignments.values():
            if len(set(replicas)) != len(replicas) or not replicas or len(sizes) != 1:
                raise TopicError(ErrorCode.invalid_replica_assignment,
                                 "each partition needs the same number of distinct replicas")
            unknown = [b for b in replicas if b not in brokers]
            if unknown:
                raise TopicError(ErrorCode.invalid_replica_assignment,
                                 f"broker id(s) {unknown} are not registered or are fenced")
            if len(replicas) > MAX_REPLICATION_FACTOR:
                _check_replication_factor(len(replicas), len(brokers))
        return {p: list(r) for p, r in assignments.items()}

    @_queued
    async def delete_topics(self, names: Sequence[str]) -> list[TopicResult]:
        """DeleteTopics by name."""
        if not self.quorum.node.is_leader:
            return [TopicResult(name, ErrorCode.not_controller, "this controller is not the active one")
                    for name in names]
        results, records = [], []
        for name in names:
            topic = self.image.topics.get(name)
            if topic is None or name in {r.name for r in results if r.error_code == ErrorCode.none}:
                results.append(TopicResult(name, ErrorCode.unknown_topic_or_partition,
                                           f"topic {name!r} does not exist"))
                continue
            if not self.broker_defaults["delete.topic.enable"]:
                results.append(TopicResult(name, ErrorCode.topic_deletion_disabled, "delete.topic.enable is false"))
                continue
            records.append({"type": "RemoveTopicRecord", "topic_id": str(topic.topic_id)})
            results.append(TopicResult(name, topic_id=topic.topic_id))
        if records:
            try:
                await self._commit(records)
            except MetadataCommitError as exc:
                return [not_written(result, exc) for result in results]
        return results

    @_queued
    async def create_partitions(self, name: str, count: int, assignments: Sequence[Sequence[int]] | None,
                                validate_only: bool) -> TopicResult:
        """CreatePartitions: grow ``name`` to ``count`` partitions."""
        if not self.quorum.node.is_leader:
            return TopicResult(name, ErrorCode.not_controller, "this controller is not the active one")
        topic = self.image.topics.get(name)
        if topic is None:
            return TopicResult(name, ErrorCode.unknown_topic_or_partition, f"topic {name!r} does not exist")
        current = len(topic.partitions)
        if count <= current:
            return TopicResult(name, ErrorCode.invalid_partitions,
                               f"topic {name!r} has {current} partitions; the new count must be larger, got {count}")
        if count > MAX_PARTITIONS_PER_TOPIC:
            return TopicResult(name, ErrorCode.invalid_partitions, f"at most {MAX_PARTITIONS_PER_TOPIC} partitions")
        rf = len(topic.partitions[0].replicas)
        brokers = [b.broker_id for b in self.image.live_brokers]
        try:
            if assignments:
                if len(assignments) != count - current:
                    raise TopicError(ErrorCode.invalid_replica_assignment,
                                     f"{len(assignments)} assignments given for {count - current} new partitions")
                placed = self._check_assignments(dict(zip(range(current, count), assignments, strict=True)), brokers,
                                                 current)
            else:
                _check_replication_factor(rf, len(brokers))
                placed = place_replicas(brokers, count - current, rf, first_partition=current)
        except TopicError as exc:
            return TopicResult(name, exc.error_code, str(exc))
        if not validate_only:
            try:
                await self._commit([_partition_record(topic.topic_id, p, r) for p, r in sorted(placed.items())])
            except MetadataCommitError as exc:
                return not_written(TopicResult(name), exc)
        return TopicResult(name, topic_id=topic.topic_id, partitions=count, replication_factor=rf)

    # -- leader election ---------------------------------------------------------------------

    def _leader_changes(self, image: MetadataImage, broker_id: int, fenced: bool) -> list[MetadataRecord]:
        """PartitionChangeRecords after ``broker_id`` is fenced (or unfenced) in ``image`` (the
        image before the change; see the module docstring for the rule)."""
        alive = {b.broker_id for b in image.live_brokers}
        alive = alive - {broker_id} if fenced else alive | {broker_id}
        records: list[MetadataRecord] = []
        for topic in image.topics.values():
            for p in topic.partitions.values():
                if broker_id not in p.replicas:
                    continue
                if fenced and broker_id in p.isr:
                    isr = tuple(r for r in p.isr if r != broker_id) or p.isr
                    leader = p.leader if p.leader != broker_id else next((r for r in isr if r in alive), -1)
                elif not fenced and p.leader == -1 and broker_id in p.isr:
                    isr, leader = p.isr, next(r for r in p.isr if r in alive)
                else:
                    continue
                if (leader, isr) != (p.leader, p.isr):
                    records.append({"type": "PartitionChangeRecord", "topic_id": str(topic.topic_id),
                                    "partition": p.partition, "leader": leader, "isr": list(isr)})
        return records


def _check_replication_factor(rf: int, live_brokers: int) -> None:
    if rf < 1 or rf > live_brokers:
        raise TopicError(ErrorCode.invalid_replication_factor,
                         f"replication factor {rf} is not between 1 and the {live_brokers} available broker(s)")
    if rf > MAX_REPLICATION_FACTOR:
        raise TopicError(ErrorCode.invalid_replication_factor,
                         f"replication factor {rf}: partitions have one replica until replication is supported "
                         "(not supported yet); use 1")


def _partition_record(topic_id: uuid.UUID, partition: int, replicas: Sequence[int]) -> MetadataRecord:
    return {"type": "PartitionRecord", "topic_id": str(topic_id), "partition": partition,
            "replicas": list(replicas), "isr": list(replicas), "leader": replicas[0],
            "leader_epoch": 0, "partition_epoch": 0}
