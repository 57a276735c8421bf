"""ReplicaManager (Kafka's): the partitions this broker holds, kept in step with the metadata.

``apply_image`` is called with every new MetadataImage: it opens (or creates) the logs of
partitions placed on this broker, applies leadership and config changes, and deletes the logs
of deleted topics — also those deleted while the node was down.

Concurrency: used from the node's event loop only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from cluster.controller.metadata_image import MetadataImage, TopicImage
from cluster.controller.quorum import METADATA_TOPIC
from cluster.log.manager import LogManager
from cluster.replication.partition import Partition
from pykafka_ops.config.settings import topic_defaults

log = logging.getLogger(__name__)


class ReplicaManager:
    """Partition objects of this broker, by (topic, index)."""

    def __init__(self, broker_id: int, log_manager: LogManager, broker_config: Mapping[str, Any]) -> None:
        self.broker_id = broker_id
        self.log_manager = log_manager
        self.broker_config = broker_config
        self.partitions: dict[tuple[str, int], Partition] = {}
        self._topic_configs: dict[str, dict[str, Any]] = {}

    def effective_topic_config(self, topic: TopicImage) -> dict[str, Any]:
        """Broker-derived defaults overlaid with the topic's overrides."""
        config = topic_defaults(self.broker_config)
        config.update(topic.config)
        return config

    def partition(self, topic: str, index: int) -> Partition | None:
        """The partition if this broker holds it."""
        return self.partitions.get((topic, index))

    def apply_image(self, image: MetadataImage) -> None:
        """Reconcile local partitions with ``image`` (see module docstring)."""
        for (topic, index), partition in list(self.partitions.items()):
            current = image.topics.get(topic)
            if current is None or current.topic_id != partition.topic_id or index not in current.partitions:
                self._delete(topic, index)
        for topic in image.topics.values():
            config = self.effective_topic_config(topic)
            if self._topic_configs.get(topic.name) not in (None, config):
                self.log_manager.reconfigure(topic.name, config)
            self._topic_configs[topic.name] = config
            for index, placement in topic.partitions.items():
                if self.broker_id not in placement.replicas:
                    continue
                partition = self.partitions.get((topic.name, index))
                if partition is None:
                    partition_log = self.log_manager.get_or_create(topic.name, index, config)
                    partition = Partition(topic.name, index, topic.topic_id, partition_log, self.broker_id)
                    self.partitions[(topic.name, index)] = partition
                partition.update_leadership(placement.leader, placement.leader_epoch, placement.replicas,
                                            placement.isr)
        for name in list(self._topic_configs):
            if name not in image.topics:
                del self._topic_configs[name]
        self._delete_orphan_dirs(image)

    def _delete(self, topic: str, index: int) -> None:
        partition = self.partitions.pop((topic, index))
        partition.wake_waiters()
        self.log_manager.delete(topic, index)
        log.info("deleted the log of %s-%d", topic, index)

    def _delete_orphan_dirs(self, image: MetadataImage) -> None:
        for topic, index in self.log_manager.partition_dirs_on_disk():
            if topic == METADATA_TOPIC or (topic, index) in self.partitions:
                continue
            if topic not in image.topics or index not in image.topics[topic].partitions:
                self.log_manager.delete(topic, index)
                log.info("deleted %s-%d: its topic no longer exists", topic, index)
