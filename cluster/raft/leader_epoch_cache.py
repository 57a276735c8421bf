"""``LeaderEpochCache``: Kafka's ``LeaderEpochFileCache``, in memory — the (epoch, start offset)
pairs of a Raft log, which answer which epoch an offset belongs to and where an epoch ends
(Kafka's ``endOffsetFor``) without reading the log. ``DiskRaftLog`` rebuilds it at open from its
batch headers and keeps it in step with its appends and truncations.

Concurrency: not thread-safe; owned by its ``DiskRaftLog`` and driven by the same caller.
"""

from __future__ import annotations

import bisect

from cluster.raft.log import OffsetAndEpoch

__all__ = ["LeaderEpochCache"]


class LeaderEpochCache:
    """Kafka's ``LeaderEpochFileCache``, in memory: the start offset of each epoch in the log."""

    def __init__(self) -> None:
        self.epochs: list[int] = []
        self.start_offsets: list[int] = []

    @property
    def latest_epoch(self) -> int:
        """The epoch of the last entry, 0 for an empty log."""
        return self.epochs[-1] if self.epochs else 0

    def assign(self, epoch: int, start_offset: int) -> None:
        """Record that ``epoch`` starts at ``start_offset`` unless the latest epoch is ``epoch``
        already (the caller checked that epochs do not go back)."""
        if not self.epochs or self.epochs[-1] != epoch:
            self.epochs.append(epoch)
            self.start_offsets.append(start_offset)

    def epoch_for(self, offset: int) -> int:
        """The epoch of the entry at ``offset`` (which the caller checked is in the log)."""
        return self.epochs[bisect.bisect_right(self.start_offsets, offset) - 1]

    def end_offset_for(self, epoch: int, log_end_offset: int) -> OffsetAndEpoch:
        """Kafka's ``endOffsetFor``, as ``MemoryRaftLog.end_offset_for_epoch`` answers it."""
        if not self.epochs:
            return OffsetAndEpoch(0, 0) if epoch >= 0 else OffsetAndEpoch(-1, -1)
        higher = bisect.bisect_right(self.epochs, epoch)  # the first epoch greater than the requested one
        if higher == 0:  # below every epoch: it ends where the first epoch starts
            return OffsetAndEpoch(self.start_offsets[0], epoch)
        end = self.start_offsets[higher] if higher < len(self.epochs) else log_end_offset
        return OffsetAndEpoch(end, self.epochs[higher - 1])

    def truncate_from_start(self, start_offset: int) -> None:
        """Kafka's ``truncateFromStart``: epochs that end before ``start_offset`` go, and the one
        holding it now starts there."""
        keep = bisect.bisect_right(self.start_offsets, start_offset) - 1
        if keep > 0:
            del self.epochs[:keep]
            del self.start_offsets[:keep]
        if self.start_offsets and self.start_offsets[0] < start_offset:
            self.start_offsets[0] = start_offset

    def truncate_from_end(self, end_offset: int) -> None:
        """Kafka's ``truncateFromEnd``: forget the epochs that start at or after ``end_offset``."""
        keep = bisect.bisect_left(self.start_offsets, end_offset)
        del self.epochs[keep:]
        del self.start_offsets[keep:]
