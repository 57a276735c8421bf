"""GroupMetadataManager (Kafka's): the group cache and its ``__consumer_offsets`` records.

Every change — committed offsets, a group's generation and assignment, deletions (tombstones) —
is one record batch appended to the group's ``__consumer_offsets`` partition *before* the cache
changes. Offset commits and generations are appended with acks=all, as Kafka's: the cache
changes and the client is answered once every in-sync replica has the batch (the high watermark
covers it), so an acknowledged commit survives the coordinator's node (``offsets.commit.timeout.ms``
bounds the wait; a timeout or a shrunken ISR answers COORDINATOR_NOT_AVAILABLE, and the client
retries). When this broker becomes leader of a partition, ``load_partition`` replays it to its log
end (newest record per key wins, tombstones delete) into ClassicGroup objects; until then the
partition's groups answer COORDINATOR_LOAD_IN_PROGRESS. Offsets committed in transactions
(TxnOffsetCommit) are appended as the producer's transactional batches and stay pending per
producer id until the transaction's marker, at run time and when loading (``cluster.group.txn_offsets``).

Concurrency: event loop only. Appends do not await: they return a future of the outcome that is
already done when there is nothing to wait for, and its callback updates the cache, so a cache
update never interleaves with a request's checks. ``load_partition`` awaits between chunks, but
no request reaches a partition's groups while it is loading, and only transaction markers are
appended to it meanwhile (the loader reads the log end again each step, so it replays them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from cluster.group.group import ClassicGroup, GroupState, TopicPartition, now_ms
from cluster.group.membership import completed
from cluster.group.offsets_topic import (
    OFFSETS_TOPIC,
    GroupMetadataKey,
    OffsetCommitValue,
    OffsetsRecord,
    encode_group_metadata_key,
    encode_group_metadata_value,
    offset_commit_record,
    partition_for,
)
from cluster.group.txn_offsets import (
    TXN_OFFSETS_BASE_SEQUENCE,
    OffsetsReplay,
    TxnOffsets,
)
from cluster.log.producer_state import ProducerStateError
from cluster.log.transactions import Origin, end_txn_marker
from cluster.log.validator import RecordValidationError
from cluster.replication.delayed_produce import (
    COORDINATOR_APPEND_ERRORS,
    COORDINATOR_LOAD_CHUNK_BYTES,
    when_replicated,
)
from cluster.replication.partition import NotLeaderError, Partition, PartitionError
from pykafka_ops.errors import ErrorCode
from pykafka_ops.records.batch import RecordBatch, iter_batches
from pykafka_ops.records.builder import RecordBatchBuilder
from pykafka_ops.records.record import ControlRecordType

if TYPE_CHECKING:
    from cluster.broker import Broker

log = logging.getLogger(__name__)

_TOO_LARGE = (ErrorCode.message_too_large, ErrorCode.record_list_too_large, ErrorCode.invalid_fetch_size)


class GroupMetadataManager:
    """Groups of the ``__consumer_offsets`` partitions this broker leads."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.groups: dict[str, ClassicGroup] = {}
        """Live groups (never Dead) of owned partitions."""
        self.owned_partitions: set[int] = set()
        self.loading_partitions: set[int] = set()
        self.txn = TxnOffsets(self)
        """Offsets committed in transactions (TxnOffsetCommit, KIP-447)."""

    # -- placement -----------------------------------------------------------------------

    def num_partitions(self) -> int:
        """Partitions of ``__consumer_offsets``: the topic's, or offsets.topic.num.partitions before it exists."""
        topic = self.broker.image.topics.get(OFFSETS_TOPIC)
        return len(topic.partitions) if topic is not None else int(self.broker.config["offsets.topic.num.partitions"])

    def partition_for(self, group_id: str) -> int:
        return partition_for(group_id, self.num_partitions())

    def is_loading(self, group_id: str) -> bool:
        return self.partition_for(group_id) in self.loading_partitions

    def is_local(self, group_id: str) -> bool:
        return self.partition_for(group_id) in self.owned_partitions

    def add_group(self, group_id: str) -> ClassicGroup:
        """A new Empty group in the cache (nothing is written until it has a generation or offsets)."""
        group = self.groups[group_id] = ClassicGroup(group_id, now_ms())
        return group

    # -- appends -------------------------------------------------------------------------

    def _append(self, group_id: str, records: list[OffsetsRecord], too_large: ErrorCode,
                replicated: bool = True) -> asyncio.Future[tuple[ErrorCode, int]]:
        """Append ``records`` as one batch to the group's partition; a future of (error, offset of
        the batch's last record). With ``replicated`` (offset commits and group generations) it
        completes once the ISR has the batch (acks=all, ``offsets.commit.timeout.ms``), else at the
        leader's write (tombstones: Kafka's ``cleanupGroupMetadata`` does not wait either). Already
        done whenever nothing is left to wait for, so the caller may answer in the same turn."""
        return self._append_batch(group_id, records, too_large, replicated)[0]

    def append_transactional(self, group_id: str, records: list[OffsetsRecord], producer_id: int, producer_epoch: int
                             ) -> tuple[asyncio.Future[tuple[ErrorCode, int]], int]:
        """Append offset ``records`` as a transactional batch of the producer (TxnOffsetCommit,
        ``cluster.group.txn_offsets``), acks=all; (the future as ``_append``'s, the offset of the
        batch's last record or -1 when the leader did not write it)."""
        return self._append_batch(group_id, records, ErrorCode.invalid_commit_offset_size, True,
                                  (producer_id, producer_epoch))

    def _append_batch(self, group_id: str, records: list[OffsetsRecord], too_large: ErrorCode, replicated: bool,
                      producer: tuple[int, int] | None = None) -> tuple[asyncio.Future[tuple[ErrorCode, int]], int]:
        partition = self.broker.replica_manager.partition(OFFSETS_TOPIC, self.partition_for(group_id))
        if partition is None:
            return completed((ErrorCode.not_coordinator, -1)), -1
        now = now_ms()
        builder = RecordBatchBuilder() if producer is None else RecordBatchBuilder(
            producer_id=producer[0], producer_epoch=producer[1], base_sequence=TXN_OFFSETS_BASE_SEQUENCE,
            is_transactional=True)
        for key, value in records:
            builder.append(key, value, timestamp_ms=now)
        origin = Origin.CLIENT if producer is None else Origin.COORDINATOR
        try:
            info = partition.append_records_to_leader(memoryview(bytearray(builder.build())), -1, now, origin)
        except NotLeaderError:
            return completed((ErrorCode.not_coordinator, -1)), -1
        except (RecordValidationError, PartitionError, ProducerStateError) as exc:
            log.warning("cannot write group %s to %s: %s", group_id, OFFSETS_TOPIC, exc)
            return completed((_append_error(exc.error_code, too_large), -1)), -1
        except OSError as exc:
            log.error("cannot write group %s to %s: %s", group_id, OFFSETS_TOPIC, exc)
            return completed((ErrorCode.not_coordinator, -1)), -1
        return self._replicated(partition, info.last_offset, too_large, replicated), info.last_offset

    def _replicated(self, partition: Partition, last_offset: int, too_large: ErrorCode,
                    replicated: bool) -> asyncio.Future[tuple[ErrorCode, int]]:
        if not replicated:
            return completed((ErrorCode.none, last_offset))
        timeout_ms = int(self.broker.config["offsets.commit.timeout.ms"])
        acked = when_replicated(partition, last_offset + 1, partition.leader_epoch, timeout_ms)
        if acked.done():
            return completed((_append_error(acked.result(), too_large), last_offset))
        answer: asyncio.Future[tuple[ErrorCode, int]] = asyncio.get_running_loop().create_future()
        acked.add_done_callback(
            lambda done: answer.set_result((_append_error(done.result(), too_large), last_offset)))
        return answer

    def store_group(self, group: ClassicGroup, assignment: dict[str, bytes],
                    on_stored: Callable[[ErrorCode], None]) -> None:
        """Persist the group's generation, members and ``assignment`` (member id → bytes); call
        ``on_stored`` with the outcome once the ISR has it (Kafka's ``storeGroup`` callback)."""
        key = encode_group_metadata_key(GroupMetadataKey(group.group_id))
        value = encode_group_metadata_value(group.to_record(assignment))
        stored = self._append(group.group_id, [(key, value)], ErrorCode.unknown_server_error)
        if stored.done():
            on_stored(stored.result()[0])
        else:
            stored.add_done_callback(lambda done: on_stored(done.result()[0]))

    def store_offsets(self, group: ClassicGroup, offsets: Mapping[TopicPartition, OffsetCommitValue]
                      ) -> asyncio.Future[ErrorCode]:
        """Persist committed offsets; once the ISR has them, cache them (a commit replicated
        after a later one of the same partition leaves the later one cached) and answer."""
        records = [offset_commit_record(group.group_id, tp, value) for tp, value in offsets.items()]
        stored = self._append(group.group_id, records, ErrorCode.invalid_commit_offset_size)
        answer: asyncio.Future[ErrorCode] = asyncio.get_running_loop().create_future()

        def cache(done: asyncio.Future[tuple[ErrorCode, int]]) -> None:
            error, position = done.result()
            if error == ErrorCode.none:
                for tp, value in offsets.items():
                    if group.offset_positions.get(tp, -1) < position:
                        group.offsets[tp] = value
                        group.offset_positions[tp] = position
            answer.set_result(error)

        if stored.done():
            cache(stored)
        else:
            stored.add_done_callback(cache)
        return answer

    def remove_offsets(self, group: ClassicGroup, partitions: Iterable[TopicPartition]) -> ErrorCode:
        """Write tombstones for the group's offsets of ``partitions``, then forget them."""
        doomed = [tp for tp in partitions if tp in group.offsets]
        if not doomed:
            return ErrorCode.none
        error = self._append(group.group_id, [offset_commit_record(group.group_id, tp, None) for tp in doomed],
                             ErrorCode.unknown_server_error, replicated=False).result()[0]
        if error == ErrorCode.none:
            for tp in doomed:
                del group.offsets[tp]
                group.offset_positions.pop(tp, None)
        return error

    def delete_group(self, group: ClassicGroup) -> ErrorCode:
        """Tombstones for all its offsets and (if it ever had a generation) its metadata; then
        drop it from the cache. A group with generation 0 only stored offsets: no metadata record."""
        records = [offset_commit_record(group.group_id, tp, None) for tp in group.offsets]
        if group.generation_id > 0:
            records.append((encode_group_metadata_key(GroupMetadataKey(group.group_id)), None))
        error = self._append(group.group_id, records, ErrorCode.unknown_server_error,
                             replicated=False).result()[0] if records else ErrorCode.none
        if error == ErrorCode.none:
            group.offsets.clear()
            self.groups.pop(group.group_id, None)
        return error

    # -- expiry --------------------------------------------------------------------------

    def remove_expired_offsets(self, now_ms: int, retention_ms: int) -> list[ClassicGroup]:
        """Expire offsets as Kafka does (KIP-211) and return the Empty groups left without offsets:
        an Empty group's offsets expire ``retention_ms`` after it became Empty; a Stable consumer
        group's offsets of topics it no longer subscribes to, after their commit; a group that
        never had members (offsets only), after their commit."""
        deletable = []
        for group in list(self.groups.values()):
            if group.is_in(GroupState.EMPTY) and group.protocol_type is not None:
                expired = [tp for tp, v in group.offsets.items()
                           if _expired(v, max(group.state_timestamp_ms, 0), now_ms, retention_ms)]
            elif group.is_in(GroupState.STABLE) and group.subscribed_topics is not None:
                expired = [tp for tp, v in group.offsets.items() if tp[0] not in group.subscribed_topics
                           and _expired(v, v.commit_timestamp, now_ms, retention_ms)]
            elif group.protocol_type is None:
                expired = [tp for tp, v in group.offsets.items()
                           if _expired(v, v.commit_timestamp, now_ms, retention_ms)]
            else:
                expired = []
            if expired and self.remove_offsets(group, expired) == ErrorCode.none:
                log.info("expired %d offset(s) of group %s", len(expired), group.group_id)
            if group.is_in(GroupState.EMPTY) and not group.offsets and not group.pending_txn_offsets:
                deletable.append(group)
        return deletable

    # -- loading -------------------------------------------------------------------------

    def begin_loading(self, index: int) -> None:
        """From now on the partition's groups answer COORDINATOR_LOAD_IN_PROGRESS."""
        self.loading_partitions.add(index)

    async def load_partition(self, index: int) -> list[ClassicGroup]:
        """Replay partition ``index`` (after ``begin_loading``) into the cache; returns
        the groups loaded. Gives up quietly if the partition stops being ours meanwhile."""
        partition = self.broker.replica_manager.partition(OFFSETS_TOPIC, index)
        if partition is None:
            self.loading_partitions.discard(index)
            return []
        started = time.monotonic()
        replay = OffsetsReplay(index)
        partition_log = partition.log
        # to the log end, as Kafka's loader: a new leader's high watermark may still lag behind
        # commits the previous leader acknowledged; its log, as leader, is the partition's truth.
        # The end is read again each step: transaction markers may be appended while loading
        offset = partition_log.log_start_offset
        while offset < (end := partition_log.log_end_offset):
            data = partition_log.read(offset, COORDINATOR_LOAD_CHUNK_BYTES, end, min_one_batch=True)
            next_offset = offset
            for position, header in iter_batches(data):
                if header.is_control:  # a transaction's end resolves its pending offsets
                    marker = end_txn_marker(header, data, position)
                    if marker is not None and header.last_offset >= offset:
                        replay.marker(header.producer_id, marker.type == ControlRecordType.COMMIT)
                else:
                    producer_id = header.producer_id if header.is_transactional else None
                    for record in RecordBatch(data, position).records():
                        if record.offset >= offset and record.key is not None:
                            replay.record(record.key, record.value, record.offset, producer_id)
                next_offset = header.last_offset + 1
            if next_offset == offset:  # nothing more below the high watermark (compacted away)
                break
            offset = next_offset
            await asyncio.sleep(0)  # let other partitions' requests run between chunks
        if index not in self.loading_partitions:
            return []
        loaded = self._install(replay)
        self.loading_partitions.discard(index)
        self.owned_partitions.add(index)
        log.info("loaded %d group(s) from %s-%d in %.0f ms", len(loaded), OFFSETS_TOPIC, index,
                 (time.monotonic() - started) * 1000)
        return loaded

    def _install(self, replay: OffsetsReplay) -> list[ClassicGroup]:
        now = now_ms()
        loaded = []
        for group_id in replay.group_ids():
            value = replay.metadata.get(group_id)
            group = ClassicGroup.from_record(group_id, value, now) if value else ClassicGroup(group_id, now)
            replay.install(group)
            self.groups[group_id] = group
            loaded.append(group)
        return loaded

    def unload_partition(self, index: int) -> list[ClassicGroup]:
        """Forget partition ``index`` (no longer led here); returns its groups, now uncached."""
        self.loading_partitions.discard(index)
        self.owned_partitions.discard(index)
        gone = [g for g in self.groups.values() if self.partition_for(g.group_id) == index]
        for group in gone:
            del self.groups[group.group_id]
        return gone


def _append_error(error: ErrorCode, too_large: ErrorCode) -> ErrorCode:
    """How an append's error reaches the client (Kafka's GroupCoordinatorService.normalizeException)."""
    return too_large if error in _TOO_LARGE else COORDINATOR_APPEND_ERRORS.get(error, error)


def _expired(value: OffsetCommitValue, base_timestamp: int, now_ms: int, retention_ms: int) -> bool:
    if value.expire_timestamp >= 0:  # a v1 record: the client asked for this expiry time
        return now_ms >= value.expire_timestamp
    return now_ms - base_timestamp >= retention_ms

