"""Metadata (key 3), versions 0-13, with auto topic creation.

v0: brokers, topics, partitions (null topics → all for v1+, an empty list → all for v0).
v1: + rack, controller id, is_internal. v2: + cluster id. v4: allow_auto_topic_creation.
v5: + offline replicas. v7: + leader epoch. v8: authorized operations (not implemented: sent as
INT32_MIN, "unknown", as Kafka does when not requested). v9: flexible. v10: topic ids (every topic
has one). v12: topics may be requested by id only. v13 (KIP-1102): a top-level error code, for
REBOOTSTRAP_REQUIRED, which a broker answers only when the client must rebootstrap — never here
(0), as in Kafka 4.0. Before v12 a null name or a topic id in the
request is INVALID_REQUEST for every topic (KafkaApis.handleTopicMetadataRequest, answered as
MetadataRequest.getErrorResponse does: a null name becomes "").

Unknown topics are created when the request allows it and ``auto.create.topics.enable`` is set
(``num.partitions``, ``default.replication.factor``; ``__consumer_offsets`` as the group
coordinator creates it); the answer then describes the new topic.
Invalid names get INVALID_TOPIC_EXCEPTION, unknown ones UNKNOWN_TOPIC_OR_PARTITION (or
UNKNOWN_TOPIC_ID when asked by id).

With an authorizer (Kafka's ``getTopicMetadata``): all-topics requests leave out the topics the
principal may not DESCRIBE; a named one answers TOPIC_AUTHORIZATION_FAILED, and one to be
auto-created needs CREATE on the cluster or the topic.

Each topic's entry is encoded once per version and kept while its ``TopicImage`` is the same
object (images are immutable and a commit replaces only the topics it touches), so describing
12 000 partitions costs a join of cached bytes, not 12 000 structs built and written again.

Concurrency: runs on the node's event loop, which alone uses the encoded-topic cache.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from cluster.controller.metadata_image import (
    BrokerImage,
    MetadataImage,
    PartitionImage,
    TopicImage,
)
from cluster.controller.topics import NewTopic, TopicError, validate_topic_name
from cluster.group.offsets_topic import OFFSETS_TOPIC
from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from cluster.txn.transaction_log import TRANSACTION_STATE_TOPIC
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

AUTHORIZED_OPERATIONS_UNKNOWN = -(2**31)
NO_TOPIC_ID = uuid.UUID(int=0)
#: The first version that may name topics by id only.
TOPIC_ID_LOOKUP_VERSION = 12


@handles(ApiKey.METADATA, versions=(0, 13))
def handle_metadata(ctx: RequestContext, request: Any) -> Any:
    """Describe brokers and the requested topics (creating missing ones when allowed)."""
    image = ctx.broker.image
    VERSIONS_SEEN.add(ctx.api_version)
    wanted = request.topics
    if ctx.api_version < TOPIC_ID_LOOKUP_VERSION and wanted and any(
            t.name is None or getattr(t, "topic_id", NO_TOPIC_ID) != NO_TOPIC_ID for t in wanted):
        return _invalid_request(wanted)
    if wanted is None or (ctx.api_version == 0 and not wanted):
        return _response(ctx, image, [_described(ctx.api_version, t, image.brokers)
                                      for t in sorted(image.topics.values(), key=lambda t: t.name)
                                      if not ctx.authorizing or ctx.authorized(AclOperation.DESCRIBE,
                                                                               ResourceType.TOPIC, t.name)])
    allow_create = getattr(request, "allow_auto_topic_creation", True) and ctx.broker.config["auto.create.topics.enable"]
    missing = [t.name for t in wanted if t.name and t.name not in image.topics and _valid(t.name)]
    denied = _unauthorized(ctx, image, wanted, missing if allow_create else []) if ctx.authorizing else frozenset()
    if denied:
        missing = [name for name in missing if name not in denied]
    if allow_create and missing:
        return _create_then_describe(ctx, request, missing, denied)
    return _response(ctx, image, _lookup_all(ctx.api_version, image, wanted, denied))


async def _create_then_describe(ctx: RequestContext, request: Any, missing: list[str],
                                denied: frozenset[str]) -> list[bytes]:
    await ctx.broker.requests.create_topics([_new_topic(ctx, name) for name in dict.fromkeys(missing)])
    image = ctx.broker.image
    return _response(ctx, image, _lookup_all(ctx.api_version, image, request.topics, denied))


def _unauthorized(ctx: RequestContext, image: MetadataImage, wanted: Any, to_create: list[str]) -> frozenset[str]:
    """Kafka's ``KafkaApis.getTopicMetadata`` checks: named topics need DESCRIBE, and a topic to be
    auto-created CREATE on the cluster or on the topic; the others answer TOPIC_AUTHORIZATION_FAILED."""
    names = {t.name or image.topic_names_by_id.get(getattr(t, "topic_id", NO_TOPIC_ID), "") for t in wanted}
    denied = {name for name in names if name and not ctx.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, name)}
    if to_create and not ctx.authorized_on_cluster(AclOperation.CREATE):
        denied.update(name for name in to_create if not ctx.authorized(AclOperation.CREATE, ResourceType.TOPIC, name))
    return frozenset(denied)


def _lookup_all(version: int, image: MetadataImage, wanted: Any, denied: frozenset[str]) -> list[bytes]:
    """The entries of the requested topics (``denied`` ones TOPIC_AUTHORIZATION_FAILED, no id)."""
    entries = []
    for t in wanted:
        topic_id = getattr(t, "topic_id", None)
        name = t.name or (image.topic_names_by_id.get(topic_id) if topic_id else None)
        if denied and name in denied:
            entries.append(_encoded(version, _error(t.name, ErrorCode.topic_authorization_failed)))
        else:
            entries.append(_lookup(version, image, t.name, topic_id))
    return entries


def _new_topic(ctx: RequestContext, name: str) -> NewTopic:
    """As Kafka's AutoTopicCreationManager: ``__consumer_offsets`` and ``__transaction_state`` get
    their own partitions and settings."""
    if name == OFFSETS_TOPIC:
        return ctx.broker.group_coordinator.offsets_topic()
    if name == TRANSACTION_STATE_TOPIC:
        return ctx.broker.txn_coordinator.transaction_topic()
    return NewTopic(name)


def _valid(name: str) -> bool:
    try:
        validate_topic_name(name)
    except TopicError:
        return False
    return True


def _lookup(version: int, image: MetadataImage, name: str | None, topic_id: uuid.UUID | None) -> bytes:
    if not name and topic_id and topic_id != NO_TOPIC_ID:
        topic = image.topic_by_id(topic_id)
        if topic is None:
            return _encoded(version, _error(None, ErrorCode.unknown_topic_id, topic_id))
        return _described(version, topic, image.brokers)
    topic = image.topics.get(name or "")
    if topic is not None:
        return _described(version, topic, image.brokers)
    code = ErrorCode.unknown_topic_or_partition if _valid(name or "") else ErrorCode.invalid_topic_exception
    return _encoded(version, _error(name, code))


Brokers = Mapping[int, BrokerImage]
#: (topic name, version) → (the TopicImage and brokers it describes, its encoded entry).
_ENCODED_TOPICS: dict[tuple[str, int], tuple[TopicImage, Brokers, bytes]] = {}
#: (topic name, partition, version) → (the PartitionImage and brokers it describes, its encoded entry).
_ENCODED_PARTITIONS: dict[tuple[str, int, int], tuple[PartitionImage, Brokers, bytes]] = {}
#: The Metadata versions clients asked for: what ``warm_cache`` prepares (from the start, v12:
#: what librdkafka 2.x and Java clients send).
VERSIONS_SEEN: set[int] = {12}
#: Partition entries encoded between two turns of the event loop by ``warm_cache``.
PARTITIONS_PER_STEP = 200


def _described(version: int, topic: TopicImage, brokers: Brokers) -> bytes:
    """The topic's encoded entry, from the cache while the image's topic and brokers objects are
    unchanged; else its header spliced with its partitions' entries (each cached the same way)."""
    key = (topic.name, version)
    cached = _ENCODED_TOPICS.get(key)
    if cached is not None and cached[0] is topic and cached[1] is brokers:
        return cached[2]
    partitions = [_partition_entry(version, topic.name, p, brokers)
                  for p in sorted(topic.partitions.values(), key=lambda p: p.partition)]
    encoded = b"".join(codec.encode_response_chunks(ApiKey.METADATA, version, _describe(topic), "partitions",
                                                    partitions, path=("topics",)))
    _ENCODED_TOPICS[key] = (topic, brokers, encoded)
    return encoded


