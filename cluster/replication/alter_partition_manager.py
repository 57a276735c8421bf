"""AlterPartitionManager (Kafka's ``DefaultAlterPartitionManager``, KIP-497): sends the ISR
changes partition leaders propose (``isr_changes``) to the active controller.

Proposals are queued per partition (a second one for a partition already queued or in flight is
refused: Kafka's OPERATION_NOT_ATTEMPTED) and sent together in one AlterPartition request
(v3: topic ids, each ISR member with its broker epoch, KIP-903), with at most one request in
flight. Each answered partition goes back to its Partition (``apply_alter_partition_answer``);
a partition missing from the answer, one whose answer says retry (NOT_CONTROLLER, unexpected
errors) and every partition of a request refused as a whole (NOT_CONTROLLER, STALE_BROKER_EPOCH,
no controller reachable: request timed out) is sent again after ``retry_backoff_s``. A queued
change whose partition no longer waits for it (the metadata replaced the partition's state) is
dropped instead of being sent.

Concurrency: owned by the node's event loop. ``submit`` never blocks: sending runs in one asyncio
task at a time, started on the running loop; ``close`` cancels it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from cluster.controller.alter_partition import (
    AlterPartitionResult,
    IsrMember,
    PartitionIsrRequest,
    TopicIsrRequest,
)
from cluster.replication.isr_changes import (
    PendingIsrChange,
    apply_alter_partition_answer,
)
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.controller.metadata_image import MetadataImage
    from cluster.replication.partition import Partition

log = logging.getLogger(__name__)

#: Sends an AlterPartition request (broker epoch, topics): ``ControllerRequests.alter_partition``.
SendAlterPartition = Callable[[int, Sequence[TopicIsrRequest]], Awaitable[AlterPartitionResult]]
_Key = tuple[uuid.UUID, int]


class AlterPartitionManager:
    """Queues ISR changes and sends them to the controller (see module docstring)."""

    def __init__(self, broker_id: int, broker_epoch: Callable[[], int], send: SendAlterPartition,
                 image: Callable[[], MetadataImage | None] | None = None, retry_backoff_s: float = 0.05) -> None:
        self.broker_id = broker_id
        self.broker_epoch = broker_epoch
        self.send = send
        self.image = image
        self.retry_backoff_s = retry_backoff_s
        self._unsent: dict[_Key, tuple[Partition, PendingIsrChange]] = {}
        """Queued and in-flight changes by (topic id, partition): Kafka's ``unsentIsrUpdates``."""
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def in_flight(self) -> bool:
        """Whether a request is being sent (or waiting to be retried)."""
        return self._task is not None and not self._task.done()

    def pending(self) -> int:
        """Changes queued or in flight."""
        return len(self._unsent)

    def submit(self, partition: Partition, change: PendingIsrChange) -> bool:
        """Queue ``change``; False (not attempted) if one for the partition is queued already."""
        key = (partition.topic_id, partition.index)
        if key in self._unsent or self._closed:
            return False
        self._unsent[key] = (partition, change)
        self._maybe_propagate()
        return True

    def is_replica_isr_eligible(self, broker_id: int, broker_epoch: int) -> bool:
        """Kafka's ``isReplicaIsrEligible`` (KRaft): registered, not fenced (a broker in
        controlled shutdown is fenced at once here) and, if the follower sent one, at the broker
        epoch its registration has (KIP-903). Eligible when no image is known."""
        image = self.image() if self.image is not None else None
        if image is None:
            return True
        broker = image.brokers.get(broker_id)
        return broker is not None and not broker.fenced and broker_epoch in (-1, broker.epoch)

    def close(self) -> None:
        """Stop sending (the node is stopping); queued changes are dropped."""
        self._closed = True
        self._unsent.clear()
        if self._task is not None:
            self._task.cancel()

    # -- sending ---------------------------------------------------------------------------

    def _maybe_propagate(self) -> None:
        """Start the sending task unless one runs (Kafka's ``maybePropagateIsrChanges``)."""
        if self._unsent and not self.in_flight and not self._closed:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop yet: the next submit or answer starts it
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        while self._unsent and not self._closed:
            items = self._sendable()
            if not items:
                return
            try:
                ok = await self._send_once(items)
            except asyncio.CancelledError:
                raise
            except Exception:  # an ISR change must be retried, never lost
                log.exception("AlterPartition request failed; retrying")
                ok = False
            if not ok:
                await asyncio.sleep(self.retry_backoff_s)

    def _sendable(self) -> dict[_Key, tuple[Partition, PendingIsrChange]]:
        """The queued changes still wanted: a partition no longer pending on its change (the
        metadata replaced its state, or it was deleted) is dropped."""
        for key, (partition, change) in list(self._unsent.items()):
            if partition.pending_isr is not change or not partition.is_leader:
                del self._unsent[key]
        return dict(self._unsent)

    async def _send_once(self, items: dict[_Key, tuple[Partition, PendingIsrChange]]) -> bool:
        """One AlterPartition request for ``items``; False if it should be retried after a backoff."""
        broker_epoch = self.broker_epoch()
        result = await self.send(broker_epoch, self._request(items, broker_epoch))
        if result.error_code != ErrorCode.none:
            level = logging.WARNING if result.error_code == ErrorCode.stale_broker_epoch else logging.DEBUG
            log.log(level, "AlterPartition for %d partition(s) refused with %s; retrying", len(items),
                    result.error_code.name)
            return False
        answers = {(topic_id, p.partition): p for topic_id, partitions in result.topics for p in partitions}
        retry = False
        for key, (partition, change) in items.items():
            answer = answers.get(key)
            if answer is None:
                retry = True  # not in the answer: sent again (Kafka keeps it in unsentIsrUpdates)
                continue
            if self._unsent.get(key, (None, None))[1] is change:
                del self._unsent[key]
            if apply_alter_partition_answer(partition, change, answer):
                self._unsent.setdefault(key, (partition, change))
                retry = True
        return not retry

    def _request(self, items: dict[_Key, tuple[Partition, PendingIsrChange]],
                 broker_epoch: int) -> list[TopicIsrRequest]:
        """Kafka's ``buildRequest``, with ``addBrokerEpochToIsr``: the leader's own epoch, each
        follower's from its latest fetch (-1 when unknown: not checked)."""
        by_topic: dict[uuid.UUID, list[PartitionIsrRequest]] = {}
        for (topic_id, index), (partition, change) in items.items():
            members = tuple(IsrMember(b, broker_epoch if b == self.broker_id else _fetched_epoch(partition, b))
                            for b in change.new_isr)
            by_topic.setdefault(topic_id, []).append(
                PartitionIsrRequest(index, change.leader_epoch, members, change.partition_epoch))
        return [TopicIsrRequest(topic_id, tuple(partitions)) for topic_id, partitions in by_topic.items()]


def _fetched_epoch(partition: Partition, broker_id: int) -> int:
    state = partition.follower_state(broker_id)
    return state.broker_epoch if state is not None else -1
