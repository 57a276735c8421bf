"""Topics, partitions, configs, offsets and cluster metadata as the service layer returns them.

Names follow Kafka's admin API (`TopicDescription`, `TopicPartitionInfo`, `ConfigEntry`) and the
kafka-topics / kafka-configs / GetOffsetShell / kcat -L output they feed. A partition without a
leader has ``leader=None`` (kafka-topics prints ``none``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PartitionDescription:
    """One partition: leader, replicas and in-sync replicas (broker ids), and while it is being
    reassigned the replicas being added and removed (``replicas`` holds both)."""

    topic: str
    partition: int
    leader: int | None
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()

    @property
    def replication_factor(self) -> int:
        """Replicas not counting those a reassignment is adding (kafka-topics'
        ``getReplicationFactor``)."""
        return len(self.replicas) - len(self.adding_replicas)

    @property
    def under_replicated(self) -> bool:
        """Fewer in-sync replicas than the replication factor (kafka-topics
        ``--under-replicated-partitions``; a replica being added does not count, KIP-455)."""
        return len(self.isr) < self.replication_factor

    @property
    def unavailable(self) -> bool:
        """No leader (kafka-topics ``--unavailable-partitions``)."""
        return self.leader is None


@dataclass(frozen=True)
class ConfigSynonym:
    """Where a config value may come from, in precedence order (Kafka's ``ConfigSynonym``)."""

    name: str
    value: str | None
    source: str


@dataclass(frozen=True)
class ConfigEntry:
    """One config of a topic or broker; ``source`` is Kafka's ``ConfigSource`` name
    (``DYNAMIC_TOPIC_CONFIG``, ``STATIC_BROKER_CONFIG``, ``DEFAULT_CONFIG`` …)."""

    name: str
    value: str | None
    source: str
    is_default: bool = False
    read_only: bool = False
    sensitive: bool = False
    synonyms: tuple[ConfigSynonym, ...] = ()


@dataclass(frozen=True)
class ResourceConfigs:
    """The configs of one resource: ``entity_type`` is ``topics`` or ``brokers`` (kafka-configs' words)."""

    entity_type: str
    entity_name: str
    entries: tuple[ConfigEntry, ...]


@dataclass(frozen=True)
class TopicDescription:
    """A topic as ``kafka-topics --describe`` shows it; ``configs`` are the non-default ones."""

    name: str
    topic_id: str
    is_internal: bool
    partitions: tuple[PartitionDescription, ...]
    configs: tuple[ConfigEntry, ...] = ()
    min_insync_replicas: int | None = None
    error: str | None = None
    """Why Metadata could not describe the topic (e.g. LEADER_NOT_AVAILABLE), if it could not."""

    @property
    def replication_factor(self) -> int:
        """Replicas of the first partition (Kafka's definition)."""
        return self.partitions[0].replication_factor if self.partitions else 0


@dataclass(frozen=True)
class PartitionOffset:
    """An offset of one partition for a ListOffsets spec (GetOffsetShell's ``topic:partition:offset``);
    ``offset`` is -1 when no record matches the spec, ``error`` set when the look-up failed."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class BrokerInfo:
    """A broker of the cluster metadata."""

    id: int
    host: str
    port: int


@dataclass(frozen=True)
class ClusterInfo:
    """``kcat -L``: who answered, the brokers, the controller and every topic's partitions."""

    cluster_id: str | None
    controller_id: int | None
    originating_broker: str
    """``host:port/id`` of the broker that answered."""
    originating_broker_id: int
    brokers: tuple[BrokerInfo, ...]
    topics: tuple[TopicDescription, ...]