def _partition_entry(version: int, topic: str, p: PartitionImage, brokers: Brokers) -> bytes:
    """As Kafka's KRaftMetadataCache: a partition whose leader is not a live broker has no leader
    (-1, LEADER_NOT_AVAILABLE); replicas on fenced or unknown brokers are offline."""
    key = (topic, p.partition, version)
    cached = _ENCODED_PARTITIONS.get(key)
    if cached is not None and cached[0] is p and cached[1] is brokers:
        return cached[2]
    leader = brokers.get(p.leader)
    led = leader is not None and not leader.fenced
    offline = tuple(r for r in p.replicas if r not in brokers or brokers[r].fenced)
    encoded = codec.encode_array_element(ApiKey.METADATA, version, ("topics", "partitions"), {
        "error_code": ErrorCode.none if led else ErrorCode.leader_not_available, "partition_index": p.partition,
        "leader_id": p.leader if led else -1, "leader_epoch": p.leader_epoch, "replica_nodes": p.replicas,
        "isr_nodes": p.isr, "offline_replicas": offline})
    _ENCODED_PARTITIONS[key] = (p, brokers, encoded)
    return encoded


def warm_cache(image: MetadataImage) -> Iterator[None]:
    """Encode the entries of the topics that changed, for the versions clients use, a few
    partitions per step: the broker runs it in slices after it applies an image, so the first
    Metadata after a 10 000-partition topic is created is a join of cached bytes, not a stall."""
    for version in sorted(VERSIONS_SEEN):
        for topic in list(image.topics.values()):
            cached = _ENCODED_TOPICS.get((topic.name, version))
            if cached is not None and cached[0] is topic and cached[1] is image.brokers:
                continue
            for i, p in enumerate(topic.partitions.values()):
                _partition_entry(version, topic.name, p, image.brokers)
                if i % PARTITIONS_PER_STEP == PARTITIONS_PER_STEP - 1:
                    yield
            _described(version, topic, image.brokers)
            yield


