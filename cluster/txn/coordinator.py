"""TransactionCoordinator (Kafka's ``kafka.coordinator.transaction.TransactionCoordinator``, KIP-98).

A transactional id's coordinator is the leader of its ``__transaction_state`` partition
(``transaction_log.partition_for``), placed and failed over as the group coordinator: the topic
is created by the first FindCoordinator for a transaction (``transaction.state.log.num.partitions``
partitions, ``transaction.state.log.replication.factor`` replicas, compacted), and on each new
MetadataImage the partitions this broker now leads are loaded (``TransactionStateManager``), those
it no longer leads dropped, with their markers in flight (``TransactionMarkerChannelManager``).

The APIs follow Kafka's checks and order, transaction version 1 (the client's EndTxn does not
bump the epoch):

* InitProducerId with a transactional id: a new id gets a producer id from the broker's block
  allocator (``ProducerIdManager``) and epoch 0; a known id gets its epoch bumped, fencing older
  instances (KIP-98), with KIP-360's expected producer id/epoch (a retry of a done bump keeps the
  epoch; another instance's → PRODUCER_FENCED); an exhausted epoch rotates to a new producer id;
  an Ongoing transaction is first aborted with a fencing bump and the caller gets
  CONCURRENT_TRANSACTIONS until the abort completes.
* AddPartitionsToTxn (v0-3, the clients' path) and AddOffsetsToTxn (the group's
  ``__consumer_offsets`` partition): Ongoing.
* EndTxn: PrepareCommit/PrepareAbort written, the client answered, then the markers, then
  CompleteCommit/CompleteAbort (``marker_sender``).
* ``abort_timed_out_transactions``: Ongoing past ``transaction.timeout.ms`` → fence and abort;
  ``remove_expired_transactional_ids``: ``transactional.id.expiration.ms``.

Concurrency: event loop only. Each API checks and prepares its transition without awaiting
(the one await is the replication of the record, or a producer-id block before the checks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.metadata_image import MetadataImage
from cluster.controller.topics import NewTopic
from cluster.group.coordinator import Coordinator
from cluster.group.offsets_topic import OFFSETS_TOPIC
from cluster.group.offsets_topic import partition_for as offsets_partition_for
from cluster.txn.marker_sender import SendMarkers, TransactionMarkerChannelManager
from cluster.txn.state_manager import (
    CoordinatorEpochAndMetadata,
    TransactionConfig,
    TransactionStateManager,
    now_ms,
)
from cluster.txn.transaction_log import (
    TRANSACTION_STATE_TOPIC,
    TopicPartition,
    topic_config,
)
from cluster.txn.transaction_metadata import (
    NO_PRODUCER_EPOCH,
    TransactionMetadata,
    TransactionState,
    TxnTransitMetadata,
    is_epoch_exhausted,
)
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.broker import Broker

log = logging.getLogger(__name__)

_S = TransactionState
#: Longest an AddPartitionsToTxn waits for the previous transaction's markers before it answers
#: CONCURRENT_TRANSACTIONS (far below the clients' request timeouts of 30 s and more).
CONCURRENT_TXN_WAIT_S = 0.5


@dataclass(frozen=True)
class InitProducerIdResult:
    """InitProducerId's answer."""

    error: ErrorCode
    producer_id: int = -1
    producer_epoch: int = -1


