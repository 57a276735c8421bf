"""Kafka's per-log-dir offset checkpoint files (``OffsetCheckpointFile``) and the high-watermark
checkpoint (``replication-offset-checkpoint``).

Format (Kafka's): a version line (``0``), an entry count, then one ``topic partition offset``
line per partition. Written as Kafka's ``CheckpointFile.write``: to ``<name>.tmp``, fsynced,
renamed over the file, and the directory fsynced, so a crash leaves the old file or the new one.

``HighWatermarkCheckpoint`` is the replication-offset-checkpoint of one log dir (Kafka's
``ReplicaManager.checkpointHighWatermarks``, every ``replica.high.watermark.checkpoint.interval.ms``
and at shutdown). A partition opens with ``min(checkpointed high watermark, log end offset)``,
0 (then the log start) without an entry, as Kafka's ``Partition.createLog`` +
``UnifiedLog.updateHighWatermark``. An unreadable file is ignored with a warning (every
partition then starts at its log start, which is safe: a leader re-advances from its ISR) and
rewritten at the next checkpoint; Kafka would take the log dir offline instead.

Concurrency: used from the node's event loop only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from cluster.durable import write_durably

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]

CHECKPOINT_VERSION = 0
REPLICATION_OFFSET_FILE = "replication-offset-checkpoint"
HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS = 5000
"""Kafka's ``replica.high.watermark.checkpoint.interval.ms`` default."""
RAFT_MANAGED_TOPICS = frozenset({"__cluster_metadata"})
"""Logs whose commit point the Raft core keeps, not the replication layer (Kafka keeps the
metadata log out of this file too): they open with high watermark = log end, as before."""


class CorruptOffsetCheckpointError(ValueError):
    """The file is not a version-0 OffsetCheckpointFile."""


def parse_offset_checkpoint(text: str) -> dict[TopicPartition, int]:
    """Parse strictly: version 0, a count that matches the entries, well-formed lines (Kafka's
    ``CheckpointFile.CheckpointReadBuffer``). Raises CorruptOffsetCheckpointError."""
    lines = text.splitlines()
    if len(lines) < 2:
        raise CorruptOffsetCheckpointError("no version and count lines")
    if lines[0].strip() != str(CHECKPOINT_VERSION):
        raise CorruptOffsetCheckpointError(f"unknown version {lines[0]!r}")
    try:
        count = int(lines[1])
    except ValueError:
        raise CorruptOffsetCheckpointError(f"malformed count {lines[1]!r}") from None
    entries = [line for line in lines[2:] if line.strip()]
    if count != len(entries):
        raise CorruptOffsetCheckpointError(f"{len(entries)} entries where the count says {count}")
    result: dict[TopicPartition, int] = {}
    for line in entries:
        parts = line.split()
        try:
            if len(parts) != 3:
                raise ValueError
            topic, partition, offset = parts[0], int(parts[1]), int(parts[2])
        except ValueError:
            raise CorruptOffsetCheckpointError(f"malformed line {line!r}") from None
        if partition < 0 or offset < 0:
            raise CorruptOffsetCheckpointError(f"negative partition or offset in {line!r}")
        result[(topic, partition)] = offset
    return result


def format_offset_checkpoint(offsets: Mapping[TopicPartition, int]) -> bytes:
    body = "".join(f"{t} {p} {o}\n" for (t, p), o in sorted(offsets.items()))
    return f"{CHECKPOINT_VERSION}\n{len(offsets)}\n{body}".encode()


def write_offset_checkpoint(path: Path, offsets: Mapping[TopicPartition, int]) -> None:
    """Replace ``path`` with ``offsets`` atomically and durably (temp, fsync, rename, dir fsync)."""
    write_durably(path, format_offset_checkpoint(offsets))


class HighWatermarkCheckpoint:
    """The ``replication-offset-checkpoint`` file of one log dir and the values last read or written.

    Entries of partitions not opened yet are kept (a checkpoint taken while a node is still
    opening its logs must not forget them); ``remove`` drops a deleted partition's entry."""

    def __init__(self, log_dir: Path, interval_ms: int = HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS) -> None:
        self.path = log_dir / REPLICATION_OFFSET_FILE
        self.interval_ms = interval_ms
        self.offsets: dict[TopicPartition, int] = {}
        self._written: dict[TopicPartition, int] | None = None
        self._last_write_ms: int | None = None

    def load(self) -> None:
        """Read the file; a missing one is empty, an unreadable one is ignored with a warning
        (and rewritten by the next ``write``)."""
        try:
            self.offsets = parse_offset_checkpoint(self.path.read_text(encoding="utf-8"))
            self._written = dict(self.offsets)
        except FileNotFoundError:
            self.offsets, self._written = {}, {}
        except (OSError, UnicodeDecodeError, CorruptOffsetCheckpointError) as exc:
            log.warning("%s is unreadable (%s): ignored, partitions start their high watermark at their "
                        "log start; it is rewritten at the next checkpoint", self.path, exc)
            self.offsets, self._written = {}, None

    def initial_high_watermark(self, tp: TopicPartition) -> int | None:
        """What a log opens with (PartitionLog clamps it to [log start, log end]); None for a
        Raft-managed log (high watermark = log end)."""
        if tp[0] in RAFT_MANAGED_TOPICS:
            return None
        return self.offsets.get(tp, 0)

    def remove(self, tp: TopicPartition) -> None:
        self.offsets.pop(tp, None)

    def due(self, now_ms: int) -> bool:
        return self._last_write_ms is None or now_ms - self._last_write_ms >= self.interval_ms

    def write(self, high_watermarks: Iterable[tuple[TopicPartition, int]], now_ms: int | None = None) -> bool:
        """Record the open logs' high watermarks and write the file if anything changed (or it
        was unreadable); returns whether it was written."""
        for tp, hw in high_watermarks:
            if tp[0] not in RAFT_MANAGED_TOPICS:
                self.offsets[tp] = hw
        if now_ms is not None:
            self._last_write_ms = now_ms
        if self.offsets == self._written:
            return False
        write_offset_checkpoint(self.path, self.offsets)
        self._written = dict(self.offsets)
        return True


def remove_stray_temp_files(log_dir: Path) -> None:
    """Remove ``*-checkpoint.tmp`` files that a crash during a write left in ``log_dir``."""
    for stray in log_dir.glob("*-checkpoint.tmp"):
        try:
            os.unlink(stray)
        except FileNotFoundError:
            pass
