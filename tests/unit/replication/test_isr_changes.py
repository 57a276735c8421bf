"""Leader-side ISR changes on a Partition (``isr_changes``, Kafka's ``maybeShrinkIsr`` /
``maybeExpandIsr`` with PendingShrinkIsr / PendingExpandIsr): a fake clock, a recording submitter,
no controller. Broker 1 leads replicas (1, 2, 3) at leader epoch 5, partition epoch 10."""

from __future__ import annotations

import pytest
from replication_builders import T0, records

from cluster.controller.alter_partition import PartitionIsrResult
from cluster.replication.isr_changes import (
    EXPAND,
    SHRINK,
    IsrExpiration,
    PendingIsrChange,
    apply_alter_partition_answer,
)
from cluster.replication.partition import Partition
from pykafka_ops.errors import ErrorCode

LAG_MS = 30_000
PARTITION_EPOCH = 10


class RecordingSubmitter:
    """Takes every proposal (unless ``refuse``); broker 3 is ineligible when ``fenced``."""

    def __init__(self) -> None:
        self.submitted: list[PendingIsrChange] = []
        self.refuse = False
        self.fenced: set[int] = set()

    def submit(self, partition: Partition, change: PendingIsrChange) -> bool:
        if self.refuse:
            return False
        self.submitted.append(change)
        return True

    def is_replica_isr_eligible(self, broker_id: int, broker_epoch: int) -> bool:
        return broker_id not in self.fenced


@pytest.fixture
def leader(make_partition):
    def make(isr: tuple[int, ...] = (1, 2, 3), min_isr: int = 1) -> tuple[Partition, RecordingSubmitter]:
        p = make_partition(isr=isr, min_isr=min_isr)
        p.update_leadership(1, 5, (1, 2, 3), isr, now_ms=T0, partition_epoch=PARTITION_EPOCH)
        submitter = RecordingSubmitter()
        p.alter_partition_manager = submitter
        return p, submitter

    return make


def _ok(change: PendingIsrChange, isr: tuple[int, ...] | None = None, epoch: int = PARTITION_EPOCH + 1,
        leader_epoch: int = 5) -> PartitionIsrResult:
    return PartitionIsrResult(0, ErrorCode.none, 1, leader_epoch, change.new_isr if isr is None else isr, epoch)


def test_a_follower_lagging_longer_than_the_max_lag_is_proposed_for_removal(leader) -> None:
    p, submitter = leader()
    p.append_records_to_leader(records(4), 1, T0)
    p.update_follower_fetch(2, 4, T0 + 1_000)
    p.update_follower_fetch(3, 1, T0 + 1_000)  # behind, last caught up at T0 (the leadership)
    assert p.maybe_shrink_isr(T0 + LAG_MS, LAG_MS) is None  # exactly max lag: still caught up
    change = p.maybe_shrink_isr(T0 + LAG_MS + 1, LAG_MS)
    assert change is not None and (change.kind, change.new_isr, change.changed) == (SHRINK, (1, 2), (3,))
    assert change.partition_epoch == PARTITION_EPOCH and change.leader_epoch == 5
    assert submitter.submitted == [change] and p.pending_isr is change
    assert p.isr == (1, 2, 3) and p.maximal_isr == (1, 2, 3)  # committed until the controller answers


def test_no_shrink_while_followers_keep_catching_up(leader) -> None:
    p, submitter = leader()
    now = T0
    for _ in range(10):
        now += 20_000
        p.append_records_to_leader(records(1), 1, now)
        end = p.log.log_end_offset
        p.update_follower_fetch(2, end, now)
        p.update_follower_fetch(3, end, now)
        assert p.maybe_shrink_isr(now, LAG_MS) is None
    assert submitter.submitted == []


def test_isr_expiration_runs_every_half_max_lag(leader) -> None:
    p, submitter = leader()
    expiration = IsrExpiration(LAG_MS)
    assert expiration.check_all([p], T0 + 1) == 0  # everyone caught up at T0
    assert expiration.check_all([p], T0 + LAG_MS + 5) == 1  # due (every LAG/2); 2 and 3 never fetched
    assert submitter.submitted[0].new_isr == (1,)
    p.pending_isr = None
    assert expiration.check_all([p], T0 + LAG_MS + 6) == 0  # not due before T0 + 1.5 LAG + 5
    assert expiration.check_all([p], T0 + LAG_MS + 6, force=True) == 1


