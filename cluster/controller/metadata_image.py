"""MetadataImage: the cluster metadata as applied from the metadata log (KRaft's `MetadataImage`).

Topics, partitions (replicas, ISR, leader, epochs), brokers, configs and the producer-id
watermark. Images are immutable: ``apply`` returns a new image sharing unchanged parts, so a
handler that holds an image sees one consistent version even across awaits.

Metadata records (``cluster.controller.records``) are plain dicts with a ``type`` key; their
fields follow Kafka's metadata record schemas (TopicRecord, PartitionRecord, ConfigRecord,
RemoveTopicRecord, RegisterBrokerRecord, ProducerIdsRecord), encoded as JSON.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[Any, Any] = MappingProxyType({})
#: Topics only coordinators write to (Kafka's `Topic.isInternal`).
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})


@dataclass(frozen=True)
class PartitionImage:
    """One partition's placement and leadership."""

    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int


@dataclass(frozen=True)
class TopicImage:
    """One topic: id, partitions and per-topic config overrides."""

    name: str
    topic_id: uuid.UUID
    partitions: Mapping[int, PartitionImage] = field(default_factory=lambda: _EMPTY)
    config: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    @property
    def is_internal(self) -> bool:
        """Kafka's internal topics (``__consumer_offsets``, ``__transaction_state``)."""
        return self.name in INTERNAL_TOPICS


@dataclass(frozen=True)
class BrokerImage:
    """A registered broker and where clients reach it."""

    broker_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True)
class MetadataImage:
    """Everything the metadata log says, as of ``offset`` (the last applied record's offset)."""

    cluster_id: str = ""
    offset: int = -1
    brokers: Mapping[int, BrokerImage] = field(default_factory=lambda: _EMPTY)
    topics: Mapping[str, TopicImage] = field(default_factory=lambda: _EMPTY)
    topic_names_by_id: Mapping[uuid.UUID, str] = field(default_factory=lambda: _EMPTY)
    broker_configs: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    next_producer_id: int = 0

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicImage | None:
        """The topic with ``topic_id``, if any."""
        name = self.topic_names_by_id.get(topic_id)
        return self.topics.get(name) if name is not None else None

    def apply(self, record: Mapping[str, Any], offset: int) -> MetadataImage:
        """The image after one metadata record."""
        handler = _APPLY.get(record["type"])
        if handler is None:
            raise ValueError(f"unknown metadata record type {record['type']!r}")
        return replace(handler(self, record), offset=offset)


def _with(mapping: Mapping[Any, Any], key: Any, value: Any) -> Mapping[Any, Any]:
    updated = dict(mapping)
    if value is None:
        updated.pop(key, None)
    else:
        updated[key] = value
    return MappingProxyType(updated)


def _cluster(image: MetadataImage, r: Mapping[str, Any]) -> MetadataImage:
    return replace(image, cluster_id=r["cluster_id"])


def _register_broker(image: MetadataImage, r: Mapping[str, Any]) -> MetadataImage:
    broker = BrokerImage(r["broker_id"], r["host"], r["port"], r.get("rack"))
    return replace(image, brokers=_with(image.brokers, broker.broker_id, broker))


def _topic(image: MetadataImage, r: Mapping[str, Any]) -> MetadataImage:
    topic_id = uuid.UUID(r["topic_id"])
    topic = TopicImage(r["name"], topic_id)
    return replace(image, topics=_with(image.topics, topic.name, topic),
                   topic_names_by_id=_with(image.topic_names_by_id, topic_id, topic.name))


def _partition(image: MetadataImage, r: Mapping[str, Any]) -> MetadataImage:
    topic = image.topic_by_id(uuid.UUID(r["topic_id"]))
    if topic is None:
        raise ValueError(f"PartitionRecord for unknown topic id {r['topic_id']}")
    partition = PartitionImage(r["partition"], tuple(r["replicas"]), tuple(r["isr"]), r["leader"],
                               r["leader_epoch"], r["partition_epoch"])
    updated = replace(topic, partitions=_with(topic.partitions, partition.partition, partition))
    return replace(image, topics=_with(image.topics, topic.name, updated))


def _config(image: MetadataImage, r: Mapping[str, Any]) -> MetadataImage:
    if r["resource_type"] == "broker":
        return replace(image, broker_configs=_with(image.broker_configs, r["name"], r["value"]))
    topic = image.topics.get(r["resource_name"])
    if topic is None:
        raise ValueError(f"ConfigRecord for unknown topic {r['resource_name']!r}")
    updated = replace(topic, config=_with(topic.config, r["name"], r["value"]))
    return replace(image, topics=_with(image.topics, topic.name, updated))


def _remove_topic(image: MetadataImage, r: Mapping[str, Any]) -> MetadataImage:
    topic_id = uuid.UUID(r["topic_id"])
    name = image.topic_names_by_id.get(topic_id)
    if name is None:
        return image
    return replace(image, topics=_with(image.topics, name, None),
                   topic_names_by_id=_with(image.topic_names_by_id, topic_id, None))


def _producer_ids(image: MetadataImage, r: Mapping[str, Any]) -> MetadataImage:
    return replace(image, next_producer_id=r["next_producer_id"])


_APPLY = {
    "ClusterRecord": _cluster,
    "RegisterBrokerRecord": _register_broker,
    "TopicRecord": _topic,
    "PartitionRecord": _partition,
    "ConfigRecord": _config,
    "RemoveTopicRecord": _remove_topic,
    "ProducerIdsRecord": _producer_ids,
}
