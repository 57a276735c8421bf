"""ISR changes on the leader: Kafka's ``Partition.maybeShrinkIsr`` / ``maybeExpandIsr`` and the
partition states behind them (``CommittedPartitionState``, ``PendingShrinkIsr``,
``PendingExpandIsr``; KIP-497 AlterPartition, classic ``min.insync.replicas``, no KIP-966 ELR).

* Shrink (Kafka's isr-expiration task, every ``replica.lag.time.max.ms`` / 2: ``IsrExpiration``):
  ISR followers that are not caught up (``ReplicaState.is_caught_up``) are proposed for removal.
* Expand (on a follower's fetch): a replica outside the ISR whose log end offset has reached the
  high watermark and the start offset of the current leader epoch (Kafka's ``isFollowerInSync``),
  and which the metadata says is ISR-eligible (registered, unfenced, same broker epoch), is
  proposed for addition.

A proposal is a ``PendingIsrChange`` kept on the Partition (``pending_isr``) until the controller
answers or the metadata replaces the partition's state. While one is pending no other is made,
and the high watermark is computed over the *maximal ISR* (the committed ISR plus a pending
addition; a pending removal still counts until committed), so the controller's ISR is always a
subset of what the high watermark waited for. ``min.insync.replicas`` checks use the committed
ISR. ``apply_alter_partition_answer`` applies the controller's answer as Kafka's
``handleAlterPartitionUpdate`` / ``handleAlterPartitionError``: INELIGIBLE_REPLICA and
OPERATION_NOT_ATTEMPTED go back to the committed state (the controller did not apply it); the
other refusals keep the pending state until the metadata brings the partition's new state,
because an earlier attempt of the same change may have been applied (a lost answer, retried):
dropping a pending expansion then could let the high watermark pass a replica the controller
counts as in sync. NOT_CONTROLLER and unexpected errors are retried.

Concurrency: used from the node's event loop only; nothing here awaits (proposals are handed to
an ``IsrSubmitter``, which sends them in its own task).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.controller.alter_partition import PartitionIsrResult
    from cluster.replication.leader_state import ReplicaState
    from cluster.replication.partition import Partition

log = logging.getLogger(__name__)

SHRINK, EXPAND = "shrink", "expand"
#: Refusals after which the controller certainly did not apply the change: back to committed.
_NOT_APPLIED = frozenset({ErrorCode.ineligible_replica, ErrorCode.operation_not_attempted})
#: Refusals that wait for the metadata (Kafka's handleAlterPartitionError gives up on these).
_AWAIT_METADATA = frozenset({ErrorCode.unknown_topic_or_partition, ErrorCode.unknown_topic_id,
                             ErrorCode.fenced_leader_epoch, ErrorCode.invalid_update_version,
                             ErrorCode.invalid_request, ErrorCode.new_leader_elected})


@dataclass(frozen=True, eq=False)
class PendingIsrChange:
    """An ISR change sent (or about to be) to the controller: Kafka's ``PendingShrinkIsr`` /
    ``PendingExpandIsr``. Compared by identity: an answer applies only to the pending state it
    was sent for."""

    kind: str
    """``SHRINK`` or ``EXPAND``."""
    new_isr: tuple[int, ...]
    """The proposed ISR (Kafka's ``sentLeaderAndIsr.isr``)."""
    changed: tuple[int, ...]
    """The replicas removed (shrink) or the one added (expand)."""
    last_committed_isr: tuple[int, ...]
    leader_epoch: int
    partition_epoch: int
    """The partition epoch the change was made against (the controller checks it)."""

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        """Kafka's ``maximalIsr``: committed ∪ a pending addition; a removal counts until committed."""
        return self.new_isr if self.kind == EXPAND else self.last_committed_isr


class IsrSubmitter(Protocol):
    """Where proposals go (``AlterPartitionManager``)."""

    def submit(self, partition: Partition, change: PendingIsrChange) -> bool:
        """Queue ``change``; False if one for this partition is queued already (not attempted)."""
        ...

    def is_replica_isr_eligible(self, broker_id: int, broker_epoch: int) -> bool:
        """Kafka's ``isReplicaIsrEligible``: registered, unfenced and, if known, same broker epoch."""
        ...


def _name(partition: Partition) -> str:
    return f"[Partition {partition.topic}-{partition.index} broker={partition.broker_id}]"


def _can_propose(partition: Partition) -> bool:
    # a partition epoch of -1 means the metadata did not give one: a proposal would be refused
    return partition.is_leader and partition.pending_isr is None and partition.partition_epoch >= 0


def out_of_sync_replicas(partition: Partition, now_ms: int, max_lag_ms: int) -> tuple[int, ...]:
    """Kafka's ``getOutOfSyncReplicas``: committed ISR followers not caught up (none while a
    change is pending)."""
    if partition.pending_isr is not None:
        return ()
    leader_end = partition.log.log_end_offset
    out = []
    for broker_id in partition.isr:
        if broker_id == partition.broker_id:
            continue
        state = partition.follower_state(broker_id)
        if state is None or not state.is_caught_up(leader_end, now_ms, max_lag_ms):
            out.append(broker_id)
    return tuple(out)


def maybe_shrink_isr(partition: Partition, now_ms: int, max_lag_ms: int) -> PendingIsrChange | None:
    """Propose the ISR without its lagging followers (Kafka's ``maybeShrinkIsr``); the pending
    change (also submitted to the partition's ``alter_partition_manager``), or None."""
    if not _can_propose(partition):
        return None
    out = out_of_sync_replicas(partition, now_ms, max_lag_ms)
    if not out:
        return None
    lagging = ", ".join(_describe(partition.follower_state(b), b, now_ms) for b in out)
    new_isr = tuple(b for b in partition.isr if b not in out)
    log.info("%s Shrinking ISR from %s to %s. Leader: (high watermark: %d, end offset: %d). Out of sync "
             "replicas: %s.", _name(partition), _fmt(partition.isr), _fmt(new_isr), partition.log.high_watermark,
             partition.log.log_end_offset, lagging)
    return _propose(partition, SHRINK, new_isr, out)


def is_follower_in_sync(partition: Partition, state: ReplicaState) -> bool:
    """Kafka's ``isFollowerInSync``: at or past the high watermark and the current leader epoch's
    start offset (so the follower has truncated to this leader's log)."""
    start = partition.leader_epoch_start_offset
    leo = state.log_end_offset
    return start >= 0 and leo >= partition.log.high_watermark and leo >= start


def maybe_expand_isr(partition: Partition, replica_id: int) -> PendingIsrChange | None:
    """Propose adding follower ``replica_id`` once it is in sync (Kafka's ``maybeExpandIsr``,
    called after each of its fetches); the pending change, or None."""
    if not _can_propose(partition) or replica_id in partition.isr or replica_id == partition.broker_id:
        return None
    state = partition.follower_state(replica_id)
    if state is None or not is_follower_in_sync(partition, state):
        return None
    submitter = partition.alter_partition_manager
    if submitter is not None and not submitter.is_replica_isr_eligible(replica_id, state.broker_epoch):
        return None
    new_isr = (*partition.isr, replica_id)
    log.info("%s Expanding ISR from %s to %s", _name(partition), _fmt(partition.isr), _fmt(new_isr))
    return _propose(partition, EXPAND, new_isr, (replica_id,))


def _propose(partition: Partition, kind: str, new_isr: tuple[int, ...],
             changed: tuple[int, ...]) -> PendingIsrChange | None:
    change = PendingIsrChange(kind, new_isr, changed, partition.isr, partition.leader_epoch,
                              partition.partition_epoch)
    partition.pending_isr = change
    submitter = partition.alter_partition_manager
    if submitter is not None and not submitter.submit(partition, change):
        # Kafka: OPERATION_NOT_ATTEMPTED (an earlier change of this partition is still queued)
        log.info("%s Failed to alter partition to %s since an earlier change is still queued; back to the "
                 "committed ISR %s", _name(partition), _fmt(new_isr), _fmt(partition.isr))
        partition.pending_isr = None
        return None
    return change


def apply_alter_partition_answer(partition: Partition, change: PendingIsrChange, answer: PartitionIsrResult) -> bool:
    """The controller's answer for ``change`` (Kafka's ``submitAlterPartition`` callback); True if
    the same change should be sent again."""
    if partition.pending_isr is not change:
        log.debug("%s Ignoring the answer to the ISR change %s: the partition state changed since",
                  _name(partition), _fmt(change.new_isr))
        return False
    error = answer.error_code
    if error == ErrorCode.none:
        if answer.leader_epoch != partition.leader_epoch:
            log.debug("%s Ignoring new ISR %s: leader epoch %d is not ours (%d)", _name(partition),
                      _fmt(answer.isr), answer.leader_epoch, partition.leader_epoch)
        elif answer.partition_epoch < partition.partition_epoch:
            log.debug("%s Ignoring new ISR %s: partition epoch %d is older than ours (%d)", _name(partition),
                      _fmt(answer.isr), answer.partition_epoch, partition.partition_epoch)
        else:
            partition.commit_isr(answer.isr, answer.partition_epoch)
            under = " (under-min-isr)" if len(answer.isr) < partition.log.config.min_insync_replicas else ""
            log.info("%s ISR updated to %s%s and version updated to %d", _name(partition), _fmt(answer.isr), under,
                     answer.partition_epoch)
        return False
    if error in _NOT_APPLIED:
        partition.pending_isr = None
        log.info("%s Failed to alter partition to %s since the controller rejected the request with %s. Partition "
                 "state has been reset to the latest committed state %s.", _name(partition), _fmt(change.new_isr),
                 error.name, _fmt(partition.isr))
        return False
    if error in _AWAIT_METADATA:
        log.info("%s Failed to alter partition to %s (%s); awaiting the latest metadata", _name(partition),
                 _fmt(change.new_isr), error.name)
        return False
    log.warning("%s Failed to update ISR to %s due to %s. Retrying.", _name(partition), _fmt(change.new_isr),
                error.name)
    return True


class IsrExpiration:
    """Kafka's ``isr-expiration`` task: ``check_all`` shrinks the ISRs of the partitions led here
    at most every ``max_lag_ms`` / 2 (call it as often as convenient).

    Concurrency: used from the node's event loop only."""

    def __init__(self, max_lag_ms: int) -> None:
        self.max_lag_ms = max_lag_ms
        self.interval_ms = max(max_lag_ms // 2, 1)
        self._next_ms = 0

    def check_all(self, partitions: Iterable[Partition], now_ms: int, force: bool = False) -> int:
        """Run ``maybe_shrink_isr`` over ``partitions`` if due (or ``force``); proposals made."""
        if not force and now_ms < self._next_ms:
            return 0
        self._next_ms = now_ms + self.interval_ms
        return sum(p.maybe_shrink_isr(now_ms, self.max_lag_ms) is not None
                   for p in partitions if p.is_leader and not p.deleted)


def _describe(state: ReplicaState | None, broker_id: int, now_ms: int) -> str:
    if state is None:
        return f"(broker {broker_id}: no state)"
    return (f"(brokerId: {broker_id}, endOffset: {state.log_end_offset}, lastCaughtUpTimeMs: "
            f"{state.last_caught_up_time_ms}, {now_ms - state.last_caught_up_time_ms} ms ago)")


def _fmt(isr: Iterable[int]) -> str:
    return "[" + ",".join(str(b) for b in isr) + "]"
