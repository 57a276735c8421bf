"""ConfigurationControl (Kafka's ``ConfigurationControlManager``): per-topic config overrides.

A change that turns ``unclean.leader.election.enable`` on for a topic elects, in the same commit,
an unclean leader for each of its partitions that has none (``ReplicationControl._unclean_elections``).

A mixin of ``QuorumController``. Concurrency: part of the controller, on the node's event loop;
writes go through its event queue.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.event_queue import queued as _queued
from cluster.controller.records import MetadataRecord
from cluster.controller.topics import TopicResult, not_written
from pykafka_ops.config.settings import (
    TOPIC_SETTINGS,
    SettingError,
    check_topic_overrides,
)
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.controller.controller import QuorumController

    _Base = QuorumController
else:
    _Base = object

log = logging.getLogger(__name__)


class ConfigurationControl(_Base):
    """Topic config changes (AlterConfigs, IncrementalAlterConfigs)."""

    @_queued
    async def alter_configs(self, topic: str, changes: Mapping[str, Any | None],
                            validate_only: bool = False) -> TopicResult:
        """Set (a value) or delete (``None``) per-topic overrides of ``topic``: all of them or none.

        Every name must be a topic setting we implement (a deleted name too, so a typo is never
        silently accepted); values are checked and converted as at topic creation.
        """
        if not self.is_active:
            return TopicResult(topic, ErrorCode.not_controller, "this controller is not the active one")
        image_topic = self.image.topics.get(topic)
        if image_topic is None:
            return TopicResult(topic, ErrorCode.unknown_topic_or_partition, f"topic {topic!r} does not exist")
        unknown_deletes = {k: "" for k, v in changes.items() if v is None and k not in TOPIC_SETTINGS}
        try:
            values = check_topic_overrides({**unknown_deletes, **{k: v for k, v in changes.items() if v is not None}})
        except SettingError as exc:
            return TopicResult(topic, ErrorCode.invalid_config, str(exc))
        records: list[MetadataRecord] = [
            {"type": "ConfigRecord", "resource_type": "topic", "resource_name": topic, "name": key,
             "value": values.get(key)}
            for key in changes if values.get(key) != image_topic.config.get(key)]
        if records:
            after = {**image_topic.config, **{r["name"]: r["value"] for r in records}}
            records.extend(self._unclean_elections(topic, {k: v for k, v in after.items() if v is not None}))
        if records and not validate_only:
            try:
                await self._commit(records)
            except MetadataCommitError as exc:
                return not_written(TopicResult(topic), exc)
            log.info("altered configs of topic %s: %s", topic,
                     {r["name"]: r["value"] for r in records if r["type"] == "ConfigRecord"})
            for r in records:
                if r["type"] == "PartitionChangeRecord":
                    log.warning("unclean leader election: %s-%d led by broker %d (records only the old ISR had are "
                                "lost)", topic, r["partition"], r["leader"])
        return TopicResult(topic, topic_id=image_topic.topic_id)
