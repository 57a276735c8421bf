"""DescribeGroups (key 15), versions 0-5.

v0: state, protocol type, selected protocol and members (client id, host, metadata,
assignment). v1: throttle time. v2: same fields. v3: include_authorized_operations (not
implemented: answered INT32_MIN, "unknown", as for Metadata). v4: members' group_instance_id.
v5: flexible.

As Kafka: only a Stable group shows its protocol and the members' metadata and assignments;
an unknown group is described as Dead with no error (GROUP_ID_NOT_FOUND is v6+).
"""

from __future__ import annotations

from typing import Any

from cluster.group.group import ClassicGroup, GroupState
from cluster.handlers import handles
from cluster.handlers.metadata import AUTHORIZED_OPERATIONS_UNKNOWN
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


@handles(ApiKey.DESCRIBE_GROUPS, versions=(0, 5))
def handle_describe_groups(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Describe each requested group."""
    described = []
    for group_id in request.groups:
        if not ctx.authorized(AclOperation.DESCRIBE, ResourceType.GROUP, group_id):  # Kafka: DESCRIBE on the group
            error, group = ErrorCode.group_authorization_failed, None
        else:
            error, group = ctx.broker.group_coordinator.describe_group(group_id)
        entry: dict[str, Any] = {"error_code": error, "group_id": group_id, "group_state": "", "protocol_type": "",
                                 "protocol_data": "", "members": [],
                                 "authorized_operations": AUTHORIZED_OPERATIONS_UNKNOWN}
        if error == ErrorCode.none:
            entry |= _describe(group) if group is not None else {"group_state": GroupState.DEAD.value}
        described.append(entry)
    return {"throttle_time": 0, "groups": described}


def _describe(group: ClassicGroup) -> dict[str, Any]:
    protocol = group.protocol_name if group.is_in(GroupState.STABLE) else None
    return {
        "group_state": group.state.value,
        "protocol_type": group.protocol_type or "",
        "protocol_data": protocol or "",
        "members": [{"member_id": m.member_id, "group_instance_id": m.group_instance_id, "client_id": m.client_id,
                     "client_host": m.client_host, "member_metadata": m.metadata(protocol) if protocol else b"",
                     "member_assignment": m.assignment if protocol else b""}
                    for m in group.members.values()],
    }
