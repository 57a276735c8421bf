"""Idempotent producers (Kafka's ProducerStateManager), through PartitionLog.append_as_leader."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.log.partition_log import PartitionLog
from cluster.log.producer_state import ProducerStateError, ProducerStateManager
from pykafka_ops.errors import ErrorCode

from .helpers import DAY_MS, T0, batch, log_config, produced

PID = 4000
INT32_MAX = 2**31 - 1


def _open(tmp_path: Path, clean: bool = True, **config) -> PartitionLog:
    return PartitionLog.open(tmp_path / "t-0", log_config(**config), DAY_MS, clean_shutdown=clean)


def _send(log: PartitionLog, seq: int, n: int = 1, epoch: int = 0, pid: int = PID, now: int = T0):
    return log.append_as_leader(produced(batch(n, producer_id=pid, epoch=epoch, seq=seq)), 0, now)


def _rejected(log: PartitionLog, seq: int, n: int = 1, epoch: int = 0, pid: int = PID) -> ErrorCode:
    size, end = log.size_bytes, log.log_end_offset
    with pytest.raises(ProducerStateError) as info:
        _send(log, seq, n, epoch, pid)
    assert (log.size_bytes, log.log_end_offset) == (size, end)  # nothing written
    return info.value.error_code


def test_in_sequence_batches_are_appended(tmp_path: Path) -> None:
    log = _open(tmp_path)
    assert (_send(log, 0, 3).first_offset, _send(log, 3, 2).first_offset, _send(log, 5).last_offset) == (0, 3, 5)
    entry = log.producer_state.producers[PID]
    assert (entry.epoch, entry.last_seq) == (0, 5)


def test_duplicate_returns_the_original_offsets_and_writes_nothing(tmp_path: Path) -> None:
    log = _open(tmp_path)
    _send(log, 0, 2)
    original = _send(log, 2, 3)
    _send(log, 5, 1)
    size = log.size_bytes
    again = _send(log, 2, 3)
    assert again.duplicate is True
    assert (again.first_offset, again.last_offset, again.max_timestamp) == (2, 4, original.max_timestamp)
    assert again.records == 0
    assert (log.size_bytes, log.log_end_offset) == (size, 6)


def test_duplicates_are_recognised_among_the_last_five_batches_only(tmp_path: Path) -> None:
    log = _open(tmp_path)
    for seq in range(6):
        _send(log, seq)
    assert _send(log, 1).duplicate  # batches 1-5 are retained
    # Batch 0 is forgotten: its sequence does not follow 5 (Kafka: OutOfOrderSequenceException).
    assert _rejected(log, 0) == ErrorCode.out_of_order_sequence_number


def test_sequence_gap_is_out_of_order(tmp_path: Path) -> None:
    log = _open(tmp_path)
    _send(log, 0, 3)
    assert _rejected(log, 4) == ErrorCode.out_of_order_sequence_number
    assert _rejected(log, 2) == ErrorCode.out_of_order_sequence_number  # overlaps, not a duplicate
    assert _send(log, 3).first_offset == 3


def test_older_epoch_is_invalid_producer_epoch(tmp_path: Path) -> None:
    log = _open(tmp_path)
    _send(log, 0, epoch=3)
    assert _rejected(log, 1, epoch=2) == ErrorCode.invalid_producer_epoch


def test_new_epoch_must_start_at_sequence_zero(tmp_path: Path) -> None:
    log = _open(tmp_path)
    _send(log, 0, 5, epoch=0)
    assert _rejected(log, 5, epoch=1) == ErrorCode.out_of_order_sequence_number
    assert _send(log, 0, epoch=1).first_offset == 5
    assert _rejected(log, 5, epoch=0) == ErrorCode.invalid_producer_epoch
    assert _send(log, 1, epoch=1).first_offset == 6


def test_unknown_producer_may_start_at_any_sequence(tmp_path: Path) -> None:
    # No state (new, expired, or removed by retention): Kafka accepts any sequence.
    log = _open(tmp_path)
    assert _send(log, 17, 2).first_offset == 0
    assert _send(log, 19).first_offset == 2


def test_sequence_wraps_after_int32_max(tmp_path: Path) -> None:
    log = _open(tmp_path)
    _send(log, INT32_MAX - 1, 3)  # sequences INT32_MAX-1, INT32_MAX, 0
    assert log.producer_state.producers[PID].last_seq == 0
    assert _rejected(log, INT32_MAX) == ErrorCode.out_of_order_sequence_number
    assert _send(log, 1).first_offset == 3
    assert _send(log, INT32_MAX - 1, 3).duplicate


def test_sequence_wraps_exactly_at_int32_max(tmp_path: Path) -> None:
    log = _open(tmp_path)
    _send(log, INT32_MAX - 1, 2)
    assert log.producer_state.producers[PID].last_seq == INT32_MAX
    assert _send(log, 0).first_offset == 2


def test_several_batches_of_one_producer_in_one_request(tmp_path: Path) -> None:
    log = _open(tmp_path)
    info = log.append_as_leader(produced(batch(2, producer_id=PID, epoch=0, seq=0),
                                         batch(3, producer_id=PID, epoch=0, seq=2)), 0, T0)
    assert (info.first_offset, info.last_offset) == (0, 4)
    assert log.producer_state.producers[PID].last_seq == 4
    assert _send(log, 2, 3).duplicate


def test_a_rejected_request_leaves_the_state_untouched(tmp_path: Path) -> None:
    log = _open(tmp_path)
    _send(log, 0)
    with pytest.raises(ProducerStateError):  # the second batch skips a sequence
        log.append_as_leader(produced(batch(1, producer_id=PID, epoch=0, seq=1),
                                      batch(1, producer_id=PID, epoch=0, seq=3)), 0, T0)
    assert log.producer_state.producers[PID].last_seq == 0
    assert log.log_end_offset == 1
    assert _send(log, 1).first_offset == 1


def test_producers_are_independent(tmp_path: Path) -> None:
    log = _open(tmp_path)
    _send(log, 0, pid=1)
    _send(log, 0, pid=2)
    assert _send(log, 1, pid=1).first_offset == 2
    assert _send(log, 0, pid=2).duplicate


def test_non_idempotent_batches_are_not_tracked(tmp_path: Path) -> None:
    log = _open(tmp_path)
    log.append_as_leader(produced(batch(2)), 0, T0)
    log.append_as_leader(produced(batch(2)), 0, T0)
    assert log.producer_state.producers == {} and log.log_end_offset == 4


def _state(log: PartitionLog) -> dict:
    return {pid: (e.epoch, list(e.batches), e.last_timestamp) for pid, e in log.producer_state.producers.items()}


def _fill(log: PartitionLog, pids: int = 3, rounds: int = 8) -> None:
    for r in range(rounds):
        for pid in range(1, pids + 1):
            _send(log, r * 2, 2, pid=pid, now=T0 + r)


def test_state_survives_a_clean_restart_from_its_snapshot(tmp_path: Path) -> None:
    log = _open(tmp_path, **{"segment.bytes": 600})
    _fill(log)
    before, end = _state(log), log.log_end_offset
    log.close(clean=True)
    snapshots = sorted(p.name for p in (tmp_path / "t-0").glob("*.snapshot"))
    assert snapshots[-1] == f"{end:020d}.snapshot" and len(snapshots) <= 2
    reopened = _open(tmp_path)
    assert _state(reopened) == before
    assert _send(reopened, 14, 2, pid=1).duplicate
    assert _rejected(reopened, 17, pid=1) == ErrorCode.out_of_order_sequence_number
    reopened.close(clean=True)


def test_state_is_rebuilt_from_snapshot_and_replay_after_a_crash(tmp_path: Path) -> None:
    log = _open(tmp_path, **{"segment.bytes": 600})
    _fill(log)
    assert len(log.segments) > 2  # rolls took snapshots; the active segment is replayed
    before = _state(log)
    # Crash: no close, no final snapshot.
    reopened = PartitionLog.open(tmp_path / "t-0", log_config(**{"segment.bytes": 600}), DAY_MS,
                                 clean_shutdown=False)
    assert _state(reopened) == before
    assert _send(reopened, 16, pid=2).first_offset == log.log_end_offset


def test_state_is_rebuilt_by_replay_without_any_snapshot(tmp_path: Path) -> None:
    log = _open(tmp_path, **{"segment.bytes": 600})
    _fill(log)
    before = _state(log)
    log.close(clean=True)
    for snapshot in (tmp_path / "t-0").glob("*.snapshot"):
        snapshot.unlink()
    assert _state(_open(tmp_path, clean=False)) == before


def test_snapshot_files_round_trip(tmp_path: Path) -> None:
    log = _open(tmp_path)
    _fill(log, pids=2, rounds=3)
    manager = ProducerStateManager(tmp_path / "t-0", DAY_MS)
    log.producer_state.take_snapshot(42)
    assert manager.load_snapshot(100) == 42
    assert {pid: (e.epoch, list(e.batches)) for pid, e in manager.producers.items()} == {
        pid: (e.epoch, list(e.batches)) for pid, e in log.producer_state.producers.items()}
    assert manager.load_snapshot(41) == -1  # newer than the log end: deleted
    assert manager.snapshot_offsets() == []


def test_corrupt_snapshot_is_ignored(tmp_path: Path) -> None:
    manager = ProducerStateManager(tmp_path, DAY_MS)
    (tmp_path / f"{10:020d}.snapshot").write_text("{not json")
    assert manager.load_snapshot(100) == -1 and manager.producers == {}


def test_expired_producers_are_forgotten(tmp_path: Path) -> None:
    log = _open(tmp_path)
    _send(log, 0, pid=1, now=T0)
    log.append_as_leader(produced(batch(1, ts=T0 + DAY_MS, producer_id=2, epoch=0, seq=0)), 0, T0 + DAY_MS)
    log.producer_state.remove_expired(T0 + DAY_MS + 1)
    assert set(log.producer_state.producers) == {2}
