"""LeaderEpochFileCache (Kafka's, KIP-101): assign, endOffsetFor with every edge case of Kafka's
``LeaderEpochFileCacheTest``, truncations, the checkpoint file, and the cache kept by a real
PartitionLog (leader and follower appends, recovery, truncation, retention, rebuild from the log)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cluster.log.leader_epoch_cache import (
    CHECKPOINT_FILE,
    UNDEFINED_EPOCH,
    UNDEFINED_EPOCH_OFFSET,
    CorruptCheckpointError,
    EpochEntry,
    LeaderEpochFileCache,
    parse_checkpoint,
)
from cluster.log.partition_log import PartitionLog
from pykafka_ops.records import RecordBatchBuilder

from .helpers import DAY_MS, T0, batch, log_config, produced

UNDEFINED = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
SMALL = {"segment.bytes": 1000, "index.interval.bytes": 150}


@pytest.fixture
def cache(tmp_path: Path) -> LeaderEpochFileCache:
    return LeaderEpochFileCache(tmp_path)


def _file(cache: LeaderEpochFileCache) -> list[tuple[int, int]]:
    return [tuple(e) for e in parse_checkpoint(cache.path.read_text())]


# --- assign -----------------------------------------------------------------------------------


def test_assign_adds_an_entry_per_new_epoch_and_writes_the_file(cache: LeaderEpochFileCache) -> None:
    assert cache.assign(2, 6)
    assert not cache.assign(2, 10)  # same epoch, later offset: nothing new
    assert cache.assign(3, 11)
    assert cache.entries == [EpochEntry(2, 6), EpochEntry(3, 11)]
    assert cache.latest_epoch == 3 and cache.earliest_entry == (2, 6)
    assert cache.path.read_text() == "0\n2\n2 6\n3 11\n"  # Kafka's format
    assert not list(cache.path.parent.glob("*.tmp"))


def test_assign_same_epoch_lower_offset_replaces_it(cache: LeaderEpochFileCache) -> None:
    cache.assign(2, 6)
    assert cache.assign(2, 5)
    assert cache.entries == [(2, 5)]


def test_assign_removes_entries_that_would_break_monotonicity(cache: LeaderEpochFileCache) -> None:
    cache.assign(2, 6)
    cache.assign(3, 8)
    cache.assign(4, 11)
    cache.assign(3, 9)  # an older epoch at a later offset: epochs ≥ 3 go
    assert cache.entries == [(2, 6), (3, 9)]
    cache.assign(5, 7)  # a newer epoch at an older offset: offsets ≥ 7 go
    assert cache.entries == [(2, 6), (5, 7)]
    assert _file(cache) == [(2, 6), (5, 7)]


def test_assign_ignores_batches_without_an_epoch(cache: LeaderEpochFileCache) -> None:
    assert not cache.assign(-1, 0)
    assert cache.entries == [] and cache.latest_epoch is None
    assert not cache.path.exists()


def test_assign_without_flush_leaves_the_file_until_flushed(cache: LeaderEpochFileCache) -> None:
    cache.assign(1, 0, flush=False)
    assert not cache.path.exists()
    cache.flush_if_dirty()
    assert _file(cache) == [(1, 0)]


# --- end_offset_for (Kafka's LeaderEpochFileCacheTest) ------------------------------------------


def test_end_offset_of_the_latest_epoch_is_the_log_end_offset(cache: LeaderEpochFileCache) -> None:
    cache.assign(2, 6)
    cache.assign(3, 11)
    assert cache.end_offset_for(3, 20) == (3, 20)


def test_end_offset_of_an_older_epoch_is_the_next_epochs_start(cache: LeaderEpochFileCache) -> None:
    cache.assign(2, 6)
    cache.assign(3, 11)
    cache.assign(5, 14)
    assert cache.end_offset_for(2, 20) == (2, 11)
    assert cache.end_offset_for(3, 20) == (3, 14)


def test_end_offset_of_an_unknown_epoch_between_two_is_the_floor_epoch_and_next_start(
        cache: LeaderEpochFileCache) -> None:
    cache.assign(1, 0)
    cache.assign(4, 10)
    cache.assign(7, 20)
    assert cache.end_offset_for(2, 30) == (1, 10)
    assert cache.end_offset_for(5, 30) == (4, 20)
    assert cache.end_offset_for(6, 30) == (4, 20)


def test_end_offset_of_an_epoch_below_the_first_is_the_first_start(cache: LeaderEpochFileCache) -> None:
    # Kafka's code (not its javadoc): the requested epoch, ending where the first known one starts
    # (its data was deleted; the follower replicates from the leader's start).
    cache.assign(5, 10)
    cache.assign(7, 20)
    assert cache.end_offset_for(3, 30) == (3, 10)
    assert cache.end_offset_for(0, 30) == (0, 10)


def test_end_offset_of_an_epoch_above_the_latest_is_undefined(cache: LeaderEpochFileCache) -> None:
    cache.assign(2, 6)
    assert cache.end_offset_for(3, 20) == UNDEFINED


def test_end_offset_of_undefined_epoch_is_undefined(cache: LeaderEpochFileCache) -> None:
    cache.assign(2, 6)
    assert cache.end_offset_for(UNDEFINED_EPOCH, 20) == UNDEFINED


def test_end_offset_in_an_empty_cache_is_undefined(cache: LeaderEpochFileCache) -> None:
    assert cache.end_offset_for(0, 20) == UNDEFINED
    assert cache.end_offset_for(UNDEFINED_EPOCH, 20) == UNDEFINED


def test_epoch_for_offset(cache: LeaderEpochFileCache) -> None:
    cache.assign(1, 5)
    cache.assign(3, 10)
    assert [cache.epoch_for_offset(o) for o in (4, 5, 9, 10, 99)] == [None, 1, 1, 3, 3]


# --- truncations ------------------------------------------------------------------------------


@pytest.fixture
def three(cache: LeaderEpochFileCache) -> LeaderEpochFileCache:
    cache.assign(2, 6)
    cache.assign(3, 8)
    cache.assign(4, 11)
    return cache


@pytest.mark.parametrize(("end", "expected"), [
    (12, [(2, 6), (3, 8), (4, 11)]),  # after the last start: nothing
    (11, [(2, 6), (3, 8)]),  # at a start: that epoch goes
    (9, [(2, 6), (3, 8)]),  # inside an epoch: it stays
    (8, [(2, 6)]),
    (6, []),
    (0, []),
    (-1, [(2, 6), (3, 8), (4, 11)]),  # Kafka ignores a negative end offset
])
def test_truncate_from_end(three: LeaderEpochFileCache, end: int, expected: list[tuple[int, int]]) -> None:
    three.truncate_from_end(end)
    assert three.entries == expected
    assert _file(three) == expected


@pytest.mark.parametrize(("start", "expected"), [
    (5, [(2, 6), (3, 8), (4, 11)]),  # before the first: nothing
    (6, [(2, 6), (3, 8), (4, 11)]),  # at the first start: kept as is
    (7, [(2, 7), (3, 8), (4, 11)]),  # inside the first epoch: it starts there now
    (8, [(3, 8), (4, 11)]),  # at a later start: the epochs before go
    (9, [(3, 9), (4, 11)]),
    (100, [(4, 100)]),  # past every start: the latest epoch starts there
])
def test_truncate_from_start(three: LeaderEpochFileCache, start: int, expected: list[tuple[int, int]]) -> None:
    three.truncate_from_start(start)
    assert three.entries == expected
    assert _file(three) == expected


def test_clear_empties_the_cache_and_the_file(three: LeaderEpochFileCache) -> None:
    three.clear()
    assert three.entries == [] and three.latest_epoch is None
    assert three.path.read_text() == "0\n0\n"


# --- the checkpoint file ----------------------------------------------------------------------


def test_file_round_trip(tmp_path: Path, three: LeaderEpochFileCache) -> None:
    reread = LeaderEpochFileCache.read(tmp_path)
    assert reread.entries == three.entries == [(2, 6), (3, 8), (4, 11)]


def test_reads_a_file_written_by_kafka(tmp_path: Path) -> None:
    (tmp_path / CHECKPOINT_FILE).write_text("0\n3\n0 0\n1 4021\n5 9000\n")
    assert LeaderEpochFileCache.read(tmp_path).entries == [(0, 0), (1, 4021), (5, 9000)]


@pytest.mark.parametrize("text", [
    "", "1\n0\n", "0\n", "0\n2\n1 0\n", "0\n1\n1 0\n2 5\n", "0\n1\nx 0\n", "0\n1\n1 0 3\n",
    "0\n2\n3 0\n2 5\n", "0\n2\n1 5\n2 5\n", "0\n1\n-1 0\n", "\x00\x00\x00",
])
def test_corrupt_files_are_refused(text: str) -> None:
    with pytest.raises(CorruptCheckpointError):
        parse_checkpoint(text)


# --- kept by a PartitionLog -------------------------------------------------------------------


def _open(directory: Path, clean: bool = True, **kwargs) -> PartitionLog:
    return PartitionLog.open(directory, log_config(**SMALL), DAY_MS, clean_shutdown=clean, **kwargs)


def _lead(log: PartitionLog, epoch: int, requests: int, records: int = 3) -> None:
    for i in range(requests):
        log.append_as_leader(produced(batch(records, ts=T0 + i, value_size=40)), epoch, T0 + i)
    log.high_watermark = log.log_end_offset


def _replicated(base_offset: int, epoch: int, records: int = 2) -> memoryview:
    builder = RecordBatchBuilder(base_offset=base_offset, partition_leader_epoch=epoch)
    for i in range(records):
        builder.append(b"k%d" % i, b"v" * 20, timestamp_ms=T0 + i)
    return produced(builder.build())


def test_leader_appends_assign_epochs(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _lead(log, 0, 3)
    _lead(log, 2, 2)
    assert log.leader_epochs.entries == [(0, 0), (2, 9)]
    assert log.leader_epochs.end_offset_for(0, log.log_end_offset) == (0, 9)
    assert log.leader_epochs.end_offset_for(2, log.log_end_offset) == (2, 15)
    log.close(clean=True)
    assert _open(tmp_path / "t-0").leader_epochs.entries == [(0, 0), (2, 9)]


def test_follower_appends_assign_the_batches_epochs(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    log.append_as_follower(_replicated(0, 1), T0)
    log.append_as_follower(_replicated(2, 1), T0)
    log.append_as_follower(_replicated(4, 3), T0)
    assert log.leader_epochs.entries == [(1, 0), (3, 4)]
    assert LeaderEpochFileCache.read(log.directory).entries == [(1, 0), (3, 4)]


def test_truncate_to_cuts_the_epochs_after(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _lead(log, 0, 3)
    _lead(log, 1, 3)
    _lead(log, 4, 3)
    assert log.leader_epochs.entries == [(0, 0), (1, 9), (4, 18)]
    log.truncate_to(12)
    assert log.leader_epochs.entries == [(0, 0), (1, 9)]
    log.truncate_to(9)
    assert LeaderEpochFileCache.read(log.directory).entries == [(0, 0)]


def test_truncate_fully_and_start_at_clears_the_cache(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _lead(log, 3, 4)
    log.truncate_fully_and_start_at(100, T0)
    assert log.leader_epochs.entries == []
    log.append_as_follower(_replicated(100, 5), T0)
    assert LeaderEpochFileCache.read(log.directory).entries == [(5, 100)]


def test_retention_and_delete_records_raise_the_first_entry(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _lead(log, 0, 20)
    _lead(log, 1, 20)
    log.delete_records_before(7)
    assert log.leader_epochs.entries == [(0, 7), (1, 60)]
    log.delete_records_before(61)
    assert log.log_start_offset == 61
    assert LeaderEpochFileCache.read(log.directory).entries == [(1, 61)]


def test_a_torn_tail_of_a_new_epoch_leaves_the_cache_at_recovery(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _lead(log, 0, 3)
    _lead(log, 6, 1)  # offsets 9-11, the last batch
    active = log.segments.active
    last_pos, last = list(active.iter_headers())[-1]
    assert last.partition_leader_epoch == 6
    os.truncate(active.path, last_pos + last.size - 5)  # kill -9 in the middle of the write
    reopened = _open(tmp_path / "t-0", clean=False)
    assert reopened.log_end_offset == 9
    assert reopened.leader_epochs.entries == [(0, 0)]
    assert LeaderEpochFileCache.read(reopened.directory).entries == [(0, 0)]


def test_recovery_adds_an_epoch_the_checkpoint_missed(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _lead(log, 0, 3)
    checkpoint = (log.directory / CHECKPOINT_FILE).read_text()
    _lead(log, 2, 2)
    (log.directory / CHECKPOINT_FILE).write_text(checkpoint)  # a crash before the rename
    reopened = _open(tmp_path / "t-0", clean=False)
    assert reopened.leader_epochs.entries == [(0, 0), (2, 9)]
    assert LeaderEpochFileCache.read(reopened.directory).entries == [(0, 0), (2, 9)]


def test_recovering_batches_of_known_epochs_changes_nothing_and_warns_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Kafka's ``LogSegment.recover``: an epoch is recorded only when newer than the newest known,
    so a kill -9 restart that re-reads a segment from its start does not replace entries."""
    log = _open(tmp_path / "t-0")
    _lead(log, 0, 3)
    _lead(log, 2, 3)
    entries = log.leader_epochs.entries
    reopened = _open(tmp_path / "t-0", clean=False)
    assert reopened.leader_epochs.entries == entries == [(0, 0), (2, 9)]
    assert "replaces entry" not in caplog.text


