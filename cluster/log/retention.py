"""LogRetention: DeleteRecords and retention (Kafka's ``UnifiedLog.deleteOldSegments``), a mixin of
``PartitionLog``: the log start offset moves up and whole segments below it are deleted, never
one that holds offsets at or above the high watermark.

Concurrency: part of a PartitionLog, used from the node's event loop only.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cluster.log.partition_log import PartitionLog
    from cluster.log.segment import LogSegment

    _Base = PartitionLog
else:
    _Base = object


class OffsetOutOfRangeError(Exception):
    """A fetch or delete offset outside [log_start_offset, log_end_offset]."""


class LogRetention(_Base):
    """``delete_records_before`` and ``apply_retention`` of a partition log."""


    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: move the log start offset up to ``offset`` (≤ high watermark)."""
        if offset > self.high_watermark or offset < 0:
            raise OffsetOutOfRangeError(f"offset {offset} is above the high watermark {self.high_watermark}")
        if offset > self.log_start_offset:
            self.log_start_offset = offset
            self._delete_segments_below_start()
            self.leader_epochs.truncate_from_start(self.log_start_offset)
        return self.log_start_offset

    def apply_retention(self, now_ms: int) -> int:
        """Delete segments past retention.ms / retention.bytes (cleanup.policy with "delete"
        only); returns how many were deleted."""
        deleted = 0
        if not self.config.delete:
            return self._delete_segments_below_start()
        if self.config.retention_ms >= 0:
            horizon = now_ms - self.config.retention_ms
            while len(self.segments) and self._segment_time(self.segments.first) < horizon:
                if self.segments.first is self.segments.active:
                    if self.segments.active.size == 0 or self.high_watermark < self.log_end_offset:
                        break
                    self.roll(now_ms)
                if not self._delete_oldest():
                    break  # the oldest segment holds offsets at or above the high watermark
                deleted += 1
        if self.config.retention_bytes >= 0:
            total = self.size_bytes
            while len(self.segments) > 1 and total - self.segments.first.size >= self.config.retention_bytes:
                total -= self.segments.first.size
                if not self._delete_oldest():
                    break
                deleted += 1
        return deleted + self._delete_segments_below_start()

    def _segment_time(self, segment: LogSegment) -> int:
        if segment.max_timestamp >= 0:
            return segment.max_timestamp
        return int(os.stat(segment.path).st_mtime * 1000)

    def _delete_oldest(self) -> int:
        if len(self.segments) < 2 or self.segments.first.next_offset > self.high_watermark:
            return 0
        segment = self.segments.remove_first()
        if segment in self.unflushed_segments:
            self.unflushed_segments.remove(segment)
        segment.delete()
        self.log_start_offset = max(self.log_start_offset, self.segments.first.base_offset)
        self.leader_epochs.truncate_from_start(self.log_start_offset)
        return 1

    def _delete_segments_below_start(self) -> int:
        deleted = 0
        while len(self.segments) > 1 and self.segments[1].base_offset <= self.log_start_offset:
            deleted += self._delete_oldest()
        return deleted
