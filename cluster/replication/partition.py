"""Partition (Kafka's `Partition`): one topic partition as this broker holds it.

The leader appends, keeps the in-sync replica set (ISR) and each follower's state
(``leader_state.ReplicaState``: log end offset learnt from its fetches, last caught-up time), and
advances the high watermark to the smallest log end offset in the ISR — its own included — only
forward and only as leader (Kafka's ``maybeIncrementLeaderHW``); ``acks=all`` waits for it
(``delayed_produce``). With a single replica the ISR is just the leader, so the high watermark
follows every append. A log opens with its checkpointed high watermark
(``replication-offset-checkpoint``, never above the log end), which a lone leader moves up to the
log end as soon as ``update_leadership`` makes it leader; with followers it stays until they
fetch (their LEOs are unknown, -1, after a leadership change, as in Kafka).

Readers parked in a long-poll Fetch wait on futures: consumer fetches are woken by high-watermark
moves, follower fetches (which read to the log end) by every append as well.

ISR changes (``isr_changes``, Kafka's ``maybeShrinkIsr`` / ``maybeExpandIsr``, KIP-497): the
leader proposes them to the controller through its ``alter_partition_manager``; while one is
pending (``pending_isr``) the high watermark is computed over the *maximal ISR* (committed ISR ∪ a
pending addition) and ``min.insync.replicas`` over the committed ``isr``. The partition epoch
the metadata (or an AlterPartition answer) gave is kept: a metadata update with an older one is
skipped (Kafka's ``makeLeader``), and one that changes the partition replaces a pending change.

Follower fetches (Kafka's ``Partition.fetchRecords`` for a replica): ``follower_fetch_error``
checks leadership and that the fetcher is one of the replicas; ``diverging_epoch`` compares the
follower's last fetched epoch with the leader-epoch cache (KIP-320/KIP-595 style truncation);
``update_follower_fetch`` records its position and may advance the high watermark.

Concurrency: used from the node's event loop only; nothing here awaits, so state read and
written within one call (an append, a fetch update, a leadership change) is never interleaved
with another request. Delayed produces are completed synchronously inside the call that moved
the high watermark or changed leadership.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING

from cluster.log.partition_log import LogAppendInfo, PartitionLog
from cluster.log.retention import OffsetOutOfRangeError
from cluster.log.transactions import Origin
from cluster.replication.isr_changes import (
    IsrSubmitter,
    PendingIsrChange,
    maybe_expand_isr,
    maybe_shrink_isr,
)
from cluster.replication.leader_state import FollowerStates, ReplicaState
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.replication.delayed_produce import DelayedProduce


class NotLeaderError(Exception):
    """This broker does not lead the partition (NOT_LEADER_OR_FOLLOWER)."""


class PartitionError(Exception):
    """A partition-level refusal with a Kafka error code."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def _now_ms() -> int:
    return int(time.time() * 1000)


