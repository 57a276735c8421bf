"""Moving replicas between a broker's log dirs (AlterReplicaLogDirs, KIP-113): Kafka's
``ReplicaManager.alterReplicaLogDirs``, ``ReplicaAlterLogDirsThread`` and
``Partition.maybeReplaceCurrentWithFutureReplica``.

``alter_log_dir`` is one partition of an AlterReplicaLogDirs request, with Kafka's answers:
LOG_DIR_NOT_FOUND for a path that is not one of this broker's log dirs, KAFKA_STORAGE_ERROR for a
log dir that cannot be written (pko has no offline-dir tracking: a missing or read-only dir counts
as offline), REPLICA_NOT_AVAILABLE for a partition this broker does not host (its destination is
remembered: the log is created there when it comes, Kafka's ``preferredLogDirs``), NONE otherwise —
whether the replica is there already, is being moved there, or starts moving now. A request for
another dir than a move in progress cancels it first (Kafka's ``futureReplicaDirChanged``).

The move: an empty future log is created in the destination (``LogManager.create_future_log``) and
filled from the current log, batch for batch, unchanged (``append_as_follower``: same offsets,
leader epochs, producer ids and sequences, transaction markers and so transaction index), by a task
on the node's event loop that copies at most ``replica.fetch.max.bytes`` per partition per step and
yields between steps, within ``replica.alter.log.dirs.io.max.bytes.per.second`` (Kafka's name and
default, unlimited; dynamic). The partition keeps serving throughout. Whatever happens to the
current log meanwhile is mirrored: a truncation (a follower's, after a leader change) truncates the
future log at the same offset (``PartitionLog.on_truncate``), emptying it restarts the copy, and a
log start moved by retention or DeleteRecords moves the future's (or restarts the copy when it is
past everything copied). Once the future log has reached the current log end, one step with no
await makes its state equal (high watermark, leader-epoch entries — including an epoch that has no
batch yet — and producer state) and swaps it in: ``LogManager.replace_current_with_future``, then
``Partition.log`` points at it. The log cleaner leaves a moving partition alone (Kafka's
``abortAndPauseCleaning``).

After a crash a future log is resumed, as Kafka does: ``LogManager`` opens it with its partition and
the copy goes on from its log end (a ``-delete`` dir is removed at start-up). Deleting the partition
(topic deleted, replica reassigned away) deletes the future log with it: the move ends.

Concurrency: one instance per broker; everything runs on the node's event loop, and a step (copy,
mirror, swap) never awaits, so no request sees the two logs half-updated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from cluster.log.checkpoints import RAFT_MANAGED_TOPICS
from cluster.log.manager import LogManager
from cluster.log.partition_log import PartitionLog
from cluster.replication.partition import Partition
from pykafka_ops.errors import ErrorCode
from pykafka_ops.records.batch import read_batch_header

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]
IO_RATE = "replica.alter.log.dirs.io.max.bytes.per.second"
#: Most destinations remembered for partitions not hosted yet: any client may name any partition
#: (a 100 MB request names millions), so the oldest are forgotten past this many.
MAX_PREFERRED_DIRS = 100_000
#: Seconds between two looks at moves that cannot progress (their partition not hosted yet).
IDLE_POLL_S = 0.2
#: A rate at or above this is no throttle (Kafka's default is Long.MAX_VALUE).
UNLIMITED = 2**62


class ReplicaAlterLogDirsManager:
    """The moves of replicas between this broker's log dirs (see module docstring)."""

    def __init__(self, log_manager: LogManager, partition_of: Callable[[TopicPartition], Partition | None],
                 broker_config: Mapping[str, Any]) -> None:
        self.log_manager = log_manager
        self.partition_of = partition_of
        self.broker_config = broker_config
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._allowance = 0.0
        self._refilled = time.monotonic()

    # -- AlterReplicaLogDirs --------------------------------------------------------------------

    def alter_log_dir(self, tp: TopicPartition, path: str) -> ErrorCode:
        """Move (or place) the replica of ``tp`` into log dir ``path``: Kafka's per-partition answer."""
        manager = self.log_manager
        destination = next((d.path for d in manager.placement_dirs
                            if str(d.path) == path or str(d.path.resolve()) == path), None)
        if destination is None:
            return ErrorCode.log_dir_not_found
        if not (destination.is_dir() and os.access(destination, os.W_OK | os.X_OK)):
            return ErrorCode.kafka_storage_error
        if tp[0] in RAFT_MANAGED_TOPICS:  # not a partition of the ReplicaManager, as in Kafka
            return ErrorCode.replica_not_available
        future = manager.future_logs.get(tp)
        if future is not None and future.directory.parent != destination:
            self._cancel(tp)
            future = None
        current_dir = manager.dir_of(tp)
        if (current_dir is None or current_dir.path != destination) and future is None:
            if tp not in manager.preferred_dirs and len(manager.preferred_dirs) >= MAX_PREFERRED_DIRS:
                del manager.preferred_dirs[next(iter(manager.preferred_dirs))]  # the oldest: memory stays bounded
            manager.preferred_dirs[tp] = destination  # Kafka's maybeUpdatePreferredLogDir
        partition = self.partition_of(tp)
        current = manager.logs.get(tp)
        if partition is None or current is None:
            return ErrorCode.replica_not_available
        if current_dir is not None and current_dir.path == destination:
            manager.preferred_dirs.pop(tp, None)
            return ErrorCode.none
        if future is None:
            manager.preferred_dirs.pop(tp, None)
            manager.create_future_log(tp, destination)
            log.info("moving %s-%d from %s to %s", *tp, current_dir.path if current_dir else "?", destination)
            self._wakeup.set()
        return ErrorCode.none

    def _cancel(self, tp: TopicPartition) -> None:
        current = self.log_manager.logs.get(tp)
        if current is not None:
            current.on_truncate = None
        self.log_manager.delete_future_log(tp)
        log.info("cancelled the move of %s-%d", *tp)

    # -- the copy task --------------------------------------------------------------------------

    def start(self) -> None:
        """Start copying (moves resumed from disk included)."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop copying; future logs stay on disk and resume at the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        """Copy a step of each move in turn (the event loop gets a turn after each), within the IO
        rate; idle, look again every ``IDLE_POLL_S`` (a future log resumed from disk appears when
        its partition is hosted) or when woken."""
        while True:
            copied = 0
            for tp in list(self.log_manager.future_logs):
                if self.broker_config[IO_RATE] <= 0:  # a zero rate stalls the moves
                    break
                try:
                    step = self.step(tp, self._chunk_bytes(), int(time.time() * 1000))
                except Exception:  # a move must never stop the broker; the next step tries again
                    log.exception("moving %s-%d to another log dir failed; retrying", *tp)
                    step = 0
                copied += step
                delay = self._throttle_delay(step)
                await asyncio.sleep(delay)
            if not copied:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), IDLE_POLL_S)

    def _chunk_bytes(self) -> int:
        """Bytes one step copies at most: ``replica.fetch.max.bytes`` (Kafka's fetch size of the
        alter-log-dirs thread), and no more than a second of the IO rate."""
        return max(1, min(self.broker_config["replica.fetch.max.bytes"], self.broker_config[IO_RATE]))

    def _throttle_delay(self, copied: int) -> float:
        """Seconds to wait before copying again within the IO rate: a token bucket that holds at
        most one step's bytes, so no burst exceeds the rate by more than one step."""
        rate = self.broker_config[IO_RATE]
        now = time.monotonic()
        elapsed, self._refilled = now - self._refilled, now
        if rate >= UNLIMITED or rate <= 0:
            return 0.0
        self._allowance = min(self._allowance + elapsed * rate, self._chunk_bytes()) - copied
        return -self._allowance / rate if self._allowance < 0 else 0.0

    def step(self, tp: TopicPartition, max_bytes: int, now_ms: int) -> int:
        """Copy up to ``max_bytes`` (at least one batch) of ``tp``'s current log into its future
        log, and swap the two once the future has caught up; returns the bytes copied."""
        future = self.log_manager.future_logs.get(tp)
        current = self.log_manager.logs.get(tp)
        partition = self.partition_of(tp)
        if future is None or current is None or partition is None or partition.log is not current:
            return 0  # a future log resumed from disk whose partition is not hosted yet
        if current.on_truncate is None:
            current.on_truncate = lambda offset: self._mirror_truncation(tp, offset)
        _sync_log_start(current, future, now_ms)
        copied = 0
        if future.log_end_offset < current.log_end_offset:
            data = current.read(future.log_end_offset, max_bytes, current.log_end_offset, min_one_batch=True)
            if data:
                records = memoryview(data)
                base = read_batch_header(records, 0).base_offset
                if base < future.log_end_offset:  # the log start is inside this batch: start with it
                    future.truncate_fully_and_start_at(base, now_ms)
                future.append_as_follower(records, now_ms)
                copied = len(records)
                _sync_log_start(current, future, now_ms)
        if future.log_end_offset == current.log_end_offset:
            self._swap(tp, partition, current, future)
        return copied

    def _mirror_truncation(self, tp: TopicPartition, offset: int | None) -> None:
        """The current log of ``tp`` was truncated at ``offset`` (None: emptied): do the same to
        the future log, or restart its copy when nothing of it stays valid."""
        future = self.log_manager.future_logs.get(tp)
        current = self.log_manager.logs.get(tp)
        if future is None or current is None:
            return
        if offset is None or offset <= future.log_start_offset:
            future.truncate_fully_and_start_at(current.log_start_offset, int(time.time() * 1000))
        elif offset < future.log_end_offset:
            future.truncate_to(offset)

    def _swap(self, tp: TopicPartition, partition: Partition, current: PartitionLog, future: PartitionLog) -> None:
        """Kafka's ``maybeReplaceCurrentWithFutureReplica``: same log end, so make the rest of the
        state equal and serve from the future log (no await)."""
        future.high_watermark = current.high_watermark
        epochs = future.leader_epochs
        epochs.clear(flush=False)
        for entry in current.leader_epochs.entries:
            epochs.assign(entry.epoch, entry.start_offset, flush=False)
        source, target = current.producer_state, future.producer_state
        target.producers = {pid: entry.copy() for pid, entry in source.producers.items()}
        target.ongoing_txns = dict(source.ongoing_txns)
        target.unreplicated_txns = list(source.unreplicated_txns)
        current.on_truncate = None
        partition.log = self.log_manager.replace_current_with_future(tp)


def _sync_log_start(current: PartitionLog, future: PartitionLog, now_ms: int) -> None:
    """Give the future log the current log's start (moved by retention or DeleteRecords) and a
    high watermark within what it holds; restart the copy when the start is past its end."""
    if current.log_start_offset > future.log_end_offset:
        future.truncate_fully_and_start_at(current.log_start_offset, now_ms)
        return
    future.high_watermark = max(min(current.high_watermark, future.log_end_offset), future.log_start_offset)
    if current.log_start_offset > future.log_start_offset:
        future.delete_records_before(current.log_start_offset)
