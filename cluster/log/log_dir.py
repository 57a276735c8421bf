"""LogDir: one log dir of a node and the files Kafka keeps per log dir.

A dir holds ``<topic>-<partition>/`` per partition log, ``recovery-point-offset-checkpoint``,
``log-start-offset-checkpoint`` and ``replication-offset-checkpoint`` (Kafka's
OffsetCheckpointFile text format, see ``checkpoints``), and ``.kafka_cleanshutdown``, written by a
clean shutdown and removed at start-up. As Kafka's ``LogManager`` (``checkpointRecoveryOffsetsInDir``
…), each file lists only the partitions whose log is in this dir.

A replica being moved here by AlterReplicaLogDirs lives in ``<topic>-<partition>.<uniqueId>-future``
until it replaces the current log; the current log's dir is then renamed
``<topic>-<partition>.<uniqueId>-delete`` and removed a little later (Kafka's
``UnifiedLog.logFutureDirName`` / ``logDeleteDirName``). Start-up removes every ``-delete`` dir.

Concurrency: used from the node's event loop only.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from cluster.log.checkpoints import (
    HighWatermarkCheckpoint,
    remove_stray_temp_files,
    write_offset_checkpoint,
)

log = logging.getLogger(__name__)

CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
RECOVERY_POINT_FILE = "recovery-point-offset-checkpoint"
LOG_START_FILE = "log-start-offset-checkpoint"
FUTURE_DIR_SUFFIX = "-future"
DELETE_DIR_SUFFIX = "-delete"

TopicPartition = tuple[str, int]


def read_checkpoint(path: Path) -> dict[TopicPartition, int]:
    """Parse Kafka's OffsetCheckpointFile: version, count, then ``topic partition offset`` lines."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    result: dict[TopicPartition, int] = {}
    for line in lines[2:]:
        parts = line.split()
        if len(parts) == 3:
            result[(parts[0], int(parts[1]))] = int(parts[2])
    return result


def parse_partition_dir(name: str) -> TopicPartition | None:
    """``orders-2`` → ("orders", 2); None for anything else (future and delete dirs included)."""
    topic, sep, index = name.rpartition("-")
    if not sep or not topic or not index.isdigit():
        return None
    return topic, int(index)


def parse_future_dir(name: str) -> TopicPartition | None:
    """``orders-2.<uniqueId>-future`` → ("orders", 2); None for anything else."""
    if not name.endswith(FUTURE_DIR_SUFFIX):
        return None
    base, dot, unique_id = name[: -len(FUTURE_DIR_SUFFIX)].rpartition(".")
    return parse_partition_dir(base) if dot and unique_id.isalnum() else None


def suffixed_dir_name(topic: str, partition: int, suffix: str) -> str:
    """Kafka's ``logDirNameWithSuffix``: ``<topic>-<p>.<uniqueId><suffix>`` (a random id without dashes)."""
    return f"{topic}-{partition}.{uuid.uuid4().hex}{suffix}"


class LogDir:
    """One log dir: its path and the checkpoint values of the partitions it holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clean_shutdown = False
        self.recovery_points: dict[TopicPartition, int] = {}
        self.log_starts: dict[TopicPartition, int] = {}
        self.high_watermarks = HighWatermarkCheckpoint(path)

    def startup(self) -> None:
        """Create the dir if needed, consume the clean-shutdown marker, read the checkpoints and
        remove what a crash left (temporary checkpoint files, ``-delete`` dirs)."""
        self.path.mkdir(parents=True, exist_ok=True)
        marker = self.path / CLEAN_SHUTDOWN_FILE
        self.clean_shutdown = marker.exists()
        marker.unlink(missing_ok=True)
        self.recovery_points = read_checkpoint(self.path / RECOVERY_POINT_FILE)
        self.log_starts = read_checkpoint(self.path / LOG_START_FILE)
        remove_stray_temp_files(self.path)
        self.high_watermarks.load()
        for entry in self.path.glob(f"*{DELETE_DIR_SUFFIX}"):
            log.info("removing %s, left by a replica moved to another log dir", entry)
            shutil.rmtree(entry, ignore_errors=True)
        if not self.clean_shutdown:
            log.info("%s: no clean-shutdown marker; logs recover from their recovery points", self.path)

    def partition_dirs(self) -> list[TopicPartition]:
        """Partitions that have a (current) directory here."""
        return [tp for entry in self.path.iterdir() if entry.is_dir() and (tp := parse_partition_dir(entry.name))]

    def future_dirs(self) -> dict[TopicPartition, Path]:
        """Future replicas found here (``-future`` dirs)."""
        return {tp: entry for entry in self.path.iterdir()
                if entry.is_dir() and (tp := parse_future_dir(entry.name)) is not None}

    def forget(self, tp: TopicPartition) -> None:
        """The partition's log left this dir (deleted, or moved to another dir)."""
        self.recovery_points.pop(tp, None)
        self.log_starts.pop(tp, None)
        self.high_watermarks.remove(tp)

    def write_recovery_points(self, recovery_points: Mapping[TopicPartition, int] | None = None) -> None:
        """Write ``recovery-point-offset-checkpoint`` (with ``recovery_points`` if given)."""
        if recovery_points is not None:
            self.recovery_points = dict(recovery_points)
        write_offset_checkpoint(self.path / RECOVERY_POINT_FILE, self.recovery_points)

    def write_log_starts(self, log_starts: Mapping[TopicPartition, int]) -> None:
        """Write ``log-start-offset-checkpoint`` with ``log_starts``."""
        self.log_starts = dict(log_starts)
        write_offset_checkpoint(self.path / LOG_START_FILE, self.log_starts)

    def write_high_watermarks(self, high_watermarks: Iterable[tuple[TopicPartition, int]],
                              now_ms: int | None = None) -> None:
        """Write ``replication-offset-checkpoint`` if anything changed (``HighWatermarkCheckpoint``)."""
        self.high_watermarks.write(high_watermarks, now_ms)

    def mark_clean_shutdown(self) -> None:
        """Leave the clean-shutdown marker (the last step of a clean shutdown)."""
        (self.path / CLEAN_SHUTDOWN_FILE).write_text("")

    def __repr__(self) -> str:
        return f"LogDir({self.path})"
