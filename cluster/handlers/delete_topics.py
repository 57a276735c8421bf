"""DeleteTopics (key 20), versions 1-6.

v1-5: topics by name. v4: flexible. v6: topics by name or id (UNKNOWN_TOPIC_ID for an unknown
id). TOPIC_DELETION_DISABLED when ``delete.topic.enable`` is false. Forwarded to the active
controller from any other broker (``forwarding``).
"""

from __future__ import annotations

import uuid
from typing import Any

from cluster.controller.metadata_image import MetadataImage
from cluster.controller.topics import TopicResult
from cluster.handlers import BROKER, CONTROLLER, handles
from cluster.handlers.forwarding import forwarded
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

NO_TOPIC_ID = uuid.UUID(int=0)


def _error_response(request: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    named = ([(t.name, t.topic_id or NO_TOPIC_ID) for t in request.topics] if hasattr(request, "topics")
             else [(name, NO_TOPIC_ID) for name in request.topic_names])
    return {"throttle_time": 0, "responses": [{"name": name, "topic_id": topic_id, "error_code": code,
                                               "error_message": message} for name, topic_id in named]}


def _settled(answer: Any, image: MetadataImage) -> bool:
    return not any(r.name in image.topics for r in answer.responses if r.error_code == ErrorCode.none and r.name)


@handles(ApiKey.DELETE_TOPICS, versions=(1, 6), listeners=(BROKER, CONTROLLER))
@forwarded(_error_response, _settled)
async def handle_delete_topics(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Delete topics through the controller."""
    image = ctx.broker.image
    names: list[str] = []
    unknown_ids: list[dict[str, Any]] = []
    if ctx.api_version >= 6:
        for t in request.topics:
            if t.name:
                names.append(t.name)
                continue
            topic = image.topic_by_id(t.topic_id) if t.topic_id else None
            if topic is None:
                unknown_ids.append({"name": None, "topic_id": t.topic_id or NO_TOPIC_ID,
                                    "error_code": ErrorCode.unknown_topic_id, "error_message": "unknown topic id"})
            else:
                names.append(topic.name)
    else:
        names = list(request.topic_names)
    denied = [n for n in names if not ctx.authorized(AclOperation.DELETE, ResourceType.TOPIC, n)]  # Kafka: DELETE
    results = await ctx.broker.controller.delete_topics([n for n in names if n not in denied])
    results += [TopicResult(n, ErrorCode.topic_authorization_failed, "Authorization failed.") for n in denied]
    responses = [{"name": r.name, "topic_id": r.topic_id or NO_TOPIC_ID, "error_code": r.error_code,
                  "error_message": r.error_message} for r in results]
    return {"throttle_time": 0, "responses": responses + unknown_ids}
