"""LogManager: Kafka's checkpoint files, partition directory names, clean shutdown and reopen."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cluster.log.manager import (
    CLEAN_SHUTDOWN_FILE,
    LOG_START_FILE,
    RECOVERY_POINT_FILE,
    LogManager,
    parse_partition_dir,
    read_checkpoint,
    write_checkpoint,
)
from pykafka_ops.config.settings import broker_defaults, topic_defaults

from .helpers import DAY_MS, T0, batch, produced

TOPIC_CONFIG = topic_defaults(broker_defaults()) | {"segment.bytes": 600}


def test_checkpoint_round_trip_in_kafkas_format(tmp_path: Path) -> None:
    path = tmp_path / RECOVERY_POINT_FILE
    offsets = {("orders", 0): 120, ("orders", 11): 0, ("my-topic.v2", 3): 2**40}
    write_checkpoint(path, offsets)
    # OffsetCheckpointFile: version 0, entry count, then "topic partition offset" lines.
    lines = path.read_text().splitlines()
    assert lines[:2] == ["0", "3"]
    assert sorted(lines[2:]) == ["my-topic.v2 3 1099511627776", "orders 0 120", "orders 11 0"]
    assert read_checkpoint(path) == offsets
    assert not list(tmp_path.glob("*.tmp"))


def test_checkpoint_overwrite_and_empty(tmp_path: Path) -> None:
    path = tmp_path / LOG_START_FILE
    write_checkpoint(path, {("a", 0): 5})
    write_checkpoint(path, {})
    assert path.read_text() == "0\n0\n"
    assert read_checkpoint(path) == {}


def test_missing_checkpoint_reads_as_empty(tmp_path: Path) -> None:
    assert read_checkpoint(tmp_path / "nope") == {}


def test_checkpoint_written_by_kafka_is_read(tmp_path: Path) -> None:
    path = tmp_path / RECOVERY_POINT_FILE
    path.write_text("0\n2\n__consumer_offsets 7 1234\norders 0 99\n")
    assert read_checkpoint(path) == {("__consumer_offsets", 7): 1234, ("orders", 0): 99}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("orders-0", ("orders", 0)),
        ("orders-12", ("orders", 12)),
        ("my-topic-with-dashes-3", ("my-topic-with-dashes", 3)),
        ("__consumer_offsets-49", ("__consumer_offsets", 49)),
        ("orders", None),
        ("orders-", None),
        ("-3", None),
        ("orders-x", None),
        ("orders-1.d3adb33f-delete", None),  # Kafka's directory of a deleted partition
        ("orders-1.d3adb33f-future", None),
        ("orders--1", ("orders-", 1)),  # a topic may end with a dash; Kafka splits at the last one
    ],
)
def test_parse_partition_dir(name: str, expected: tuple[str, int] | None) -> None:
    assert parse_partition_dir(name) == expected


def test_clean_shutdown_writes_checkpoints_and_marker_and_reopens_without_recovery(tmp_path: Path) -> None:
    manager = LogManager(tmp_path, DAY_MS)
    manager.startup()
    assert manager.clean_shutdown is False
    log = manager.get_or_create("orders", 1, TOPIC_CONFIG)
    assert manager.get_or_create("orders", 1, TOPIC_CONFIG) is log
    for i in range(20):
        log.append_as_leader(produced(batch(2, ts=T0 + i, value_size=20)), 0, T0 + i)
    log.high_watermark = log.log_end_offset
    log.delete_records_before(8)
    end = log.log_end_offset
    manager.shutdown()
    assert (tmp_path / CLEAN_SHUTDOWN_FILE).exists()
    assert read_checkpoint(tmp_path / RECOVERY_POINT_FILE) == {("orders", 1): end}
    assert read_checkpoint(tmp_path / LOG_START_FILE) == {("orders", 1): 8}

    again = LogManager(tmp_path, DAY_MS)
    again.startup()
    assert again.clean_shutdown is True
    assert not (tmp_path / CLEAN_SHUTDOWN_FILE).exists()  # consumed: a crash now is unclean
    assert again.partition_dirs_on_disk() == [("orders", 1)]
    reopened = again.get_or_create("orders", 1, TOPIC_CONFIG)
    assert (reopened.log_start_offset, reopened.log_end_offset) == (8, end)


def test_flush_fsyncs_rolled_segments_and_advances_the_recovery_point(tmp_path: Path) -> None:
    manager = LogManager(tmp_path, DAY_MS)
    manager.startup()
    log = manager.get_or_create("t", 0, TOPIC_CONFIG)
    for i in range(20):
        log.append_as_leader(produced(batch(2, ts=T0 + i, value_size=20)), 0, T0 + i)
    rolled = [s.base_offset for s in log.segments][1:]
    assert rolled and log.unflushed_segments
    asyncio.run(manager.flush(T0))
    assert log.unflushed_segments == []
    assert read_checkpoint(tmp_path / RECOVERY_POINT_FILE) == {("t", 0): rolled[-1]}


def test_delete_removes_the_partition_directory(tmp_path: Path) -> None:
    manager = LogManager(tmp_path, DAY_MS)
    manager.startup()
    manager.get_or_create("gone", 0, TOPIC_CONFIG).append_as_leader(produced(batch(1)), 0, T0)
    manager.delete("gone", 0)
    assert not (tmp_path / "gone-0").exists() and manager.logs == {}


def test_flush_tolerates_partitions_created_while_it_awaits_fsyncs(tmp_path: Path) -> None:
    """flush() awaits fsyncs in a worker thread; meanwhile the event loop serves requests that
    create partitions (auto-created topics, CreateTopics). Its loop over the logs must not break."""
    manager = LogManager(tmp_path, DAY_MS)
    manager.startup()
    log = manager.get_or_create("t", 0, TOPIC_CONFIG)
    for i in range(10):
        log.append_as_leader(produced(batch(2, ts=T0 + i, value_size=20)), 0, T0 + i)
    assert log.unflushed_segments

    async def create_meanwhile() -> None:
        manager.get_or_create("new-topic", 0, TOPIC_CONFIG)  # runs while flush awaits its first fsync

    async def main() -> None:
        await asyncio.gather(manager.flush(T0), create_meanwhile())

    asyncio.run(main())
    assert log.unflushed_segments == [] and ("new-topic", 0) in manager.logs
    assert ("t", 0) in read_checkpoint(tmp_path / RECOVERY_POINT_FILE)


def _manager_with_rolled_segments(tmp_path: Path, **config) -> tuple[LogManager, object]:
    manager = LogManager(tmp_path, DAY_MS)
    manager.startup()
    log = manager.get_or_create("t", 0, TOPIC_CONFIG | config)
    for i in range(20):
        log.append_as_leader(produced(batch(2, ts=T0 + i, value_size=20)), 0, T0 + i)
    log.high_watermark = log.log_end_offset
    assert len(log.unflushed_segments) >= 3
    return manager, log


def test_flush_skips_segments_deleted_while_it_awaits(tmp_path: Path) -> None:
    """A DeleteRecords request served while flush() awaits the fsync of the first rolled
    segment deletes (closes) the next ones: flush must not fsync closed files."""
    manager, log = _manager_with_rolled_segments(tmp_path)

    async def delete_records_meanwhile() -> None:
        log.delete_records_before(log.segments[3].base_offset)

    async def main() -> None:
        await asyncio.gather(manager.flush(T0), delete_records_meanwhile())

    asyncio.run(main())
    assert log.unflushed_segments == []


def test_flush_skips_a_partition_deleted_while_it_awaits(tmp_path: Path) -> None:
    manager, log = _manager_with_rolled_segments(tmp_path, **{"flush.messages": 1})

    async def delete_topic_meanwhile() -> None:
        manager.delete("t", 0)

    async def main() -> None:
        await asyncio.gather(manager.flush(T0), delete_topic_meanwhile())

    asyncio.run(main())
    assert not (tmp_path / "t-0").exists()
