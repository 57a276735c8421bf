"""replication-offset-checkpoint (Kafka's high-watermark checkpoint): the file, and how
LogManager writes it and opens logs with it."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from cluster import durable
from cluster.log import checkpoints
from cluster.log.checkpoints import (
    HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS,
    REPLICATION_OFFSET_FILE,
    CorruptOffsetCheckpointError,
    HighWatermarkCheckpoint,
    parse_offset_checkpoint,
    write_offset_checkpoint,
)
from cluster.log.manager import LogManager
from cluster.log.partition_log import PartitionLog
from pykafka_ops.config.settings import broker_defaults, topic_defaults

from .helpers import DAY_MS, T0, batch, log_config, produced

TOPIC_CONFIG = topic_defaults(broker_defaults()) | {"segment.bytes": 600}


def _manager(tmp_path: Path) -> LogManager:
    manager = LogManager(tmp_path, DAY_MS)
    manager.startup()
    return manager


def _fill(partition_log: PartitionLog, batches: int) -> None:
    for i in range(batches):
        partition_log.append_as_leader(produced(batch(2, ts=T0 + i, value_size=20)), 0, T0 + i)


# -- the file -----------------------------------------------------------------------------------


def test_round_trip_in_kafkas_format(tmp_path: Path) -> None:
    path = tmp_path / REPLICATION_OFFSET_FILE
    offsets = {("orders", 0): 120, ("orders", 11): 0, ("__consumer_offsets", 7): 2**40}
    write_offset_checkpoint(path, offsets)
    lines = path.read_text().splitlines()
    assert lines[:2] == ["0", "3"]
    assert lines[2:] == ["__consumer_offsets 7 1099511627776", "orders 0 120", "orders 11 0"]
    assert parse_offset_checkpoint(path.read_text()) == offsets
    assert not list(tmp_path.glob("*.tmp"))


def test_a_file_written_by_kafka_is_read(tmp_path: Path) -> None:
    (tmp_path / REPLICATION_OFFSET_FILE).write_text("0\n2\nfoo 0 5\nbar-baz 3 17\n")
    cp = HighWatermarkCheckpoint(tmp_path)
    cp.load()
    assert cp.offsets == {("foo", 0): 5, ("bar-baz", 3): 17}


@pytest.mark.parametrize("text", [
    "", "0\n", "1\n1\nt 0 5\n", "0\nx\n", "0\n2\nt 0 5\n", "0\n1\nt 0\n", "0\n1\nt zero 5\n",
    "0\n1\nt 0 -1\n", "0\n1\nt 0 5 6\n",
])
def test_malformed_files_are_refused(text: str) -> None:
    with pytest.raises(CorruptOffsetCheckpointError):
        parse_offset_checkpoint(text)


def test_a_corrupt_file_is_ignored_with_a_warning_and_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / REPLICATION_OFFSET_FILE
    path.write_bytes(b"0\n3\norders 0 12\n\xff\xfe")
    cp = HighWatermarkCheckpoint(tmp_path)
    with caplog.at_level(logging.WARNING, logger="cluster.log.checkpoints"):
        cp.load()
    assert cp.offsets == {}
    assert "unreadable" in caplog.text
    assert cp.initial_high_watermark(("orders", 0)) == 0
    assert cp.write([(("orders", 0), 4)], 0)  # written even though nothing changed since load
    assert parse_offset_checkpoint(path.read_text()) == {("orders", 0): 4}


def test_write_is_atomic_and_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / REPLICATION_OFFSET_FILE
    write_offset_checkpoint(path, {("t", 0): 1})
    fsynced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(durable.os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd)))

    def crash(src: object, dst: object) -> None:
        raise OSError("killed before the rename")

    monkeypatch.setattr(durable.os, "replace", crash)
    with pytest.raises(OSError):
        write_offset_checkpoint(path, {("t", 0): 2, ("t", 1): 9})
    assert fsynced  # the new content was fsynced before the rename was attempted
    assert parse_offset_checkpoint(path.read_text()) == {("t", 0): 1}  # the old file, whole
    assert (tmp_path / f"{REPLICATION_OFFSET_FILE}.tmp").exists()
    monkeypatch.undo()

    manager = _manager(tmp_path)  # start-up removes what the crash left
    assert not (tmp_path / f"{REPLICATION_OFFSET_FILE}.tmp").exists()
    assert manager.dirs[tmp_path].high_watermarks.offsets == {("t", 0): 1}


def test_unchanged_values_are_not_rewritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cp = HighWatermarkCheckpoint(tmp_path)
    cp.load()
    assert cp.write([(("t", 0), 3)], 0)
    writes: list[object] = []
    monkeypatch.setattr(checkpoints, "write_offset_checkpoint", lambda *a: writes.append(a))
    assert not cp.write([(("t", 0), 3)], HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS)
    assert writes == []


def test_due_every_interval(tmp_path: Path) -> None:
    cp = HighWatermarkCheckpoint(tmp_path, interval_ms=5000)
    assert cp.due(100)
    cp.write([], 100)
    assert not cp.due(5099)
    assert cp.due(5100)


# -- opening a log ------------------------------------------------------------------------------


def _reopen(tmp_path: Path, high_watermark: int | None) -> PartitionLog:
    return PartitionLog.open(tmp_path / "t-0", log_config(**{"segment.bytes": 600}), DAY_MS,
                             clean_shutdown=True, high_watermark=high_watermark)


def test_open_with_a_checkpoint_below_the_log_end(tmp_path: Path) -> None:
    partition_log = PartitionLog.open(tmp_path / "t-0", log_config(**{"segment.bytes": 600}), DAY_MS,
                                      clean_shutdown=True)
    _fill(partition_log, 10)
    end = partition_log.log_end_offset
    partition_log.close(clean=True)

    reopened = _reopen(tmp_path, 6)
    assert (reopened.high_watermark, reopened.log_end_offset) == (6, end)
    assert reopened.read(6, 1 << 20, reopened.high_watermark, True) == b""  # consumers stop at the HW
    reopened.close(clean=True)
    assert _reopen(tmp_path, end + 100).high_watermark == end  # never above the log end
    assert _reopen(tmp_path, None).high_watermark == end  # a Raft-managed log: the log end


def test_open_without_an_entry_starts_at_the_log_start(tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    partition_log = manager.get_or_create("t", 0, TOPIC_CONFIG)
    _fill(partition_log, 10)
    partition_log.high_watermark = partition_log.log_end_offset
    partition_log.delete_records_before(4)
    manager.write_log_start_checkpoint()
    manager.logs.clear()
    partition_log.close(clean=True)  # a crash before any high-watermark checkpoint
    (tmp_path / REPLICATION_OFFSET_FILE).unlink(missing_ok=True)

    again = _manager(tmp_path)
    reopened = again.get_or_create("t", 0, TOPIC_CONFIG)
    assert reopened.log_start_offset == 4 and reopened.high_watermark == 4


def test_manager_checkpoints_periodically_at_shutdown_and_reopens_with_it(tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    orders = manager.get_or_create("orders", 0, TOPIC_CONFIG)
    metadata = manager.get_or_create("__cluster_metadata", 0, TOPIC_CONFIG)
    _fill(orders, 6)
    _fill(metadata, 2)
    orders.high_watermark = 8
    asyncio.run(manager.flush(T0))  # the maintenance loop's call: the first checkpoint is due
    path = tmp_path / REPLICATION_OFFSET_FILE
    assert parse_offset_checkpoint(path.read_text()) == {("orders", 0): 8}  # no Raft-managed log

    orders.high_watermark = 10
    asyncio.run(manager.flush(T0))  # not due again for 5 s
    assert parse_offset_checkpoint(path.read_text()) == {("orders", 0): 8}
    manager.shutdown()
    assert parse_offset_checkpoint(path.read_text()) == {("orders", 0): 10}

    again = _manager(tmp_path)
    reopened = again.get_or_create("orders", 0, TOPIC_CONFIG)
    assert (reopened.high_watermark, reopened.log_end_offset) == (10, 12)
    assert again.get_or_create("__cluster_metadata", 0, TOPIC_CONFIG).high_watermark == 4


def test_entries_of_unopened_partitions_are_kept_and_deleted_partitions_leave(tmp_path: Path) -> None:
    write_offset_checkpoint(tmp_path / REPLICATION_OFFSET_FILE, {("later", 0): 7, ("gone", 0): 3, ("t", 0): 0})
    manager = _manager(tmp_path)
    t = manager.get_or_create("t", 0, TOPIC_CONFIG)
    _fill(t, 1)
    t.high_watermark = 2
    manager.get_or_create("gone", 0, TOPIC_CONFIG)
    manager.delete("gone", 0)
    manager.checkpoint_high_watermarks()
    assert parse_offset_checkpoint((tmp_path / REPLICATION_OFFSET_FILE).read_text()) == {("later", 0): 7, ("t", 0): 2}
