"""DescribeTopicPartitions (key 75), version 0 (KIP-966): topics and partitions, paged by a cursor.

As Kafka's ``DescribeTopicPartitionsRequestHandler`` and
``KRaftMetadataCache.getTopicMetadataForDescribeTopicResponse``: the named topics (every topic
when none is named) from the cursor's topic on, sorted by name; at most
min(``response_partition_limit``, ``max.request.partition.size.limit`` = 2000) partitions; the
cursor's topic starts at its partition index, every later topic at 0. A topic cut short sets
``next_cursor`` to its first partition left out; a topic reached with no room left sets it to
that topic, partition 0. A named topic that does not exist is UNKNOWN_TOPIC_OR_PARTITION
(INVALID_TOPIC_EXCEPTION for an invalid name). A cursor whose topic is not among the named ones,
or with a negative partition, is INVALID_REQUEST for every named topic (``getErrorResponse``).

Partitions: leader and leader epoch, replicas, ISR, offline replicas (those on brokers that are
not alive: unregistered or fenced). pko has no eligible leader replicas (KIP-966 ELR): both ELR
lists are empty, as Kafka answers for a partition without ELR. Without an authorizer every topic
is described, with all the operations a topic supports as its authorized operations (Kafka's
``AuthHelper.authorizedOperations`` without an authorizer).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from cluster.controller.metadata_image import MetadataImage, TopicImage
from cluster.handlers import handles
from cluster.network.request import RequestContext
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

#: Kafka's ``max.request.partition.size.limit`` default: the most partitions in one response.
MAX_REQUEST_PARTITION_SIZE_LIMIT = 2000
#: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (AclOperation codes).
TOPIC_OPERATIONS = sum(1 << code for code in (3, 4, 5, 6, 7, 8, 10, 11))
_LEGAL_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def _partitions(image: MetadataImage, topic: TopicImage, start: int, end: int) -> list[dict[str, Any]]:
    """Partitions ``start`` .. ``end - 1`` of ``topic`` (those that exist)."""
    alive = {b.broker_id for b in image.live_brokers}
    result = []
    for index in range(start, end):
        p = topic.partitions.get(index)
        if p is None:
            continue
        result.append({"error_code": ErrorCode.none, "partition_index": index,
                       "leader_id": p.leader if p.leader in alive else -1, "leader_epoch": p.leader_epoch,
                       "replica_nodes": list(p.replicas), "isr_nodes": list(p.isr),
                       "eligible_leader_replicas": [], "last_known_elr": [],
                       "offline_replicas": [r for r in p.replicas if r not in alive]})
    return result


def _topic(name: str, error: ErrorCode, topic_id: uuid.UUID, internal: bool,
           partitions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"error_code": error, "name": name, "topic_id": topic_id, "is_internal": internal,
            "partitions": partitions, "topic_authorized_operations": TOPIC_OPERATIONS}


def describe(image: MetadataImage, names: list[str], first_partition: int, limit: int,
             fetch_all: bool) -> dict[str, Any]:
    """The response body for ``names`` (sorted, from the cursor's topic on), starting the first at
    ``first_partition`` when it is the cursor's topic, with at most ``limit`` partitions."""
    remaining = limit
    topics: list[dict[str, Any]] = []
    next_cursor = None
    for position, name in enumerate(names):
        if remaining <= 0:
            if remaining == 0:
                next_cursor = {"topic_name": name, "partition_index": 0}
            break
        topic = image.topics.get(name)
        if topic is None:
            if not fetch_all:
                error = (ErrorCode.unknown_topic_or_partition if _LEGAL_TOPIC_NAME.fullmatch(name)
                         else ErrorCode.invalid_topic_exception)
                topics.append(_topic(name, error, uuid.UUID(int=0), False, []))
            continue
        start = first_partition if position == 0 else 0
        end = min(len(topic.partitions), start + remaining)
        partitions = _partitions(image, topic, start, end)
        topics.append(_topic(name, ErrorCode.none, topic.topic_id, topic.is_internal, partitions))
        if end < len(topic.partitions):
            next_cursor = {"topic_name": name, "partition_index": end}
            break
        remaining -= len(partitions)
    return {"throttle_time": 0, "topics": topics, "next_cursor": next_cursor}


@handles(ApiKey.DESCRIBE_TOPIC_PARTITIONS, versions=(0, 0))
def handle_describe_topic_partitions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Describe topics and their partitions, one page."""
    image = ctx.broker.image
    cursor = request.cursor
    cursor_topic = cursor.topic_name if cursor is not None else ""
    fetch_all = not request.topics
    candidates = set(image.topics) if fetch_all else {t.name for t in request.topics}
    names = sorted(name for name in candidates if name >= cursor_topic)
    if cursor is not None and ((not fetch_all and cursor_topic not in names) or cursor.partition_index < 0):
        return {"throttle_time": 0, "next_cursor": None, "topics": [
            _topic(t.name, ErrorCode.invalid_request, uuid.UUID(int=0), False, []) for t in request.topics]}
    first_partition = cursor.partition_index if cursor is not None and names and names[0] == cursor_topic else 0
    limit = min(MAX_REQUEST_PARTITION_SIZE_LIMIT, request.response_partition_limit)
    return describe(image, names, first_partition, limit, fetch_all)