def _forget_deleted_topics(image: MetadataImage) -> None:
    """Keep the cache bounded: once it holds many more entries than there are topics, drop the
    entries of deleted topics."""
    if len(_ENCODED_TOPICS) > 4 * len(image.topics) + 64:
        for key in [key for key in _ENCODED_TOPICS if key[0] not in image.topics]:
            del _ENCODED_TOPICS[key]
        for pkey in [pkey for pkey in _ENCODED_PARTITIONS if pkey[0] not in image.topics]:
            del _ENCODED_PARTITIONS[pkey]


def _encoded(version: int, topic: dict[str, Any]) -> bytes:
    return codec.encode_array_element(ApiKey.METADATA, version, ("topics",), topic)


def _error(name: str | None, code: ErrorCode, topic_id: uuid.UUID = NO_TOPIC_ID) -> dict[str, Any]:
    return {"error_code": code, "name": name, "topic_id": topic_id, "is_internal": False, "partitions": [],
            "topic_authorized_operations": AUTHORIZED_OPERATIONS_UNKNOWN}


def _invalid_request(wanted: Any) -> dict[str, Any]:
    """Kafka's error response for the whole request: each topic INVALID_REQUEST, no brokers."""
    topics = [_error(t.name or "", ErrorCode.invalid_request, getattr(t, "topic_id", NO_TOPIC_ID)) for t in wanted]
    return {"throttle_time": 0, "brokers": [], "cluster_id": None, "controller_id": -1, "topics": topics,
            "cluster_authorized_operations": AUTHORIZED_OPERATIONS_UNKNOWN, "error_code": ErrorCode.none}


def _describe(topic: TopicImage) -> dict[str, Any]:
    """A topic's entry without its partitions (``_described`` splices them in)."""
    return {"error_code": ErrorCode.none, "name": topic.name, "topic_id": topic.topic_id,
            "is_internal": topic.is_internal, "topic_authorized_operations": AUTHORIZED_OPERATIONS_UNKNOWN}


def _response(ctx: RequestContext, image: MetadataImage, topics: list[bytes]) -> list[bytes]:
    _forget_deleted_topics(image)
    return codec.encode_response_chunks(ApiKey.METADATA, ctx.api_version, {
        "throttle_time": 0,
        "brokers": [{"node_id": b.broker_id, "host": b.host, "port": b.port, "rack": b.rack}
                    for b in image.live_brokers],
        "cluster_id": image.cluster_id,
        "controller_id": ctx.broker.controller_id,
        "cluster_authorized_operations": AUTHORIZED_OPERATIONS_UNKNOWN,
        "error_code": ErrorCode.none,
    }, "topics", topics)
