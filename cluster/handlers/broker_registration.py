"""BrokerRegistration (key 62), versions 0-4, on the controller listener: a broker registers with
the active controller (Kafka's ``ClusterControlManager.registerBroker``).

The answer is the broker epoch (the offset of its registration record; the broker starts fenced);
a controller that does not lead answers NOT_CONTROLLER, a broker of another cluster
INCONSISTENT_CLUSTER_ID, a second process registering as a broker that still heartbeats
DUPLICATE_BROKER_REGISTRATION, and a registration without a listener INVALID_REQUEST. The first
listener is the broker's client endpoint. Not checked: features (every node runs this code);
v3+ log dirs and v4 ``previous_broker_epoch`` are read and ignored.

Concurrency: runs on the node's event loop, like every handler.
"""

from __future__ import annotations

from typing import Any

from cluster.controller.cluster_control import BrokerEndpoint
from cluster.handlers import CONTROLLER, handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


@handles(ApiKey.BROKER_REGISTRATION, versions=(0, 4), listeners=(CONTROLLER,))
async def handle_broker_registration(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Register ``request.broker_id`` at its first listener's address."""
    if not ctx.authorized_on_cluster(AclOperation.CLUSTER_ACTION):  # Kafka's ControllerApis: CLUSTER_ACTION
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "broker_epoch": -1}
    if not request.listeners:
        return {"throttle_time": 0, "error_code": ErrorCode.invalid_request, "broker_epoch": -1}
    listener = request.listeners[0]
    endpoint = BrokerEndpoint(request.broker_id, str(request.incarnation_id), listener.host, listener.port,
                              request.rack, request.cluster_id or "")
    error, epoch = await ctx.broker.controller.register_broker(endpoint)
    return {"throttle_time": 0, "error_code": error, "broker_epoch": epoch}
