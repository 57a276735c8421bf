"""JoinGroup (key 11), versions 0-9.

v0: group id, session timeout, member id, protocol type and protocols. v1: rebalance timeout
(v0 uses the session timeout for both). v2: throttle time. v3: same fields. v4: a new member
without a member id gets MEMBER_ID_REQUIRED and its id, and joins with it (KIP-394). v5: static
membership, group_instance_id (KIP-345; FENCED_INSTANCE_ID). v6: flexible. v7: protocol type
in the answer (nullable protocol name). v8: reason (logged with the rebalance). v9: skip_assignment
for a static leader rejoining a Stable group (KIP-814).

The answer waits until the rebalance completes (GroupCoordinator / GroupMembership).
"""

from __future__ import annotations

from typing import Any

from cluster.group.membership import MemberJoin
from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

NULLABLE_PROTOCOL_NAME_VERSION = 7


def client_host(ctx: RequestContext) -> str:
    """The client's address as Kafka shows it (``/127.0.0.1``, no port)."""
    return "/" + ctx.client_address.rsplit(":", 1)[0]


@handles(ApiKey.JOIN_GROUP, versions=(0, 9))
async def handle_join_group(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Join (or rejoin) a group; answered when its rebalance completes."""
    if not ctx.authorized(AclOperation.READ, ResourceType.GROUP, request.group_id):  # Kafka: READ on the group
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed, "generation_id": -1,
                "protocol_type": None, "protocol_name": None if ctx.api_version >= NULLABLE_PROTOCOL_NAME_VERSION
                else "", "leader": "", "skip_assignment": False, "member_id": request.member_id, "members": []}
    session_timeout_ms = int(request.session_timeout.total_seconds() * 1000)
    rebalance_timeout = getattr(request, "rebalance_timeout", None)
    join = MemberJoin(
        member_id=request.member_id,
        group_instance_id=getattr(request, "group_instance_id", None),
        client_id=ctx.client_id or "",
        client_host=client_host(ctx),
        session_timeout_ms=session_timeout_ms,
        rebalance_timeout_ms=(int(rebalance_timeout.total_seconds() * 1000) if rebalance_timeout is not None
                              else session_timeout_ms),
        protocol_type=request.protocol_type,
        protocols=tuple((p.name, p.metadata) for p in request.protocols),
        require_known_member_id=ctx.api_version >= 4,
        supports_skip_assignment=ctx.api_version >= 9,
        reason=getattr(request, "reason", None),
    )
    result = await ctx.broker.group_coordinator.join_group(request.group_id, join)
    protocol_name = result.protocol_name
    if protocol_name is None and ctx.api_version < NULLABLE_PROTOCOL_NAME_VERSION:
        protocol_name = ""
    return {
        "throttle_time": 0,
        "error_code": result.error_code,
        "generation_id": result.generation_id,
        "protocol_type": result.protocol_type,
        "protocol_name": protocol_name,
        "leader": result.leader_id,
        "skip_assignment": result.skip_assignment,
        "member_id": result.member_id,
        "members": [{"member_id": member_id, "group_instance_id": instance_id, "metadata": metadata}
                    for member_id, instance_id, metadata in result.members],
    }
