"""DeleteGroups (key 42), versions 0-2.

v0: group ids, one error each. v1: same fields. v2: flexible.

Only an Empty group can be deleted (NON_EMPTY_GROUP otherwise); an unknown one gets
GROUP_ID_NOT_FOUND. Its offsets and metadata get tombstones in ``__consumer_offsets``.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


@handles(ApiKey.DELETE_GROUPS, versions=(0, 2))
def handle_delete_groups(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Delete Empty groups and their committed offsets."""
    denied = {g for g in request.groups_names if not ctx.authorized(AclOperation.DELETE, ResourceType.GROUP, g)}
    results = ctx.broker.group_coordinator.delete_groups([g for g in request.groups_names if g not in denied])
    results |= dict.fromkeys(denied, ErrorCode.group_authorization_failed)  # Kafka: DELETE on the group
    return {"throttle_time": 0,
            "results": [{"group_id": group_id, "error_code": error} for group_id, error in results.items()]}
