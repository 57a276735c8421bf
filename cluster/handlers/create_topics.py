"""CreateTopics (key 19), versions 2-7.

v2: validate_only. v4: partitions/replication factor may be -1 (broker defaults). v5: flexible;
the answer carries partitions, replication factor and the topic's configs. v7: topic ids.
Sent to any broker, it is forwarded to the active controller (``forwarding``). Errors as Kafka: TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS,
INVALID_REPLICATION_FACTOR, INVALID_REPLICA_ASSIGNMENT, INVALID_CONFIG (with a message).
"""

from __future__ import annotations

from typing import Any

from cluster.controller.metadata_image import MetadataImage
from cluster.controller.topics import NewTopic, TopicResult
from cluster.handlers import BROKER, CONTROLLER, handles
from cluster.handlers.describe_configs import topic_config_entries
from cluster.handlers.forwarding import forwarded
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


def _error_response(request: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    return {"throttle_time": 0, "topics": [{"name": t.name, "error_code": code, "error_message": message,
                                            "num_partitions": -1, "replication_factor": -1} for t in request.topics]}


def _settled(answer: Any, image: MetadataImage) -> bool:
    return all(t.name in image.topics for t in answer.topics if t.error_code == ErrorCode.none)


def _unauthorized(ctx: RequestContext, request: Any) -> set[str]:
    """Kafka's ``ControllerApis.createTopics``: CREATE on the cluster, else on each topic."""
    if ctx.authorized_on_cluster(AclOperation.CREATE):
        return set()
    return {t.name for t in request.topics if not ctx.authorized(AclOperation.CREATE, ResourceType.TOPIC, t.name)}


@handles(ApiKey.CREATE_TOPICS, versions=(2, 7), listeners=(BROKER, CONTROLLER))
@forwarded(_error_response, _settled)
async def handle_create_topics(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Create the requested topics through the controller."""
    denied = _unauthorized(ctx, request) if ctx.authorizing else set()
    new_topics = [
        NewTopic(
            name=t.name,
            partitions=t.num_partitions,
            replication_factor=t.replication_factor,
            assignments={a.partition_index: tuple(a.broker_ids) for a in t.assignments},
            config={c.name: c.value for c in t.configs},
        )
        for t in request.topics if t.name not in denied
    ]
    results = await ctx.broker.controller.create_topics(new_topics, validate_only=request.validate_only)
    results += [TopicResult(name, ErrorCode.topic_authorization_failed, "Authorization failed.") for name in denied]
    image = ctx.broker.image
    topics = []
    for result in results:
        entry: dict[str, Any] = {"name": result.name, "error_code": result.error_code,
                                 "error_message": result.error_message, "num_partitions": result.partitions,
                                 "replication_factor": result.replication_factor}
        if result.topic_id is not None:
            entry["topic_id"] = result.topic_id
        topic = image.topics.get(result.name)
        if result.error_code == ErrorCode.none and topic is not None:
            entry["configs"] = [{"name": c["name"], "value": c["value"], "read_only": c["read_only"],
                                 "config_source": c["config_source"], "is_sensitive": False}
                                for c in topic_config_entries(ctx, topic)]
        topics.append(entry)
    return {"throttle_time": 0, "topics": topics}
