"""GroupCoordinator (Kafka's): the group APIs for the groups this broker coordinates.

A group's coordinator is the leader of its ``__consumer_offsets`` partition
(``offsets_topic.partition_for``). Every group API first passes ``validate_group_status``
(Kafka's order: INVALID_GROUP_ID, COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR), then goes to
the rebalance protocol (``GroupMembership``) or to the cache and its records
(``GroupMetadataManager``). ``__consumer_offsets`` is created by the first FindCoordinator for a
group (``offsets.topic.num.partitions`` partitions, cleanup.policy=compact).

Ownership follows the metadata: on each new MetadataImage (``on_metadata_update``, after the
ReplicaManager applied it) the partitions this broker now leads are loaded in a task each, and
the groups of partitions it no longer leads are unloaded (parked requests get NOT_COORDINATOR).

Concurrency: event loop only; every method but ``find_coordinator`` runs to completion without
awaiting (JoinGroup/SyncGroup hand back a Future to await; OffsetCommit awaits its replication
after its checks). ``__consumer_offsets`` has ``offsets.topic.replication.factor`` replicas (Kafka's
default 3): until that many brokers are registered it cannot be created and FindCoordinator
answers COORDINATOR_NOT_AVAILABLE, as Kafka's. Offsets committed in a transaction
(TxnOffsetCommit) stay pending until the transaction's marker reaches the group's partition
(``cluster.group.txn_offsets``); OffsetFetch with ``require_stable`` answers them
UNSTABLE_OFFSET_COMMIT meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cluster.controller.metadata_image import BrokerImage, MetadataImage
from cluster.controller.topics import NewTopic
from cluster.group.group import (
    CONSUMER_PROTOCOL_TYPE,
    ClassicGroup,
    GroupState,
    JoinGroupResult,
    SyncGroupResult,
    TopicPartition,
)
from cluster.group.membership import (
    GroupMembership,
    LeavingMember,
    MemberJoin,
    completed,
)
from cluster.group.metadata_manager import GroupMetadataManager
from cluster.group.offsets_topic import (
    OFFSETS_TOPIC,
    OFFSETS_TOPIC_CONFIG,
    OffsetCommitValue,
)
from cluster.group.txn_offsets import validate_txn_offset_commit
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.broker import Broker

log = logging.getLogger(__name__)

#: Kafka's default offset.metadata.max.bytes: longer commit metadata gets OFFSET_METADATA_TOO_LARGE.
OFFSET_METADATA_MAX_BYTES = 4096
#: The group type every group here has (ListGroups v5 types filter, KIP-848).
CLASSIC_GROUP_TYPE = "classic"


@dataclass(frozen=True)
class Coordinator:
    """A FindCoordinator answer for one key."""

    error_code: ErrorCode
    broker: BrokerImage | None = None
    error_message: str | None = None


class GroupCoordinator:
    """Routes the group APIs (see module docstring)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.manager = GroupMetadataManager(broker)
        self.membership = GroupMembership(int(broker.config["group.initial.rebalance.delay.ms"]),
                                          self.manager.store_group)
        self._loads: dict[int, asyncio.Task[None]] = {}

    # -- placement -----------------------------------------------------------------------

    def offsets_topic(self) -> NewTopic:
        """How ``__consumer_offsets`` is created (also when Metadata auto-creates it)."""
        return NewTopic(OFFSETS_TOPIC, int(self.broker.config["offsets.topic.num.partitions"]),
                        int(self.broker.config["offsets.topic.replication.factor"]), config=OFFSETS_TOPIC_CONFIG)

    async def find_coordinator(self, group_id: str) -> Coordinator:
        """The broker leading the group's partition, creating ``__consumer_offsets`` if needed."""
        if OFFSETS_TOPIC not in self.broker.image.topics:
            results = await self.broker.requests.create_topics([self.offsets_topic()])
            if results[0].error_code not in (ErrorCode.none, ErrorCode.topic_already_exists):
                return Coordinator(ErrorCode.coordinator_not_available, error_message=results[0].error_message)
        image = self.broker.image
        topic = image.topics.get(OFFSETS_TOPIC)
        placement = topic.partitions.get(self.manager.partition_for(group_id)) if topic is not None else None
        broker = image.brokers.get(placement.leader) if placement is not None else None
        if broker is None:
            return Coordinator(ErrorCode.coordinator_not_available, error_message="the group's partition has no leader")
        return Coordinator(ErrorCode.none, broker)

    def on_metadata_update(self, image: MetadataImage) -> None:
        """Load the offsets partitions this broker now leads; unload those it no longer leads."""
        topic = image.topics.get(OFFSETS_TOPIC)
        led = {index for index, placement in topic.partitions.items()
               if placement.leader == self.broker.node_id} if topic is not None else set()
        for index in (self.manager.owned_partitions | self.manager.loading_partitions) - led:
            self._resign(index)
        for index in led - self.manager.owned_partitions - self.manager.loading_partitions:
            self.manager.begin_loading(index)
            self._loads[index] = asyncio.get_running_loop().create_task(self._load(index))

    async def _load(self, index: int) -> None:
        try:
            for group in await self.manager.load_partition(index):
                self.membership.schedule_loaded_members(group)
        except Exception:  # a broken partition must not take the others down; it stays unowned
            log.exception("cannot load %s-%d; its groups answer COORDINATOR_LOAD_IN_PROGRESS", OFFSETS_TOPIC, index)
        finally:
            if self._loads.get(index) is asyncio.current_task():  # not a newer load of the same partition
                del self._loads[index]

    def _resign(self, index: int) -> None:
        task = self._loads.pop(index, None)
        if task is not None:
            task.cancel()
        for group in self.manager.unload_partition(index):
            self.membership.unload(group, ErrorCode.not_coordinator)

    def shutdown(self) -> None:
        """Stop loading and unload every group (broker shutdown)."""
        for index in list(self.manager.owned_partitions | self.manager.loading_partitions):
            self._resign(index)

    def validate_group_status(self, group_id: str, allow_empty_id: bool = False) -> ErrorCode:
        """Kafka's ``validateGroupStatus``. OffsetCommit/OffsetFetch/DescribeGroups/DeleteGroups
        accept the empty group id (old clients store offsets under it)."""
        if not group_id and not allow_empty_id:
            return ErrorCode.invalid_group_id
        if self.manager.is_loading(group_id):
            return ErrorCode.coordinator_load_in_progress
        if not self.manager.is_local(group_id):
            return ErrorCode.not_coordinator
        return ErrorCode.none

    # -- membership ----------------------------------------------------------------------

    def join_group(self, group_id: str, join: MemberJoin) -> asyncio.Future[JoinGroupResult]:
        """JoinGroup; an unknown group is created by a member without a member id."""
        error = self.validate_group_status(group_id)
        config = self.broker.config
        if error == ErrorCode.none and not (config["group.min.session.timeout.ms"] <= join.session_timeout_ms
                                            <= config["group.max.session.timeout.ms"]):
            error = ErrorCode.invalid_session_timeout
        group = self.manager.groups.get(group_id)
        if error == ErrorCode.none and group is None:
            if join.member_id:
                error = ErrorCode.unknown_member_id
            elif not (join.protocol_type and join.protocols):
                error = ErrorCode.inconsistent_group_protocol
            else:
                group = self.manager.add_group(group_id)
        if error != ErrorCode.none or group is None:
            return completed(JoinGroupResult(error, join.member_id))
        return self.membership.join_group(group, join)

    def sync_group(self, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int,
                   protocol_type: str | None, protocol_name: str | None,
                   assignments: dict[str, bytes]) -> asyncio.Future[SyncGroupResult]:
        """SyncGroup (the leader's carries the assignment)."""
        error = self.validate_group_status(group_id)
        group = self.manager.groups.get(group_id)
        if error != ErrorCode.none or group is None:
            return completed(SyncGroupResult(error if error != ErrorCode.none else ErrorCode.unknown_member_id))
        return self.membership.sync_group(group, member_id, group_instance_id, generation_id, protocol_type,
                                          protocol_name, assignments)

    def heartbeat(self, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int) -> ErrorCode:
        """Heartbeat."""
        error = self.validate_group_status(group_id)
        group = self.manager.groups.get(group_id)
        if error != ErrorCode.none or group is None:
            return error if error != ErrorCode.none else ErrorCode.unknown_member_id
        return self.membership.heartbeat(group, member_id, group_instance_id, generation_id)

    def leave_group(self, group_id: str, members: Sequence[LeavingMember]) -> tuple[ErrorCode, list[ErrorCode]]:
        """LeaveGroup: (top-level error, one error per leaving member)."""
        error = self.validate_group_status(group_id)
        if error != ErrorCode.none:
            return error, []
        group = self.manager.groups.get(group_id)
        if group is None:
            return ErrorCode.none, [ErrorCode.unknown_member_id for _ in members]
        return ErrorCode.none, self.membership.leave_group(group, members)

    # -- offsets -------------------------------------------------------------------------

    async def commit_offsets(self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None,
                             offsets: Mapping[TopicPartition, OffsetCommitValue]) -> dict[TopicPartition, ErrorCode]:
        """OffsetCommit: one error per partition, answered once the in-sync replicas have the
        commit. Generation -1 on an Empty or unknown group stores offsets without group
        membership (admin tools, manual assignment). The checks run before the one await."""
        errors, valid = self._check_offsets(offsets)
        if not valid:
            return errors
        error, group = self._group_to_commit(group_id, generation_id)
        if group is not None:
            error = self.membership.validate_offset_commit(group, member_id, group_instance_id, generation_id)
            if error == ErrorCode.none:
                error = await self.manager.store_offsets(group, valid)
        return errors | dict.fromkeys(valid, error)

    async def txn_commit_offsets(self, group_id: str, producer_id: int, producer_epoch: int, generation_id: int,
                                 member_id: str, group_instance_id: str | None,
                                 offsets: Mapping[TopicPartition, OffsetCommitValue]) -> dict[TopicPartition, ErrorCode]:
        """TxnOffsetCommit (Kafka's ``handleTxnCommitOffsets``): the offsets are appended to the
        group's partition in the producer's transaction and stay pending until its marker
        (``cluster.group.txn_offsets``); a zombie consumer's generation or member is fenced."""
        errors, valid = self._check_offsets(offsets)
        if not valid:
            return errors
        error, group = self._group_to_commit(group_id, generation_id)
        if group is not None:
            error = validate_txn_offset_commit(group, member_id, group_instance_id, generation_id)
            if error == ErrorCode.none:
                error = await self.manager.txn.store(group, producer_id, producer_epoch, valid)
        return errors | dict.fromkeys(valid, error)

    def _group_to_commit(self, group_id: str, generation_id: int) -> tuple[ErrorCode, ClassicGroup | None]:
        """The group an offset commit goes to (an unknown one is created for a commit without
        membership, generation -1), or the error that refuses the commit (then None)."""
        error = self.validate_group_status(group_id, allow_empty_id=True)
        if error != ErrorCode.none:
            return error, None
        group = self.manager.groups.get(group_id)
        if group is not None:
            return ErrorCode.none, group
        if generation_id >= 0:  # a member of a generation we do not know (Kafka answers so)
            return ErrorCode.illegal_generation, None
        return ErrorCode.none, self.manager.add_group(group_id)

    def on_txn_completed(self, index: int, producer_id: int, commit: bool) -> None:
        """A COMMIT/ABORT marker of ``producer_id`` is replicated in ``__consumer_offsets``
        partition ``index`` (Kafka's ``onTransactionCompleted``, called by WriteTxnMarkers)."""
        self.manager.txn.complete(index, producer_id, commit)

    def unstable_offsets(self, group_id: str, partitions: Iterable[TopicPartition]) -> set[TopicPartition]:
        """Of ``partitions``, those an open transaction holds offsets for (OffsetFetch
        ``require_stable`` answers them UNSTABLE_OFFSET_COMMIT, KIP-447)."""
        return self.manager.txn.unstable(group_id, partitions)

    def fetch_offsets(self, group_id: str, partitions: Iterable[TopicPartition] | None
                      ) -> tuple[ErrorCode, dict[TopicPartition, OffsetCommitValue | None]]:
        """OffsetFetch: the committed offsets of ``partitions`` (None = every committed one)."""
        error = self.validate_group_status(group_id, allow_empty_id=True)
        if error != ErrorCode.none:
            return error, {}
        group = self.manager.groups.get(group_id)
        offsets = group.offsets if group is not None else {}
        if partitions is None:
            return ErrorCode.none, dict(offsets)
        return ErrorCode.none, {tp: offsets.get(tp) for tp in partitions}

    def _check_offsets(self, offsets: Mapping[TopicPartition, OffsetCommitValue]
                       ) -> tuple[dict[TopicPartition, ErrorCode], dict[TopicPartition, OffsetCommitValue]]:
        """(errors of unknown partitions and oversized metadata, the offsets that may be stored)."""
        image = self.broker.image
        errors: dict[TopicPartition, ErrorCode] = {}
        valid: dict[TopicPartition, OffsetCommitValue] = {}
        for tp, value in offsets.items():
            topic = image.topics.get(tp[0])
            if topic is None or tp[1] not in topic.partitions:
                errors[tp] = ErrorCode.unknown_topic_or_partition
            elif len(value.metadata) > OFFSET_METADATA_MAX_BYTES:
                errors[tp] = ErrorCode.offset_metadata_too_large
            else:
                valid[tp] = value
        return errors, valid

    def delete_offsets(self, group_id: str, partitions: Sequence[TopicPartition]
                       ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        """OffsetDelete: allowed for an Empty group, and for topics a live consumer group does
        not subscribe to (else GROUP_SUBSCRIBED_TO_TOPIC)."""
        error = self.validate_group_status(group_id)
        group = self.manager.groups.get(group_id)
        if error != ErrorCode.none:
            return error, {}
        if group is None:
            return ErrorCode.group_id_not_found, {}
        if not group.is_in(GroupState.EMPTY) and group.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return ErrorCode.non_empty_group, {}
        image = self.broker.image
        results: dict[TopicPartition, ErrorCode] = {}
        for tp in partitions:
            topic = image.topics.get(tp[0])
            if topic is None or tp[1] not in topic.partitions:
                results[tp] = ErrorCode.unknown_topic_or_partition
            elif not group.is_in(GroupState.EMPTY) and group.is_subscribed_to_topic(tp[0]):
                results[tp] = ErrorCode.group_subscribed_to_topic
            else:
                results[tp] = ErrorCode.none
        eligible = [tp for tp, code in results.items() if code == ErrorCode.none]
        error = self.manager.remove_offsets(group, eligible)
        if error != ErrorCode.none:
            return error, {}
        return ErrorCode.none, results

    def expire_offsets(self, now_ms: int) -> None:
        """Remove offsets past offsets.retention.minutes, then groups left empty without offsets."""
        retention_ms = int(self.broker.config["offsets.retention.minutes"]) * 60_000
        for group in self.manager.remove_expired_offsets(now_ms, retention_ms):
            self._delete_group(group)

    # -- groups --------------------------------------------------------------------------

    def list_groups(self, states: Iterable[str] = (), types: Iterable[str] = ()
                    ) -> tuple[ErrorCode, list[ClassicGroup]]:
        """ListGroups: the groups of this broker (state and type filters are case-insensitive)."""
        wanted_states = {s.lower() for s in states}
        wanted_types = {t.lower() for t in types}
        if wanted_types and CLASSIC_GROUP_TYPE not in wanted_types:
            return ErrorCode.none, []
        error = ErrorCode.coordinator_load_in_progress if self.manager.loading_partitions else ErrorCode.none
        groups = [g for g in self.manager.groups.values()
                  if not wanted_states or g.state.value.lower() in wanted_states]
        return error, groups

    def describe_group(self, group_id: str) -> tuple[ErrorCode, ClassicGroup | None]:
        """DescribeGroups for one group: None when it does not exist (Kafka describes it as Dead)."""
        error = self.validate_group_status(group_id, allow_empty_id=True)
        return error, self.manager.groups.get(group_id) if error == ErrorCode.none else None

    def delete_groups(self, group_ids: Iterable[str]) -> dict[str, ErrorCode]:
        """DeleteGroups: only Empty groups (NON_EMPTY_GROUP otherwise)."""
        results = {}
        for group_id in group_ids:
            error = self.validate_group_status(group_id, allow_empty_id=True)
            group = self.manager.groups.get(group_id)
            if error == ErrorCode.none:
                if group is None:
                    error = ErrorCode.group_id_not_found
                elif not group.is_in(GroupState.EMPTY):
                    error = ErrorCode.non_empty_group
                else:
                    error = self._delete_group(group)
            results[group_id] = error
        return results

    def _delete_group(self, group: ClassicGroup) -> ErrorCode:
        error = self.manager.delete_group(group)
        if error == ErrorCode.none:
            self.membership.unload(group, ErrorCode.coordinator_not_available)
            log.info("deleted group %s", group.group_id)
        return error
