"""List, describe, create, alter (partition count) and delete topics (kafka-topics' operations).

``--topic`` is a regular expression matched against the whole name, as in kafka-topics
(`IncludeList`), except for ``create``. Descriptions come from DescribeTopics (topic ids,
partitions) plus DescribeConfigs (the non-default configs kafka-topics shows and
``min.insync.replicas`` for the ISR filters).
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from pykafka_ops.client.connection import ClientSettings, ClusterUnreachableError
from pykafka_ops.client.librdkafka import (
    KafkaCallError,
    admin_client,
    in_thread,
    metadata,
    result,
)
from pykafka_ops.client.reassign_requests import list_partition_reassignments
from pykafka_ops.models.reassign import OngoingReassignment
from pykafka_ops.models.topics import (
    BrokerInfo,
    ClusterInfo,
    PartitionDescription,
    TopicDescription,
)
from pykafka_ops.services.configs import resource_configs

#: Kafka's internal topics (`Topic.isInternal`).
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})
#: kafka-topics' text for a topic that is not there (the intended wording of KAFKA-8670).
MISSING = "Topic '{}' does not exist as expected"


class TopicNotFoundError(LookupError):
    """No topic matches ``--topic`` (kafka-topics' "does not exist as expected")."""


def kafka_uuid(uuid: Any) -> str:
    """Kafka's text form of a topic id: URL-safe base64 without padding (`Uuid.toString`)."""
    raw = struct.pack(">qq", uuid.get_most_significant_bits(), uuid.get_least_significant_bits())
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def matching(names: Sequence[str], pattern: str | None, exclude_internal: bool) -> list[str]:
    """``names`` that fully match ``pattern`` (all when None), sorted; internal ones dropped if asked."""
    regex = re.compile(pattern) if pattern is not None else None
    return sorted(n for n in names if (regex is None or regex.fullmatch(n))
                  and not (exclude_internal and n in INTERNAL_TOPICS))


def _names(settings: ClientSettings, pattern: str | None, exclude_internal: bool) -> list[str]:
    return matching(list(metadata(admin_client(settings), settings).topics), pattern, exclude_internal)


async def list_topics(settings: ClientSettings, pattern: str | None = None,
                      exclude_internal: bool = False) -> list[str]:
    """Topic names (sorted) matching ``pattern``."""
    return await in_thread(_names, settings, pattern, exclude_internal)


def _partition(topic: str, info: Any) -> PartitionDescription:
    leader = info.leader.id if info.leader is not None and info.leader.id >= 0 else None
    return PartitionDescription(topic, info.id, leader, tuple(n.id for n in info.replicas),
                                tuple(n.id for n in info.isr))


def _describe(settings: ClientSettings, pattern: str | None, exclude_internal: bool) -> list[TopicDescription]:
    from confluent_kafka import TopicCollection

    admin = admin_client(settings)
    names = matching(list(metadata(admin, settings).topics), pattern, exclude_internal)
    if not names:
        return []
    futures = admin.describe_topics(TopicCollection(names), request_timeout=settings.timeout_s)
    configs = {c.entity_name: c.entries for c in resource_configs(admin, settings, "topics", names)}
    described = []
    for name in names:
        info = result(futures[name], settings, f"describe topic {name}")
        entries = configs[name]
        min_isr = next((e.value for e in entries if e.name == "min.insync.replicas"), None)
        described.append(TopicDescription(
            name, kafka_uuid(info.topic_id), bool(info.is_internal),
            tuple(sorted((_partition(name, p) for p in info.partitions), key=lambda p: p.partition)),
            tuple(e for e in entries if e.source != "DEFAULT_CONFIG" and not e.is_default),
            int(min_isr) if min_isr is not None else None))
    return list(with_reassignments(settings, described))


def with_reassignments(settings: ClientSettings, topics: Sequence[TopicDescription]) -> tuple[TopicDescription, ...]:
    """``topics`` whose partitions being reassigned carry the replicas being added and removed
    (kafka-topics' ``listAllReassignments``). Asked only when some partition's ISR lacks one of its
    replicas — a partition being reassigned always does: its added replicas complete the move as
    they join the ISR — and left as they are when the cluster cannot list reassignments (an older
    Kafka, a broker without the API, none answering, or a TLS/SASL listener our wire client cannot
    speak). Blocking."""
    lacking = [(t.name, p.partition) for t in topics for p in t.partitions if not set(p.replicas) <= set(p.isr)]
    if not lacking or settings.properties.get("security.protocol", "plaintext").lower() != "plaintext":
        return tuple(topics)  # our wire client speaks neither TLS nor SASL
    try:
        moving = {(r.topic, r.partition): r for r in list_partition_reassignments(settings, lacking)}
    except (KafkaCallError, ClusterUnreachableError):
        return tuple(topics)
    return tuple(replace(t, partitions=tuple(_moving(p, moving.get((t.name, p.partition))) for p in t.partitions))
                 if any((t.name, p.partition) in moving for p in t.partitions) else t for t in topics)


def _moving(p: PartitionDescription, reassignment: OngoingReassignment | None) -> PartitionDescription:
    """``p`` with its reassignment, when every replica it adds or removes is still a replica (it
    may have completed between the two requests: kafka-topics' ``isReassignmentInProgress``)."""
    if reassignment is None or not set(reassignment.adding) | set(reassignment.removing) <= set(p.replicas):
        return p
    return replace(p, adding_replicas=reassignment.adding, removing_replicas=reassignment.removing)


async def describe_topics(settings: ClientSettings, pattern: str | None = None,
                          exclude_internal: bool = False) -> list[TopicDescription]:
    """Descriptions (sorted by name) of the topics matching ``pattern``."""
    return await in_thread(_describe, settings, pattern, exclude_internal)


def _create(settings: ClientSettings, name: str, partitions: int, replication_factor: int,
            assignment: Sequence[Sequence[int]] | None, config: Mapping[str, str], if_not_exists: bool) -> bool:
    from confluent_kafka.admin import NewTopic

    admin = admin_client(settings)
    metadata(admin, settings)
    if assignment:
        # librdkafka (2.x) refuses the default partition count (-1) beside an assignment
        new = NewTopic(name, len(assignment), replica_assignment=[list(r) for r in assignment], config=dict(config))
    else:
        new = NewTopic(name, partitions, replication_factor, config=dict(config))
    future = admin.create_topics([new], operation_timeout=settings.timeout_s,
                                 request_timeout=settings.timeout_s)[name]
    try:
        result(future, settings, f"create topic {name}")
    except Exception as exc:
        if if_not_exists and getattr(exc, "name", None) == "TOPIC_ALREADY_EXISTS":
            return False
        raise
    return True


async def create_topic(settings: ClientSettings, name: str, partitions: int = -1, replication_factor: int = -1,
                       assignment: Sequence[Sequence[int]] | None = None, config: Mapping[str, str] | None = None,
                       if_not_exists: bool = False) -> bool:
    """Create ``name`` (-1 = the broker's default); ``assignment[p]`` = replicas of partition p.

    Returns False when it already existed and ``if_not_exists`` was set.
    """
    return await in_thread(_create, settings, name, partitions, replication_factor, assignment, config or {},
                           if_not_exists)


def _existing(admin: Any, settings: ClientSettings, pattern: str, if_exists: bool) -> list[str]:
    names = matching(list(metadata(admin, settings).topics), pattern, exclude_internal=False)
    if not names and not if_exists:
        raise TopicNotFoundError(MISSING.format(pattern))
    return names


def _alter(settings: ClientSettings, pattern: str, count: int, assignment: Sequence[Sequence[int]] | None,
           if_exists: bool) -> list[str]:
    from confluent_kafka.admin import NewPartitions

    admin = admin_client(settings)
    names = _existing(admin, settings, pattern, if_exists)
    if not names:
        return []
    grow = [NewPartitions(n, count, [list(r) for r in assignment]) if assignment else NewPartitions(n, count)
            for n in names]
    futures = admin.create_partitions(grow,
                                      operation_timeout=settings.timeout_s, request_timeout=settings.timeout_s)
    for name in names:
        result(futures[name], settings, f"alter topic {name}")
    return names


async def alter_partitions(settings: ClientSettings, pattern: str, count: int,
                           assignment: Sequence[Sequence[int]] | None = None, if_exists: bool = False) -> list[str]:
    """Grow every topic matching ``pattern`` to ``count`` partitions; returns the topics altered."""
    return await in_thread(_alter, settings, pattern, count, assignment, if_exists)


def _delete(settings: ClientSettings, pattern: str, if_exists: bool) -> list[str]:
    admin = admin_client(settings)
    names = _existing(admin, settings, pattern, if_exists)
    internal = [n for n in names if n in INTERNAL_TOPICS]
    if internal:
        raise ValueError(f"Topic {internal[0]} is a kafka internal topic and is not allowed to be marked for deletion.")
    if not names:
        return []
    futures = admin.delete_topics(names, operation_timeout=settings.timeout_s, request_timeout=settings.timeout_s)
    for name in names:
        result(futures[name], settings, f"delete topic {name}")
    return names


async def delete_topics(settings: ClientSettings, pattern: str, if_exists: bool = False) -> list[str]:
    """Delete every topic matching ``pattern``; returns the topics deleted."""
    return await in_thread(_delete, settings, pattern, if_exists)


def _live_broker_ids(settings: ClientSettings) -> frozenset[int]:
    return frozenset(metadata(admin_client(settings), settings).brokers)


async def live_broker_ids(settings: ClientSettings) -> frozenset[int]:
    """The live brokers (Metadata's: registered and unfenced), as kafka-topics' ``describeCluster``
    nodes for ``--unavailable-partitions``."""
    return await in_thread(_live_broker_ids, settings)


def _cluster_info(settings: ClientSettings, topic: str | None) -> ClusterInfo:
    return metadata_info(metadata(admin_client(settings), settings, topic))


def metadata_info(cluster: Any) -> ClusterInfo:
    """Our ``ClusterInfo`` from a confluent-kafka ``ClusterMetadata`` answer."""
    topics = []
    for name in sorted(cluster.topics):
        described = cluster.topics[name]
        partitions = tuple(PartitionDescription(name, p.id, p.leader if p.leader >= 0 else None, tuple(p.replicas),
                                                tuple(p.isrs)) for p in sorted(described.partitions.values(),
                                                                               key=lambda p: p.id))
        topics.append(TopicDescription(name, "", name in INTERNAL_TOPICS, partitions,
                                       error=described.error.str() if described.error is not None else None))
    brokers = tuple(BrokerInfo(b.id, str(b.host), b.port) for b in sorted(cluster.brokers.values(), key=lambda b: b.id))
    controller = cluster.controller_id if cluster.controller_id >= 0 else None
    return ClusterInfo(cluster.cluster_id, controller, cluster.orig_broker_name or "", cluster.orig_broker_id, brokers,
                       tuple(topics))


async def cluster_info(settings: ClientSettings, topic: str | None = None) -> ClusterInfo:
    """kcat -L: brokers, controller and every topic's partitions (or one topic's) from Metadata."""
    return await in_thread(_cluster_info, settings, topic)
