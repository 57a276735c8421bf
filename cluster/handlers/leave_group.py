"""LeaveGroup (key 13), versions 0-5.

v0: group id and one member id. v1: throttle time. v2: same fields. v3: a batch of members,
each with member id and group_instance_id (KIP-345: an admin removes static members by
instance id, with an empty member id); one error per member. v4: flexible. v5: a reason per
member (logged).

For v0-2 the single member's error is the top-level error, as Kafka's LeaveGroupResponse does.
When the group itself is refused (invalid group id, not the coordinator, still loading) the
answer is that top-level error with no members.
"""

from __future__ import annotations

from typing import Any

from cluster.group.membership import LeavingMember
from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

BATCH_VERSION = 3


@handles(ApiKey.LEAVE_GROUP, versions=(0, 5))
def handle_leave_group(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Remove the leaving members; the group rebalances without them."""
    if not ctx.authorized(AclOperation.READ, ResourceType.GROUP, request.group_id):  # Kafka: READ on the group
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed, "members": []}
    if ctx.api_version < BATCH_VERSION:
        leaving = [LeavingMember(request.member_id, None)]
    else:
        leaving = [LeavingMember(m.member_id, m.group_instance_id, getattr(m, "reason", None))
                   for m in request.members]
    error, member_errors = ctx.broker.group_coordinator.leave_group(request.group_id, leaving)
    if ctx.api_version < BATCH_VERSION and error == ErrorCode.none and member_errors:
        error = member_errors[0]
    members = [{"member_id": m.member_id, "group_instance_id": m.group_instance_id, "error_code": code}
               for m, code in zip(leaving, member_errors, strict=True)] if member_errors else []
    return {"throttle_time": 0, "error_code": error, "members": members}
