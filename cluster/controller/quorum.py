"""The metadata quorum: the replicated, ordered log of metadata records (KRaft's Raft layer).

Today a cluster has one controller, so the quorum has one voter and a record is committed as
soon as it is written to ``__cluster_metadata-0`` (stored with the same PartitionLog code as
topic partitions). A Raft implementation (Vote, BeginQuorumEpoch, Fetch between controllers)
replaces ``SingleVoterQuorum`` behind the same ``append`` / ``replay`` interface.

Concurrency: used from the node's event loop only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence

from cluster.controller.records import (
    RECORDS_PER_TURN,
    MetadataRecord,
    append_record,
    decode_batches,
)
from cluster.log.partition_log import PartitionLog
from pykafka_ops.records.batch import RecordBatchBuilder

METADATA_TOPIC = "__cluster_metadata"
#: Topic settings of the metadata log: never deleted by retention (Kafka uses snapshots), and never
#: compacted, whatever log.cleanup.policy says (its record keys are record types, not identities).
#: A batch may hold up to 8 MiB, KRaft's own limit (KafkaRaftClient.MAX_BATCH_SIZE_BYTES).
METADATA_LOG_CONFIG = {"retention.ms": -1, "retention.bytes": -1, "segment.bytes": 64 * 1024 * 1024,
                       "cleanup.policy": "delete", "max.message.bytes": 8 * 1024 * 1024}

_READ_CHUNK = 4 * 1024 * 1024


class SingleVoterQuorum:
    """A quorum of one voter: append = commit."""

    def __init__(self, metadata_log: PartitionLog, epoch: int = 1) -> None:
        self.log = metadata_log
        self.epoch = epoch

    def replay(self) -> Iterator[tuple[int, MetadataRecord]]:
        """Every committed record, in order (at start-up)."""
        offset = self.log.log_start_offset
        end = self.log.log_end_offset
        while offset < end:
            data = self.log.read(offset, _READ_CHUNK, end, min_one_batch=True)
            last = offset - 1
            for record_offset, record in decode_batches(data):
                if record_offset >= offset:
                    yield record_offset, record
                last = record_offset
            if last < offset:
                break
            offset = last + 1

    @property
    def end_offset(self) -> int:
        """The offset the next appended record gets."""
        return self.log.log_end_offset

    async def append(self, records: Sequence[MetadataRecord]) -> int:
        """Commit ``records`` atomically; returns the offset of the last one."""
        now_ms = int(time.time() * 1000)
        builder = RecordBatchBuilder()  # one batch: the records are committed together or not at all
        for i, record in enumerate(records):
            append_record(builder, record, now_ms)
            if i % RECORDS_PER_TURN == RECORDS_PER_TURN - 1:
                await asyncio.sleep(0)
        data = bytearray(builder.build())
        info = self.log.append_as_leader(memoryview(data), self.epoch, now_ms)
        self.log.high_watermark = self.log.log_end_offset
        return info.last_offset
