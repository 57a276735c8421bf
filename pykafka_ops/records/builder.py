"""Writing a v2 record batch: ``RecordBatchBuilder`` (Kafka's ``MemoryRecordsBuilder``, magic 2).

Used by clients, tests, the log cleaner and the metadata log to produce batches; the broker's
produce and fetch paths never build one (they store and serve batches as sent). The layout,
attribute bits and ``-1`` sentinels it writes are those of ``batch``, which reads them back.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from pykafka_ops.records.batch import (
    CONTROL_FLAG_MASK,
    CURRENT_MAGIC,
    NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    NO_SEQUENCE,
    NO_TIMESTAMP,
    TIMESTAMP_TYPE_MASK,
    TRANSACTIONAL_FLAG_MASK,
    BatchHeader,
    TimestampType,
    encode_batch,
)
from pykafka_ops.records.compression import Compression, compress
from pykafka_ops.records.record import HeaderLike, write_record

__all__ = ["RecordBatchBuilder"]


class RecordBatchBuilder:
    """Build one v2 batch (Kafka's ``MemoryRecordsBuilder`` for magic 2).

    Records get consecutive offset deltas from 0; baseTimestamp is the first record's
    timestamp and maxTimestamp the largest. Not thread-safe.
    """

    def __init__(
        self,
        base_offset: int = 0,
        compression: Compression = Compression.NONE,
        producer_id: int = NO_PRODUCER_ID,
        producer_epoch: int = NO_PRODUCER_EPOCH,
        base_sequence: int = NO_SEQUENCE,
        is_transactional: bool = False,
        is_control: bool = False,
        partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
        timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    ) -> None:
        self.base_offset = base_offset
        self.compression = Compression(compression)
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.base_sequence = base_sequence
        self.partition_leader_epoch = partition_leader_epoch
        self._attributes = (
            self.compression
            | (TIMESTAMP_TYPE_MASK if timestamp_type == TimestampType.LOG_APPEND_TIME else 0)
            | (TRANSACTIONAL_FLAG_MASK if is_transactional else 0)
            | (CONTROL_FLAG_MASK if is_control else 0)
        )
        self._records = bytearray()
        self._count = 0
        self._last_offset_delta = -1
        self._base_timestamp = NO_TIMESTAMP
        self._max_timestamp = NO_TIMESTAMP

    def __len__(self) -> int:
        """Number of records appended so far."""
        return self._count

    def append(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[HeaderLike] = (),
        timestamp_ms: int | None = None,
        offset_delta: int | None = None,
    ) -> int:
        """Add a record (``timestamp_ms`` defaults to now); returns its offset delta.

        ``offset_delta`` defaults to the next one; a larger one leaves a gap, as the log cleaner
        does when it rewrites a compacted batch (Kafka's ``appendWithOffset``).
        """
        if timestamp_ms is None:
            timestamp_ms = int(time.time() * 1000)
        if self._count == 0:
            self._base_timestamp = timestamp_ms
        if offset_delta is None:
            offset_delta = self._last_offset_delta + 1
        elif offset_delta <= self._last_offset_delta:
            raise ValueError(f"offset delta {offset_delta} does not follow {self._last_offset_delta}")
        write_record(
            self._records, offset_delta, timestamp_ms - self._base_timestamp, key, value, headers
        )
        self._max_timestamp = max(self._max_timestamp, timestamp_ms)
        self._count += 1
        self._last_offset_delta = offset_delta
        return offset_delta

    def build(self, last_offset_delta: int | None = None) -> bytes:
        """The batch bytes: records compressed per the codec, CRC filled in.

        ``last_offset_delta`` keeps a compacted batch's original offset range (Kafka's
        ``overrideLastOffset``); with it the batch may hold no record at all (Kafka's
        ``writeEmptyHeader``, used when compaction removed every record of a batch).
        """
        if last_offset_delta is None:
            if not self._count:
                raise ValueError("a record batch needs at least one record")
            last_offset_delta = self._last_offset_delta
        elif last_offset_delta < self._last_offset_delta:
            raise ValueError(f"last offset delta {last_offset_delta} is below a record's {self._last_offset_delta}")
        header = BatchHeader(
            self.base_offset,
            0,  # batch length and crc: filled in by encode_batch
            self.partition_leader_epoch,
            CURRENT_MAGIC,
            0,
            self._attributes,
            last_offset_delta,
            self._base_timestamp,
            self._max_timestamp,
            self.producer_id,
            self.producer_epoch,
            self.base_sequence,
            self._count,
        )
        return encode_batch(header, compress(self.compression, self._records))