def test_a_follower_that_catches_up_is_proposed_for_the_isr(leader) -> None:
    p, submitter = leader(isr=(1, 2))
    p.append_records_to_leader(records(5), 1, T0)
    p.update_follower_fetch(2, 5, T0 + 1)
    assert p.log.high_watermark == 5
    p.update_follower_fetch(3, 4, T0 + 2)  # below the high watermark
    assert submitter.submitted == [] and p.pending_isr is None
    p.update_follower_fetch(3, 5, T0 + 3)
    (change,) = submitter.submitted
    assert (change.kind, change.new_isr, change.changed) == (EXPAND, (1, 2, 3), (3,))
    assert p.isr == (1, 2) and p.maximal_isr == (1, 2, 3)


def test_expansion_needs_the_leader_epoch_start_offset_and_an_eligible_replica(leader) -> None:
    p, submitter = leader(isr=(1, 2))
    p.append_records_to_leader(records(3), 1, T0)
    p.update_leadership(1, 6, (1, 2, 3), (1, 2), now_ms=T0, partition_epoch=PARTITION_EPOCH + 1)
    assert p.leader_epoch_start_offset == 3
    p.update_follower_fetch(2, 3, T0)
    submitter.fenced.add(3)
    p.update_follower_fetch(3, 3, T0)
    assert submitter.submitted == []  # fenced (or a stale broker epoch): not eligible
    submitter.fenced.clear()
    p.update_follower_fetch(3, 3, T0 + 1)
    assert [c.new_isr for c in submitter.submitted] == [(1, 2, 3)]


def test_a_pending_change_blocks_a_second_proposal(leader) -> None:
    p, submitter = leader(isr=(1, 2))
    p.update_follower_fetch(3, 0, T0)  # in sync at once (empty log)
    assert p.pending_isr is not None and p.pending_isr.kind == EXPAND
    assert p.maybe_shrink_isr(T0 + 10 * LAG_MS, LAG_MS) is None  # 2 lags, but an expand is in flight
    assert len(submitter.submitted) == 1


def test_a_refused_submission_goes_back_to_the_committed_isr(leader) -> None:
    p, submitter = leader()
    submitter.refuse = True  # OPERATION_NOT_ATTEMPTED: an earlier change is still queued
    assert p.maybe_shrink_isr(T0 + LAG_MS + 1, LAG_MS) is None
    assert p.pending_isr is None


def test_the_high_watermark_waits_for_a_pending_addition(leader) -> None:
    p, _ = leader(isr=(1, 2))
    p.append_records_to_leader(records(4), 1, T0)
    p.update_follower_fetch(2, 4, T0)
    p.update_follower_fetch(3, 4, T0)  # in sync: expansion pending
    assert p.maximal_isr == (1, 2, 3) and p.log.high_watermark == 4
    p.append_records_to_leader(records(2), 1, T0 + 1)
    p.update_follower_fetch(2, 6, T0 + 2)
    assert p.log.high_watermark == 4  # 3 is in the maximal ISR: the HW waits for it
    p.update_follower_fetch(3, 6, T0 + 3)
    assert p.log.high_watermark == 6


def test_a_committed_shrink_lets_the_high_watermark_advance(leader) -> None:
    p, _ = leader(min_isr=2)
    p.append_records_to_leader(records(4), 1, T0)
    p.update_follower_fetch(2, 4, T0 + 1)
    assert p.log.high_watermark == 0  # 3 never fetched
    change = p.maybe_shrink_isr(T0 + LAG_MS + 1, LAG_MS)
    assert change is not None and p.log.high_watermark == 0  # a shrink counts only once committed
    assert apply_alter_partition_answer(p, change, _ok(change)) is False
    assert (p.isr, p.partition_epoch, p.pending_isr) == ((1, 2), PARTITION_EPOCH + 1, None)
    assert p.log.high_watermark == 4


