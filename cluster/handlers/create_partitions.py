"""CreatePartitions (key 37), versions 0-3.

v1: same as v0. v2: flexible. v3: same as v2. INVALID_PARTITIONS when the count does not grow,
INVALID_REPLICA_ASSIGNMENT for a bad manual assignment, validate_only supported. Forwarded to
the active controller from any other broker (``forwarding``).
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import BROKER, CONTROLLER, handles
from cluster.handlers.forwarding import forwarded
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


def _error_response(request: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    return {"throttle_time": 0, "results": [{"name": t.name, "error_code": code, "error_message": message}
                                            for t in request.topics]}


@handles(ApiKey.CREATE_PARTITIONS, versions=(0, 3), listeners=(BROKER, CONTROLLER))
@forwarded(_error_response)
async def handle_create_partitions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Grow each topic to its requested partition count."""
    results = []
    for topic in request.topics:
        if not ctx.authorized(AclOperation.ALTER, ResourceType.TOPIC, topic.name):  # Kafka: ALTER on the topic
            results.append({"name": topic.name, "error_code": ErrorCode.topic_authorization_failed,
                             "error_message": "Authorization failed."})
            continue
        assignments = [tuple(a.broker_ids) for a in topic.assignments] if topic.assignments else None
        result = await ctx.broker.controller.create_partitions(topic.name, topic.count, assignments,
                                                                request.validate_only)
        results.append({"name": result.name, "error_code": result.error_code, "error_message": result.error_message})
    return {"throttle_time": 0, "results": results}
