"""LogManager (Kafka's `LogManager` + `LogLoader` logic): every partition log of a log dir.

Layout of a log dir (as Kafka's): ``<topic>-<partition>/`` per partition,
``recovery-point-offset-checkpoint``, ``log-start-offset-checkpoint`` and
``replication-offset-checkpoint`` (high watermarks, see ``checkpoints``; Kafka's
OffsetCheckpointFile text format), ``.kafka_cleanshutdown`` written by a clean shutdown and
removed at start-up. Segment and index files share a bounded set of open descriptors
(``log.open.files.max``, see ``file_handles``). A log opened after a crash recovers from its recovery point: the offset
up to which segments were fsynced (segments are fsynced in a worker thread once rolled).

Concurrency: one instance per node, used from its event loop; only fsyncs of rolled segments
(no longer written) and of the active segment by policy run in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cluster.log.checkpoints import (
    HighWatermarkCheckpoint,
    remove_stray_temp_files,
    write_offset_checkpoint,
)
from cluster.log.config import LogConfig
from cluster.log.file_handles import DEFAULT_MAX_OPEN_FILES, FILE_HANDLES
from cluster.log.partition_log import PartitionLog, partition_dir_name
from cluster.log.segment import LogSegment

log = logging.getLogger(__name__)

CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
RECOVERY_POINT_FILE = "recovery-point-offset-checkpoint"
LOG_START_FILE = "log-start-offset-checkpoint"

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


def write_checkpoint(path: Path, offsets: Mapping[TopicPartition, int]) -> None:
    """Write an OffsetCheckpointFile atomically and durably (temp, fsync, rename, dir fsync)."""
    write_offset_checkpoint(path, offsets)


def parse_partition_dir(name: str) -> TopicPartition | None:
    """``orders-2`` → ("orders", 2); None for anything else."""
    topic, sep, index = name.rpartition("-")
    if not sep or not topic or not index.isdigit():
        return None
    return topic, int(index)


class LogManager:
    """Opens, creates, deletes and maintains the partition logs of one log dir."""

    def __init__(self, log_dir: Path, producer_expiration_ms: int,
                 max_open_files: int = DEFAULT_MAX_OPEN_FILES) -> None:
        self.log_dir = log_dir
        self.max_open_files = max_open_files
        self.producer_expiration_ms = producer_expiration_ms
        self.logs: dict[TopicPartition, PartitionLog] = {}
        self.clean_shutdown = False
        self._recovery_points: dict[TopicPartition, int] = {}
        self._log_starts: dict[TopicPartition, int] = {}
        self.high_watermarks = HighWatermarkCheckpoint(log_dir)

    def startup(self) -> None:
        """Read the checkpoints and consume the clean-shutdown marker."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        FILE_HANDLES.configure(self.max_open_files)
        marker = self.log_dir / CLEAN_SHUTDOWN_FILE
        self.clean_shutdown = marker.exists()
        marker.unlink(missing_ok=True)
        self._recovery_points = read_checkpoint(self.log_dir / RECOVERY_POINT_FILE)
        self._log_starts = read_checkpoint(self.log_dir / LOG_START_FILE)
        remove_stray_temp_files(self.log_dir)
        self.high_watermarks.load()
        if not self.clean_shutdown:
            log.info("%s: no clean-shutdown marker; logs recover from their recovery points", self.log_dir)

    def partition_dirs_on_disk(self) -> list[TopicPartition]:
        """Partitions that have a directory in the log dir."""
        found = []
        for entry in self.log_dir.iterdir():
            tp = parse_partition_dir(entry.name) if entry.is_dir() else None
            if tp is not None:
                found.append(tp)
        return found

    def get_or_create(self, topic: str, partition: int, topic_config: Mapping[str, Any]) -> PartitionLog:
        """The log of (topic, partition), opened (recovering if needed) or created."""
        tp = (topic, partition)
        existing = self.logs.get(tp)
        if existing is not None:
            return existing
        started = time.monotonic()
        partition_log = PartitionLog.open(
            self.log_dir / partition_dir_name(topic, partition),
            LogConfig.from_topic_config(topic_config),
            self.producer_expiration_ms,
            clean_shutdown=self.clean_shutdown,
            recovery_point=self._recovery_points.get(tp, 0),
            log_start_offset=self._log_starts.get(tp, 0),
            high_watermark=self.high_watermarks.initial_high_watermark(tp),
        )
        if partition_log.log_end_offset:
            log.info("loaded %s in %.0f ms", partition_log, (time.monotonic() - started) * 1000)
        self.logs[tp] = partition_log
        return partition_log

    def reconfigure(self, topic: str, topic_config: Mapping[str, Any]) -> None:
        """Apply changed topic settings to its open logs."""
        config = LogConfig.from_topic_config(topic_config)
        for (t, _p), partition_log in self.logs.items():
            if t == topic:
                partition_log.config = config

    def delete(self, topic: str, partition: int) -> None:
        """Remove a partition's log and its directory (topic deleted)."""
        partition_log = self.logs.pop((topic, partition), None)
        if partition_log is not None:
            partition_log.delete()
        else:
            import shutil

            shutil.rmtree(self.log_dir / partition_dir_name(topic, partition), ignore_errors=True)
        self._log_starts.pop((topic, partition), None)
        self._recovery_points.pop((topic, partition), None)
        self.high_watermarks.remove((topic, partition))

    # -- maintenance ----------------------------------------------------------------------

    def apply_retention(self, now_ms: int) -> int:
        """Run retention on every log; returns the number of segments deleted."""
        deleted = sum(partition_log.apply_retention(now_ms) for partition_log in self.logs.values())
        if deleted:
            self.write_log_start_checkpoint()
        return deleted

    async def flush(self, now_ms: int) -> None:
        """fsync rolled segments (then advance recovery points) and active segments due by policy."""
        moved = False
        for tp, partition_log in list(self.logs.items()):  # requests add/remove logs while we await
            pending = partition_log.unflushed_segments
            partition_log.unflushed_segments = []
            for segment in pending:
                if not await self._fsync(tp, partition_log, segment):
                    continue
                if segment.base_offset >= partition_log.segments.first.base_offset:
                    self._recovery_points[tp] = max(self._recovery_points.get(tp, 0), segment.next_offset)
                    moved = True
            if partition_log.flush_due(now_ms) and await self._fsync(tp, partition_log, partition_log.segments.active):
                partition_log.mark_flushed(now_ms)
        if moved:
            write_checkpoint(self.log_dir / RECOVERY_POINT_FILE, self._recovery_points)
        self.maybe_checkpoint_high_watermarks()

    def maybe_checkpoint_high_watermarks(self) -> None:
        """Write ``replication-offset-checkpoint`` every ``replica.high.watermark.checkpoint.interval.ms``
        (Kafka's default, 5 s; called by the maintenance loop through ``flush``)."""
        now_ms = int(time.monotonic() * 1000)
        if self.high_watermarks.due(now_ms):
            self.checkpoint_high_watermarks(now_ms)

    def checkpoint_high_watermarks(self, now_ms: int | None = None) -> None:
        """Write every open log's high watermark (and the entries of logs not opened yet)."""
        self.high_watermarks.write(((tp, pl.high_watermark) for tp, pl in self.logs.items()), now_ms)

    async def _fsync(self, tp: TopicPartition, partition_log: PartitionLog, segment: LogSegment) -> bool:
        """fsync ``segment`` in a worker thread; False if the event loop deleted (closed) it
        meanwhile — DeleteRecords, retention, truncation or DeleteTopics — which is no error."""

        def live() -> bool:
            return self.logs.get(tp) is partition_log and segment in partition_log.segments

        if not live():
            return False
        try:
            await asyncio.to_thread(segment.flush)
        except OSError:
            if live():
                raise
        return live()

    def write_log_start_checkpoint(self) -> None:
        """Persist log start offsets (moved by retention and DeleteRecords)."""
        self._log_starts = {tp: pl.log_start_offset for tp, pl in self.logs.items()}
        write_checkpoint(self.log_dir / LOG_START_FILE, self._log_starts)

    def shutdown(self) -> None:
        """Close every log cleanly and leave the clean-shutdown marker."""
        self.write_log_start_checkpoint()
        self.checkpoint_high_watermarks()
        recovery_points = {}
        for tp, partition_log in self.logs.items():
            for segment in partition_log.segments:
                segment.flush()
            partition_log.close(clean=True)
            recovery_points[tp] = partition_log.log_end_offset
        write_checkpoint(self.log_dir / RECOVERY_POINT_FILE, recovery_points)
        (self.log_dir / CLEAN_SHUTDOWN_FILE).write_text("")
        self.logs.clear()