def test_min_insync_checks_use_the_committed_isr(leader) -> None:
    p, _ = leader(isr=(1,), min_isr=2)
    p.update_follower_fetch(2, 0, T0)  # expansion pending: maximal ISR (1, 2)
    assert p.maximal_isr == (1, 2)
    with pytest.raises(Exception, match="min.insync.replicas"):
        p.append_records_to_leader(records(1), -1, T0)


def test_an_answer_is_applied_only_if_its_partition_epoch_is_not_older(leader) -> None:
    p, _ = leader()
    change = p.maybe_shrink_isr(T0 + LAG_MS + 1, LAG_MS)
    assert change is not None
    p.partition_epoch = PARTITION_EPOCH + 2  # (an AlterPartition answer of another kind got there first)
    apply_alter_partition_answer(p, change, _ok(change, epoch=PARTITION_EPOCH + 1))
    assert p.isr == (1, 2, 3) and p.pending_isr is change  # ignored: older than known
    apply_alter_partition_answer(p, change, _ok(change, leader_epoch=4, epoch=PARTITION_EPOCH + 3))
    assert p.isr == (1, 2, 3)  # ignored: another leader epoch
    apply_alter_partition_answer(p, change, _ok(change, epoch=PARTITION_EPOCH + 3))
    assert (p.isr, p.partition_epoch, p.pending_isr) == ((1,), PARTITION_EPOCH + 3, None)


def test_an_answer_after_the_metadata_delivered_the_change_is_ignored(leader) -> None:
    p, _ = leader()
    change = p.maybe_shrink_isr(T0 + LAG_MS + 1, LAG_MS)
    assert change is not None
    p.update_leadership(1, 5, (1, 2, 3), (1, 2), now_ms=T0, partition_epoch=PARTITION_EPOCH + 1)
    assert p.pending_isr is None and p.isr == (1, 2)
    apply_alter_partition_answer(p, change, _ok(change, isr=(1, 2, 3), epoch=PARTITION_EPOCH + 1))
    assert p.isr == (1, 2)
    # and metadata older than an answer already applied is skipped (Kafka's makeLeader)
    p.commit_isr((1,), PARTITION_EPOCH + 2)
    p.update_leadership(1, 5, (1, 2, 3), (1, 2), now_ms=T0, partition_epoch=PARTITION_EPOCH + 1)
    assert (p.isr, p.partition_epoch) == ((1,), PARTITION_EPOCH + 2)


def test_metadata_reapplied_unchanged_keeps_the_pending_change(leader) -> None:
    p, _ = leader()
    change = p.maybe_shrink_isr(T0 + LAG_MS + 1, LAG_MS)
    p.update_leadership(1, 5, (1, 2, 3), (1, 2, 3), now_ms=T0, partition_epoch=PARTITION_EPOCH)
    assert p.pending_isr is change
    p.update_leadership(1, 6, (1, 2, 3), (1, 2, 3), now_ms=T0, partition_epoch=PARTITION_EPOCH + 1)
    assert p.pending_isr is None  # a new leader epoch: the pending change is void


@pytest.mark.parametrize(("error", "cleared", "retry"), [
    (ErrorCode.ineligible_replica, True, False),
    (ErrorCode.operation_not_attempted, True, False),
    (ErrorCode.fenced_leader_epoch, False, False),  # awaits the metadata (may have been applied)
    (ErrorCode.invalid_update_version, False, False),
    (ErrorCode.unknown_topic_or_partition, False, False),
    (ErrorCode.not_controller, False, True),
    (ErrorCode.request_timed_out, False, True),
])
def test_errors_as_kafka_handles_them(leader, error: ErrorCode, cleared: bool, retry: bool) -> None:
    p, _ = leader(isr=(1, 2))
    p.update_follower_fetch(3, 0, T0)
    change = p.pending_isr
    assert change is not None
    assert apply_alter_partition_answer(p, change, PartitionIsrResult(0, error)) is retry
    assert (p.pending_isr is None) is cleared and p.isr == (1, 2)
    if not cleared:  # the metadata's next version ends it
        p.update_leadership(1, 5, (1, 2, 3), (1, 2), now_ms=T0, partition_epoch=PARTITION_EPOCH + 1)
        assert p.pending_isr is None
