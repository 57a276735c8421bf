"""LogManager (Kafka's `LogManager` + `LogLoader` logic): every partition log of a node's log dirs.

A node has one or more log dirs (``nodes[].log_dirs``, Kafka's ``log.dirs``) and a metadata log dir,
its node dir (Kafka's ``metadata.log.dir``), which holds ``__cluster_metadata-0`` and may be one of
the log dirs (it is the only one when ``log_dirs`` is not set). Each dir keeps its own checkpoint
files and clean-shutdown marker (``log_dir.LogDir``). An existing partition is opened in whichever
dir holds it (one found in two dirs stops the start-up, as in Kafka); a new one goes to the dir an
AlterReplicaLogDirs named for it (Kafka's ``preferredLogDirs``), else to the log dir with the fewest
partition logs, current and future (Kafka's ``nextLogDirs``). Segment and index files share a
bounded set of open descriptors (``log.open.files.max``, see ``file_handles``). A log opened after
a crash recovers from its recovery point: the offset up to which segments were fsynced (segments
are fsynced in a worker thread once rolled).

Future replicas (AlterReplicaLogDirs, KIP-113): ``future_logs`` holds the log a partition is being
copied into, in ``<topic>-<p>.<uniqueId>-future`` of the destination dir (the copy itself:
``cluster.replication.alter_log_dirs``). ``replace_current_with_future`` swaps it in (Kafka's
``replaceCurrentWithFutureLog``): the current dir is renamed ``-delete`` first, then the future dir
takes the partition's name, so a crash between the two renames leaves a future dir with no current
one, which start-up promotes; the old log is deleted ``DELETE_DELAY_S`` later (a reader holding it
across an await, such as a coordinator loading its partition, keeps working until then). A future
dir found at start-up is opened with its partition and the move resumes (Kafka's behaviour).

Concurrency: one instance per node, used from its event loop; only fsyncs of rolled segments
(no longer written) and of the active segment by policy run in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from cluster.log.checkpoints import RAFT_MANAGED_TOPICS, write_offset_checkpoint
from cluster.log.config import LogConfig
from cluster.log.file_handles import DEFAULT_MAX_OPEN_FILES, FILE_HANDLES
from cluster.log.log_dir import (
    CLEAN_SHUTDOWN_FILE,
    DELETE_DIR_SUFFIX,
    FUTURE_DIR_SUFFIX,
    LOG_START_FILE,
    RECOVERY_POINT_FILE,
    LogDir,
    parse_partition_dir,
    read_checkpoint,
    suffixed_dir_name,
)
from cluster.log.partition_log import PartitionLog, partition_dir_name
from cluster.log.segment import LogSegment
from cluster.meta_properties import StorageFormatError

log = logging.getLogger(__name__)

__all__ = ["CLEAN_SHUTDOWN_FILE", "LOG_START_FILE", "RECOVERY_POINT_FILE", "LogManager", "parse_partition_dir",
           "read_checkpoint", "write_checkpoint"]

#: Seconds between a replaced log's rename to ``-delete`` and its removal (Kafka's
#: ``file.delete.delay.ms`` is 60 s; readers here hold a log across a few event-loop turns at most).
DELETE_DELAY_S = 5.0

TopicPartition = tuple[str, int]


def write_checkpoint(path: Path, offsets: Mapping[TopicPartition, int]) -> None:
    """Write an OffsetCheckpointFile atomically and durably (temp, fsync, rename, dir fsync)."""
    write_offset_checkpoint(path, offsets)


class LogManager:
    """Opens, creates, moves, deletes and maintains the partition logs of a node's log dirs."""

    def __init__(self, log_dirs: Path | Sequence[Path], producer_expiration_ms: int,
                 max_open_files: int = DEFAULT_MAX_OPEN_FILES, metadata_log_dir: Path | None = None) -> None:
        paths = [log_dirs] if isinstance(log_dirs, Path) else list(log_dirs)
        self.log_dir: Path = metadata_log_dir or paths[0]
        """The metadata log dir (the node dir)."""
        self.dirs: dict[Path, LogDir] = {path: LogDir(path) for path in [*paths, self.log_dir]}
        self.placement_dirs: list[LogDir] = [self.dirs[path] for path in paths]
        """The log dirs (Kafka's ``log.dirs``), in the configured order."""
        self.max_open_files = max_open_files
        self.producer_expiration_ms = producer_expiration_ms
        self.logs: dict[TopicPartition, PartitionLog] = {}
        self.future_logs: dict[TopicPartition, PartitionLog] = {}
        self.preferred_dirs: dict[TopicPartition, Path] = {}
        """Where AlterReplicaLogDirs asked a partition not created yet to go (Kafka's ``preferredLogDirs``)."""
        self._dir_of: dict[TopicPartition, LogDir] = {}
        self._future_dirs: dict[TopicPartition, Path] = {}
        self._to_delete: list[tuple[float, PartitionLog]] = []

    @property
    def clean_shutdown(self) -> bool:
        """Whether every dir was shut down cleanly."""
        return all(d.clean_shutdown for d in self.dirs.values())

    def startup(self) -> None:
        """Read every dir's checkpoints, consume the clean-shutdown markers, find the future
        replicas (promoting one whose current log a crash during its swap removed)."""
        FILE_HANDLES.configure(self.max_open_files)
        for log_dir in self.dirs.values():
            log_dir.startup()
        current: dict[TopicPartition, LogDir] = {}
        for log_dir in self.dirs.values():
            for tp in log_dir.partition_dirs():
                if tp in current:  # Kafka's LogManager refuses to start too
                    name = partition_dir_name(*tp)
                    raise StorageFormatError(f"{name} is in two log dirs, {current[tp].path / name} and "
                                             f"{log_dir.path / name}: delete the one that is not current")
                current[tp] = log_dir
        for log_dir in self.dirs.values():
            for tp, path in log_dir.future_dirs().items():
                if tp in current or tp in self._future_dirs:
                    self._future_dirs.setdefault(tp, path)
                    continue
                log.warning("%s: promoting the future replica of %s-%d, whose swap a crash interrupted", path, *tp)
                os.rename(path, log_dir.path / partition_dir_name(*tp))
                current[tp] = log_dir

    def partition_dirs_on_disk(self) -> list[TopicPartition]:
        """Partitions that have a (current) directory in one of the dirs."""
        return list(dict.fromkeys(tp for log_dir in self.dirs.values() for tp in log_dir.partition_dirs()))

    def dir_of(self, tp: TopicPartition) -> LogDir | None:
        """The dir holding the partition's current log (on disk or open), or None."""
        found = self._dir_of.get(tp)
        if found is None:
            name = partition_dir_name(*tp)
            found = next((d for d in self.dirs.values() if (d.path / name).is_dir()), None)
        return found

    def _next_log_dir(self, tp: TopicPartition) -> LogDir:
        """Where a new log goes: the metadata dir for a Raft-managed log, else the preferred dir,
        else the log dir with the fewest logs (Kafka's ``nextLogDirs``; the first on a tie)."""
        if tp[0] in RAFT_MANAGED_TOPICS:
            return self.dirs[self.log_dir]
        preferred = self.preferred_dirs.pop(tp, None)
        if preferred is not None and preferred in self.dirs:
            return self.dirs[preferred]
        counts = dict.fromkeys(self.placement_dirs, 0)
        owners = [d for (topic, _p), d in self._dir_of.items() if topic not in RAFT_MANAGED_TOPICS]
        for owner in [*owners, *(self._dir_holding(f) for f in self.future_logs.values())]:
            if owner in counts:
                counts[owner] += 1
        return min(self.placement_dirs, key=counts.__getitem__)

    def _dir_holding(self, partition_log: PartitionLog) -> LogDir:
        return self.dirs[partition_log.directory.parent]

    def get_or_create(self, topic: str, partition: int, topic_config: Mapping[str, Any]) -> PartitionLog:
        """The log of (topic, partition), opened (recovering if needed) or created; a future
        replica left on disk is opened with it (its move resumes)."""
        tp = (topic, partition)
        existing = self.logs.get(tp)
        if existing is not None:
            return existing
        started = time.monotonic()
        log_dir = self.dir_of(tp) or self._next_log_dir(tp)
        config = LogConfig.from_topic_config(topic_config)
        partition_log = PartitionLog.open(
            log_dir.path / partition_dir_name(topic, partition), config, self.producer_expiration_ms,
            clean_shutdown=log_dir.clean_shutdown,
            recovery_point=log_dir.recovery_points.get(tp, 0),
            log_start_offset=log_dir.log_starts.get(tp, 0),
            high_watermark=log_dir.high_watermarks.initial_high_watermark(tp),
        )
        if partition_log.log_end_offset:
            log.info("loaded %s in %.0f ms", partition_log, (time.monotonic() - started) * 1000)
        self.logs[tp] = partition_log
        self._dir_of[tp] = log_dir
        future_dir = self._future_dirs.pop(tp, None)
        if future_dir is not None:
            self.future_logs[tp] = PartitionLog.open(
                future_dir, config, self.producer_expiration_ms,
                clean_shutdown=self.dirs[future_dir.parent].clean_shutdown, high_watermark=0)
        return partition_log

    def create_future_log(self, tp: TopicPartition, destination: Path) -> PartitionLog:
        """An empty future replica of the open log of ``tp`` in ``destination`` (one of ``dirs``)."""
        current = self.logs[tp]
        directory = self.dirs[destination].path / suffixed_dir_name(*tp, FUTURE_DIR_SUFFIX)
        future = PartitionLog.open(directory, current.config, self.producer_expiration_ms, clean_shutdown=True,
                                   log_start_offset=current.log_start_offset, high_watermark=0)
        self.future_logs[tp] = future
        return future

    def delete_future_log(self, tp: TopicPartition) -> None:
        """Remove the future replica of ``tp`` (its move was cancelled), open or not."""
        future = self.future_logs.pop(tp, None)
        if future is not None:
            future.delete()
        path = self._future_dirs.pop(tp, None)
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)

    def replace_current_with_future(self, tp: TopicPartition) -> PartitionLog:
        """Swap in the future replica of ``tp``, caught up with the current log (see module
        docstring); returns it. The caller (``cluster.replication.alter_log_dirs``) made their
        state equal first."""
        current, future = self.logs[tp], self.future_logs.pop(tp)
        source, destination = self._dir_of[tp], self._dir_holding(future)
        future.leader_epochs.flush()  # durable before the renames: a crash now promotes the future
        future.producer_state.take_snapshot(future.log_end_offset)
        deleted = source.path / suffixed_dir_name(*tp, DELETE_DIR_SUFFIX)
        os.rename(current.directory, deleted)
        current.rename_dir(deleted)
        final = destination.path / partition_dir_name(*tp)
        os.rename(future.directory, final)
        future.rename_dir(final)
        self.logs[tp] = future
        self._dir_of[tp] = destination
        source.forget(tp)
        destination.recovery_points[tp] = future.segments.first.base_offset  # nothing fsynced yet
        for log_dir in (source, destination):
            log_dir.write_recovery_points()
            self._write_log_starts(log_dir)
            log_dir.write_high_watermarks(self._high_watermarks(log_dir))
        self._to_delete.append((time.monotonic() + DELETE_DELAY_S, current))
        log.info("%s-%d moved from %s to %s", *tp, source.path, destination.path)
        return future

    def logs_in(self, log_dir: LogDir) -> Iterator[tuple[TopicPartition, PartitionLog, bool]]:
        """(partition, log, is future) of every open log in ``log_dir``."""
        for tp, partition_log in self.logs.items():
            if self._dir_of.get(tp) is log_dir:
                yield tp, partition_log, False
        for tp, future in self.future_logs.items():
            if self._dir_holding(future) is log_dir:
                yield tp, future, True

    def reconfigure(self, topic: str, topic_config: Mapping[str, Any]) -> None:
        """Apply changed topic settings to its open logs (future replicas included)."""
        config = LogConfig.from_topic_config(topic_config)
        for logs in (self.logs, self.future_logs):
            for (t, _p), partition_log in logs.items():
                if t == topic:
                    partition_log.config = config

    def delete(self, topic: str, partition: int) -> None:
        """Remove a partition's log and its directory (topic deleted, replica removed), and its
        future replica if it was being moved."""
        tp = (topic, partition)
        self.delete_future_log(tp)
        self.preferred_dirs.pop(tp, None)
        log_dir = self.dir_of(tp)
        partition_log = self.logs.pop(tp, None)
        if partition_log is not None:
            partition_log.delete()
        elif log_dir is not None:
            shutil.rmtree(log_dir.path / partition_dir_name(topic, partition), ignore_errors=True)
        self._dir_of.pop(tp, None)
        if log_dir is not None:
            log_dir.forget(tp)

    # -- maintenance ----------------------------------------------------------------------

    def apply_retention(self, now_ms: int) -> int:
        """Run retention on every log; returns the number of segments deleted."""
        deleted = sum(partition_log.apply_retention(now_ms) for partition_log in self.logs.values())
        if deleted:
            self.write_log_start_checkpoint()
        return deleted

    async def flush(self, now_ms: int) -> None:
        """fsync rolled segments (then advance recovery points) and active segments due by policy;
        remove replaced logs whose delay has passed."""
        moved: set[Path] = set()
        for tp, partition_log in list(self.logs.items()):  # requests add/remove logs while we await
            pending = partition_log.unflushed_segments
            partition_log.unflushed_segments = []
            for segment in pending:
                if not await self._fsync(tp, partition_log, segment):
                    continue
                if segment.base_offset >= partition_log.segments.first.base_offset:
                    log_dir = self._dir_of[tp]
                    log_dir.recovery_points[tp] = max(log_dir.recovery_points.get(tp, 0), segment.next_offset)
                    moved.add(log_dir.path)
            if partition_log.flush_due(now_ms) and await self._fsync(tp, partition_log, partition_log.segments.active):
                partition_log.mark_flushed(now_ms)
        for path in moved:
            self.dirs[path].write_recovery_points()
        self.maybe_checkpoint_high_watermarks()
        self._delete_replaced_logs(time.monotonic())

    def _delete_replaced_logs(self, now: float) -> None:
        due = [entry for entry in self._to_delete if entry[0] <= now]
        self._to_delete = [entry for entry in self._to_delete if entry[0] > now]
        for _deadline, partition_log in due:
            partition_log.delete()

    def maybe_checkpoint_high_watermarks(self) -> None:
        """Write each dir's ``replication-offset-checkpoint`` every
        ``replica.high.watermark.checkpoint.interval.ms`` (Kafka's default, 5 s; called by the
        maintenance loop through ``flush``)."""
        now_ms = int(time.monotonic() * 1000)
        for log_dir in self.dirs.values():
            if log_dir.high_watermarks.due(now_ms):
                log_dir.write_high_watermarks(self._high_watermarks(log_dir), now_ms)

    def checkpoint_high_watermarks(self, now_ms: int | None = None) -> None:
        """Write every open log's high watermark (and the entries of logs not opened yet)."""
        for log_dir in self.dirs.values():
            log_dir.write_high_watermarks(self._high_watermarks(log_dir), now_ms)

    def _high_watermarks(self, log_dir: LogDir) -> list[tuple[TopicPartition, int]]:
        return [(tp, pl.high_watermark) for tp, pl, future in self.logs_in(log_dir) if not future]

    async def _fsync(self, tp: TopicPartition, partition_log: PartitionLog, segment: LogSegment) -> bool:
        """fsync ``segment`` in a worker thread; False if the event loop deleted (closed) it
        meanwhile — DeleteRecords, retention, truncation, DeleteTopics or a move to another log
        dir — which is no error."""

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
        """Persist log start offsets (moved by retention and DeleteRecords), per dir."""
        for log_dir in self.dirs.values():
            self._write_log_starts(log_dir)

    def _write_log_starts(self, log_dir: LogDir) -> None:
        log_dir.write_log_starts({tp: pl.log_start_offset for tp, pl, future in self.logs_in(log_dir) if not future})

    def shutdown(self) -> None:
        """Close every log cleanly (future replicas too) and leave each dir's clean-shutdown marker."""
        self.write_log_start_checkpoint()
        self.checkpoint_high_watermarks()
        for log_dir in self.dirs.values():
            recovery_points = {}
            for tp, partition_log, future in list(self.logs_in(log_dir)):
                for segment in partition_log.segments:
                    segment.flush()
                partition_log.close(clean=True)
                if not future:
                    recovery_points[tp] = partition_log.log_end_offset
            log_dir.write_recovery_points(recovery_points)
            log_dir.mark_clean_shutdown()
        self._delete_replaced_logs(float("inf"))
        self.logs.clear()
        self.future_logs.clear()
