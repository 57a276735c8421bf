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


# ------------------------------------------------------------------------- snapshots (KIP-630)


def test_a_log_without_snapshots_starts_at_zero(make_log: MakeLog) -> None:
    log = make_log(1, 1, 2)
    assert (log.start_offset, log.latest_snapshot()) == (0, None)
    with pytest.raises(LogError):
        log.snapshot_size(OffsetAndEpoch(2, 1))
    with pytest.raises(LogError):
        log.read_snapshot(OffsetAndEpoch(2, 1), 0, 10)
    with pytest.raises(LogError):
        log.trim_to(1)  # nothing below 1 is in a snapshot


def test_create_a_snapshot_read_it_in_chunks_and_trim_the_log_to_it(make_log: MakeLog) -> None:
    log = make_log(1, 1, 3, 3, 3, 4)
    snapshot = OffsetAndEpoch(4, 3)  # after offsets 0-3; offset 3 has epoch 3
    log.create_snapshot(snapshot, b"state after 4")
    assert log.latest_snapshot() == snapshot
    assert log.snapshot_size(snapshot) == 13
    assert [log.read_snapshot(snapshot, p, 5) for p in (0, 5, 10)] == [b"state", b" afte", b"r 4"]
    assert log.read_snapshot(snapshot, 13, 5) == b""
    assert log.start_offset == 0  # creating keeps the entries; trimming deletes them
    log.trim_to(4)
    assert (log.start_offset, log.end_offset, log.last_epoch) == (4, 6, 4)
    assert log.read(4, 10) == (Entry(4, 3, b"4"), Entry(5, 4, b"5"))
    assert [log.epoch_of(i) for i in (3, 4, 5)] == [3, 3, 4]  # 3: the snapshot's last entry
    with pytest.raises(LogError):
        log.epoch_of(2)
    assert log.latest_snapshot() == snapshot
    assert log.read_snapshot(snapshot, 0, 100) == b"state after 4"


@pytest.mark.parametrize(("epoch", "expected"), [
    (4, OffsetAndEpoch(6, 4)),
    (3, OffsetAndEpoch(5, 3)),   # epoch 3 spans the snapshot boundary: it ends where epoch 4 starts
    (2, OffsetAndEpoch(4, 3)),   # older than every epoch held: the snapshot id (KafkaMetadataLog)
    (1, OffsetAndEpoch(4, 3)),
    (0, OffsetAndEpoch(4, 3)),
    (-1, OffsetAndEpoch(-1, -1)),
])
def test_end_offset_for_epoch_after_trimming(make_log: MakeLog, epoch: int, expected: OffsetAndEpoch) -> None:
    log = make_log(1, 1, 3, 3, 3, 4)
    log.create_snapshot(OffsetAndEpoch(4, 3), b"s")
    log.trim_to(4)
    assert log.end_offset_for_epoch(epoch) == expected


def test_end_offset_for_epoch_when_the_log_starts_with_a_newer_epoch_than_its_snapshot(make_log: MakeLog) -> None:
    log = make_log(1, 1, 3, 3, 3, 4)
    log.create_snapshot(OffsetAndEpoch(5, 3), b"s")
    log.trim_to(5)
    assert (log.start_offset, log.read(5, 10)) == (5, (Entry(5, 4, b"5"),))
    assert log.end_offset_for_epoch(4) == OffsetAndEpoch(6, 4)
    assert log.end_offset_for_epoch(3) == OffsetAndEpoch(5, 3)
    assert log.end_offset_for_epoch(2) == OffsetAndEpoch(5, 3)


def test_create_snapshot_refuses_ids_the_log_does_not_hold(make_log: MakeLog) -> None:
    log = make_log(1, 1, 3)
    for bad in (OffsetAndEpoch(4, 3), OffsetAndEpoch(3, 1), OffsetAndEpoch(2, 3), OffsetAndEpoch(0, 0)):
        with pytest.raises(LogError):
            log.create_snapshot(bad, b"s")
    assert log.latest_snapshot() is None
    log.create_snapshot(OffsetAndEpoch(3, 3), b"s")  # the whole log
    log.create_snapshot(OffsetAndEpoch(2, 1), b"older")  # an older one is kept too
    assert log.latest_snapshot() == OffsetAndEpoch(3, 3)


