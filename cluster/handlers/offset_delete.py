"""OffsetDelete (key 47), version 0.

v0: group id and partitions; a group-level error, or one error per partition (KIP-496).

Allowed on an Empty group; on a live consumer group only for topics it does not subscribe to
(GROUP_SUBSCRIBED_TO_TOPIC otherwise); other live groups get NON_EMPTY_GROUP, unknown groups
GROUP_ID_NOT_FOUND, unknown partitions UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


@handles(ApiKey.OFFSET_DELETE, versions=(0, 0))
def handle_offset_delete(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Delete committed offsets of some partitions."""
    partitions = [(t.name, p.partition_index) for t in request.topics for p in t.partitions]
    if not ctx.authorized(AclOperation.DELETE, ResourceType.GROUP, request.group_id):  # Kafka: DELETE on the group
        return {"error_code": ErrorCode.group_authorization_failed, "throttle_time": 0, "topics": []}
    error, results = ctx.broker.group_coordinator.delete_offsets(request.group_id, partitions)
    topics: dict[str, list[dict[str, Any]]] = {}
    for (topic, index), code in results.items():
        topics.setdefault(topic, []).append({"partition_index": index, "error_code": code})
    return {"error_code": error, "throttle_time": 0,
            "topics": [{"name": name, "partitions": parts} for name, parts in topics.items()]}
