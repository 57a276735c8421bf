"""SyncGroup (key 14), versions 0-5.

v0: group id, generation, member id; the leader sends every member's assignment. v1: throttle
time. v2: same fields. v3: group_instance_id (static membership; FENCED_INSTANCE_ID). v4:
flexible. v5: protocol type and name, checked against the group's (INCONSISTENT_GROUP_PROTOCOL)
and echoed back.

Followers wait until the leader's assignment is stored in ``__consumer_offsets``.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


@handles(ApiKey.SYNC_GROUP, versions=(0, 5))
async def handle_sync_group(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Deliver (and, from the leader, receive) the group's assignment."""
    if not ctx.authorized(AclOperation.READ, ResourceType.GROUP, request.group_id):  # Kafka: READ on the group
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed, "protocol_type": None,
                "protocol_name": None, "assignment": b""}
    result = await ctx.broker.group_coordinator.sync_group(
        request.group_id, request.member_id, getattr(request, "group_instance_id", None), request.generation_id,
        getattr(request, "protocol_type", None), getattr(request, "protocol_name", None),
        {a.member_id: a.assignment for a in request.assignments})
    return {"throttle_time": 0, "error_code": result.error_code, "protocol_type": result.protocol_type,
            "protocol_name": result.protocol_name, "assignment": result.assignment}
