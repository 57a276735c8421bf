"""MetadataImage: the cluster metadata as applied from the metadata log (KRaft's `MetadataImage`).

Topics, partitions (replicas, ISR, leader, epochs), brokers, configs and the producer-id
watermark. Images are immutable: ``apply`` and ``apply_all`` return a new image sharing
unchanged parts (built by a MetadataDelta), so a handler that holds an image sees one
consistent version even across awaits.

Metadata records (``cluster.controller.records``) are plain dicts with a ``type`` key; their
fields follow Kafka's metadata record schemas (TopicRecord, PartitionRecord, ConfigRecord,
RemoveTopicRecord, RegisterBrokerRecord, FenceBrokerRecord, UnfenceBrokerRecord,
PartitionChangeRecord, ProducerIdsRecord, and the ACL records of ``acl_image``), encoded as JSON.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from cluster.controller.acl_image import acl_records, replay_acl, replay_remove_acl
from cluster.security.acls import AclBinding

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
    adding_replicas: tuple[int, ...] = ()
    """Replicas an ongoing reassignment adds (KIP-455; ``cluster.controller.reassignment``)."""
    removing_replicas: tuple[int, ...] = ()
    """Replicas an ongoing reassignment removes once the added ones are in the ISR."""


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
    fenced: bool = False
    """A fenced broker leads nothing and is not shown to clients (Kafka's ``BrokerRegistration``):
    brokers register fenced and are unfenced once caught up with the metadata log."""
    incarnation_id: str = ""
    """The broker process's random id: a new process re-registers with a new one."""


@dataclass(frozen=True)
class MetadataImage:
    """Everything the metadata log says, as of ``offset`` (the last applied record's offset)."""

    cluster_id: str = ""
    offset: int = -1
    brokers: Mapping[int, BrokerImage] = field(default_factory=lambda: _EMPTY)
    topics: Mapping[str, TopicImage] = field(default_factory=lambda: _EMPTY)
    topic_names_by_id: Mapping[uuid.UUID, str] = field(default_factory=lambda: _EMPTY)
    broker_configs: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    """Dynamic broker configs of the cluster-wide default (ConfigRecords of broker ``""``)."""
    broker_node_configs: Mapping[int, Mapping[str, Any]] = field(default_factory=lambda: _EMPTY)
    """Dynamic broker configs of one broker (ConfigRecords of broker ``"<id>"``), by broker id."""
    next_producer_id: int = 0
    acls: Mapping[str, AclBinding] = field(default_factory=lambda: _EMPTY)
    """ACL id → ACL (``cluster.controller.acl_image``)."""

    @functools.cached_property
    def live_brokers(self) -> tuple[BrokerImage, ...]:
        """The unfenced brokers by id: what clients are told about (Kafka's alive brokers);
        computed once per image (every Metadata request asks)."""
        return tuple(b for _, b in sorted(self.brokers.items()) if not b.fenced)

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
        self._node_configs: dict[int, dict[str, Any]] = {}  # broker id → working copy of its dynamic configs
        self._offset = base.offset  # of the record being replayed

    def replay(self, record: Mapping[str, Any], offset: int) -> None:
        """Apply one record; MetadataReplayError for a type or version this code does not know
        (replay stops there: skipping it would build another image than the writer's), and
        ValueError for a record that does not apply."""
        kind = record.get("type")
        handler = _REPLAY.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise MetadataReplayError(f"metadata record at offset {offset} has type {kind!r}, which this pko "
                                      f"does not know (written by a newer version?); replay stops there")
        version = record.get("version", 0)
        if not isinstance(version, int) or version > RECORD_VERSIONS[kind]:
            raise MetadataReplayError(f"metadata record {kind} at offset {offset} has version {version!r}; "
                                      f"this pko reads up to version {RECORD_VERSIONS[kind]}; replay stops there")
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
        if self._node_configs:
            nodes = self._working("broker_node_configs")
            for broker_id, config in self._node_configs.items():
                nodes[broker_id] = MappingProxyType(config)
                if not config:
                    del nodes[broker_id]
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
        # version 0 records (before fencing) registered a broker that was serving: unfenced
        self._working("brokers")[r["broker_id"]] = BrokerImage(
            r["broker_id"], r["host"], r["port"], r.get("rack"), r.get("epoch", self._offset),
            r.get("fenced", False), r.get("incarnation_id", ""))

    def _fence_broker(self, r: Mapping[str, Any], fenced: bool = True) -> None:
        brokers = self._working("brokers")
        broker = brokers.get(r["id"])
        if broker is None or broker.epoch != r["epoch"]:
            raise ValueError(f"{'Fence' if fenced else 'Unfence'}BrokerRecord for broker {r['id']} epoch "
                             f"{r['epoch']}, which is not registered")
        brokers[r["id"]] = replace(broker, fenced=fenced)

    def _unfence_broker(self, r: Mapping[str, Any]) -> None:
        self._fence_broker(r, fenced=False)

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
            r["partition_epoch"], tuple(r.get("adding_replicas", ())), tuple(r.get("removing_replicas", ())))

    def _partition_change(self, r: Mapping[str, Any]) -> None:
        """Kafka's PartitionChangeRecord (``merge_change``)."""
        name = self._topic_name(uuid.UUID(r["topic_id"]))
        partitions = self._topic_part(self._partitions, name, "partitions") if name is not None else {}
        current = partitions.get(r["partition"])
        if current is None:
            raise ValueError(f"PartitionChangeRecord for unknown partition {r['topic_id']}-{r['partition']}")
        partitions[r["partition"]] = merge_change(current, r)

    def _config(self, r: Mapping[str, Any]) -> None:
        if r["resource_type"] == "broker" and r["resource_name"]:
            target = self._broker_node_config(int(r["resource_name"]))
        elif r["resource_type"] == "broker":
            target = self._working("broker_configs")
        elif self._topic(r["resource_name"]) is None:
            raise ValueError(f"ConfigRecord for unknown topic {r['resource_name']!r}")
        else:
            target = self._topic_part(self._configs, r["resource_name"], "config")
        if r["value"] is None:
            target.pop(r["name"], None)
        else:
            target[r["name"]] = r["value"]

    def _broker_node_config(self, broker_id: int) -> dict[str, Any]:
        """The working copy of one broker's dynamic configs (an inner dict of ``broker_node_configs``)."""
        config = self._node_configs.get(broker_id)
        if config is None:
            config = self._node_configs[broker_id] = dict(self._base.broker_node_configs.get(broker_id, _EMPTY))
        return config

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


