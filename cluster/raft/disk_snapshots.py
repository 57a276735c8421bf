"""``SnapshotFiles``: the KIP-630 snapshot files of a Raft log on disk — Kafka's
``<end offset, 20 digits>-<epoch, 10 digits>.checkpoint`` files in the partition directory, beside
the segments of ``DiskRaftLog``.

It lists them at open, reads their size and bytes, writes one durably (written whole, then renamed
into place) and deletes the ones that are no longer kept. Which snapshot may be created, and what
the log does around it (trimming, installing a leader's snapshot), is ``DiskRaftLog``'s business.

Concurrency: not thread-safe; owned by its ``DiskRaftLog`` and driven by the same caller.
"""

from __future__ import annotations

import bisect
from pathlib import Path

from cluster.durable import write_durably
from cluster.raft.log import LogError, OffsetAndEpoch

__all__ = ["SNAPSHOT_SUFFIX", "SnapshotFiles"]

#: Kafka's snapshot file suffix: ``<end offset, 20 digits>-<epoch, 10 digits>.checkpoint``.
SNAPSHOT_SUFFIX = ".checkpoint"


class SnapshotFiles:
    """The snapshot files of one partition directory, their ids (end offset, exclusive; epoch of
    the last entry) sorted oldest first."""

    def __init__(self, directory: Path) -> None:
        """List the ``<end offset>-<epoch>.checkpoint`` files already in ``directory``."""
        self.directory = directory
        self.ids = self._find()

    def _find(self) -> list[OffsetAndEpoch]:
        found = []
        for path in self.directory.glob(f"*{SNAPSHOT_SUFFIX}"):
            offset, _, epoch = path.name[: -len(SNAPSHOT_SUFFIX)].partition("-")
            if offset.isdigit() and epoch.isdigit():
                found.append(OffsetAndEpoch(int(offset), int(epoch)))
        return sorted(found)

    def latest(self) -> OffsetAndEpoch | None:
        """The newest snapshot's id, None if there is none."""
        return self.ids[-1] if self.ids else None

    def _path(self, snapshot_id: OffsetAndEpoch) -> Path:
        return self.directory / f"{snapshot_id.offset:020d}-{snapshot_id.epoch:010d}{SNAPSHOT_SUFFIX}"

    def size(self, snapshot_id: OffsetAndEpoch) -> int:
        """Bytes of the snapshot ``snapshot_id`` (LogError if there is none)."""
        try:
            return self._path(snapshot_id).stat().st_size
        except FileNotFoundError:
            raise LogError(f"no snapshot {snapshot_id}") from None

    def read(self, snapshot_id: OffsetAndEpoch, position: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` of the snapshot from ``position`` (LogError if there is none)."""
        try:
            with open(self._path(snapshot_id), "rb") as file:
                file.seek(position)
                return file.read(max_bytes)
        except FileNotFoundError:
            raise LogError(f"no snapshot {snapshot_id}") from None

    def add(self, snapshot_id: OffsetAndEpoch, data: bytes, keep: int) -> None:
        """Write the snapshot ``snapshot_id`` durably, then delete all but the ``keep`` newest."""
        write_durably(self._path(snapshot_id), data)
        if snapshot_id not in self.ids:
            bisect.insort(self.ids, snapshot_id)
        for old in self.ids[:-keep]:
            self._path(old).unlink(missing_ok=True)
        del self.ids[:-keep]

    def replace_all(self, snapshot_id: OffsetAndEpoch, data: bytes) -> None:
        """Write the snapshot ``snapshot_id`` durably, then delete every other one."""
        write_durably(self._path(snapshot_id), data)
        for old in self.ids:
            if old != snapshot_id:
                self._path(old).unlink(missing_ok=True)
        self.ids = [snapshot_id]