class Partition:
    """Leader or follower state of one partition on this broker."""

    def __init__(self, topic: str, index: int, topic_id: uuid.UUID, log: PartitionLog, broker_id: int,
                 alter_partition_manager: IsrSubmitter | None = None) -> None:
        self.topic = topic
        self.index = index
        self.topic_id = topic_id
        self.log = log
        self.broker_id = broker_id
        self.leader = -1
        self.leader_epoch = -1
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()
        """The committed ISR (the metadata's, or the controller's AlterPartition answer)."""
        self.partition_epoch = -1
        self.pending_isr: PendingIsrChange | None = None
        """An ISR change sent to the controller and not answered yet (Kafka's ``isInflight``)."""
        self.leader_epoch_start_offset = -1
        """The log end offset when this leader epoch began (Kafka's ``leaderEpochStartOffsetOpt``)."""
        self.alter_partition_manager = alter_partition_manager
        self.deleted = False
        self.followers = FollowerStates()
        self._waiters: set[asyncio.Future[None]] = set()
        self._replica_waiters: set[asyncio.Future[None]] = set()
        self._delayed_produces: set[DelayedProduce] = set()

    @property
    def is_leader(self) -> bool:
        return self.leader == self.broker_id

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        """The committed ISR plus a pending addition (Kafka's ``maximalIsr``): what the high
        watermark waits for."""
        return self.isr if self.pending_isr is None else self.pending_isr.maximal_isr

    def is_replica(self, broker_id: int) -> bool:
        """Whether ``broker_id`` holds a replica of this partition (the leader included)."""
        return broker_id in self.replicas

    def update_leadership(self, leader: int, leader_epoch: int, replicas: tuple[int, ...], isr: tuple[int, ...],
                          now_ms: int | None = None, *, partition_epoch: int = -1) -> None:
        """Apply the controller's view (from the MetadataImage). Becoming leader, or a new leader
        epoch, resets every follower's state (Kafka's ``makeLeader``); becoming a follower drops
        it. Parked fetches and delayed produces are re-examined when anything changed. A
        ``partition_epoch`` older than the one known (an AlterPartition answer came first) is
        skipped; a change, or a newer epoch, ends a pending ISR change (-1: epoch not given)."""
        if 0 <= partition_epoch < self.partition_epoch and leader_epoch <= self.leader_epoch:
            return  # Kafka's makeLeader: "the leader is already at a newer partition epoch"
        was_leader, old_epoch = self.is_leader, self.leader_epoch
        changed = (leader, leader_epoch, replicas, isr) != (self.leader, self.leader_epoch, self.replicas, self.isr)
        if changed or partition_epoch > self.partition_epoch:
            self.pending_isr = None
        self.leader, self.leader_epoch, self.replicas, self.isr = leader, leader_epoch, replicas, isr
        if partition_epoch >= 0:
            self.partition_epoch = partition_epoch
        if self.is_leader:
            now = _now_ms() if now_ms is None else now_ms
            if not was_leader or leader_epoch != old_epoch:
                self.followers.reset(self.broker_id, replicas, isr, now)
                # Kafka's makeLeader: the new epoch starts at the log end, so a follower's last
                # fetched epoch is answered with the right end offset before anything is appended
                self.log.leader_epochs.assign(leader_epoch, self.log.log_end_offset)
                self.leader_epoch_start_offset = self.log.log_end_offset
            elif changed:
                self.followers.sync(self.broker_id, replicas, isr, now)
        elif was_leader:
            self.followers.clear()
            self.leader_epoch_start_offset = -1
        advanced = self._maybe_advance_high_watermark()
        if changed:
            if not advanced:
                self.wake_waiters()
                self._try_complete_delayed_produces()
            if was_leader != self.is_leader or leader_epoch != old_epoch:
                self._replica_waiters, waiters = set(), self._replica_waiters
                _wake(waiters)

    def mark_deleted(self) -> None:
        """The partition left this broker: answer everything still waiting on it."""
        self.deleted = True
        self.leader = -1
        self.pending_isr = None
        self.followers.clear()
        self.wake_waiters()
        self._try_complete_delayed_produces()

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

    def append_records_to_leader(self, records: memoryview, required_acks: int, now_ms: int,
                                 origin: Origin = Origin.CLIENT) -> LogAppendInfo:
        """Append a produced record set (or, ``origin`` COORDINATOR, a transaction marker) as
        leader (Kafka's `appendRecordsToLeader`)."""
        if not self.is_leader:
            raise NotLeaderError(f"broker {self.broker_id} is not the leader of {self.topic}-{self.index}")
        if required_acks == -1 and len(self.isr) < self.log.config.min_insync_replicas:
            raise PartitionError(
                ErrorCode.not_enough_replicas,
                f"ISR {list(self.isr)} is smaller than min.insync.replicas={self.log.config.min_insync_replicas}",
            )
        info = self.log.append_as_leader(records, self.leader_epoch, now_ms, origin)
        if not info.duplicate and not self._maybe_advance_high_watermark() and self._replica_waiters:
            self._replica_waiters, waiters = set(), self._replica_waiters
            _wake(waiters)
        return info

    # -- high watermark --------------------------------------------------------------------

    def _maybe_advance_high_watermark(self) -> bool:
        """High watermark = the smallest log end offset among the maximal ISR's members (the
        leader's own included; a follower not heard from since the leadership change counts as
        -1), moved only forward. True if it moved (waiters woken, delayed produces re-examined)."""
        if not self.is_leader:
            return False
        log = self.log
        new_hw = log.log_end_offset
        isr = self.maximal_isr
        if isr != (self.broker_id,):
            for broker_id in isr:
                if broker_id != self.broker_id:
                    state = self.followers.get(broker_id)
                    leo = state.log_end_offset if state is not None else -1
                    new_hw = min(new_hw, leo)
        if new_hw <= log.high_watermark:
            return False
        log.high_watermark = new_hw
        self.wake_waiters()
        if self._delayed_produces:
            self._try_complete_delayed_produces()
        return True

    def update_follower_fetch(self, replica_id: int, fetch_offset: int, now_ms: int,
                              leader_end_offset: int | None = None, log_start_offset: int = -1,
                              broker_epoch: int = -1) -> bool:
        """Record a follower's fetch from ``fetch_offset`` (its log end offset), which started
        when this leader's LEO was ``leader_end_offset`` (default: now), sent at the follower's
        ``broker_epoch`` (Fetch v15+; -1 if not sent). Kafka's ``updateFollowerFetchState``: a
        follower outside the ISR that is now in sync is proposed for it (``maybe_expand_isr``);
        True if the high watermark moved."""
        state = self.followers.get(replica_id)
        if state is None or not self.is_leader:
            return False
        previous = state.log_end_offset
        end = self.log.log_end_offset if leader_end_offset is None else leader_end_offset
        state.update_fetch(fetch_offset, now_ms, end, log_start_offset, broker_epoch)
        maybe_expand_isr(self, replica_id)
        if previous != fetch_offset and replica_id in self.maximal_isr:
            return self._maybe_advance_high_watermark()
        return False

    def maybe_shrink_isr(self, now_ms: int, max_lag_ms: int) -> PendingIsrChange | None:
        """Propose the ISR without followers not caught up for ``max_lag_ms`` (``isr_changes``)."""
        return maybe_shrink_isr(self, now_ms, max_lag_ms)

    def commit_isr(self, isr: tuple[int, ...], partition_epoch: int) -> bool:
        """The controller committed ``isr`` at ``partition_epoch`` (an AlterPartition answer):
        the pending change ends; True if the high watermark moved (a shrink may let it)."""
        self.isr, self.partition_epoch, self.pending_isr = isr, partition_epoch, None
        return self._maybe_advance_high_watermark()

    def follower_state(self, replica_id: int) -> ReplicaState | None:
        """The leader's view of follower ``replica_id`` (None if not a follower here)."""
        return self.followers.get(replica_id)

    # -- follower fetches ------------------------------------------------------------------

    def follower_fetch_error(self, replica_id: int, current_leader_epoch: int = -1) -> ErrorCode | None:
        """Why a fetch from replica ``replica_id`` cannot be served here, or None: leadership and
        epoch as ``leader_error``, then the replica must be a follower of the partition — else
        UNKNOWN_LEADER_EPOCH when the request carries an epoch (the follower retries; KRaft
        reassignments), NOT_LEADER_OR_FOLLOWER when it does not (Kafka's
        ``followerReplicaOrThrow``)."""
        refusal = self.leader_error(current_leader_epoch)
        if refusal is not None:
            return refusal
        if self.followers.get(replica_id) is None:
            return ErrorCode.unknown_leader_epoch if current_leader_epoch >= 0 else ErrorCode.not_leader_or_follower
        return None

    def diverging_epoch(self, last_fetched_epoch: int, fetch_offset: int) -> tuple[int, int] | None:
        """(epoch, end offset) to send back when the follower's log diverges from this leader's
        (Kafka's ``Partition.readRecords`` with a last fetched epoch): this leader's end offset
        for the follower's last epoch is below its fetch offset, or that epoch is unknown here
        and an older one answers. None when consistent. Raises OffsetOutOfRangeError when the end
        offset cannot be determined or the fetch offset is below the log start."""
        log = self.log
        epoch, end_offset = log.leader_epochs.end_offset_for(last_fetched_epoch, log.log_end_offset)
        if epoch < 0 or end_offset < 0:
            raise OffsetOutOfRangeError(f"no end offset for the last fetched epoch {last_fetched_epoch} "
                                        f"in {self.topic}-{self.index}")
        if fetch_offset < log.log_start_offset:
            raise OffsetOutOfRangeError(f"offset {fetch_offset} is below the log start {log.log_start_offset}")
        if epoch < last_fetched_epoch or end_offset < fetch_offset:
            return epoch, end_offset
        return None

    # -- acks=all --------------------------------------------------------------------------

    def check_enough_replicas_reach_offset(self, required_offset: int, leader_epoch: int) -> tuple[bool, ErrorCode]:
        """(done, error) for an acks=all batch ending before ``required_offset`` appended in
        ``leader_epoch`` (Kafka's ``checkEnoughReplicasReachOffset``)."""
        if self.deleted:
            return True, ErrorCode.unknown_topic_or_partition
        if not self.is_leader or self.leader_epoch != leader_epoch:
            return True, ErrorCode.not_leader_or_follower
        if self.log.high_watermark < required_offset:
            return False, ErrorCode.none
        if len(self.isr) < self.log.config.min_insync_replicas:
            return True, ErrorCode.not_enough_replicas_after_append
        return True, ErrorCode.none

    def add_delayed_produce(self, operation: DelayedProduce) -> None:
        self._delayed_produces.add(operation)

    def remove_delayed_produce(self, operation: DelayedProduce) -> None:
        self._delayed_produces.discard(operation)

    def _try_complete_delayed_produces(self) -> None:
        for operation in list(self._delayed_produces):
            if operation.try_complete():
                self._delayed_produces.discard(operation)

    # -- long polls ------------------------------------------------------------------------

    def add_waiter(self, waiter: asyncio.Future[None], follower: bool = False) -> None:
        """Wake ``waiter`` on the next high-watermark move (and, for a follower's fetch, on the
        next append)."""
        (self._replica_waiters if follower else self._waiters).add(waiter)

    def remove_waiter(self, waiter: asyncio.Future[None]) -> None:
        """Stop watching (the fetch completed or timed out)."""
        self._waiters.discard(waiter)
        self._replica_waiters.discard(waiter)

    def wake_waiters(self) -> None:
        """Complete every parked fetch watching this partition."""
        waiters, self._waiters = self._waiters, set()
        _wake(waiters)
        if self._replica_waiters:
            waiters, self._replica_waiters = self._replica_waiters, set()
            _wake(waiters)


def _wake(waiters: set[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
