"""Partition (Kafka's `Partition`): one topic partition as this broker holds it.

The leader appends, keeps the in-sync replica set (ISR) and advances the high watermark to the
smallest log end offset in the ISR; ``acks=all`` waits for it. With a single node the ISR is
just the leader, so the high watermark follows every append. A log opens with its checkpointed
high watermark (``replication-offset-checkpoint``, never above the log end), which a lone leader
moves up to the log end as soon as ``update_leadership`` makes it leader. Readers parked in a
long-poll Fetch wait on ``data_arrived`` and are woken by appends and high-watermark moves.

Concurrency: used from the node's event loop only; appends never await.
"""

from __future__ import annotations

import asyncio
import uuid

from cluster.log.partition_log import LogAppendInfo, PartitionLog
from pykafka_ops.errors import ErrorCode


class NotLeaderError(Exception):
    """This broker does not lead the partition (NOT_LEADER_OR_FOLLOWER)."""


class PartitionError(Exception):
    """A partition-level refusal with a Kafka error code."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class Partition:
    """Leader or follower state of one partition on this broker."""

    def __init__(self, topic: str, index: int, topic_id: uuid.UUID, log: PartitionLog, broker_id: int) -> None:
        self.topic = topic
        self.index = index
        self.topic_id = topic_id
        self.log = log
        self.broker_id = broker_id
        self.leader = -1
        self.leader_epoch = -1
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()
        self._waiters: set[asyncio.Future[None]] = set()

    @property
    def is_leader(self) -> bool:
        return self.leader == self.broker_id

    def update_leadership(self, leader: int, leader_epoch: int, replicas: tuple[int, ...], isr: tuple[int, ...]) -> None:
        """Apply the controller's view (from the MetadataImage)."""
        self.leader, self.leader_epoch, self.replicas, self.isr = leader, leader_epoch, replicas, isr
        self._maybe_advance_high_watermark()

    def leader_error(self, current_leader_epoch: int = -1) -> ErrorCode | None:
        """Why this replica cannot serve a leader-only request, or None (Kafka's leader checks:
        NOT_LEADER_OR_FOLLOWER; with a client-known epoch, FENCED_LEADER_EPOCH if the client's
        is older, UNKNOWN_LEADER_EPOCH if it is newer — KIP-320)."""
        if not self.is_leader:
            return ErrorCode.not_leader_or_follower
        if current_leader_epoch < 0 or current_leader_epoch == self.leader_epoch:
            return None
        if current_leader_epoch < self.leader_epoch:
            return ErrorCode.fenced_leader_epoch
        return ErrorCode.unknown_leader_epoch

    def append_records_to_leader(self, records: memoryview, required_acks: int, now_ms: int) -> LogAppendInfo:
        """Append a produced record set as leader (Kafka's `appendRecordsToLeader`)."""
        if not self.is_leader:
            raise NotLeaderError(f"broker {self.broker_id} is not the leader of {self.topic}-{self.index}")
        if required_acks == -1 and len(self.isr) < self.log.config.min_insync_replicas:
            raise PartitionError(
                ErrorCode.not_enough_replicas,
                f"ISR {list(self.isr)} is smaller than min.insync.replicas={self.log.config.min_insync_replicas}",
            )
        info = self.log.append_as_leader(records, self.leader_epoch, now_ms)
        if not info.duplicate:
            self._maybe_advance_high_watermark()
        return info

    def _maybe_advance_high_watermark(self) -> None:
        """High watermark = the smallest log end offset among ISR members (only self for now)."""
        if self.is_leader and self.isr == (self.broker_id,):
            new_hw = self.log.log_end_offset
            if new_hw != self.log.high_watermark:
                self.log.high_watermark = new_hw
                self.wake_waiters()

    # -- long polls ------------------------------------------------------------------------

    def add_waiter(self, waiter: asyncio.Future[None]) -> None:
        """Wake ``waiter`` on the next append or high-watermark move."""
        self._waiters.add(waiter)

    def remove_waiter(self, waiter: asyncio.Future[None]) -> None:
        """Stop watching (the fetch completed or timed out)."""
        self._waiters.discard(waiter)

    def wake_waiters(self) -> None:
        """Complete every parked fetch watching this partition."""
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
