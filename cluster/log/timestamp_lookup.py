"""TimestampLookup: ListOffsets by time (Kafka's ``UnifiedLog.fetchOffsetByTimestamp``), a mixin of
``PartitionLog``: the sparse time and offset indexes give where to start scanning batch headers;
records are decoded only in the batch that holds the answer.

Concurrency: part of a PartitionLog, used from the node's event loop only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cluster.log.partition_log import PartitionLog
    from cluster.log.segment import LogSegment
    from pykafka_ops.records.batch import BatchHeader

    _Base = PartitionLog
else:
    _Base = object


@dataclass(frozen=True)
class TimestampOffset:
    """An answer to a ListOffsets lookup."""

    timestamp: int
    offset: int
    leader_epoch: int


class TimestampLookup(_Base):
    """``offset_for_timestamp`` and ``max_timestamp_offset`` of a partition log."""

    def offset_for_timestamp(self, timestamp: int) -> TimestampOffset | None:
        """The first batch whose max timestamp is ≥ ``timestamp`` (ListOffsets by time). The
        offset is that batch's first record at or after the time (records decoded only here)."""
        from pykafka_ops.records.batch import RecordBatch

        for segment in self.segments:
            if segment.max_timestamp < timestamp and segment is not self.segments.active:
                continue
            floor = segment.time_index.floor(timestamp)
            start = segment.offset_index.lookup(floor[1]) if floor else 0
            for position, header in segment.iter_headers(start):
                if header.max_timestamp < timestamp or header.last_offset < self.log_start_offset:
                    continue
                if header.base_offset >= self.high_watermark:
                    return None
                batch = RecordBatch(segment.read(position, header.size))
                for record in batch.records():
                    if record.timestamp >= timestamp and record.offset >= self.log_start_offset:
                        return TimestampOffset(record.timestamp, record.offset, header.partition_leader_epoch)
        return None

    def max_timestamp_offset(self) -> TimestampOffset | None:
        """The record with the largest timestamp (ListOffsets MAX_TIMESTAMP, KIP-734)."""
        from pykafka_ops.records.batch import RecordBatch

        best: tuple[int, LogSegment, int, BatchHeader] | None = None
        for segment in self.segments:
            for position, header in segment.iter_headers():
                if header.base_offset >= self.high_watermark or header.last_offset < self.log_start_offset:
                    continue
                if best is None or header.max_timestamp > best[0]:
                    best = (header.max_timestamp, segment, position, header)
        if best is None:
            return None
        max_ts, segment, position, header = best
        for record in RecordBatch(segment.read(position, header.size)).records():
            if record.timestamp == max_ts:
                return TimestampOffset(max_ts, record.offset, header.partition_leader_epoch)
        return TimestampOffset(max_ts, header.last_offset, header.partition_leader_epoch)
