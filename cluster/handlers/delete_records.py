"""DeleteRecords (key 21), versions 0-2.

Moves each partition's log start offset up to the given offset (-1 = the high watermark);
segments entirely below it are deleted. OFFSET_OUT_OF_RANGE above the high watermark.
v2: flexible.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.log.partition_log import OffsetOutOfRangeError
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


@handles(ApiKey.DELETE_RECORDS, versions=(0, 2))
def handle_delete_records(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Delete records before the given offsets."""
    topics = []
    for topic in request.topics:
        partitions = []
        for p in topic.partitions:
            partition = ctx.broker.replica_manager.partition(topic.name, p.partition_index)
            code, low = ErrorCode.none, -1
            if not ctx.authorized(AclOperation.DELETE, ResourceType.TOPIC, topic.name):  # Kafka: DELETE on the topic
                code = ErrorCode.topic_authorization_failed
            elif partition is None:
                code = ctx.broker.replica_manager.absent_error(topic.name, p.partition_index)
            elif not partition.is_leader:
                code = ErrorCode.not_leader_or_follower
            else:
                offset = partition.log.high_watermark if p.offset == -1 else p.offset
                try:
                    low = partition.log.delete_records_before(offset)
                except OffsetOutOfRangeError:
                    code = ErrorCode.offset_out_of_range
            partitions.append({"partition_index": p.partition_index, "low_watermark": low, "error_code": code})
        topics.append({"name": topic.name, "partitions": partitions})
    ctx.broker.log_manager.write_log_start_checkpoint()
    return {"throttle_time": 0, "topics": topics}