class TransactionCoordinator:
    """The transaction APIs for the transactional ids this broker coordinates."""

    def __init__(self, broker: Broker, config: TransactionConfig | None = None,
                 send_markers: SendMarkers | None = None) -> None:
        self.broker = broker
        self.config = config if config is not None else TransactionConfig.from_broker_config(broker.config)
        self.state = TransactionStateManager(broker, self.config)
        self.markers = TransactionMarkerChannelManager(broker, self.state, send_markers)
        self._loads: dict[int, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[ErrorCode]] = set()
        self._last_abort_ms = self._last_expire_ms = now_ms()

    # -- placement -----------------------------------------------------------------------

    def transaction_topic(self) -> NewTopic:
        """How ``__transaction_state`` is created."""
        return NewTopic(TRANSACTION_STATE_TOPIC, self.config.num_partitions, self.config.replication_factor,
                        config=topic_config(self.config.min_isr))

    async def find_coordinator(self, transactional_id: str) -> Coordinator:
        """The leader of the id's partition, creating ``__transaction_state`` if needed."""
        if TRANSACTION_STATE_TOPIC not in self.broker.image.topics:
            results = await self.broker.requests.create_topics([self.transaction_topic()])
            if results[0].error_code not in (ErrorCode.none, ErrorCode.topic_already_exists):
                return Coordinator(ErrorCode.coordinator_not_available, error_message=results[0].error_message)
        image = self.broker.image
        topic = image.topics.get(TRANSACTION_STATE_TOPIC)
        placement = topic.partitions.get(self.state.partition_for(transactional_id)) if topic is not None else None
        broker = image.brokers.get(placement.leader) if placement is not None else None
        if broker is None:
            return Coordinator(ErrorCode.coordinator_not_available,
                               error_message="the transactional id's partition has no leader")
        return Coordinator(ErrorCode.none, broker)

    def on_metadata_update(self, image: MetadataImage) -> None:
        """Load the partitions this broker now leads (again, at a new leader epoch); drop the others."""
        topic = image.topics.get(TRANSACTION_STATE_TOPIC)
        led = {index: p.leader_epoch for index, p in topic.partitions.items()
               if p.leader == self.broker.node_id} if topic is not None else {}
        known = {index: cache.coordinator_epoch for index, cache in self.state.partitions.items()} | self.state.loading
        for index, epoch in known.items():
            if led.get(index) != epoch:
                self._resign(index)
        for index, epoch in led.items():
            if known.get(index) != epoch:
                self.markers.remove_markers_for_partition(index)
                self.state.begin_loading(index, epoch)
                self._loads[index] = asyncio.get_running_loop().create_task(self._load(index))

    async def _load(self, index: int) -> None:
        try:
            for pending in await self.state.load_partition(index):
                commit = pending.metadata.state == _S.PREPARE_COMMIT
                self.markers.add_txn_markers_to_send(pending.coordinator_epoch, commit, pending.metadata,
                                                     pending.transit)
        except Exception:
            log.exception("cannot load %s-%d; its transactional ids answer COORDINATOR_LOAD_IN_PROGRESS",
                          TRANSACTION_STATE_TOPIC, index)
        finally:
            if self._loads.get(index) is asyncio.current_task():
                del self._loads[index]

    def _resign(self, index: int) -> None:
        task = self._loads.pop(index, None)
        if task is not None:
            task.cancel()
        self.state.unload_partition(index)
        self.markers.remove_markers_for_partition(index)

    def shutdown(self) -> None:
        for index in self.state.owned_partitions | self.state.loading_partitions:
            self._resign(index)
        for task in self._background:
            task.cancel()
        self.markers.shutdown()

    # -- InitProducerId ------------------------------------------------------------------

    async def handle_init_producer_id(self, transactional_id: str, timeout_ms: int,
                                      expected: tuple[int, int] | None = None) -> InitProducerIdResult:
        """InitProducerId with a transactional id; ``expected`` = KIP-360's (producer id, epoch)."""
        if not transactional_id:
            return InitProducerIdResult(ErrorCode.invalid_request)
        if not self.state.validate_transaction_timeout_ms(timeout_ms):
            return InitProducerIdResult(ErrorCode.invalid_transaction_timeout)
        new_producer_id: int | None = None
        for _ in range(3):  # a producer id may be needed; it is fetched before the checks
            error, found = self.state.get_transaction_state(transactional_id)
            if error != ErrorCode.none:
                return InitProducerIdResult(error)
            if new_producer_id is None and (found is None or self._needs_rotation(found.metadata, expected)):
                try:
                    new_producer_id = await self.broker.producer_ids.next_id()
                except MetadataCommitError:  # no block from the controller yet: retriable
                    return InitProducerIdResult(ErrorCode.coordinator_load_in_progress)
                continue  # the cache may have changed during the await
            if found is None:
                assert new_producer_id is not None
                metadata = TransactionMetadata(transactional_id, new_producer_id, timeout_ms=timeout_ms,
                                               last_update_timestamp_ms=now_ms())
                error, found = self.state.put_transaction_state_if_not_exists(metadata)
                new_producer_id = None
                if error != ErrorCode.none or found is None:
                    return InitProducerIdResult(error)
            if self._needs_rotation(found.metadata, expected) and new_producer_id is None:
                continue
            return await self._init_transit(transactional_id, timeout_ms, found, expected, new_producer_id)
        return InitProducerIdResult(ErrorCode.concurrent_transactions)

    @staticmethod
    def _needs_rotation(metadata: TransactionMetadata, expected: tuple[int, int] | None) -> bool:
        return (metadata.state in (_S.EMPTY, _S.COMPLETE_ABORT, _S.COMPLETE_COMMIT)
                and not metadata.pending_transition_in_progress and metadata.is_producer_epoch_exhausted
                and (expected is None or expected[1] == metadata.producer_epoch))

    async def _init_transit(self, transactional_id: str, timeout_ms: int, found: CoordinatorEpochAndMetadata,
                            expected: tuple[int, int] | None, new_producer_id: int | None) -> InitProducerIdResult:
        """Kafka's ``prepareInitProducerIdTransit`` and what follows it."""
        metadata = found.metadata
        if metadata.pending_transition_in_progress:
            return InitProducerIdResult(ErrorCode.concurrent_transactions)
        if expected is not None and not (
                metadata.producer_epoch == NO_PRODUCER_EPOCH or expected[0] == metadata.producer_id
                or (expected[0] == metadata.last_producer_id and is_epoch_exhausted(expected[1]))):
            return InitProducerIdResult(ErrorCode.producer_fenced)
        if metadata.state in (_S.PREPARE_ABORT, _S.PREPARE_COMMIT):
            return InitProducerIdResult(ErrorCode.concurrent_transactions)
        if metadata.state == _S.ONGOING:
            # abort the open transaction under a bumped epoch never returned to a client; the caller
            # retries and gets a second bump (or a new producer id if the fence exhausted the epochs)
            fence = metadata.prepare_fence_producer_epoch()
            error = await self._fence_and_abort(metadata, fence)
            return InitProducerIdResult(ErrorCode.concurrent_transactions if error == ErrorCode.none else error)
        if metadata.state not in (_S.EMPTY, _S.COMPLETE_ABORT, _S.COMPLETE_COMMIT):
            raise AssertionError(f"{transactional_id} is in {metadata.state.display_name}, never a cached state")
        transit: TxnTransitMetadata | None
        if new_producer_id is not None and self._needs_rotation(metadata, expected):
            transit = metadata.prepare_producer_id_rotation(new_producer_id, timeout_ms, now_ms(), expected is not None)
        else:
            transit = metadata.prepare_increment_producer_epoch(timeout_ms, None if expected is None else expected[1],
                                                                now_ms())
        if transit is None:
            return InitProducerIdResult(ErrorCode.producer_fenced)
        error = await self.state.append_transaction_to_log(transactional_id, found.coordinator_epoch, transit)
        if error != ErrorCode.none:
            return InitProducerIdResult(error)
        log.info("initialized transactional id %s: producer id %d epoch %d", transactional_id, transit.producer_id,
                 transit.producer_epoch)
        return InitProducerIdResult(ErrorCode.none, transit.producer_id, transit.producer_epoch)

    # -- AddPartitionsToTxn / AddOffsetsToTxn --------------------------------------------

    async def handle_add_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                                    partitions: Iterable[TopicPartition], wait_s: float | None = None) -> ErrorCode:
        """AddPartitionsToTxn (one error for all the partitions; the handler checks they exist).

        While the previous transaction's markers are in flight (PrepareCommit/PrepareAbort), the
        answer waits for them up to ``wait_s`` (default ``CONCURRENT_TXN_WAIT_S``) and the request
        is checked again, instead of answering CONCURRENT_TRANSACTIONS at once: a producer that
        starts its next transaction right after EndTxn (librdkafka retries only after 20 ms or
        more) is answered as soon as the markers are written. CONCURRENT_TRANSACTIONS if not."""
        if not transactional_id:
            return ErrorCode.invalid_request
        added = frozenset(partitions)
        while True:
            error = await self._add_partitions(transactional_id, producer_id, producer_epoch, added)
            if error != ErrorCode.concurrent_transactions or wait_s == 0:
                return error
            wait_s = CONCURRENT_TXN_WAIT_S if wait_s is None else wait_s
            started = asyncio.get_running_loop().time()
            if not await self.markers.wait_for_completion(transactional_id, wait_s):
                return error
            wait_s = max(0.0, wait_s - (asyncio.get_running_loop().time() - started))

    async def _add_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                              added: frozenset[TopicPartition]) -> ErrorCode:
        error, found = self.state.get_transaction_state(transactional_id)
        if error != ErrorCode.none:
            return error
        if found is None or found.metadata.producer_id != producer_id:
            return ErrorCode.invalid_producer_id_mapping
        metadata = found.metadata
        if metadata.producer_epoch != producer_epoch:
            return ErrorCode.producer_fenced
        if metadata.pending_transition_in_progress or metadata.state in (_S.PREPARE_COMMIT, _S.PREPARE_ABORT):
            return ErrorCode.concurrent_transactions
        if metadata.state == _S.ONGOING and added <= metadata.partitions:
            return ErrorCode.none
        transit = metadata.prepare_add_partitions(added, now_ms())
        return await self.state.append_transaction_to_log(transactional_id, found.coordinator_epoch, transit)

    async def handle_add_offsets(self, transactional_id: str, producer_id: int, producer_epoch: int,
                                 group_id: str) -> ErrorCode:
        """AddOffsetsToTxn: the group's ``__consumer_offsets`` partition joins the transaction."""
        topic = self.broker.image.topics.get(OFFSETS_TOPIC)
        count = len(topic.partitions) if topic is not None else int(self.broker.config["offsets.topic.num.partitions"])
        tp = (OFFSETS_TOPIC, offsets_partition_for(group_id, count))
        return await self.handle_add_partitions(transactional_id, producer_id, producer_epoch, [tp])

    # -- EndTxn --------------------------------------------------------------------------

    async def handle_end_txn(self, transactional_id: str, producer_id: int, producer_epoch: int,
                             commit: bool) -> ErrorCode:
        """EndTxn from a client."""
        return await self._end_transaction(transactional_id, producer_id, producer_epoch, commit, from_client=True)

    async def _end_transaction(self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool,
                               from_client: bool) -> ErrorCode:
        """Kafka's ``endTransaction``: Prepare* written, then (answered) markers and Complete*."""
        if not transactional_id:
            return ErrorCode.invalid_request
        error, found = self.state.get_transaction_state(transactional_id)
        if error != ErrorCode.none:
            return error
        if found is None or found.metadata.producer_id != producer_id:
            return ErrorCode.invalid_producer_id_mapping
        metadata, coordinator_epoch = found.metadata, found.coordinator_epoch
        if (from_client and producer_epoch != metadata.producer_epoch) or producer_epoch < metadata.producer_epoch:
            return ErrorCode.producer_fenced
        fencing = metadata.pending_state == _S.PREPARE_EPOCH_FENCE
        if metadata.pending_transition_in_progress and not fencing:
            return ErrorCode.concurrent_transactions
        state = metadata.state
        if state == _S.ONGOING:
            if fencing and not commit:  # the fence's bumped epoch goes into the PrepareAbort record
                metadata.pending_state = None
                metadata.producer_epoch, metadata.last_producer_epoch = producer_epoch, NO_PRODUCER_EPOCH
            transit = metadata.prepare_abort_or_commit(_S.PREPARE_COMMIT if commit else _S.PREPARE_ABORT, now_ms())
        elif state in (_S.COMPLETE_COMMIT, _S.COMPLETE_ABORT):
            return ErrorCode.none if (state == _S.COMPLETE_COMMIT) == commit else ErrorCode.invalid_txn_state
        elif state in (_S.PREPARE_COMMIT, _S.PREPARE_ABORT):
            return ErrorCode.concurrent_transactions if (state == _S.PREPARE_COMMIT) == commit \
                else ErrorCode.invalid_txn_state
        else:  # Empty
            return ErrorCode.invalid_txn_state
        error = await self.state.append_transaction_to_log(transactional_id, coordinator_epoch, transit)
        if error != ErrorCode.none:
            if fencing:
                _, again = self.state.get_transaction_state(transactional_id)
                if again is not None and again.coordinator_epoch == coordinator_epoch:
                    again.metadata.has_failed_epoch_fence = True
                    log.warning("the fence of %s was not written (%s); epoch %d was never returned",
                                transactional_id, error.name, producer_epoch)
            return error
        return self._send_markers(transactional_id, producer_id, producer_epoch, commit, coordinator_epoch)

    def _send_markers(self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool,
                      coordinator_epoch: int) -> ErrorCode:
        """After Prepare* is replicated: check again (Kafka's preSendResult), then send the markers."""
        error, found = self.state.get_transaction_state(transactional_id)
        if error != ErrorCode.none:
            return error
        if found is None or found.coordinator_epoch != coordinator_epoch:
            return ErrorCode.not_coordinator
        metadata = found.metadata
        if metadata.producer_id != producer_id:
            return ErrorCode.invalid_producer_id_mapping
        if metadata.producer_epoch != producer_epoch:
            return ErrorCode.producer_fenced
        if metadata.pending_transition_in_progress:
            return ErrorCode.concurrent_transactions
        if metadata.state != (_S.PREPARE_COMMIT if commit else _S.PREPARE_ABORT):
            return ErrorCode.invalid_txn_state
        self.markers.add_txn_markers_to_send(coordinator_epoch, commit, metadata, metadata.prepare_complete(now_ms()))
        return ErrorCode.none

    # -- timeouts and expiry -------------------------------------------------------------

    def abort_timed_out_transactions(self, now: int) -> list[asyncio.Task[ErrorCode]]:
        """Fence and abort every Ongoing transaction past its timeout (Kafka's
        ``abortTimedOutTransactions``); returns the aborts under way."""
        aborts = []
        for timed_out in self.state.timed_out_transactions(now):
            error, found = self.state.get_transaction_state(timed_out.transactional_id)
            if error != ErrorCode.none or found is None:
                continue
            metadata = found.metadata
            if metadata.producer_id != timed_out.producer_id or metadata.pending_transition_in_progress:
                continue
            fence = metadata.prepare_fence_producer_epoch()
            log.info("aborting the transaction of %s (producer id %d): open for more than %d ms",
                     metadata.transactional_id, metadata.producer_id, metadata.timeout_ms)
            aborts.append(asyncio.get_running_loop().create_task(self._fence_and_abort(metadata, fence)))
        return aborts

    async def _fence_and_abort(self, metadata: TransactionMetadata, fence: TxnTransitMetadata) -> ErrorCode:
        """Abort ``metadata``'s open transaction under the fence's bumped epoch."""
        error = await self._end_transaction(metadata.transactional_id, fence.producer_id, fence.producer_epoch,
                                            commit=False, from_client=False)
        if metadata.pending_state == _S.PREPARE_EPOCH_FENCE:  # refused before its write: nothing pending
            metadata.pending_state = None
        return error

    def maintenance(self, now: int) -> None:
        """Run the periodic work when its interval has passed (called by the broker's maintenance loop)."""
        if now - self._last_abort_ms >= self.config.abort_timed_out_interval_ms:
            self._last_abort_ms = now
            for task in self.abort_timed_out_transactions(now):  # kept referenced until done
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        if now - self._last_expire_ms >= self.config.remove_expired_interval_ms:
            self._last_expire_ms = now
            self.state.remove_expired_transactional_ids(now)
