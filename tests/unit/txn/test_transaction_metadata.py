"""TransactionMetadata's two-step transitions, checked as Kafka's TransactionMetadata."""

from __future__ import annotations

import pytest

from cluster.txn.transaction_metadata import (
    NO_PRODUCER_EPOCH,
    SHORT_MAX,
    IllegalTransitionError,
    TransactionMetadata,
    TransactionState,
)

S = TransactionState


def _new(epoch: int = NO_PRODUCER_EPOCH, state: S = S.EMPTY) -> TransactionMetadata:
    return TransactionMetadata("tx", 100, producer_epoch=epoch, timeout_ms=1000, state=state,
                               last_update_timestamp_ms=0)


def _do(m: TransactionMetadata, transit) -> TransactionMetadata:
    m.complete_transition_to(transit)
    return m


def test_names_and_ids_are_kafkas() -> None:
    assert [(s.value, s.display_name) for s in S] == [
        (0, "Empty"), (1, "Ongoing"), (2, "PrepareCommit"), (3, "PrepareAbort"), (4, "CompleteCommit"),
        (5, "CompleteAbort"), (6, "Dead"), (7, "PrepareEpochFence")]
    assert {s for s in S if s.is_expiration_allowed} == {S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}


def test_a_whole_commit_cycle() -> None:
    m = _new()
    _do(m, m.prepare_increment_producer_epoch(1000, None, 10))
    assert (m.state, m.producer_epoch, m.last_producer_epoch) == (S.EMPTY, 0, NO_PRODUCER_EPOCH)
    _do(m, m.prepare_add_partitions(frozenset({("t", 0)}), 20))
    assert (m.state, m.partitions, m.start_timestamp_ms) == (S.ONGOING, {("t", 0)}, 20)
    _do(m, m.prepare_add_partitions(frozenset({("t", 1)}), 30))
    assert m.partitions == {("t", 0), ("t", 1)} and m.start_timestamp_ms == 20
    _do(m, m.prepare_abort_or_commit(S.PREPARE_COMMIT, 40))
    transit = m.prepare_complete(50)
    m.remove_partition(("t", 0))
    m.remove_partition(("t", 1))
    _do(m, transit)
    assert (m.state, m.partitions, m.last_update_timestamp_ms, m.pending_state) == (S.COMPLETE_COMMIT, set(), 50, None)
    # the next transaction starts again from a Complete state
    assert m.prepare_add_partitions(frozenset({("t", 0)}), 60).start_timestamp_ms == 60


def test_a_second_prepare_while_one_is_pending_is_a_bug() -> None:
    m = _new(0)
    m.prepare_add_partitions(frozenset({("t", 0)}), 1)
    with pytest.raises(IllegalTransitionError):
        m.prepare_add_partitions(frozenset({("t", 1)}), 2)


@pytest.mark.parametrize("state, target", [(S.EMPTY, S.PREPARE_COMMIT), (S.COMPLETE_COMMIT, S.PREPARE_ABORT),
                                           (S.PREPARE_COMMIT, S.PREPARE_ABORT)])
def test_invalid_transitions_raise(state: S, target: S) -> None:
    with pytest.raises(IllegalTransitionError):
        _new(0, state).prepare_abort_or_commit(target, 1)


def test_completing_a_transition_not_prepared_raises() -> None:
    m = _new(0, S.ONGOING)
    other = _new(0, S.ONGOING)
    transit = other.prepare_abort_or_commit(S.PREPARE_ABORT, 5)
    with pytest.raises(IllegalTransitionError):
        m.complete_transition_to(transit)


def test_kip_360_expected_epochs() -> None:
    m = _new(5)
    m.last_producer_epoch = 4
    assert m.prepare_increment_producer_epoch(1000, 3, 1) is None  # another instance's epoch: fenced
    t = m.prepare_increment_producer_epoch(1000, 5, 1)  # the current epoch: bump, remember the last
    assert (t.producer_epoch, t.last_producer_epoch) == (6, 5)
    m.pending_state = None
    t = m.prepare_increment_producer_epoch(1000, 4, 1)  # a retry of a bump already done: no new bump
    assert (t.producer_epoch, t.last_producer_epoch) == (5, 4)


def test_fence_bumps_once_even_when_retried_after_a_failed_write() -> None:
    m = _new(3, S.ONGOING)
    assert m.prepare_fence_producer_epoch().producer_epoch == 4
    m.pending_state = None
    m.has_failed_epoch_fence = True
    m.producer_epoch = 4
    fence = m.prepare_fence_producer_epoch()
    assert (fence.state, fence.producer_epoch, fence.last_producer_epoch) == (S.PREPARE_EPOCH_FENCE, 4, -1)


def test_epoch_exhaustion_and_producer_id_rotation() -> None:
    m = _new(SHORT_MAX - 1, S.COMPLETE_ABORT)
    assert m.is_producer_epoch_exhausted
    with pytest.raises(IllegalTransitionError):
        m.prepare_increment_producer_epoch(1000, None, 1)
    transit = m.prepare_producer_id_rotation(200, 2000, 9, record_last_epoch=True)
    _do(m, transit)
    assert (m.producer_id, m.producer_epoch, m.last_producer_id, m.last_producer_epoch, m.timeout_ms) == \
        (200, 0, 100, SHORT_MAX - 1, 2000)


def test_rotation_with_an_open_transaction_raises() -> None:
    with pytest.raises(IllegalTransitionError):
        _new(SHORT_MAX - 1, S.ONGOING).prepare_producer_id_rotation(200, 1000, 1, False)


def test_to_log_value_and_back() -> None:
    m = _new(2, S.ONGOING)
    m.partitions = {("t", 3)}
    m.start_timestamp_ms = 7
    transit = m.prepare_abort_or_commit(S.PREPARE_ABORT, 8)
    loaded = TransactionMetadata.from_log_value("tx", transit.to_log_value())
    assert (loaded.producer_id, loaded.producer_epoch, loaded.state, loaded.partitions, loaded.start_timestamp_ms,
            loaded.last_update_timestamp_ms, loaded.timeout_ms) == (100, 2, S.PREPARE_ABORT, {("t", 3)}, 7, 8, 1000)
