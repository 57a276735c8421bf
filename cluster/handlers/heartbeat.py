"""Heartbeat (key 12), versions 0-4.

v0: group id, generation, member id. v1: throttle time. v2: same fields. v3: group_instance_id
(static membership; FENCED_INSTANCE_ID). v4: flexible.

Keeps the member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin, UNKNOWN_MEMBER_ID
and ILLEGAL_GENERATION that it was removed or is behind.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


@handles(ApiKey.HEARTBEAT, versions=(0, 4))
def handle_heartbeat(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Record a heartbeat."""
    if not ctx.authorized(AclOperation.READ, ResourceType.GROUP, request.group_id):  # Kafka: READ on the group
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed}
    error = ctx.broker.group_coordinator.heartbeat(request.group_id, request.member_id,
                                                   getattr(request, "group_instance_id", None), request.generation_id)
    return {"throttle_time": 0, "error_code": error}
