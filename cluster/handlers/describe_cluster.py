"""DescribeCluster (key 60), versions 0-2: cluster id, controller and brokers.

v1: endpoint_type (1 = brokers; 2 = controllers is answered UNSUPPORTED_ENDPOINT_TYPE, as Kafka's
brokers do). v2: include_fenced_brokers, and each broker's is_fenced (KIP-1073): without it only
live (unfenced) brokers are listed, as Metadata does. The controller id is a live broker, as
Kafka's KRaft brokers answer (the quorum leader is what DescribeQuorum names). Authorized
operations are not implemented (INT32_MIN).
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

BROKERS_ENDPOINT = 1


@handles(ApiKey.DESCRIBE_CLUSTER, versions=(0, 2))
def handle_describe_cluster(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Describe the cluster."""
    if getattr(request, "endpoint_type", BROKERS_ENDPOINT) != BROKERS_ENDPOINT:
        return {"error_code": ErrorCode.unsupported_endpoint_type, "error_message": "only broker endpoints",
                "endpoint_type": request.endpoint_type, "cluster_id": "", "controller_id": -1, "brokers": []}
    image = ctx.broker.image
    brokers = ([b for _, b in sorted(image.brokers.items())] if getattr(request, "include_fenced_brokers", False)
               else image.live_brokers)
    return {
        "throttle_time": 0,
        "error_code": ErrorCode.none,
        "endpoint_type": BROKERS_ENDPOINT,
        "cluster_id": image.cluster_id,
        "controller_id": ctx.broker.controller_id,
        "brokers": [{"broker_id": b.broker_id, "host": b.host, "port": b.port, "rack": b.rack,
                     "is_fenced": b.fenced} for b in brokers],
        "cluster_authorized_operations": -(2**31),
    }
