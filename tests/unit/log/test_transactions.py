"""The log side of transactions (KIP-98): producer state, markers, .txnindex, last stable offset."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from cluster.log.partition_log import PartitionLog
from cluster.log.producer_state import ProducerStateError
from cluster.log.transaction_index import ENTRY_SIZE, AbortedTxn, TransactionIndex
from cluster.log.transactions import Origin, build_end_txn_marker
from cluster.log.validator import RecordValidationError
from pykafka_ops.errors import ErrorCode

from .helpers import DAY_MS, T0, batch, log_config, produced

A, B = 7001, 7002


def _open(tmp_path: Path, clean: bool = True, **config) -> PartitionLog:
    log = PartitionLog.open(tmp_path / "t-0", log_config(**config), DAY_MS, clean_shutdown=clean)
    return log


def _txn(log: PartitionLog, pid: int, seq: int, n: int = 2, epoch: int = 0, transactional: bool = True):
    info = log.append_as_leader(produced(batch(n, producer_id=pid, epoch=epoch, seq=seq,
                                               is_transactional=transactional)), 0, T0)
    log.high_watermark = log.log_end_offset
    return info


def _marker(log: PartitionLog, pid: int, commit: bool, epoch: int = 0, coordinator_epoch: int = 0):
    info = log.append_as_leader(produced(build_end_txn_marker(pid, epoch, coordinator_epoch, commit, T0)), 0, T0,
                                origin=Origin.COORDINATOR)
    log.high_watermark = log.log_end_offset
    return info


def test_transaction_index_binary_format_and_collect(tmp_path: Path) -> None:
    index = TransactionIndex(tmp_path / "00000000000000000000.txnindex")
    assert not index.path.exists()  # created at the first abort
    index.append(AbortedTxn(5, 10, 20, 21))
    index.append(AbortedTxn(6, 15, 30, 31))
    raw = index.path.read_bytes()
    assert len(raw) == 2 * ENTRY_SIZE == 68
    assert struct.unpack_from(">hqqqq", raw, 0) == (0, 5, 10, 20, 21)  # Kafka's AbortedTxn layout
    with pytest.raises(ValueError):
        index.append(AbortedTxn(7, 1, 25, 26))  # markers only move forward
    again = TransactionIndex(index.path)
    again.load()
    assert again.entries == index.entries
    assert again.collect(21, 100) == ([AbortedTxn(6, 15, 30, 31)], False)
    assert again.collect(0, 12) == ([AbortedTxn(5, 10, 20, 21)], True)  # LSO 21 ≥ 12: search complete
    again.truncate_to(30)
    assert again.entries == [AbortedTxn(5, 10, 20, 21)] and len(again.path.read_bytes()) == ENTRY_SIZE


def test_open_transaction_holds_the_lso_and_markers_close_it(tmp_path: Path) -> None:
    log = _open(tmp_path)
    log.append_as_leader(produced(batch(3)), 0, T0)  # 0-2, not transactional
    log.high_watermark = 3
    _txn(log, A, 0)  # 3-4
    _txn(log, B, 0)  # 5-6
    assert log.producer_state.producers[A].current_txn_first_offset == 3
    assert (log.high_watermark, log.last_stable_offset) == (7, 3)
    commit = _marker(log, A, commit=True)  # 7
    assert commit.first_offset == 7
    assert log.last_stable_offset == 5  # B still open
    abort = _marker(log, B, commit=False)  # 8
    assert log.last_stable_offset == 9 == log.high_watermark
    assert log.segments.active.txn_index.entries == [AbortedTxn(B, 5, 8, 9)]
    assert log.collect_aborted_transactions(0, 9) == [AbortedTxn(B, 5, 8, 9)]
    assert log.collect_aborted_transactions(9, 10) == []
    assert abort.first_offset == 8


def test_an_unreplicated_marker_keeps_the_lso(tmp_path: Path) -> None:
    log = _open(tmp_path)
    _txn(log, A, 0)  # 0-1
    log.append_as_leader(produced(build_end_txn_marker(A, 0, 0, True, T0)), 0, T0, origin=Origin.COORDINATOR)
    log.high_watermark = 2  # the marker (offset 2) is not replicated yet
    assert log.last_stable_offset == 0
    log.high_watermark = 3
    assert log.last_stable_offset == 3


def test_abort_lso_is_the_first_offset_of_another_open_transaction(tmp_path: Path) -> None:
    log = _open(tmp_path)
    _txn(log, A, 0)  # 0-1
    _txn(log, B, 0)  # 2-3
    _marker(log, A, commit=False)  # 4
    assert log.segments.active.txn_index.entries == [AbortedTxn(A, 0, 4, 2)]


def test_transactional_validation(tmp_path: Path) -> None:
    log = _open(tmp_path)
    _txn(log, A, 0, epoch=1)
    with pytest.raises(ProducerStateError) as info:  # idempotent batch inside an open transaction
        _txn(log, A, 2, epoch=1, transactional=False)
    assert info.value.error_code == ErrorCode.invalid_txn_state
    with pytest.raises(ProducerStateError) as info:
        _txn(log, A, 0, epoch=0)
    assert info.value.error_code == ErrorCode.invalid_producer_epoch
    with pytest.raises(RecordValidationError) as invalid:  # a transactional batch needs a producer id
        log.append_as_leader(produced(batch(1, is_transactional=True)), 0, T0)
    assert invalid.value.error_code == ErrorCode.invalid_record
    with pytest.raises(RecordValidationError):  # clients never write markers
        log.append_as_leader(produced(build_end_txn_marker(A, 1, 0, True, T0)), 0, T0)
    _marker(log, A, commit=True, epoch=1, coordinator_epoch=3)
    with pytest.raises(ProducerStateError) as info:
        _marker(log, A, commit=True, epoch=1, coordinator_epoch=2)
    assert info.value.error_code == ErrorCode.transaction_coordinator_fenced
    with pytest.raises(ProducerStateError) as info:
        _marker(log, A, commit=False, epoch=0, coordinator_epoch=3)
    assert info.value.error_code == ErrorCode.invalid_producer_epoch
    _txn(log, A, 2, epoch=1)  # the sequence goes on after a same-epoch marker
    _marker(log, A, commit=False, epoch=2, coordinator_epoch=3)  # an abort with a bumped epoch (fencing)
    with pytest.raises(ProducerStateError) as info:
        _txn(log, A, 4, epoch=2)  # a new epoch starts at sequence 0
    assert info.value.error_code == ErrorCode.out_of_order_sequence_number
    _txn(log, A, 0, epoch=2)


@pytest.mark.parametrize("clean", [True, False])
def test_open_transaction_and_txn_index_survive_a_restart(tmp_path: Path, clean: bool) -> None:
    log = _open(tmp_path, **{"segment.bytes": 400})
    _txn(log, A, 0)
    _marker(log, A, commit=False)
    for seq in range(0, 30, 2):  # several segments; B's transaction stays open
        _txn(log, B, seq)
    entries = [e for s in log.segments for e in s.txn_index.entries]
    assert entries == [AbortedTxn(A, 0, 2, 3)]
    lso = log.last_stable_offset
    assert lso == 3 and len(log.segments) > 2
    log.close(clean=clean)
    again = _open(tmp_path, clean=clean, **{"segment.bytes": 400})
    again.high_watermark = again.log_end_offset
    assert again.producer_state.producers[B].current_txn_first_offset == 3
    assert again.last_stable_offset == 3
    assert [e for s in again.segments for e in s.txn_index.entries] == entries
    assert again.collect_aborted_transactions(0, again.log_end_offset) == entries


def test_truncation_reopens_the_transaction_and_cuts_the_index(tmp_path: Path) -> None:
    log = _open(tmp_path)
    _txn(log, A, 0)  # 0-1
    _marker(log, A, commit=False)  # 2
    log.truncate_to(2)
    log.high_watermark = 2
    assert log.segments.active.txn_index.entries == []
    assert log.producer_state.producers[A].current_txn_first_offset == 0
    assert log.last_stable_offset == 0


def test_follower_append_tracks_transactions(tmp_path: Path) -> None:
    leader = _open(tmp_path / "leader")
    _txn(leader, A, 0)
    _marker(leader, A, commit=False)
    data = leader.read(0, 1 << 20, leader.log_end_offset, min_one_batch=True)
    follower = _open(tmp_path / "follower")
    follower.append_as_follower(memoryview(bytearray(data)), T0)
    assert follower.segments.active.txn_index.entries == [AbortedTxn(A, 0, 2, 3)]
    assert follower.producer_state.producers[A].current_txn_first_offset == -1