def merge_change(current: PartitionImage, r: Mapping[str, Any]) -> PartitionImage:
    """``current`` after the PartitionChangeRecord ``r`` (Kafka's ``PartitionRegistration.merge``):
    the fields it carries change; the partition epoch, and the leader epoch when the leader
    changes (or ``leader_epoch_bump`` asks), go up by one."""
    leader = r.get("leader", current.leader)
    return replace(
        current, leader=leader, isr=tuple(r.get("isr", current.isr)),
        replicas=tuple(r.get("replicas", current.replicas)), partition_epoch=current.partition_epoch + 1,
        leader_epoch=current.leader_epoch + (leader != current.leader or bool(r.get("leader_epoch_bump"))),
        adding_replicas=tuple(r.get("adding_replicas", current.adding_replicas)),
        removing_replicas=tuple(r.get("removing_replicas", current.removing_replicas)))


class MetadataReplayError(ValueError):
    """A metadata record this code cannot apply: an unknown type or a newer version."""


#: The newest version of each metadata record type this code reads (records written before
#: versions existed have none: version 0). A record of a newer version stops the replay.
RECORD_VERSIONS: dict[str, int] = {
    "ClusterRecord": 0, "RegisterBrokerRecord": 1, "TopicRecord": 0, "PartitionRecord": 1,
    "ConfigRecord": 0, "RemoveTopicRecord": 0, "ProducerIdsRecord": 0, "FenceBrokerRecord": 0,
    "UnfenceBrokerRecord": 0, "PartitionChangeRecord": 1,
    "AccessControlEntryRecord": 0, "RemoveAccessControlEntryRecord": 0,
}
#: Fields of partition records that only version 1 has (reassignments): a record without them is
#: written as version 0, so that a node of the previous version reads every log that never
#: reassigned, and stops at the first record it would misread.
_REASSIGNMENT_FIELDS = ("adding_replicas", "removing_replicas", "leader_epoch_bump")


