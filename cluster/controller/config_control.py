"""ConfigurationControl (Kafka's ``ConfigurationControlManager``): per-topic config overrides and
dynamic broker configs (of one broker, or the cluster-wide default: ``broker_configs``).

A change that turns ``unclean.leader.election.enable`` on for a topic elects, in the same commit,
an unclean leader for each of its partitions that has none (``ReplicationControl._unclean_elections``);
a broker-level change does so right after its own commit, for every topic that then allows it.

A mixin of ``QuorumController``. Concurrency: part of the controller, on the node's event loop;
writes go through its event queue.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cluster.controller.broker_configs import check_broker_changes
from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.event_queue import queued as _queued
from cluster.controller.partition_change import UNCLEAN_LEADER_ELECTION
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
    """Topic and broker config changes (AlterConfigs, IncrementalAlterConfigs)."""

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

    @_queued
    async def alter_broker_configs(self, broker: str, changes: Mapping[str, Any | None],
                                   validate_only: bool = False) -> TopicResult:
        """Set (a value) or delete (``None``) dynamic configs of broker ``broker`` (an id, or ``""``
        for the cluster-wide default): all of them or none, as ConfigRecords of resource type broker.

        As Kafka's ``ControllerConfigurationValidator``, a broker name must be a base-10 id (the
        broker need not be registered: its configs wait for it); a config that is not dynamic or a
        bad value is INVALID_REQUEST, as Kafka answers a ConfigException for a broker resource."""
        if not self.is_active:
            return TopicResult(broker, ErrorCode.not_controller, "this controller is not the active one")
        if broker and not (broker.isascii() and broker.isdigit()):
            return TopicResult(broker, ErrorCode.invalid_request, "Unable to parse broker name as a base 10 number.")
        try:
            values = check_broker_changes(changes)
        except SettingError as exc:
            return TopicResult(broker, ErrorCode.invalid_request,
                               f"Invalid config value for resource ConfigResource(type=BROKER, name='{broker}'): {exc}")
        current = self.image.broker_node_configs.get(int(broker), {}) if broker else self.image.broker_configs
        records: list[MetadataRecord] = [
            {"type": "ConfigRecord", "resource_type": "broker", "resource_name": broker, "name": key, "value": value}
            for key, value in values.items() if value != current.get(key)]
        if records and not validate_only:
            try:
                await self._commit(records)
            except MetadataCommitError as exc:
                return not_written(TopicResult(broker), exc)
            log.info("altered dynamic configs of broker %s: %s", broker or "<default>",
                     {r["name"]: r["value"] for r in records})
            if any(r["name"] == UNCLEAN_LEADER_ELECTION for r in records):
                await self._elect_unclean_everywhere()
        return TopicResult(broker)

    async def _elect_unclean_everywhere(self) -> None:
        """After the broker default of ``unclean.leader.election.enable`` changed: an unclean
        leader for every leaderless partition of a topic that now allows it (Kafka finds them on a
        timer, ``maybeTriggerUncleanLeaderElectionForLeaderlessPartitions``)."""
        records = [r for name, topic in self.image.topics.items() for r in self._unclean_elections(name, topic.config)]
        if records:
            try:
                await self._commit(records)
            except MetadataCommitError as exc:  # the config change stands; the next broker change elects
                log.warning("unclean leader elections after a broker config change not written: %s", exc)
                return
            log.warning("unclean leader election for %d partition(s) (records only the old ISR had are lost)",
                        len(records))
