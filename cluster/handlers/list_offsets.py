"""ListOffsets (key 2), versions 1-7.

Timestamps: -2 earliest (log start offset), -1 latest (high watermark; the LSO for
read_committed), -3 max timestamp (v7, KIP-734), ≥ 0 the first record at or after that time
(offset -1 / timestamp -1 when there is none). v2: isolation level. v4: leader epochs and the
current_leader_epoch check. v6: flexible. A lookup that meets a batch whose records cannot be
read (damaged on disk, or stored before produce walked records) answers CORRUPT_MESSAGE for that
partition, as Kafka's CorruptRecordException does; the connection and the other partitions go on.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.log.partition_log import TimestampOffset
from cluster.network.request import RequestContext
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode
from pykafka_ops.records.batch import CorruptRecordError

LATEST, EARLIEST, MAX_TIMESTAMP = -1, -2, -3
READ_COMMITTED = 1


@handles(ApiKey.LIST_OFFSETS, versions=(1, 7))
def handle_list_offsets(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Look up one offset per requested partition."""
    topics = []
    for topic in request.topics:
        partitions = [_lookup(ctx, request, topic.name, p) for p in topic.partitions]
        topics.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}


def _lookup(ctx: RequestContext, request: Any, topic: str, p: Any) -> dict[str, Any]:
    partition = ctx.broker.replica_manager.partition(topic, p.partition_index)
    if partition is None:
        return _answer(p.partition_index, ctx.broker.replica_manager.absent_error(topic, p.partition_index))
    refusal = partition.leader_error(getattr(p, "current_leader_epoch", -1))
    if refusal is not None:
        return _answer(p.partition_index, refusal)
    log = partition.log
    if p.timestamp == EARLIEST:
        found: TimestampOffset | None = TimestampOffset(-1, log.log_start_offset, partition.leader_epoch)
    elif p.timestamp == LATEST:  # KIP-98: read_committed clients end at the last stable offset
        end = log.last_stable_offset if getattr(request, "isolation_level", 0) == READ_COMMITTED else log.high_watermark
        found = TimestampOffset(-1, end, partition.leader_epoch)
    elif p.timestamp < 0 and p.timestamp != MAX_TIMESTAMP:
        return _answer(p.partition_index, ErrorCode.invalid_request)
    else:
        try:  # both read records
            found = log.max_timestamp_offset() if p.timestamp == MAX_TIMESTAMP else log.offset_for_timestamp(p.timestamp)
        except CorruptRecordError:
            return _answer(p.partition_index, ErrorCode.corrupt_message)
    if found is None:
        return _answer(p.partition_index, ErrorCode.none)
    return _answer(p.partition_index, ErrorCode.none, found.timestamp, found.offset, found.leader_epoch)


def _answer(index: int, code: ErrorCode, timestamp: int = -1, offset: int = -1, epoch: int = -1) -> dict[str, Any]:
    return {"partition_index": index, "error_code": code, "timestamp": timestamp, "offset": offset,
            "leader_epoch": epoch}
