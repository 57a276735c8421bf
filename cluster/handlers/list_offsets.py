"""ListOffsets (key 2), versions 1-10.

Timestamps: -2 earliest (log start offset, with the epoch of the earliest leader-epoch entry when
it starts at or before it, as Kafka's ``UnifiedLog.fetchOffsetByTimestamp``), -1 latest (high
watermark; the LSO for read_committed), -3 max timestamp (v7, KIP-734), -4 earliest local (v8,
KIP-405: the local log start offset — without tiered storage, the log start offset), -5 latest
tiered (v9, KIP-1005: without tiered storage Kafka answers offset -1, epoch -1), ≥ 0 the first
record at or after that time (offset -1 / timestamp -1 when there is none). v2: isolation level.
v4: leader epochs and the current_leader_epoch check. v6: flexible. v10: ``timeout_ms``
(KIP-1075), which bounds remote-storage lookups only: with no tiered storage every answer is
local and immediate. A lookup that meets a batch whose records cannot be
read (damaged on disk, or stored before produce walked records) answers CORRUPT_MESSAGE for that
partition, as Kafka's CorruptRecordException does; the connection and the other partitions go on.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.log.partition_log import TimestampOffset
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode
from pykafka_ops.records.batch import CorruptRecordError

LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED = -1, -2, -3, -4, -5
READ_COMMITTED = 1


@handles(ApiKey.LIST_OFFSETS, versions=(1, 10))
def handle_list_offsets(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Look up one offset per requested partition."""
    topics = []
    for topic in request.topics:
        if not ctx.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, topic.name):  # Kafka: DESCRIBE on the topic
            partitions = [_answer(p.partition_index, ErrorCode.topic_authorization_failed) for p in topic.partitions]
        else:
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
        earliest = log.leader_epochs.earliest_entry
        epoch = earliest.epoch if earliest is not None and earliest.start_offset <= log.log_start_offset else -1
        found: TimestampOffset | None = TimestampOffset(-1, log.log_start_offset, epoch)
    elif p.timestamp == EARLIEST_LOCAL:
        local_epoch = log.leader_epochs.epoch_for_offset(log.log_start_offset)
        found = TimestampOffset(-1, log.log_start_offset, -1 if local_epoch is None else local_epoch)
    elif p.timestamp == LATEST_TIERED:  # no tiered storage: nothing is in remote storage
        found = TimestampOffset(-1, -1, -1)
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
