"""``KafkaClusterSource``: one call that gathers what the monitor shows, from any Kafka cluster.

A poll sends: Metadata (brokers, controller, topics, partitions, ISR); then at once ListGroups,
DescribeGroups + OffsetFetch per group (``lag.group_offsets``), ListOffsets(earliest) of every
partition, and DescribeConfigs for topics whose retention is not cached yet; then one
ListOffsets(latest) for every partition — after the committed offsets, so lag is never
understated. Topic retention is re-read every ``CONFIG_REFRESH_POLLS`` polls. The clients stay
open between polls (one AdminClient for metadata and configs, one ``KafkaAdmin`` for groups).

A partial failure (configs, one group's offsets) is reported in the snapshot; a cluster that
does not answer raises ``ClusterUnreachableError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pykafka_ops.client.admin import AdminError, KafkaAdmin, ListedOffset
from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.librdkafka import admin_client, in_thread, metadata
from pykafka_ops.models.groups import TopicPartition
from pykafka_ops.models.monitor import ClusterSnapshot, PartitionOffsets
from pykafka_ops.models.records import ConsumeReport
from pykafka_ops.models.skew import SkewReport
from pykafka_ops.services.configs import resource_configs
from pykafka_ops.services.consume import ConsumeRequest, RecordSink, StartOffset, consume
from pykafka_ops.services.groups import list_groups
from pykafka_ops.services.lag import group_offsets, with_log_end
from pykafka_ops.services.processes import NodeSampler
from pykafka_ops.services.skew_scan import Progress
from pykafka_ops.services.topics import metadata_info

#: Polls between two reads of every topic's retention configs.
CONFIG_REFRESH_POLLS = 30
#: Records per partition a tail starts with.
TAIL_BACKLOG = 20


def _offset(answer: ListedOffset | AdminError | None) -> int | None:
    return answer.offset if isinstance(answer, ListedOffset) and answer.offset >= 0 else None


def retention_of(entries: Sequence[Any]) -> int | None:
    """``retention.ms`` when the topic deletes by time (cleanup.policy has ``delete``), else None."""
    values = {e.name: e.value for e in entries}
    if "delete" not in (values.get("cleanup.policy") or "delete"):
        return None
    try:
        retention = int(values.get("retention.ms") or -1)
    except ValueError:
        return None
    return retention if retention >= 0 else None


class KafkaClusterSource:
    """``ClusterSource`` for a Kafka cluster. ``groups`` limits the poll to those groups;
    ``state_file`` (a `pko cluster up` cluster's) adds its node processes."""

    def __init__(self, settings: ClientSettings, groups: Sequence[str] = (), state_file: Path | None = None) -> None:
        self.settings = settings
        self.bootstrap_servers = settings.bootstrap_servers
        self._groups = tuple(groups)
        self._admin = KafkaAdmin(settings)
        self._client = admin_client(settings)
        self._nodes = NodeSampler(state_file) if state_file is not None else None
        self._retention: dict[str, int | None] = {}
        self._polls = 0

    async def collect(self) -> ClusterSnapshot:
        """One poll (see the module docstring)."""
        info = await in_thread(lambda: metadata_info(metadata(self._client, self.settings)))
        tps = [TopicPartition(t.name, p.partition) for t in info.topics for p in t.partitions]
        self._polls += 1
        if self._polls % CONFIG_REFRESH_POLLS == 0:
            self._retention = {}
        names = [t.name for t in info.topics if t.name not in self._retention]
        drafts, earliest, configs = await asyncio.gather(
            self._group_offsets(), self._admin.list_offsets(tps, "earliest"), self._configs(names))
        committed = {TopicPartition(r.topic, r.partition) for g in drafts for r in g.partitions}
        latest = await self._admin.list_offsets(set(tps) | committed, "latest")
        errors = []
        if isinstance(configs, Exception):
            errors.append(f"topic configs: {configs}")
        else:
            self._retention.update(configs)
        known = {t.name for t in info.topics}
        self._retention = {name: ms for name, ms in self._retention.items() if name in known}
        offsets = tuple(PartitionOffsets(tp.topic, tp.partition, _offset(earliest.get(tp)), _offset(latest.get(tp)))
                        for tp in tps)
        nodes = await in_thread(self._nodes.sample) if self._nodes is not None else ()
        return ClusterSnapshot(info.cluster_id, info.controller_id, info.brokers, info.topics, offsets,
                               tuple(with_log_end(drafts, latest)), dict(self._retention), nodes, tuple(errors))

    async def _group_offsets(self) -> list[Any]:
        ids = self._groups or [g.group_id for g in await list_groups(self._admin)]
        return await group_offsets(self._admin, ids)

    async def _configs(self, names: list[str]) -> dict[str, int | None] | Exception:
        """Retention of the ``names`` topics, or the error (reported, not raised)."""
        try:
            described = await in_thread(resource_configs, self._client, self.settings, "topics", names)
        except Exception as exc:  # a refused DescribeConfigs must not stop the poll
            return exc
        return {r.entity_name: retention_of(r.entries) for r in described}

    async def record_timestamps(self, positions: Mapping[TopicPartition, int]) -> dict[TopicPartition, int | str]:
        """The timestamp (ms) of the record at each offset (a group-less consumer), or why not."""
        return await self._admin.record_timestamps(positions)

    async def tail(self, topic: str, sink: RecordSink) -> ConsumeReport:
        """The last ``TAIL_BACKLOG`` records of each partition of ``topic``, then new ones, until cancelled."""
        return await consume(self.settings, ConsumeRequest(topic, StartOffset("tail", TAIL_BACKLOG)), sink)

    async def skew(self, topic: str, progress: Progress | None = None) -> SkewReport:
        """`pko skew TOPIC` with its defaults (a sample of the newest records), plus a 60 s rate window."""
        from pykafka_ops.models.skew import SkewOptions
        from pykafka_ops.services.skew import analyse_topic

        return await analyse_topic(self.settings, topic, SkewOptions(rate_window_s=60.0), progress)

    def close(self) -> None:
        """Release both clients."""
        self._admin.close()
        del self._client
