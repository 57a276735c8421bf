"""QuorumController (Kafka's): the active controller, the only writer of metadata records.

It validates topic operations with Kafka's error codes, places replicas, and commits records
through the quorum; every committed batch is applied to a new MetadataImage and handed to the
``on_image`` listener (the broker's replica manager), and an operation returns once the listener
has applied it. Operations are ``async`` because with a multi-voter quorum a commit waits for a
majority.

Concurrency: used from the node's event loop; operations take turns (``_queued``, Kafka's event
queue), so two operations never interleave their checks even though a commit awaits.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cluster.controller.cluster_control import ClusterControl
from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.event_queue import queued as _queued
from cluster.controller.metadata_image import (
    RECORD_VERSIONS,
    MetadataDelta,
    MetadataImage,
)
from cluster.controller.metadata_snapshot import decode_snapshot, encode_snapshot
from cluster.controller.raft_quorum import (
    QuorumUnavailableError,
    RaftQuorum,
    decode_record,
)
from cluster.controller.records import RECORDS_PER_TURN, MetadataRecord
from cluster.log.validator import RecordValidationError
from cluster.raft.log import Entry, OffsetAndEpoch
from pykafka_ops.config.settings import (
    MAX_PARTITIONS_PER_TOPIC,
    TOPIC_SETTINGS,
    SettingError,
    check_topic_overrides,
)
from pykafka_ops.errors import ErrorCode

log = logging.getLogger(__name__)

LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_TOPIC_NAME = 249
#: A guard against typos like --partitions 100000 (Kafka has none; T13 of reliability.md).
PRODUCER_ID_BLOCK = 1000
#: Most partitions one CreateTopics may ask for, all topics together (Kafka's
#: ``QuorumController.MAX_PARTITIONS_PER_BATCH``): their records then fit one metadata batch.
MAX_PARTITIONS_PER_BATCH = 10_000


@dataclass(frozen=True)
class NewTopic:
    """A topic to create (``-1`` = the broker default for partitions / replication factor)."""

    name: str
    partitions: int = -1
    replication_factor: int = -1
    assignments: Mapping[int, Sequence[int]] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicResult:
    """The answer for one topic of a create/delete/create-partitions call."""

    name: str
    error_code: ErrorCode = ErrorCode.none
    error_message: str | None = None
    topic_id: uuid.UUID | None = None
    partitions: int = -1
    replication_factor: int = -1


class TopicError(Exception):
    """A topic operation refused with a Kafka error code."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def validate_topic_name(name: str | None) -> None:
    """Kafka's `Topic.validate`: 1-249 chars of [a-zA-Z0-9._-], not '.' or '..'."""
    if not name:
        raise TopicError(ErrorCode.invalid_topic_exception, "topic name is empty")
    if name in (".", ".."):
        raise TopicError(ErrorCode.invalid_topic_exception, f"topic name cannot be {name!r}")
    if len(name) > MAX_TOPIC_NAME:
        raise TopicError(ErrorCode.invalid_topic_exception, f"topic name is longer than {MAX_TOPIC_NAME} characters")
    if not LEGAL_TOPIC.match(name):
        raise TopicError(ErrorCode.invalid_topic_exception,
                         f"topic name {name!r} has characters other than ASCII letters, digits, '.', '_' and '-'")


