"""DelayedProduce (Kafka's): an acks=all Produce waiting for its batches to be replicated.

The Produce handler appends every partition first; a partition whose batch the high watermark
does not yet cover (``required_offset`` = the batch's last offset + 1 > HW) becomes a
:class:`PendingAck`. Only when at least one exists is a :class:`DelayedProduce` made, so acks=0/1
and an acks=all whose batches are already covered (one replica: the HW moves at the append)
allocate and await nothing more than before.

Each partition with a pending ack keeps the operation and calls :meth:`DelayedProduce.try_complete`
when its high watermark moves, its ISR or leadership changes, or it is deleted. A pending
partition is answered as Kafka's ``Partition.checkEnoughReplicasReachOffset`` says:
NONE once HW ≥ required offset with the ISR still at ``min.insync.replicas`` or more,
NOT_ENOUGH_REPLICAS_AFTER_APPEND if it has shrunk below, NOT_LEADER_OR_FOLLOWER if this broker no
longer leads the partition in the epoch that appended the batch (which may be truncated), and
REQUEST_TIMED_OUT at the request's ``timeout_ms`` (``expire``).

Concurrency: used from the node's event loop only; ``try_complete`` runs synchronously inside
the state change that may complete it (no await between reading partition state and answering).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol.fastpath import ProducePartitionResult

if TYPE_CHECKING:
    from cluster.replication.partition import Partition


class PendingAck:
    """One partition's appended batch, not yet covered by the high watermark."""

    __slots__ = ("done", "leader_epoch", "partition", "required_offset", "result")

    def __init__(self, partition: Partition, required_offset: int, leader_epoch: int,
                 result: ProducePartitionResult) -> None:
        self.partition = partition
        self.required_offset = required_offset
        self.leader_epoch = leader_epoch
        self.result = result
        """The answer once done: the append's result, or the same with the final error code."""
        self.done = False

    def finish(self, error: ErrorCode | None) -> None:
        self.done = True
        if error is not None and error != ErrorCode.none:
            self.result = ProducePartitionResult(self.result.index, error, -1, -1, -1)


class DelayedProduce:
    """The pending acks of one acks=all Produce request (see module docstring)."""

    __slots__ = ("future", "pending")

    def __init__(self, pending: list[PendingAck], future: asyncio.Future[None]) -> None:
        self.pending = pending
        self.future = future

    def watch(self) -> None:
        """Register with every pending partition, then complete at once if already possible."""
        for ack in self.pending:
            ack.partition.add_delayed_produce(self)
        self.try_complete()

    def try_complete(self) -> bool:
        """Answer every partition that can be answered; True (and the future set) when all are."""
        if self.future.done():
            return True
        remaining = 0
        for ack in self.pending:
            if ack.done:
                continue
            finished, error = ack.partition.check_enough_replicas_reach_offset(ack.required_offset,
                                                                               ack.leader_epoch)
            if finished:
                ack.finish(error)
                ack.partition.remove_delayed_produce(self)
            else:
                remaining += 1
        if remaining:
            return False
        self.future.set_result(None)
        return True

    def expire(self) -> None:
        """``timeout_ms`` passed: what is still pending is answered REQUEST_TIMED_OUT."""
        for ack in self.pending:
            if not ack.done:
                ack.finish(ErrorCode.request_timed_out)
        self.unwatch()

    def unwatch(self) -> None:
        for ack in self.pending:
            ack.partition.remove_delayed_produce(self)


async def wait_for_acks(delayed: DelayedProduce, timeout_ms: int) -> None:
    """Wait until ``delayed`` completes or ``timeout_ms`` passes (then expire it)."""
    try:
        await asyncio.wait_for(delayed.future, max(timeout_ms, 0) / 1000)
    except TimeoutError:
        delayed.expire()
    finally:  # also when the connection closes while waiting
        delayed.unwatch()


def when_replicated(partition: Partition, required_offset: int, leader_epoch: int,
                    timeout_ms: int) -> asyncio.Future[ErrorCode]:
    """An acks=all wait for a coordinator's own append (Kafka's coordinators append to
    ``__consumer_offsets`` with acks=-1): a future of the final error code — NONE once the high
    watermark covers ``required_offset``, else as a pending Produce partition is answered
    (NOT_ENOUGH_REPLICAS_AFTER_APPEND, NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT after
    ``timeout_ms``). Already done when the high watermark covers it (one replica), so a caller
    that checks ``done()`` answers in the same turn; nothing is awaited here."""
    loop = asyncio.get_running_loop()
    ack = PendingAck(partition, required_offset, leader_epoch,
                     ProducePartitionResult(partition.index, ErrorCode.none, -1, -1, -1))
    delayed = DelayedProduce([ack], loop.create_future())
    answer: asyncio.Future[ErrorCode] = loop.create_future()
    delayed.watch()
    if delayed.future.done():
        answer.set_result(ErrorCode(ack.result.error_code))
        return answer

    def expire() -> None:
        delayed.expire()
        if not delayed.future.done():
            delayed.future.set_result(None)

    timer = loop.call_later(max(timeout_ms, 0) / 1000, expire)

    def finished(_: asyncio.Future[None]) -> None:
        timer.cancel()
        delayed.unwatch()
        if not answer.done():
            answer.set_result(ErrorCode(ack.result.error_code))

    delayed.future.add_done_callback(finished)
    return answer


#: How a coordinator's own append error reaches its client (Kafka's group and transaction
#: coordinators normalise them alike: GroupCoordinatorService / TransactionStateManager).
COORDINATOR_APPEND_ERRORS = {
    ErrorCode.unknown_topic_or_partition: ErrorCode.coordinator_not_available,
    ErrorCode.not_enough_replicas: ErrorCode.coordinator_not_available,
    ErrorCode.not_enough_replicas_after_append: ErrorCode.coordinator_not_available,
    ErrorCode.request_timed_out: ErrorCode.coordinator_not_available,
    ErrorCode.not_leader_or_follower: ErrorCode.not_coordinator,
    ErrorCode.kafka_storage_error: ErrorCode.not_coordinator,
}
#: Bytes a coordinator reads per step while loading its partition (the event loop runs between steps).
COORDINATOR_LOAD_CHUNK_BYTES = 1024 * 1024
