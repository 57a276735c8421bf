"""The in-memory Raft log and its epoch cache (Kafka's LeaderEpochFileCache semantics)."""

from __future__ import annotations

import pytest

from cluster.raft import Entry, LogError, MemoryRaftLog, OffsetAndEpoch


def _log(*epochs: int) -> MemoryRaftLog:
    """A log whose entry i has epoch epochs[i]."""
    return MemoryRaftLog([Entry(i, e, b"%d" % i) for i, e in enumerate(epochs)])


def test_an_empty_log_ends_at_zero_in_epoch_zero() -> None:
    log = MemoryRaftLog()
    assert (log.end_offset, log.last_epoch) == (0, 0)
    assert log.read(0, 10) == ()
    assert log.end_offset_for_epoch(3) == OffsetAndEpoch(0, 0)


def test_append_read_and_epoch_of() -> None:
    log = _log(1, 1, 3, 3, 3, 4)
    assert (log.end_offset, log.last_epoch) == (6, 4)
    assert [log.epoch_of(i) for i in range(6)] == [1, 1, 3, 3, 3, 4]
    assert [e.offset for e in log.read(2, 3)] == [2, 3, 4]
    with pytest.raises(LogError):
        log.epoch_of(6)


@pytest.mark.parametrize(("epoch", "expected"), [
    (4, OffsetAndEpoch(6, 4)),   # the latest epoch ends at the log end offset
    (3, OffsetAndEpoch(5, 3)),   # an epoch in the middle ends where the next one starts
    (2, OffsetAndEpoch(2, 1)),   # an epoch the log lacks: the largest epoch below it, and its end
    (0, OffsetAndEpoch(0, 0)),   # below every epoch: the start of the first epoch
    (9, OffsetAndEpoch(6, 4)),   # beyond the latest epoch: the latest epoch and the log end
])
def test_end_offset_for_epoch(epoch: int, expected: OffsetAndEpoch) -> None:
    assert _log(1, 1, 3, 3, 3, 4).end_offset_for_epoch(epoch) == expected


def test_truncation_drops_entries_and_their_epochs() -> None:
    log = _log(1, 1, 3, 3, 3, 4)
    log.truncate_to(3)
    assert (log.end_offset, log.last_epoch) == (3, 3)
    assert log.end_offset_for_epoch(3) == OffsetAndEpoch(3, 3)
    log.truncate_to(2)
    assert (log.end_offset, log.last_epoch) == (2, 1)
    assert log.end_offset_for_epoch(4) == OffsetAndEpoch(2, 1)
    log.truncate_to(10)  # beyond the end: nothing happens
    assert log.end_offset == 2
    log.append([Entry(2, 5, b"x")])
    assert log.end_offset_for_epoch(3) == OffsetAndEpoch(2, 1)
    assert log.end_offset_for_epoch(5) == OffsetAndEpoch(3, 5)


def test_append_refuses_gaps_overlaps_and_older_epochs() -> None:
    log = _log(2, 2)
    with pytest.raises(LogError):
        log.append([Entry(3, 2, b"gap")])
    with pytest.raises(LogError):
        log.append([Entry(1, 2, b"overlap")])
    with pytest.raises(LogError):
        log.append([Entry(2, 1, b"older epoch")])
    with pytest.raises(LogError):
        log.truncate_to(-1)
