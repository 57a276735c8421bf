"""BrokerHeartbeat (key 63), versions 0-1, on the controller listener: a registered broker's
heartbeat to the active controller (Kafka's ``QuorumController.processBrokerHeartbeat``).

The controller unfences a broker whose metadata offset has reached its registration, fences one
that asks to shut down (controlled shutdown: ``should_shut_down`` then tells it to go on), and
keeps its session alive. Errors as Kafka: NOT_CONTROLLER, BROKER_ID_NOT_REGISTERED,
STALE_BROKER_EPOCH. v1: offline log dirs (read and ignored: one log dir per node).

Concurrency: runs on the node's event loop, like every handler.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import CONTROLLER, handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


@handles(ApiKey.BROKER_HEARTBEAT, versions=(0, 1), listeners=(CONTROLLER,))
async def handle_broker_heartbeat(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Process one heartbeat."""
    if not ctx.authorized_on_cluster(AclOperation.CLUSTER_ACTION):  # Kafka's ControllerApis: CLUSTER_ACTION
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "is_caught_up": False,
                "is_fenced": True, "should_shut_down": False}
    result = await ctx.broker.controller.broker_heartbeat(request.broker_id, request.broker_epoch,
                                                          request.current_metadata_offset, request.want_fence,
                                                          request.want_shut_down)
    return {"throttle_time": 0, "error_code": result.error_code, "is_caught_up": result.is_caught_up,
            "is_fenced": result.is_fenced, "should_shut_down": result.should_shut_down}