@pytest.mark.parametrize("damage", ["missing", "garbage", "empty"])
def test_a_missing_or_corrupt_checkpoint_is_rebuilt_from_the_log(tmp_path: Path, damage: str) -> None:
    log = _open(tmp_path / "t-0")
    _lead(log, 0, 10)
    _lead(log, 3, 10)  # several segments
    log.append_as_follower(_replicated(log.log_end_offset, 7), T0)
    assert len(log.segments) > 2
    expected = log.leader_epochs.entries
    assert expected == [(0, 0), (3, 30), (7, 60)]
    log.close(clean=True)
    path = tmp_path / "t-0" / CHECKPOINT_FILE
    if damage == "missing":  # a data dir written before the cache existed
        path.unlink()
    else:
        path.write_bytes(b"\x00garbage\n" if damage == "garbage" else b"")
    reopened = _open(tmp_path / "t-0")
    assert reopened.leader_epochs.entries == expected
    assert LeaderEpochFileCache.read(reopened.directory).entries == expected


def test_rebuild_starts_at_the_log_start_offset(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _lead(log, 0, 10)
    _lead(log, 1, 10)
    log.delete_records_before(33)
    start = log.log_start_offset
    log.close(clean=True)
    (tmp_path / "t-0" / CHECKPOINT_FILE).unlink()
    reopened = _open(tmp_path / "t-0", log_start_offset=start)
    assert reopened.leader_epochs.entries == [(1, 33)]


def test_an_empty_new_log_writes_no_checkpoint(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    log.close(clean=True)
    reopened = _open(tmp_path / "t-0")
    assert reopened.leader_epochs.entries == []
    assert not (tmp_path / "t-0" / CHECKPOINT_FILE).exists()


def test_a_leftover_temp_file_is_removed(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _lead(log, 0, 2)
    log.close(clean=True)
    (tmp_path / "t-0" / f"{CHECKPOINT_FILE}.tmp").write_text("0\n1\n9 9")
    reopened = _open(tmp_path / "t-0")
    assert reopened.leader_epochs.entries == [(0, 0)]
    assert not list((tmp_path / "t-0").glob("*.tmp"))


def test_a_failed_checkpoint_write_does_not_fail_the_append(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cluster.log.leader_epoch_cache as module

    log = _open(tmp_path / "t-0")
    _lead(log, 0, 1)
    real = module.write_checkpoint

    def disk_full(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "write_checkpoint", disk_full)
    _lead(log, 1, 1)  # the append succeeds
    assert log.leader_epochs.entries == [(0, 0), (1, 3)]
    monkeypatch.setattr(module, "write_checkpoint", real)
    log.close(clean=True)  # written at the clean close
    assert LeaderEpochFileCache.read(log.directory).entries == [(0, 0), (1, 3)]
