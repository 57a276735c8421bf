"""ReplicaManager (Kafka's): the partitions this broker holds, kept in step with the metadata.

``apply_image`` is called with every new MetadataImage: it opens (or creates) the logs of
partitions placed on this broker, applies leadership and config changes, and deletes the logs
of deleted topics and of replicas a reassignment removed from this broker (Kafka's StopReplica
with delete; those removed while the node was down: ``delete_orphan_dirs``, once the broker has
caught up, as KRaft brokers delete stray replicas). Partitions this broker follows are handed to the replica fetcher of their
leader (``ReplicaFetcherManager``); those it leads, or that have no leader, leave the fetchers
(Kafka's ``makeLeader`` / ``makeFollower``); leaders propose ISR changes through the
``AlterPartitionManager`` (``maybe_shrink_isrs`` is the isr-expiration task). It visits only the
topics that
changed, and yields between partitions so that its caller can spread a large change over
several turns of the event loop.

Concurrency: used from the node's event loop only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from cluster.controller.metadata_image import MetadataImage, TopicImage
from cluster.controller.quorum import METADATA_TOPIC
from cluster.log.manager import LogManager
from cluster.replication.alter_partition_manager import AlterPartitionManager
from cluster.replication.isr_changes import IsrExpiration
from cluster.replication.partition import Partition
from cluster.replication.replica_fetcher import ReplicaFetcherManager
from cluster.replication.replication_quota import ReplicationQuotas
from pykafka_ops.config.settings import topic_defaults
from pykafka_ops.errors import ErrorCode

log = logging.getLogger(__name__)


class ReplicaManager:
    """Partition objects of this broker, by (topic, index)."""

    def __init__(self, broker_id: int, log_manager: LogManager, broker_config: Mapping[str, Any],
                 broker_addresses: Callable[[int], tuple[str, int] | None] = lambda _: None,
                 alter_partition_manager: AlterPartitionManager | None = None) -> None:
        self.broker_id = broker_id
        self.log_manager = log_manager
        self.broker_config = broker_config
        self.quotas = ReplicationQuotas(broker_id, broker_config, self.topic_overrides)
        """The replication throttles (KIP-73): ``leader`` for the Fetch handler, ``follower`` for the fetchers."""
        self.fetchers = ReplicaFetcherManager(broker_id, broker_addresses, broker_config, self.quotas.follower)
        self.alter_partition_manager = alter_partition_manager
        self.isr_expiration = IsrExpiration(broker_config.get("replica.lag.time.max.ms", 30000))
        self.partitions: dict[tuple[str, int], Partition] = {}
        self._topic_configs: dict[str, dict[str, Any]] = {}
        self._applied: dict[str, TopicImage] = {}
        """Each topic as last applied here (the same object while the topic is unchanged)."""
        self._dynamic_broker_configs: tuple[Mapping[str, Any], Mapping[str, Any] | None] = ({}, None)

    def effective_topic_config(self, topic: TopicImage) -> dict[str, Any]:
        """Broker-derived defaults overlaid with the topic's overrides."""
        config = topic_defaults(self.broker_config)
        config.update(topic.config)
        return config

    def topic_overrides(self, topic: str) -> Mapping[str, Any] | None:
        """The topic's own configs as last applied here (None: no such topic)."""
        applied = self._applied.get(topic)
        return None if applied is None else applied.config

    def partition(self, topic: str, index: int) -> Partition | None:
        """The partition if this broker holds it."""
        return self.partitions.get((topic, index))

    def absent_error(self, topic: str, index: int) -> ErrorCode:
        """Why a partition this broker does not hold cannot be served here: it exists on another
        broker (NOT_LEADER_OR_FOLLOWER: the client refreshes its metadata) or not at all."""
        applied = self._applied.get(topic)
        if applied is not None and index in applied.partitions:
            return ErrorCode.not_leader_or_follower
        return ErrorCode.unknown_topic_or_partition

    def current_leader(self, topic: str, index: int) -> tuple[int, int] | None:
        """(leader id, leader epoch) of a partition by the metadata applied here, or None if this
        broker knows no such partition (what NOT_LEADER_OR_FOLLOWER answers point clients to,
        KIP-951)."""
        applied = self._applied.get(topic)
        placement = applied.partitions.get(index) if applied is not None else None
        return None if placement is None else (placement.leader, placement.leader_epoch)

    def apply_image(self, image: MetadataImage) -> Iterator[None]:
        """Reconcile local partitions with ``image`` (see module docstring), one step per yield.

        Only topics whose ``TopicImage`` changed since the last application are visited (a commit
        replaces just the topics it touches), and the caller may pause between steps, so creating
        10 000 partitions does not stall the event loop. If a step raises, the topics applied so
        far stay applied and the next application resumes with the rest."""
        for name, applied in list(self._applied.items()):
            current = image.topics.get(name)
            if current is None or current.topic_id != applied.topic_id:
                for index in applied.partitions:
                    if (name, index) in self.partitions:
                        self._delete(name, index)
                        yield
                del self._applied[name]
                self._topic_configs.pop(name, None)
        # dynamic broker configs changed: every topic's defaults may have (Kafka's DynamicLogConfig)
        dynamic = (image.broker_configs, image.broker_node_configs.get(self.broker_id))
        revisit = dynamic != self._dynamic_broker_configs
        for topic in image.topics.values():
            if self._applied.get(topic.name) is topic and not revisit:
                continue
            yield from self._apply_topic(topic)
            self._applied[topic.name] = topic
        self._dynamic_broker_configs = dynamic

    def _apply_topic(self, topic: TopicImage) -> Iterator[None]:
        config = self.effective_topic_config(topic)
        if self._topic_configs.get(topic.name) not in (None, config):
            self.log_manager.reconfigure(topic.name, config)
        self._topic_configs[topic.name] = config
        previous = self._applied.get(topic.name)
        for index in previous.partitions if previous is not None else ():
            if index not in topic.partitions and (topic.name, index) in self.partitions:
                self._delete(topic.name, index)
        for index, placement in topic.partitions.items():
            if self.broker_id not in placement.replicas:
                if (topic.name, index) in self.partitions:  # a reassignment removed this replica
                    self._delete(topic.name, index)
                    yield
                continue
            partition = self.partitions.get((topic.name, index))
            if partition is None:
                partition_log = self.log_manager.get_or_create(topic.name, index, config)
                partition = Partition(topic.name, index, topic.topic_id, partition_log, self.broker_id,
                                      self.alter_partition_manager)
                self.partitions[(topic.name, index)] = partition
                yield
            partition.update_leadership(placement.leader, placement.leader_epoch, placement.replicas,
                                        placement.isr, partition_epoch=placement.partition_epoch)
            if partition.is_leader or partition.leader < 0:
                self.fetchers.stop_following((topic.name, index))
            else:
                self.fetchers.follow(partition)

    def _delete(self, topic: str, index: int) -> None:
        partition = self.partitions.pop((topic, index))
        self.fetchers.stop_following((topic, index))
        partition.mark_deleted()  # parked fetches and delayed produces answer now
        self.log_manager.delete(topic, index)
        log.info("deleted the log of %s-%d", topic, index)

    def delete_orphan_dirs(self, image: MetadataImage) -> None:
        """Delete the logs of partitions that ``image`` no longer has (deleted while this node was
        down). Only with an image that has caught up with the quorum: the metadata a node replays
        at start-up is what it knew was committed, which may be far behind (a voter learns the
        high watermark from the leader), and its topics must not be taken for deleted ones."""
        for topic, index in self.log_manager.partition_dirs_on_disk():
            if topic == METADATA_TOPIC or (topic, index) in self.partitions:
                continue
            placement = image.topics[topic].partitions.get(index) if topic in image.topics else None
            if placement is None or self.broker_id not in placement.replicas:
                self.log_manager.delete(topic, index)
                log.info("deleted %s-%d: %s", topic, index, "its topic no longer exists" if placement is None
                         else "a reassignment moved it off this broker")

    def maybe_shrink_isrs(self, now_ms: int) -> None:
        """Kafka's isr-expiration task (due every ``replica.lag.time.max.ms`` / 2): the leader
        proposes to drop followers that have not caught up within that time."""
        self.isr_expiration.check_all(self.partitions.values(), now_ms)

    def shutdown(self) -> None:
        """Stop replicating and proposing ISR changes (the node is stopping)."""
        self.fetchers.shutdown()
        if self.alter_partition_manager is not None:
            self.alter_partition_manager.close()