def test_trimming_never_passes_the_latest_snapshot(make_log: MakeLog) -> None:
    log = make_log(1, 1, 3, 3)
    log.create_snapshot(OffsetAndEpoch(2, 1), b"s")
    with pytest.raises(LogError):
        log.trim_to(3)
    log.trim_to(2)
    log.trim_to(1)  # below the start: nothing happens
    assert (log.start_offset, log.end_offset) == (2, 4)
    with pytest.raises(LogError):
        log.truncate_to(1)  # below the start: those entries are in the snapshot
    log.truncate_to(3)
    assert (log.end_offset, log.last_epoch, log.end_offset_for_epoch(3)) == (3, 3, OffsetAndEpoch(3, 3))


def test_a_log_trimmed_to_its_end_holds_no_entry_and_ends_in_the_snapshots_epoch(make_log: MakeLog) -> None:
    log = make_log(1, 1, 3)
    log.create_snapshot(OffsetAndEpoch(3, 3), b"s")
    log.trim_to(3)
    assert (log.start_offset, log.end_offset, log.last_epoch) == (3, 3, 3)
    assert log.read(3, 10) == ()
    assert log.epoch_of(2) == 3
    assert log.end_offset_for_epoch(9) == log.end_offset_for_epoch(1) == OffsetAndEpoch(3, 3)
    with pytest.raises(LogError):
        log.append([Entry(3, 2, b"older epoch")])
    log.append([Entry(3, 5, b"x")])
    assert (log.end_offset, log.last_epoch) == (4, 5)
    assert log.end_offset_for_epoch(4) == OffsetAndEpoch(3, 3)
    assert log.end_offset_for_epoch(5) == OffsetAndEpoch(4, 5)
    log.truncate_to(3)  # back to the snapshot alone
    assert (log.start_offset, log.end_offset, log.last_epoch) == (3, 3, 3)


def test_install_snapshot_replaces_the_whole_log(make_log: MakeLog) -> None:
    log = make_log(1, 1, 2, 2)
    snapshot = OffsetAndEpoch(10, 3)
    log.install_snapshot(snapshot, b"the leader's state")
    assert (log.start_offset, log.end_offset, log.last_epoch) == (10, 10, 3)
    assert log.read(10, 5) == ()
    assert log.latest_snapshot() == snapshot
    assert log.read_snapshot(snapshot, 4, 6) == b"leader"
    assert log.epoch_of(9) == 3
    assert log.end_offset_for_epoch(2) == log.end_offset_for_epoch(7) == OffsetAndEpoch(10, 3)
    log.append([Entry(10, 3, b"a"), Entry(11, 4, b"b")])
    assert (log.end_offset, log.last_epoch) == (12, 4)
    assert log.end_offset_for_epoch(3) == OffsetAndEpoch(11, 3)
    assert log.end_offset_for_epoch(1) == OffsetAndEpoch(10, 3)


def test_install_snapshot_below_the_log_end(make_log: MakeLog) -> None:
    """A follower whose uncommitted suffix diverges is replaced too: everything goes."""
    log = make_log(1, 1, 2, 2, 2, 2)
    log.install_snapshot(OffsetAndEpoch(4, 3), b"s")
    assert (log.start_offset, log.end_offset, log.last_epoch, log.read(4, 10)) == (4, 4, 3, ())


# ------------------------------------------------------------------------- the memory log's own rules


def test_memory_log_snapshot_details() -> None:
    log = MemoryRaftLog([Entry(i, e, b"%d" % i) for i, e in enumerate((1, 1, 2, 2, 3))])
    log.create_snapshot(OffsetAndEpoch(2, 1), b"first")
    log.create_snapshot(OffsetAndEpoch(2, 1), b"again")  # the same id: kept as it was
    log.create_snapshot(OffsetAndEpoch(4, 2), b"second")
    assert log.snapshot_ids() == (OffsetAndEpoch(2, 1), OffsetAndEpoch(4, 2))
    assert log.read_snapshot(OffsetAndEpoch(2, 1), 0, 10) == b"first"
    for position in (-1, 7):
        with pytest.raises(LogError):
            log.read_snapshot(OffsetAndEpoch(4, 2), position, 10)
    log.trim_to(2)
    assert log.snapshot_ids() == (OffsetAndEpoch(2, 1), OffsetAndEpoch(4, 2))
    with pytest.raises(LogError):
        log.read(1, 10)  # below the start: the core never asks
    log.trim_to(4)  # snapshots older than the start are forgotten
    assert log.snapshot_ids() == (OffsetAndEpoch(4, 2),)
    log.install_snapshot(OffsetAndEpoch(9, 4), b"leader")
    assert log.snapshot_ids() == (OffsetAndEpoch(9, 4),)
    assert log.entries() == ()
    with pytest.raises(LogError):
        log.install_snapshot(OffsetAndEpoch(0, 0), b"")
