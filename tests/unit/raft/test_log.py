"""The Raft log and its epoch cache (Kafka's LeaderEpochFileCache semantics), one suite run against
every implementation: ``MemoryRaftLog``, and ``DiskRaftLog`` on a PartitionLog with its entries
appended all at once (one batch per epoch) or one by one (one batch per entry), so truncations
fall both inside and between batches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cluster.controller.quorum import METADATA_LOG_CONFIG
from cluster.log.config import LogConfig
from cluster.log.partition_log import PartitionLog
from cluster.raft import Entry, LogError, MemoryRaftLog, OffsetAndEpoch, RaftLog
from cluster.raft.disk_log import DiskRaftLog
from pykafka_ops.config.settings import broker_defaults, topic_defaults

MakeLog = Callable[..., RaftLog]


def open_disk_log(directory: Path, clean: bool = True, **config: object) -> DiskRaftLog:
    """A DiskRaftLog on ``directory`` with the metadata log's settings (plus ``config``)."""
    log_config = LogConfig.from_topic_config(topic_defaults(broker_defaults()) | METADATA_LOG_CONFIG | config)
    return DiskRaftLog(PartitionLog.open(directory, log_config, 86_400_000, clean_shutdown=clean))


@pytest.fixture(params=["memory", "disk", "disk-batch-per-entry"])
def make_log(request: pytest.FixtureRequest, tmp_path: Path) -> MakeLog:
    """``make_log(*epochs)``: a log whose entry i has epoch epochs[i] (payload ``b"i"``)."""

    def make(*epochs: int) -> RaftLog:
        entries = [Entry(i, e, b"%d" % i) for i, e in enumerate(epochs)]
        if request.param == "memory":
            return MemoryRaftLog(entries)
        log = open_disk_log(tmp_path / "__cluster_metadata-0")
        if request.param == "disk":
            log.append(entries)
        else:
            for entry in entries:
                log.append([entry])
        return log

    return make


def test_an_empty_log_ends_at_zero_in_epoch_zero(make_log: MakeLog) -> None:
    log = make_log()
    assert (log.end_offset, log.last_epoch) == (0, 0)
    assert log.read(0, 10) == ()
    assert log.end_offset_for_epoch(3) == OffsetAndEpoch(0, 0)
    assert log.end_offset_for_epoch(-1) == OffsetAndEpoch(-1, -1)
    log.truncate_to(0)
    log.append([])
    assert log.end_offset == 0


def test_append_read_and_epoch_of(make_log: MakeLog) -> None:
    log = make_log(1, 1, 3, 3, 3, 4)
    assert (log.end_offset, log.last_epoch) == (6, 4)
    assert [log.epoch_of(i) for i in range(6)] == [1, 1, 3, 3, 3, 4]
    assert [e.offset for e in log.read(2, 3)] == [2, 3, 4]
    assert log.read(0, 100) == tuple(Entry(i, e, b"%d" % i) for i, e in enumerate((1, 1, 3, 3, 3, 4)))
    assert log.read(3, 1) == (Entry(3, 3, b"3"),)
    assert log.read(6, 5) == log.read(9, 5) == log.read(0, 0) == ()
    with pytest.raises(LogError):
        log.epoch_of(6)
    with pytest.raises(LogError):
        log.epoch_of(-1)


def test_control_entries_keep_their_kind(make_log: MakeLog) -> None:
    log = make_log(1)
    log.append([Entry(1, 2, b'{"leaderId": 1}', control=True), Entry(2, 2, b"a"), Entry(3, 2, b"b")])
    assert [(e.epoch, e.control) for e in log.read(0, 10)] == [(1, False), (2, True), (2, False), (2, False)]
    log.truncate_to(2)
    assert log.read(1, 10) == (Entry(1, 2, b'{"leaderId": 1}', control=True),)
    assert log.end_offset_for_epoch(2) == OffsetAndEpoch(2, 2)


@pytest.mark.parametrize(("epoch", "expected"), [
    (4, OffsetAndEpoch(6, 4)),   # the latest epoch ends at the log end offset
    (3, OffsetAndEpoch(5, 3)),   # an epoch in the middle ends where the next one starts
    (2, OffsetAndEpoch(2, 1)),   # an epoch the log lacks: the largest epoch below it, and its end
    (0, OffsetAndEpoch(0, 0)),   # below every epoch: the start of the first epoch
    (9, OffsetAndEpoch(6, 4)),   # beyond the latest epoch: the latest epoch and the log end
])
def test_end_offset_for_epoch(make_log: MakeLog, epoch: int, expected: OffsetAndEpoch) -> None:
    assert make_log(1, 1, 3, 3, 3, 4).end_offset_for_epoch(epoch) == expected


def test_truncation_drops_entries_and_their_epochs(make_log: MakeLog) -> None:
    log = make_log(1, 1, 3, 3, 3, 4)
    log.truncate_to(3)
    assert (log.end_offset, log.last_epoch) == (3, 3)
    assert log.end_offset_for_epoch(3) == OffsetAndEpoch(3, 3)
    assert log.read(0, 10) == (Entry(0, 1, b"0"), Entry(1, 1, b"1"), Entry(2, 3, b"2"))
    log.truncate_to(2)
    assert (log.end_offset, log.last_epoch) == (2, 1)
    assert log.end_offset_for_epoch(4) == OffsetAndEpoch(2, 1)
    log.truncate_to(10)  # beyond the end: nothing happens
    assert log.end_offset == 2
    log.append([Entry(2, 5, b"x")])
    assert log.end_offset_for_epoch(3) == OffsetAndEpoch(2, 1)
    assert log.end_offset_for_epoch(5) == OffsetAndEpoch(3, 5)
    assert [log.epoch_of(i) for i in range(3)] == [1, 1, 5]
    log.truncate_to(1)  # inside the first epoch
    assert (log.end_offset, log.last_epoch, log.read(0, 10)) == (1, 1, (Entry(0, 1, b"0"),))
    log.truncate_to(0)
    assert (log.end_offset, log.last_epoch, log.end_offset_for_epoch(1)) == (0, 0, OffsetAndEpoch(0, 0))


def test_append_refuses_gaps_overlaps_and_older_epochs(make_log: MakeLog) -> None:
    log = make_log(2, 2)
    with pytest.raises(LogError):
        log.append([Entry(3, 2, b"gap")])
    with pytest.raises(LogError):
        log.append([Entry(1, 2, b"overlap")])
    with pytest.raises(LogError):
        log.append([Entry(2, 1, b"older epoch")])
    with pytest.raises(LogError):
        log.truncate_to(-1)
    assert log.read(0, 10) == (Entry(0, 2, b"0"), Entry(1, 2, b"1"))
