"""Offsets committed in transactions (KIP-98, KIP-447): the transactional part of Kafka's group coordinator.

A transactional producer commits its consumer's offsets with TxnOffsetCommit. As Kafka's
``GroupMetadataManager.storeOffsets`` with a producer id, the offsets are appended to the group's
``__consumer_offsets`` partition as a *transactional* batch carrying the producer id and epoch
(acks=all), so the log tracks the open transaction there (the LSO stops at it, an ABORT marker
indexes it), and they are kept per producer id as pending
(``GroupMetadata.pendingTransactionalOffsetCommits``): OffsetFetch does not show them, and answers
UNSTABLE_OFFSET_COMMIT for them when asked for stable offsets (``require_stable``, KIP-447).

The transaction coordinator ends the transaction with a COMMIT or ABORT marker written to that
partition; once the marker is replicated the WriteTxnMarkers handler tells the group coordinator
(Kafka's ``GroupCoordinator.onTransactionCompleted`` → ``handleTxnCompletion``): on COMMIT the
pending offsets become committed unless the partition has a newer commit (a later log position,
``CommitRecordMetadataAndOffset.olderThan``), on ABORT they are dropped.

Loading (``OffsetsReplay``, Kafka's ``loadGroupsAndOffsets``) replays the same way: transactional
records are pending per producer id until the marker that ends them, so a new coordinator never
shows offsets of an aborted transaction; transactions still open at the log end stay pending.

Concurrency: event loop only; nothing here awaits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from cluster.group.group import (
    ClassicGroup,
    GroupState,
    PendingTxnOffset,
    TopicPartition,
)
from cluster.group.offsets_topic import (
    OFFSETS_TOPIC,
    CorruptOffsetsRecordError,
    GroupMetadataValue,
    OffsetCommitKey,
    OffsetCommitValue,
    decode_group_metadata_value,
    decode_key,
    decode_offset_commit_value,
    offset_commit_record,
)
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.group.metadata_manager import GroupMetadataManager

log = logging.getLogger(__name__)

#: Kafka's base sequence of the coordinator's transactional offset batches (sequences are not checked).
TXN_OFFSETS_BASE_SEQUENCE = 0


def validate_txn_offset_commit(group: ClassicGroup, member_id: str, group_instance_id: str | None,
                               generation_id: int) -> ErrorCode:
    """May this (transactional) producer commit for the group? Kafka 4.x's
    ``ClassicGroup.validateOffsetCommit`` with ``isTransactional``: generation -1 on an Empty group
    (or a v0-2 request, which has no member fields) is accepted; a request naming a member is
    fenced when the member is gone (UNKNOWN_MEMBER_ID), its static instance has another member
    id (FENCED_INSTANCE_ID) or its generation is not the group's (ILLEGAL_GENERATION) — KIP-447's
    fencing of a zombie consumer. Unlike OffsetCommit, a rebalance in progress does not refuse it."""
    if group.is_in(GroupState.DEAD):
        return ErrorCode.coordinator_not_available
    if generation_id < 0 and group.is_in(GroupState.EMPTY):
        return ErrorCode.none
    if generation_id >= 0 or member_id or group_instance_id is not None:
        if group_instance_id is not None:
            known = group.static_members.get(group_instance_id)
            if known is None:
                return ErrorCode.unknown_member_id
            if known != member_id:
                return ErrorCode.fenced_instance_id
        if member_id not in group.members:
            return ErrorCode.unknown_member_id
        if generation_id != group.generation_id:
            return ErrorCode.illegal_generation
    return ErrorCode.none


def complete_pending(group: ClassicGroup, producer_id: int, commit: bool) -> int:
    """End ``producer_id``'s transaction for the group (Kafka's ``completePendingTxnOffsetCommit``):
    on commit its offsets replace the cached ones that are older; returns how many did."""
    pending = group.pending_txn_offsets.pop(producer_id, {})
    installed = 0
    if commit:
        for tp, (value, position) in pending.items():
            if group.offset_positions.get(tp, -1) < position:
                group.offsets[tp] = value
                group.offset_positions[tp] = position
                installed += 1
    return installed


def has_pending(group: ClassicGroup, tp: TopicPartition) -> bool:
    """Does an open transaction hold offsets of ``tp`` (KIP-447's unstable offset)?"""
    return any(tp in offsets for offsets in group.pending_txn_offsets.values())


class TxnOffsets:
    """The transactional offset commits of a GroupMetadataManager's groups."""

    def __init__(self, manager: GroupMetadataManager) -> None:
        self.manager = manager

    def store(self, group: ClassicGroup, producer_id: int, producer_epoch: int,
              offsets: Mapping[TopicPartition, OffsetCommitValue]) -> asyncio.Future[ErrorCode]:
        """Append ``offsets`` as a transactional batch of ``producer_id``/``producer_epoch`` and
        keep them pending (Kafka's ``storeOffsets`` with a producer id); the future is done once
        the ISR has the batch. They are pending from the leader's write on, so a marker that
        arrives before replication completes finds them; a failed append forgets them again
        (``failPendingTxnOffsetCommit``)."""
        records = [offset_commit_record(group.group_id, tp, value) for tp, value in offsets.items()]
        stored, position = self.manager.append_transactional(group.group_id, records, producer_id, producer_epoch)
        if position >= 0:
            pending = group.pending_txn_offsets.setdefault(producer_id, {})
            for tp, value in offsets.items():
                pending[tp] = PendingTxnOffset(value, position)
        answer: asyncio.Future[ErrorCode] = asyncio.get_running_loop().create_future()

        def settle(done: asyncio.Future[tuple[ErrorCode, int]]) -> None:
            error = done.result()[0]
            if error != ErrorCode.none and position >= 0:
                self._forget(group, producer_id, offsets, position)
            answer.set_result(error)

        if stored.done():
            settle(stored)
        else:
            stored.add_done_callback(settle)
        return answer

    @staticmethod
    def _forget(group: ClassicGroup, producer_id: int, offsets: Iterable[TopicPartition], position: int) -> None:
        pending = group.pending_txn_offsets.get(producer_id)
        if pending is None:
            return
        for tp in offsets:
            if tp in pending and pending[tp].position == position:
                del pending[tp]
        if not pending:
            del group.pending_txn_offsets[producer_id]

    def complete(self, index: int, producer_id: int, commit: bool) -> None:
        """A COMMIT/ABORT marker of ``producer_id`` is replicated in partition ``index`` (Kafka's
        ``handleTxnCompletion``): end the producer's pending offsets of that partition's groups."""
        if index not in self.manager.owned_partitions:
            return
        for group in list(self.manager.groups.values()):
            if producer_id in group.pending_txn_offsets and self.manager.partition_for(group.group_id) == index:
                installed = complete_pending(group, producer_id, commit)
                log.debug("producer %d %s its offsets of group %s (%d installed)", producer_id,
                          "committed" if commit else "aborted", group.group_id, installed)

    def unstable(self, group_id: str, partitions: Iterable[TopicPartition]) -> set[TopicPartition]:
        """Of ``partitions``, those with offsets pending in an open transaction."""
        group = self.manager.groups.get(group_id)
        if group is None or not group.pending_txn_offsets:
            return set()
        return {tp for tp in partitions if has_pending(group, tp)}


class OffsetsReplay:
    """The state of one ``__consumer_offsets`` partition being loaded (Kafka's
    ``loadGroupsAndOffsets``): newest record per key wins, tombstones delete; records of a
    transactional batch are pending per producer id until its COMMIT (installed where no newer
    commit exists) or ABORT (dropped) marker."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.offsets: dict[str, dict[TopicPartition, PendingTxnOffset]] = {}
        """Committed offsets with the log offset of their record."""
        self.metadata: dict[str, GroupMetadataValue | None] = {}
        self.pending: dict[int, dict[str, dict[TopicPartition, PendingTxnOffset]]] = {}
        """Producer id → group → offsets of its open transaction."""

    def record(self, key: bytes, value: bytes | None, offset: int, producer_id: int | None = None) -> None:
        """Apply one record; ``producer_id`` when it is in a transactional batch."""
        try:
            decoded = decode_key(key)
            if not isinstance(decoded, OffsetCommitKey):
                if producer_id is None:
                    self.metadata[decoded.group] = None if value is None else decode_group_metadata_value(value)
                return
            tp = (decoded.topic, decoded.partition)
            if producer_id is None:
                target = self.offsets.setdefault(decoded.group, {})
            else:
                target = self.pending.setdefault(producer_id, {}).setdefault(decoded.group, {})
            if value is None:
                target.pop(tp, None)
            else:
                target[tp] = PendingTxnOffset(decode_offset_commit_value(value), offset)
        except CorruptOffsetsRecordError as exc:  # keep loading: one bad record must not block the others
            log.error("skipping the record at %s-%d offset %d: %s", OFFSETS_TOPIC, self.index, offset, exc)

    def marker(self, producer_id: int, commit: bool) -> None:
        """An end-transaction marker of ``producer_id``."""
        for group_id, pending in self.pending.pop(producer_id, {}).items():
            if not commit:
                continue
            committed = self.offsets.setdefault(group_id, {})
            for tp, entry in pending.items():
                if tp not in committed or committed[tp].position < entry.position:
                    committed[tp] = entry

    def group_ids(self) -> set[str]:
        """Groups with offsets (committed or pending) or metadata."""
        ids = {g for g, offsets in self.offsets.items() if offsets}
        ids |= {g for g, value in self.metadata.items() if value is not None}
        ids |= {g for groups in self.pending.values() for g, offsets in groups.items() if offsets}
        return ids

    def install(self, group: ClassicGroup) -> None:
        """Give a loaded group its committed and pending offsets."""
        committed = self.offsets.get(group.group_id, {})
        group.offsets = {tp: entry.value for tp, entry in committed.items()}
        group.offset_positions = {tp: entry.position for tp, entry in committed.items()}
        for producer_id, groups in self.pending.items():
            if groups.get(group.group_id):
                group.pending_txn_offsets[producer_id] = dict(groups[group.group_id])
