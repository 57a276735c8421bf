"""TransactionMarkerChannelManager (Kafka's): the COMMIT/ABORT markers of ended transactions.

Once PrepareCommit/PrepareAbort is replicated (EndTxn, a fence, a timeout, or a transaction found
half-ended when a ``__transaction_state`` partition is loaded), ``add_txn_markers_to_send``
starts one task per transaction that sends WriteTxnMarkers (v1: producer id and epoch, result,
coordinator epoch, the partitions) to the leader of each of its partitions, grouped by leader —
over a ``NodeChannel``, or as a local call into this broker's own WriteTxnMarkers handler when
it leads the partition. Per partition, as Kafka's ``TransactionMarkerRequestCompletionHandler``:

* NONE (and UNSUPPORTED_FOR_MESSAGE_FORMAT, UNSUPPORTED_VERSION) → done; a deleted topic → done;
* NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, NOT_ENOUGH_REPLICAS(_AFTER_APPEND),
  REQUEST_TIMED_OUT, KAFKA_STORAGE_ERROR, no leader, an unreachable node → retried after a
  backoff, looking the leader up again in the newest metadata;
* INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED → the transaction is given up: a newer
  coordinator (or producer epoch) owns it; any other error is logged and given up too.

When every partition has answered, CompleteCommit/CompleteAbort is written (retried while the
append answers COORDINATOR_NOT_AVAILABLE). A transaction is given up as soon as this broker no
longer owns its id at the coordinator epoch the markers carry (``remove_markers_for_partition``).

Concurrency: event loop only; one task per transaction; the metadata is read and changed only
between awaits, after checking the coordinator epoch again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from cluster.network.node_channel import NodeChannel, NodeUnreachableError
from cluster.txn.state_manager import TransactionStateManager, now_ms
from cluster.txn.transaction_log import TopicPartition
from cluster.txn.transaction_metadata import TransactionMetadata, TxnTransitMetadata
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol.api_keys import ApiKey

if TYPE_CHECKING:
    from cluster.broker import Broker

log = logging.getLogger(__name__)

WRITE_TXN_MARKERS_VERSION = 1
RETRY_BACKOFF_S = 0.1
REQUEST_TIMEOUT_S = 30.0

_DONE = frozenset({ErrorCode.none, ErrorCode.unsupported_for_message_format, ErrorCode.unsupported_version})
_RETRY = frozenset({ErrorCode.not_leader_or_follower, ErrorCode.unknown_topic_or_partition,
                    ErrorCode.not_enough_replicas, ErrorCode.not_enough_replicas_after_append,
                    ErrorCode.request_timed_out, ErrorCode.kafka_storage_error, ErrorCode.coordinator_load_in_progress})
_FENCED = frozenset({ErrorCode.invalid_producer_epoch, ErrorCode.transaction_coordinator_fenced})

#: (leader node id, WriteTxnMarkers v1 request body) → the decoded response.
SendMarkers = Callable[[int, dict[str, Any]], Awaitable[Any]]


def marker_request(producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int,
                   partitions: list[TopicPartition]) -> dict[str, Any]:
    """A WriteTxnMarkers v1 request body with one marker for ``partitions``."""
    topics: dict[str, list[int]] = {}
    for topic, index in sorted(partitions):
        topics.setdefault(topic, []).append(index)
    return {"markers": [{"producer_id": producer_id, "producer_epoch": producer_epoch, "transaction_result": commit,
                         "topics": [{"name": t, "partition_indexes": p} for t, p in topics.items()],
                         "coordinator_epoch": coordinator_epoch}]}


def partition_errors(response: Any) -> dict[TopicPartition, ErrorCode]:
    """The per-partition errors of a WriteTxnMarkers response (one marker per request)."""
    errors: dict[TopicPartition, ErrorCode] = {}
    for marker in response.markers:
        for topic in marker.topics:
            for p in topic.partitions:
                errors[(topic.name, p.partition_index)] = ErrorCode(p.error_code)
    return errors


@dataclass
class _PendingTxn:
    transactional_id: str
    txn_partition: int
    coordinator_epoch: int
    commit: bool
    metadata: TransactionMetadata
    transit: TxnTransitMetadata
    remaining: set[TopicPartition] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class TransactionMarkerChannelManager:
    """Sends the markers of ended transactions, then completes them (see module docstring)."""

    def __init__(self, broker: Broker, state: TransactionStateManager, send: SendMarkers | None = None,
                 backoff_s: float = RETRY_BACKOFF_S) -> None:
        self.broker = broker
        self.state = state
        self.backoff_s = backoff_s
        self._channel: NodeChannel | None = None
        self._send = send if send is not None else self._send_to_leader
        self.pending: dict[str, _PendingTxn] = {}
        """Transactional id → its markers in flight."""

    def add_txn_markers_to_send(self, coordinator_epoch: int, commit: bool, metadata: TransactionMetadata,
                                transit: TxnTransitMetadata) -> None:
        """Send the markers of ``metadata``'s partitions, then write ``transit`` (Complete*)."""
        txn_id = metadata.transactional_id
        previous = self.pending.pop(txn_id, None)
        if previous is not None and previous.task is not None:
            previous.task.cancel()
        pending = _PendingTxn(txn_id, self.state.partition_for(txn_id), coordinator_epoch, commit, metadata,
                              transit, set(metadata.partitions))
        self.pending[txn_id] = pending
        pending.task = asyncio.get_running_loop().create_task(self._drive(pending))

    async def wait_for_completion(self, transactional_id: str, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the markers of ``transactional_id`` in flight and its
        Complete* write (or their giving up); True if some were in flight and are now done."""
        pending = self.pending.get(transactional_id)
        if pending is None or pending.task is None:
            return False
        done, _ = await asyncio.wait({pending.task}, timeout=timeout_s)  # never cancels the task
        return bool(done)

    def remove_markers_for_partition(self, txn_partition: int) -> None:
        """Give up the transactions of a ``__transaction_state`` partition (resigned or reloaded)."""
        for txn_id, pending in list(self.pending.items()):
            if pending.txn_partition == txn_partition:
                self._forget(pending)

    def shutdown(self) -> None:
        for pending in list(self.pending.values()):
            self._forget(pending)
        if self._channel is not None:
            self._channel.close()

    def _forget(self, pending: _PendingTxn) -> None:
        if self.pending.get(pending.transactional_id) is pending:
            del self.pending[pending.transactional_id]
        if pending.task is not None and pending.task is not asyncio.current_task():
            pending.task.cancel()

    def _still_owned(self, pending: _PendingTxn) -> bool:
        error, found = self.state.get_transaction_state(pending.transactional_id)
        return (error == ErrorCode.none and found is not None and found.metadata is pending.metadata
                and found.coordinator_epoch == pending.coordinator_epoch)

    async def _drive(self, pending: _PendingTxn) -> None:
        try:
            while pending.remaining:
                if not self._still_owned(pending):
                    log.info("giving up the markers of %s: no longer its coordinator at epoch %d",
                             pending.transactional_id, pending.coordinator_epoch)
                    return
                if not await self._send_round(pending):
                    return
                if pending.remaining:
                    await asyncio.sleep(self.backoff_s)
            await self._complete(pending)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the markers of %s failed", pending.transactional_id)
        finally:
            self._forget(pending)

    async def _send_round(self, pending: _PendingTxn) -> bool:
        """One WriteTxnMarkers per leader of the remaining partitions; False to give up."""
        image = self.broker.image
        by_leader: dict[int, list[TopicPartition]] = {}
        for tp in list(pending.remaining):
            topic = image.topics.get(tp[0])
            if topic is None or tp[1] not in topic.partitions:  # deleted: nothing to mark (Kafka skips it)
                self._mark_done(pending, tp)
                continue
            leader = topic.partitions[tp[1]].leader
            if leader >= 0 and leader in image.brokers:
                by_leader.setdefault(leader, []).append(tp)
        metadata = pending.metadata
        requests = {leader: marker_request(metadata.producer_id, metadata.producer_epoch, pending.commit,
                                           pending.coordinator_epoch, tps) for leader, tps in by_leader.items()}
        answers = await asyncio.gather(*(self._send(leader, body) for leader, body in requests.items()),
                                       return_exceptions=True)
        if not self._still_owned(pending):
            return False
        for (leader, tps), answer in zip(by_leader.items(), answers):
            if isinstance(answer, NodeUnreachableError):
                log.info("markers of %s to broker %d: %s; retrying", pending.transactional_id, leader, answer)
                continue
            if isinstance(answer, BaseException):
                raise answer
            errors = partition_errors(answer)
            for tp in tps:
                error = errors.get(tp, ErrorCode.unknown_server_error)
                if error in _DONE:
                    self._mark_done(pending, tp)
                elif error in _FENCED:
                    log.info("giving up the markers of %s: %s-%d answered %s", pending.transactional_id, *tp,
                             error.name)
                    return False
                elif error not in _RETRY:
                    log.error("giving up the markers of %s: %s-%d answered %s", pending.transactional_id, *tp,
                              error.name)
                    return False
        return True

    def _mark_done(self, pending: _PendingTxn, tp: TopicPartition) -> None:
        pending.remaining.discard(tp)
        pending.metadata.remove_partition(tp)

    async def _complete(self, pending: _PendingTxn) -> None:
        """Write CompleteCommit/CompleteAbort; retried while the log answers COORDINATOR_NOT_AVAILABLE."""
        retry_on = frozenset({ErrorCode.coordinator_not_available})
        transit = pending.transit
        while True:
            if not self._still_owned(pending):
                return
            error = await self.state.append_transaction_to_log(pending.transactional_id, pending.coordinator_epoch,
                                                               transit, retry_on)
            if error == ErrorCode.none:
                log.debug("completed %s (%s)", pending.transactional_id, transit.state.display_name)
                return
            if error not in retry_on:
                log.info("cannot complete %s: %s", pending.transactional_id, error.name)
                return
            await asyncio.sleep(self.backoff_s)
            transit = replace(transit, last_update_timestamp_ms=now_ms())

    # -- transport -----------------------------------------------------------------------

    async def _send_to_leader(self, leader: int, body: dict[str, Any]) -> Any:
        """WriteTxnMarkers v1 to ``leader``: in-process when it is this broker and the handler
        is registered, else over the NodeChannel (Kafka sends to itself over the network too)."""
        if leader == self.broker.node_id:
            local = await _local_call(self.broker, body)
            if local is not None:
                return local
        if self._channel is None:
            self._channel = NodeChannel(self.broker.node_id, self.broker._broker_address)
        answer, _ = await self._channel.send(leader, ApiKey.WRITE_TXN_MARKERS, WRITE_TXN_MARKERS_VERSION, body,
                                             REQUEST_TIMEOUT_S)
        return answer


async def _local_call(broker: Broker, body: dict[str, Any]) -> Any:
    """This broker's WriteTxnMarkers handler called with ``body`` as the wire would carry it (the
    same codec both ways); None if no handler is registered."""
    from cluster.handlers import BROKER, REGISTRY
    from cluster.network.request import RequestContext
    from pykafka_ops.protocol import codec

    handler = REGISTRY[BROKER].get(ApiKey.WRITE_TXN_MARKERS)
    if handler is None or handler.raw:
        return None
    version = WRITE_TXN_MARKERS_VERSION
    frame = codec.encode_request(ApiKey.WRITE_TXN_MARKERS, version, 0, f"txn-coordinator-{broker.node_id}", body)
    request = codec.decode_request(ApiKey.WRITE_TXN_MARKERS, version, memoryview(frame),
                                   codec.decode_request_header(memoryview(frame)).size)
    ctx = RequestContext(ApiKey.WRITE_TXN_MARKERS, version, 0, f"txn-coordinator-{broker.node_id}", "local", broker,
                         asyncio.get_running_loop().time())
    result = handler.fn(ctx, request)
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        result = await result
    encoded = codec.encode_response_body(ApiKey.WRITE_TXN_MARKERS, version, result)
    return codec.decode_response(ApiKey.WRITE_TXN_MARKERS, version, encoded)