def versioned(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with the version it is written in: the lowest that holds its fields."""
    kind = record["type"]
    version = RECORD_VERSIONS[kind]
    if kind in ("PartitionRecord", "PartitionChangeRecord") and not any(f in record for f in _REASSIGNMENT_FIELDS):
        version = 0
    return {**record, "version": version}


def image_records(image: MetadataImage) -> list[dict[str, Any]]:
    """Records that rebuild ``image`` from an empty one (what a snapshot holds, KIP-630)."""
    records: list[dict[str, Any]] = []
    if image.cluster_id:
        records.append({"type": "ClusterRecord", "cluster_id": image.cluster_id})
    for broker in sorted(image.brokers.values(), key=lambda b: b.broker_id):
        records.append({"type": "RegisterBrokerRecord", "broker_id": broker.broker_id, "host": broker.host,
                        "port": broker.port, "rack": broker.rack, "epoch": broker.epoch, "fenced": broker.fenced,
                        "incarnation_id": broker.incarnation_id})
    for name, value in sorted(image.broker_configs.items()):
        records.append({"type": "ConfigRecord", "resource_type": "broker", "resource_name": "", "name": name,
                        "value": value})
    for broker_id, config in sorted(image.broker_node_configs.items()):
        records.extend({"type": "ConfigRecord", "resource_type": "broker", "resource_name": str(broker_id),
                        "name": name, "value": value} for name, value in sorted(config.items()))
    for topic in sorted(image.topics.values(), key=lambda t: t.name):
        records.append({"type": "TopicRecord", "name": topic.name, "topic_id": str(topic.topic_id)})
        records.extend(_partition_snapshot(topic, p) for p in sorted(topic.partitions.values(), key=lambda p: p.partition))
        records.extend({"type": "ConfigRecord", "resource_type": "topic", "resource_name": topic.name, "name": name,
                        "value": value} for name, value in sorted(topic.config.items()))
    if image.next_producer_id:
        records.append({"type": "ProducerIdsRecord", "next_producer_id": image.next_producer_id})
    records.extend(acl_records(image.acls))
    return [versioned(record) for record in records]


def _partition_snapshot(topic: TopicImage, p: PartitionImage) -> dict[str, Any]:
    """The PartitionRecord of ``p`` in a snapshot (with its ongoing reassignment, if any)."""
    record: dict[str, Any] = {"type": "PartitionRecord", "topic_id": str(topic.topic_id), "partition": p.partition,
                              "replicas": list(p.replicas), "isr": list(p.isr), "leader": p.leader,
                              "leader_epoch": p.leader_epoch, "partition_epoch": p.partition_epoch}
    if p.adding_replicas or p.removing_replicas:
        record.update(adding_replicas=list(p.adding_replicas), removing_replicas=list(p.removing_replicas))
    return record


_REPLAY = {
    "ClusterRecord": MetadataDelta._cluster,
    "RegisterBrokerRecord": MetadataDelta._register_broker,
    "FenceBrokerRecord": MetadataDelta._fence_broker,
    "UnfenceBrokerRecord": MetadataDelta._unfence_broker,
    "PartitionChangeRecord": MetadataDelta._partition_change,
    "TopicRecord": MetadataDelta._new_topic,
    "PartitionRecord": MetadataDelta._partition,
    "ConfigRecord": MetadataDelta._config,
    "RemoveTopicRecord": MetadataDelta._remove_topic,
    "ProducerIdsRecord": MetadataDelta._producer_ids,
    "AccessControlEntryRecord": replay_acl,
    "RemoveAccessControlEntryRecord": replay_remove_acl,
}