class QuorumController(ClusterControl):
    """Writes metadata records for topic, broker and producer-id operations."""

    def __init__(self, quorum: RaftQuorum, broker_defaults: Mapping[str, Any],
                 on_image: Callable[[MetadataImage], Awaitable[None]]) -> None:
        self.quorum = quorum
        self.broker_defaults = broker_defaults
        self.on_image = on_image
        self.image = MetadataImage()
        self._queue = asyncio.Lock()
        self._proposed: tuple[int, int, MetadataImage] | None = None
        """(first offset, last offset, image after them) of the records being committed now."""
        self._publishing: asyncio.Task[None] | None = None
        self._claiming: asyncio.Task[None] | None = None

    def load(self) -> None:
        """Rebuild the image from the latest snapshot and the committed log after it (start-up);
        later commits arrive through ``_apply_committed``, snapshots from the leader through
        ``_install_snapshot``."""
        snapshot = self.quorum.start_snapshot
        if snapshot is not None:
            self.image = decode_snapshot(self.quorum.snapshot_data(snapshot), snapshot.offset)
            log.info("metadata image loaded from the snapshot at offset %d", snapshot.offset)
        self.image = self.image.apply_all(self.quorum.replay())
        self.quorum.cluster_id = self.image.cluster_id
        self.quorum.on_committed = self._apply_committed
        self.quorum.on_snapshot = self._install_snapshot

    def _install_snapshot(self, snapshot_id: OffsetAndEpoch, data: bytes) -> None:
        """The leader's snapshot replaces the image (this node was too far behind)."""
        self.image = decode_snapshot(data, snapshot_id.offset)
        self.quorum.cluster_id = self.image.cluster_id
        self._publish_soon()

    def _maybe_snapshot(self) -> None:
        """Kafka's ``metadata.log.max.record.bytes.between.snapshots``: snapshot the image (only
        committed records are in it) once that many record bytes were committed since the last."""
        if self.quorum.bytes_since_snapshot < self.broker_defaults["metadata.log.max.record.bytes.between.snapshots"]:
            return
        if self.image.offset >= 0:
            self.quorum.take_snapshot(self.image.offset + 1, encode_snapshot(self.image))

    def _publish_soon(self) -> None:
        if self._publishing is None or self._publishing.done():
            self._publishing = asyncio.get_running_loop().create_task(self._publish())

    def _apply_committed(self, entries: list[Entry]) -> None:
        """Committed records, in order: this controller's own proposal (whose image ``_commit``
        built already), or records another leader wrote (replayed here, then published)."""
        fresh = [entry for entry in entries if entry.offset > self.image.offset]
        if not fresh:
            return
        proposed = self._proposed
        if proposed is not None and (fresh[0].offset, fresh[-1].offset) == proposed[:2]:
            self.image = proposed[2]
        else:
            self.image = self.image.apply_all((entry.offset, decode_record(entry)) for entry in fresh)
            self._publish_soon()
        self.quorum.cluster_id = self.image.cluster_id
        self._maybe_snapshot()

    async def _publish(self) -> None:
        """Hand the newest image to the listener (records committed by another leader)."""
        await self.on_image(self.image)

    async def _commit(self, records: Sequence[MetadataRecord]) -> None:
        """Apply ``records`` to a scratch image, append them, then make the image current (the
        listener hears of it when the operation's turn ends, see ``_queued``).

        A record that does not apply never reaches the log (it would break every later start-up);
        a log that cannot be written is left as it was (a segment append is all or nothing). Both
        raise MetadataCommitError and change nothing. The event loop gets a turn every
        ``RECORDS_PER_TURN`` records, so a 10 000-partition topic does not stall it."""
        records = [{**record, "version": RECORD_VERSIONS[record["type"]]} for record in records]
        first = self.quorum.end_offset
        try:
            delta = MetadataDelta(self.image)
            for i, record in enumerate(records):
                delta.replay(record, first + i)
                if i % RECORDS_PER_TURN == RECORDS_PER_TURN - 1:
                    await asyncio.sleep(0)
            image = delta.image()
        except (KeyError, TypeError, ValueError) as exc:
            log.error("metadata record refused before it was written: %s", exc)
            raise MetadataCommitError(ErrorCode.unknown_server_error, f"invalid metadata record: {exc}") from exc
        self._proposed = (first, first + len(records) - 1, image)
        try:
            await self.quorum.append(records)
        except QuorumUnavailableError as exc:
            log.info("metadata not committed: %s", exc)
            raise MetadataCommitError(ErrorCode.not_controller if exc.leader_id != self.quorum.node.node_id
                                      else ErrorCode.request_timed_out, str(exc)) from exc
        except OSError as exc:
            log.error("cannot write the metadata log: %s", exc.strerror or exc)
            raise MetadataCommitError(ErrorCode.kafka_storage_error,
                                      f"cannot write the metadata log: {exc.strerror or exc}") from exc
        except RecordValidationError as exc:
            raise MetadataCommitError(exc.error_code, f"metadata batch refused: {exc}") from exc
        finally:
            self._proposed = None

    # -- topics ----------------------------------------------------------------------------

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
                return [_not_written(result, exc) for result in results]
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
        brokers = sorted(self.image.brokers)
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
        if rf < 1 or rf > len(brokers):
            raise TopicError(ErrorCode.invalid_replication_factor,
                             f"replication factor {rf} is not between 1 and the {len(brokers)} available broker(s)")
        return {p: _place(brokers, p, rf) for p in range(partitions)}

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
                raise TopicError(ErrorCode.invalid_replica_assignment, f"unknown broker id(s) {unknown}")
        return {p: list(r) for p, r in assignments.items()}

    @_queued
    async def delete_topics(self, names: Sequence[str]) -> list[TopicResult]:
        """DeleteTopics by name."""
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
                return [_not_written(result, exc) for result in results]
        return results

    @_queued
    async def create_partitions(self, name: str, count: int, assignments: Sequence[Sequence[int]] | None,
                                validate_only: bool) -> TopicResult:
        """CreatePartitions: grow ``name`` to ``count`` partitions."""
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
        brokers = sorted(self.image.brokers)
        try:
            if assignments:
                if len(assignments) != count - current:
                    raise TopicError(ErrorCode.invalid_replica_assignment,
                                     f"{len(assignments)} assignments given for {count - current} new partitions")
                placed = self._check_assignments(dict(zip(range(current, count), assignments)), brokers, current)
            else:
                placed = {p: _place(brokers, p, rf) for p in range(current, count)}
        except TopicError as exc:
            return TopicResult(name, exc.error_code, str(exc))
        if not validate_only:
            try:
                await self._commit([_partition_record(topic.topic_id, p, r) for p, r in sorted(placed.items())])
            except MetadataCommitError as exc:
                return _not_written(TopicResult(name), exc)
        return TopicResult(name, topic_id=topic.topic_id, partitions=count, replication_factor=rf)

    # -- configs -------------------------------------------------------------------------

    @_queued
    async def alter_configs(self, topic: str, changes: Mapping[str, Any | None],
                            validate_only: bool = False) -> TopicResult:
        """Set (a value) or delete (``None``) per-topic overrides of ``topic``: all of them or none.

        Every name must be a topic setting we implement (a deleted name too, so a typo is never
        silently accepted); values are checked and converted as at topic creation.
        """
        image_topic = self.image.topics.get(topic)
        if image_topic is None:
            return TopicResult(topic, ErrorCode.unknown_topic_or_partition, f"topic {topic!r} does not exist")
        unknown_deletes = {k: "" for k, v in changes.items() if v is None and k not in TOPIC_SETTINGS}
        try:
            values = check_topic_overrides({**unknown_deletes, **{k: v for k, v in changes.items() if v is not None}})
        except SettingError as exc:
            return TopicResult(topic, ErrorCode.invalid_config, str(exc))
        records: list[MetadataRecord] = [
            {"type": "ConfigRecord", "resource_type": "topic", "resource_name": topic, "name": key,
             "value": values.get(key)}
            for key in changes if values.get(key) != image_topic.config.get(key)]
        if records and not validate_only:
            try:
                await self._commit(records)
            except MetadataCommitError as exc:
                return _not_written(TopicResult(topic), exc)
            log.info("altered configs of topic %s: %s", topic, {r["name"]: r["value"] for r in records})
        return TopicResult(topic, topic_id=image_topic.topic_id)

    # -- producer ids ----------------------------------------------------------------------

    @_queued
    async def allocate_producer_ids(self) -> tuple[int, int]:
        """A block [first, first + size) of never-used producer ids (Kafka's AllocateProducerIds)."""
        first = self.image.next_producer_id
        await self._commit([{"type": "ProducerIdsRecord", "next_producer_id": first + PRODUCER_ID_BLOCK}])
        return first, PRODUCER_ID_BLOCK


def _not_written(result: TopicResult, exc: MetadataCommitError) -> TopicResult:
    """A result that was to succeed, answered with the commit's error: its records were not written."""
    if result.error_code != ErrorCode.none:
        return result
    return TopicResult(result.name, exc.error_code, str(exc))


def _place(brokers: list[int], partition: int, rf: int) -> list[int]:
    """Round-robin placement: partition p's replicas start at broker p mod n."""
    return [brokers[(partition + i) % len(brokers)] for i in range(rf)]


def _partition_record(topic_id: uuid.UUID, partition: int, replicas: Sequence[int]) -> MetadataRecord:
    return {"type": "PartitionRecord", "topic_id": str(topic_id), "partition": partition,
            "replicas": list(replicas), "isr": list(replicas), "leader": replicas[0],
            "leader_epoch": 0, "partition_epoch": 0}
