"""ListGroups (key 16), versions 0-5.

v0: every group this broker coordinates, with its protocol type. v1: throttle time. v2: same
fields. v3: flexible. v4: states_filter and each group's state (KIP-518; case-insensitive, as
Kafka). v5: types_filter and group type (KIP-848); every group here is "classic".

While a ``__consumer_offsets`` partition is still loading the answer carries
COORDINATOR_LOAD_IN_PROGRESS with the groups known so far, as Kafka's.
"""

from __future__ import annotations

from typing import Any

from cluster.group.coordinator import CLASSIC_GROUP_TYPE
from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey


@handles(ApiKey.LIST_GROUPS, versions=(0, 5))
def handle_list_groups(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """List the groups of this broker, filtered by state and type."""
    error, groups = ctx.broker.group_coordinator.list_groups(getattr(request, "states_filter", ()),
                                                             getattr(request, "types_filter", ()))
    if not ctx.authorized_on_cluster(AclOperation.DESCRIBE):  # Kafka: else the groups it may DESCRIBE
        groups = [g for g in groups if ctx.authorized(AclOperation.DESCRIBE, ResourceType.GROUP, g.group_id)]
    return {"throttle_time": 0, "error_code": error,
            "groups": [{"group_id": g.group_id, "protocol_type": g.protocol_type or "", "group_state": g.state.value,
                        "group_type": CLASSIC_GROUP_TYPE} for g in groups]}
