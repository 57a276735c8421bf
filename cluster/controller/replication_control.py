"""ReplicationControl (Kafka's ``ReplicationControlManager``): topics, partitions, replica
placement and leader election.

A mixin of ``QuorumController``: it validates CreateTopics / DeleteTopics / CreatePartitions
with Kafka's error codes, places replicas over the unfenced brokers (``placement``), and when a
broker is fenced or unfenced it writes the ``PartitionChangeRecord`` s that move leadership
(``partition_change``: a fenced leader is replaced by another unfenced ISR member, else, if the
topic allows unclean leader election, by any unfenced replica, else by no leader (-1) until an
ISR member is back).

A replication factor may be up to the number of unfenced brokers; a manual assignment may name
fenced brokers as long as each partition has an unfenced one (they start outside the ISR), as
Kafka's ``validateManualPartitionAssignment``.

Simplifications against Kafka: automatic placement uses only unfenced brokers (Kafka's
``StripedReplicaPlacer`` falls back to fenced ones); elections visit every partition of the image
(Kafka keeps a broker → partitions index).

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
from cluster.controller.partition_change import (
    change_record,
    elect,
    unclean_election_enabled,
)
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
from pykafka_ops.replica_placement import place_replicas

if TYPE_CHECKING:
    from cluster.controller.controller import QuorumController

    _Base = QuorumController
else:
    _Base = object

log = logging.getLogger(__name__)

#: Most partitions one CreateTopics may ask for, all topics together (Kafka's
#: ``QuorumController.MAX_PARTITIONS_PER_BATCH``): their records then fit one metadata batch.
MAX_PARTITIONS_PER_BATCH = 10_000


class ReplicationControl(_Base):
    """Topic and partition operations (see module docstring)."""

    @_queued
    async def create_topics(self, topics: Sequence[NewTopic], validate_only: bool = False) -> list[TopicResult]:
        """CreateTopics: one result per requested topic; valid ones are committed together."""
        if not self.is_active:  # Kafka: only the active controller takes writes
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
        alive = {b.broker_id for b in self.image.live_brokers}
        records: list[MetadataRecord] = [{"type": "TopicRecord", "name": topic.name, "topic_id": str(topic_id)}]
        records.extend(_partition_record(topic_id, p, replicas, alive) for p, replicas in sorted(assignments.items()))
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
            return self._check_assignments(topic.assignments, expect_from=0)
        partitions = self.broker_defaults["num.partitions"] if topic.partitions == -1 else topic.partitions
        rf = self.broker_defaults["default.replication.factor"] if topic.replication_factor == -1 else topic.replication_factor
        if partitions < 1 or partitions > MAX_PARTITIONS_PER_TOPIC:
            raise TopicError(ErrorCode.invalid_partitions,
                             f"number of partitions must be between 1 and {MAX_PARTITIONS_PER_TOPIC}, got {partitions}")
        self._check_replication_factor(rf)
        return place_replicas(brokers, partitions, rf)

    def _check_replication_factor(self, rf: int) -> None:
        """Kafka's ``StripedReplicaPlacer`` checks, in its order, with ``createTopic``'s wording."""
        registered, unfenced = len(self.image.brokers), len(self.image.live_brokers)
        if rf < 1:
            reason = f"Invalid replication factor {rf}: the replication factor must be positive."
        elif unfenced == 0:
            reason = "All brokers are currently fenced."
        elif rf > registered:
            reason = (f"The target replication factor of {rf} cannot be reached because only {registered} "
                      "broker(s) are registered.")
        elif rf > unfenced:  # Kafka would place on fenced brokers too (see module docstring)
            reason = (f"The target replication factor of {rf} cannot be reached because only {unfenced} of the "
                      f"{registered} registered broker(s) are unfenced.")
        else:
            return
        raise TopicError(ErrorCode.invalid_replication_factor, f"Unable to replicate the partition {rf} time(s): "
                                                               f"{reason}")

    def _check_assignments(self, assignments: Mapping[int, Sequence[int]], expect_from: int,
                           replication_factor: int | None = None) -> dict[int, list[int]]:
        """Kafka's ``validateManualPartitionAssignment`` for each partition (INVALID_REPLICA_ASSIGNMENT)."""
        if sorted(assignments) != list(range(expect_from, expect_from + len(assignments))):
            raise TopicError(ErrorCode.invalid_replica_assignment,
                             f"partitions of a replica assignment must be consecutive from {expect_from}")
        for partition, replicas in sorted(assignments.items()):
            if not replicas:
                raise TopicError(ErrorCode.invalid_replica_assignment,
                                 "The manual partition assignment includes an empty replica list.")
            seen: set[int] = set()
            for broker_id in replicas:
                if broker_id in seen:
                    raise TopicError(ErrorCode.invalid_replica_assignment,
                                     f"The manual partition assignment includes the broker {broker_id} more than once.")
                seen.add(broker_id)
                if broker_id not in self.image.brokers:
                    raise TopicError(ErrorCode.invalid_replica_assignment,
                                     f"The manual partition assignment includes broker {broker_id}, but no such broker "
                                     "is registered.")
            if all(self.image.brokers[b].fenced for b in replicas):
                raise TopicError(ErrorCode.invalid_replica_assignment,
                                 f"All brokers specified in the manual partition assignment for partition {partition} "
                                 "are fenced or in controlled shutdown.")
            if replication_factor is None:
                replication_factor = len(replicas)
            elif len(replicas) != replication_factor:
                raise TopicError(ErrorCode.invalid_replica_assignment,
                                 f"The manual partition assignment includes a partition with {len(replicas)} "
                                 f"replica(s), but this is not consistent with previous partitions, which have "
                                 f"{replication_factor} replica(s).")
        return {p: list(r) for p, r in assignments.items()}

    @_queued
    async def delete_topics(self, names: Sequence[str]) -> list[TopicResult]:
        """DeleteTopics by name."""
        if not self.is_active:
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
        if not self.is_active:
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
                placed = self._check_assignments(dict(zip(range(current, count), assignments, strict=True)),
                                                 current, rf)
            else:
                self._check_replication_factor(rf)
                placed = place_replicas(brokers, count - current, rf, first_partition=current)
        except TopicError as exc:
            return TopicResult(name, exc.error_code, str(exc))
        if not validate_only:
            alive = set(brokers)
            try:
                await self._commit([_partition_record(topic.topic_id, p, r, alive) for p, r in sorted(placed.items())])
            except MetadataCommitError as exc:
                return not_written(TopicResult(name), exc)
        return TopicResult(name, topic_id=topic.topic_id, partitions=count, replication_factor=rf)

    # -- leader election ---------------------------------------------------------------------

    def _leader_changes(self, image: MetadataImage, broker_id: int, fenced: bool) -> list[MetadataRecord]:
        """PartitionChangeRecords after ``broker_id`` is fenced (or unfenced) in ``image`` (the
        image before the change; the rule is ``partition_change``'s). Only partitions that have
        ``broker_id`` as a replica can change: Kafka's ``handleBrokerFenced`` /
        ``handleBrokerUnfenced`` (the latter visits the leaderless partitions: one without this
        replica gains nothing from it)."""
        alive = {b.broker_id for b in image.live_brokers}
        alive = alive - {broker_id} if fenced else alive | {broker_id}
        records: list[MetadataRecord] = []
        for topic in image.topics.values():
            unclean: bool | None = None
            for p in topic.partitions.values():
                if broker_id not in p.replicas or (not fenced and p.leader != -1):
                    continue
                if unclean is None:
                    unclean = unclean_election_enabled(topic, self.broker_defaults)
                leader, isr = elect(p, alive, unclean, leaving_isr=broker_id if fenced else None)
                record = change_record(topic, p, leader, isr)
                if record is not None:
                    records.append(record)
        return records

    def _unclean_elections(self, topic_name: str, config: Mapping[str, object]) -> list[MetadataRecord]:
        """PartitionChangeRecords that give each offline partition of ``topic_name`` an unclean
        leader, if its config (after a change, ``config``) enables unclean leader election. Kafka
        looks for such partitions on a timer (``maybeTriggerUncleanLeaderElectionForLeaderlessPartitions``);
        here a config change that turns it on elects at once."""
        topic = self.image.topics[topic_name]
        if not unclean_election_enabled(topic, self.broker_defaults, config):
            return []
        alive = {b.broker_id for b in self.image.live_brokers}
        records: list[MetadataRecord] = []
        for p in topic.partitions.values():
            if p.leader == -1:
                record = change_record(topic, p, *elect(p, alive, unclean=True))
                if record is not None:
                    records.append(record)
        return records


def _partition_record(topic_id: uuid.UUID, partition: int, replicas: Sequence[int], alive: set[int]) -> MetadataRecord:
    """A new partition: its unfenced replicas are the ISR, the first of them leads (Kafka's
    ``createTopic``: a manual assignment may name fenced brokers)."""
    isr = [r for r in replicas if r in alive]
    return {"type": "PartitionRecord", "topic_id": str(topic_id), "partition": partition,
            "replicas": list(replicas), "isr": isr, "leader": isr[0],
            "leader_epoch": 0, "partition_epoch": 0}
