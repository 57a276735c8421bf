"""MetadataImage: the cluster metadata as applied from the metadata log (KRaft's `MetadataImage`).

Topics, partitions (replicas, ISR, leader, epochs), brokers, configs and the producer-id
watermark. Images are immutable: ``apply`` and ``apply_all`` return a new image sharing
unchanged parts (built by a MetadataDelta), so a handler that holds an image sees one
consistent version even across awaits.

Metadata records (``cluster.controller.records``) are plain dicts with a ``type`` key; their
fields follow Kafka's metadata record schemas (TopicRecord, PartitionRecord, ConfigRecord,
RemoveTopicRecord, RegisterBrokerRecord, ProducerIdsRecord), encoded as JSON.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
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
    epoch: int = -1
    """Kafka's broker epoch: the offset of the broker's registration record."""


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
        """The image after one metadata record (ValueError for one that does not apply)."""
        return self.apply_all([(offset, record)])

    def apply_all(self, records: Iterable[tuple[int, Mapping[str, Any]]]) -> MetadataImage:
        """The image after ``(offset, record)`` pairs, in order, built once (``MetadataDelta``)."""
        delta = MetadataDelta(self)
        for offset, record in records:
            delta.replay(record, offset)
        return delta.image()


class MetadataDelta:
    """Kafka's ``MetadataDelta``: records replayed onto working copies of the parts of an image
    they touch (each copied on its first write), frozen into a new image once by ``image()``.

    A batch costs O(records + what it touches). Applying record by record copied the topic's
    partition map and the whole topic map for every record: a 10 000-partition topic took
    seconds of event loop, and so did replaying a large metadata log at start-up.

    Concurrency: a delta is built and used by one caller, then dropped.
    """

    def __init__(self, base: MetadataImage) -> None:
        self._base = base
        self._changes: dict[str, Any] = {}
        self._maps: dict[str, dict[Any, Any]] = {}  # image field → working copy
        self._partitions: dict[str, dict[int, PartitionImage]] = {}  # topic name → working copy
        self._configs: dict[str, dict[str, Any]] = {}
        self._offset = base.offset  # of the record being replayed

    def replay(self, record: Mapping[str, Any], offset: int) -> None:
        """Apply one record; ValueError for an unknown type or a record that does not apply."""
        handler = _REPLAY.get(record["type"])
        if handler is None:
            raise ValueError(f"unknown metadata record type {record['type']!r}")
        self._offset = offset
        handler(self, record)
        self._changes["offset"] = offset

    def image(self) -> MetadataImage:
        """The new image; unchanged parts are shared with the base image."""
        topics = self._maps.get("topics")
        if self._partitions or self._configs:
            topics = self._working("topics")
            for name, partitions in self._partitions.items():
                if name in topics:
                    topics[name] = replace(topics[name], partitions=MappingProxyType(partitions))
            for name, config in self._configs.items():
                if name in topics:
                    topics[name] = replace(topics[name], config=MappingProxyType(config))
        frozen = {name: MappingProxyType(mapping) for name, mapping in self._maps.items()}
        return replace(self._base, **self._changes, **frozen)

    # -- working copies ----------------------------------------------------------------------

    def _working(self, name: str) -> dict[Any, Any]:
        mapping = self._maps.get(name)
        if mapping is None:
            mapping = self._maps[name] = dict(getattr(self._base, name))
        return mapping

    def _topic(self, name: str) -> TopicImage | None:
        return self._maps["topics"].get(name) if "topics" in self._maps else self._base.topics.get(name)

    def _topic_name(self, topic_id: uuid.UUID) -> str | None:
        names = self._maps.get("topic_names_by_id", self._base.topic_names_by_id)
        return names.get(topic_id)

    def _topic_part(self, parts: dict[str, dict[Any, Any]], name: str, field_name: str) -> dict[Any, Any]:
        working = parts.get(name)
        if working is None:
            topic = self._topic(name)
            working = parts[name] = dict(getattr(topic, field_name)) if topic is not None else {}
        return working

    # -- one method per record type ----------------------------------------------------------

    def _cluster(self, r: Mapping[str, Any]) -> None:
        self._changes["cluster_id"] = r["cluster_id"]

    def _register_broker(self, r: Mapping[str, Any]) -> None:
        self._working("brokers")[r["broker_id"]] = BrokerImage(r["broker_id"], r["host"], r["port"], r.get("rack"),
                                                               self._offset)

    def _new_topic(self, r: Mapping[str, Any]) -> None:
        topic_id = uuid.UUID(r["topic_id"])
        self._working("topics")[r["name"]] = TopicImage(r["name"], topic_id)
        self._working("topic_names_by_id")[topic_id] = r["name"]
        self._partitions.pop(r["name"], None)
        self._configs.pop(r["name"], None)

    def _partition(self, r: Mapping[str, Any]) -> None:
        name = self._topic_name(uuid.UUID(r["topic_id"]))
        if name is None:
            raise ValueError(f"PartitionRecord for unknown topic id {r['topic_id']}")
        self._topic_part(self._partitions, name, "partitions")[r["partition"]] = PartitionImage(
            r["partition"], tuple(r["replicas"]), tuple(r["isr"]), r["leader"], r["leader_epoch"],
            r["partition_epoch"])

    def _config(self, r: Mapping[str, Any]) -> None:
        if r["resource_type"] == "broker":
            target = self._working("broker_configs")
        elif self._topic(r["resource_name"]) is None:
            raise ValueError(f"ConfigRecord for unknown topic {r['resource_name']!r}")
        else:
            target = self._topic_part(self._configs, r["resource_name"], "config")
        if r["value"] is None:
            target.pop(r["name"], None)
        else:
            target[r["name"]] = r["value"]

    def _remove_topic(self, r: Mapping[str, Any]) -> None:
        topic_id = uuid.UUID(r["topic_id"])
        name = self._topic_name(topic_id)
        if name is None:
            return
        del self._working("topics")[name]
        del self._working("topic_names_by_id")[topic_id]
        self._partitions.pop(name, None)
        self._configs.pop(name, None)

    def _producer_ids(self, r: Mapping[str, Any]) -> None:
        self._changes["next_producer_id"] = r["next_producer_id"]


_REPLAY = {
    "ClusterRecord": MetadataDelta._cluster,
    "RegisterBrokerRecord": MetadataDelta._register_broker,
    "TopicRecord": MetadataDelta._new_topic,
    "PartitionRecord": MetadataDelta._partition,
    "ConfigRecord": MetadataDelta._config,
    "RemoveTopicRecord": MetadataDelta._remove_topic,
    "ProducerIdsRecord": MetadataDelta._producer_ids,
}
