"""LogManager over several log dirs (Kafka's ``log.dirs``): placement, restart, per-dir checkpoints,
what a crash during a move leaves (real files in temp dirs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cluster.log.checkpoints import REPLICATION_OFFSET_FILE, parse_offset_checkpoint
from cluster.log.manager import (
    CLEAN_SHUTDOWN_FILE,
    LOG_START_FILE,
    RECOVERY_POINT_FILE,
    LogManager,
    read_checkpoint,
)
from cluster.meta_properties import StorageFormatError
from pykafka_ops.config.settings import broker_defaults, topic_defaults

from .helpers import DAY_MS, T0, batch, produced

TOPIC_CONFIG = topic_defaults(broker_defaults()) | {"segment.bytes": 600}


def _manager(tmp_path: Path) -> LogManager:
    manager = LogManager([tmp_path / "a", tmp_path / "b"], DAY_MS, metadata_log_dir=tmp_path / "node")
    manager.startup()
    return manager


def _fill(manager: LogManager, topic: str, partition: int, batches: int) -> None:
    log = manager.get_or_create(topic, partition, TOPIC_CONFIG)
    for i in range(batches):
        log.append_as_leader(produced(batch(2, ts=T0 + i, value_size=20)), 0, T0 + i)
    log.high_watermark = log.log_end_offset


def _where(manager: LogManager, topic: str, partition: int) -> str:
    return manager.logs[(topic, partition)].directory.parent.name


def test_new_partitions_go_to_the_dir_with_the_fewest_and_the_metadata_log_to_the_node_dir(tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    for p in range(4):
        manager.get_or_create("orders", p, TOPIC_CONFIG)
    assert [_where(manager, "orders", p) for p in range(4)] == ["a", "b", "a", "b"]
    manager.get_or_create("__cluster_metadata", 0, TOPIC_CONFIG)
    assert _where(manager, "__cluster_metadata", 0) == "node"
    manager.preferred_dirs[("pinned", 0)] = tmp_path / "b"  # AlterReplicaLogDirs before the partition came
    manager.get_or_create("pinned", 0, TOPIC_CONFIG)
    assert _where(manager, "pinned", 0) == "b" and manager.preferred_dirs == {}
    assert (tmp_path / "a" / "orders-0").is_dir() and (tmp_path / "b" / "orders-1").is_dir()


def test_a_restart_finds_each_partition_in_its_dir_with_its_checkpoints(tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    for p in range(3):
        _fill(manager, "orders", p, 10 + p)
    manager.logs[("orders", 1)].delete_records_before(4)
    ends = {p: manager.logs[("orders", p)].log_end_offset for p in range(3)}
    manager.shutdown()
    for name, partitions in (("a", [0, 2]), ("b", [1])):
        directory = tmp_path / name
        assert (directory / CLEAN_SHUTDOWN_FILE).exists()
        assert read_checkpoint(directory / RECOVERY_POINT_FILE) == {("orders", p): ends[p] for p in partitions}
        assert read_checkpoint(directory / LOG_START_FILE) == {("orders", p): 4 if p == 1 else 0 for p in partitions}
        assert parse_offset_checkpoint((directory / REPLICATION_OFFSET_FILE).read_text()) == {
            ("orders", p): ends[p] for p in partitions}

    again = LogManager([tmp_path / "b", tmp_path / "a"], DAY_MS, metadata_log_dir=tmp_path / "node")  # order changed
    again.startup()
    assert again.clean_shutdown and sorted(again.partition_dirs_on_disk()) == [("orders", p) for p in range(3)]
    for p in range(3):
        log = again.get_or_create("orders", p, TOPIC_CONFIG)
        assert (_where(again, "orders", p), log.log_end_offset, log.high_watermark) == (
            "b" if p == 1 else "a", ends[p], ends[p])
    assert again.logs[("orders", 1)].log_start_offset == 4


def test_one_dir_alone_keeps_todays_layout(tmp_path: Path) -> None:
    manager = LogManager(tmp_path, DAY_MS)
    manager.startup()
    _fill(manager, "t", 0, 3)
    manager.shutdown()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([
        CLEAN_SHUTDOWN_FILE, LOG_START_FILE, RECOVERY_POINT_FILE, REPLICATION_OFFSET_FILE, "t-0"])


def test_start_up_removes_delete_dirs_promotes_a_lone_future_and_opens_a_future_with_its_partition(
        tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    _fill(manager, "moving", 0, 5)
    _fill(manager, "swapped", 0, 4)
    assert (_where(manager, "moving", 0), _where(manager, "swapped", 0)) == ("a", "b")
    future = manager.create_future_log(("moving", 0), tmp_path / "b")
    assert future.directory.parent == tmp_path / "b" and future.directory.name.endswith("-future")
    future.append_as_follower(memoryview(manager.logs[("moving", 0)].read(0, 1 << 20, 4, True)), T0)
    lone = manager.create_future_log(("swapped", 0), tmp_path / "a")
    lone.append_as_follower(memoryview(manager.logs[("swapped", 0)].read(0, 1 << 20, 8, True)), T0)
    for log in (*manager.logs.values(), *manager.future_logs.values()):
        log.close(clean=False)  # kill -9
    (tmp_path / "b" / "swapped-0").rename(tmp_path / "b" / "swapped-0.4567cdef-delete")  # a crash mid-swap
    swapped = tmp_path / "a" / "swapped-0"

    again = _manager(tmp_path)
    assert not list(tmp_path.glob("*/*-delete"))
    assert sorted(again.partition_dirs_on_disk()) == [("moving", 0), ("swapped", 0)]
    assert again.get_or_create("swapped", 0, TOPIC_CONFIG).log_end_offset == 8 and swapped.is_dir()
    current = again.get_or_create("moving", 0, TOPIC_CONFIG)
    resumed = again.future_logs[("moving", 0)]
    assert (current.directory.parent.name, current.log_end_offset) == ("a", 10)
    assert (resumed.directory, resumed.log_end_offset) == (future.directory, 4)


def test_deleting_a_partition_deletes_its_future_replica(tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    _fill(manager, "gone", 0, 3)
    future = manager.create_future_log(("gone", 0), tmp_path / "b")
    manager.delete("gone", 0)
    assert manager.logs == {} and manager.future_logs == {}
    assert not future.directory.exists() and not (tmp_path / "a" / "gone-0").exists()


def test_a_partition_in_two_dirs_is_refused_at_start_up(tmp_path: Path) -> None:
    """As Kafka's LogManager: which copy is current cannot be told (a dir copied by hand)."""
    manager = _manager(tmp_path)
    _fill(manager, "twice", 0, 2)
    manager.shutdown()
    shutil.copytree(tmp_path / "a" / "twice-0", tmp_path / "b" / "twice-0")
    with pytest.raises(StorageFormatError, match="twice-0 is in two log dirs"):
        _manager(tmp_path)
