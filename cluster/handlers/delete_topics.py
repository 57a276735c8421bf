"""DeleteTopics (key 20), versions 1-6.

v1-5: topics by name. v4: flexible. v6: topics by name or id (UNKNOWN_TOPIC_ID for an unknown
id). TOPIC_DELETION_DISABLED when ``delete.topic.enable`` is false.
"""

from __future__ import annotations

import uuid
from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

NO_TOPIC_ID = uuid.UUID(int=0)


@handles(ApiKey.DELETE_TOPICS, versions=(1, 6))
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
    results = await ctx.broker.controller.delete_topics(names)
    responses = [{"name": r.name, "topic_id": r.topic_id or NO_TOPIC_ID, "error_code": r.error_code,
                  "error_message": r.error_message} for r in results]
    return {"throttle_time": 0, "responses": responses + unknown_ids}
