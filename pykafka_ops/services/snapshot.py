"""``KafkaClusterSource``: one call that gathers what the monitor shows, from any Kafka cluster.

A poll sends: Metadata (brokers, controller, topics, partitions, ISR); then at once ListGroups,
DescribeGroups + OffsetFetch per group (``lag.group_offsets``), ListOffsets(earliest) of every
partition, DescribeConfigs for topics whose retention is not cached yet, and DescribeCluster +
DescribeQuorum (``cluster_nodes``); then ListOffsets(latest) for every partition — after the
committed offsets, so lag is never understated — once read_uncommitted (the high watermark) and
once read_committed (the last stable offset); then what ``services.hanging_transactions`` needs
for partitions whose last stable offset is stuck (usually nothing). Topic retention is re-read every
``CONFIG_REFRESH_POLLS`` polls. The clients stay open between polls (one AdminClient for metadata
and configs, one ``KafkaAdmin`` for groups).

DescribeCluster is asked at v2 with ``include_fenced_brokers`` (KIP-1073, Kafka 4.0), the only way
a client learns of fenced brokers: Metadata and older DescribeCluster versions list unfenced
brokers only. DescribeQuorum names the quorum leader, the active controller (Metadata's
controller id is, on KRaft, a live broker chosen for clients). Neither is in librdkafka, so both
go through our wire client, on one connection, once per poll; a cluster that answers neither
(Apache Kafka before 4.0 for the first, ZooKeeper mode, Redpanda, Tansu), an error, or a TLS or
SASL listener leaves them unknown (None): the monitor shows less, the poll does not fail.

A partial failure (configs, one group's offsets, ListGroups) is reported in the snapshot; a
cluster that does not answer raises ``ClusterUnreachableError``.

A broker that stops answering without closing its connections (SIGSTOP, a long GC pause, a
hung host) must not blind the monitor: librdkafka sends Metadata to the connected broker it used
last, and keeps a connection whose requests go unanswered until ``socket.timeout.ms`` (60 s by
default), so every poll would ask the stopped broker again and time out. The two clients get
``socket.timeout.ms`` = the poll's timeout (``polling_settings``): a request not answered in
time drops that connection, as Kafka's own clients do at ``request.timeout.ms``, and the next
poll is answered by a broker that is up.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pykafka_ops.client.admin import AdminError, KafkaAdmin, ListedOffset
from pykafka_ops.client.connection import ClientSettings, ClusterUnreachableError
from pykafka_ops.client.librdkafka import admin_client, in_thread, metadata
from pykafka_ops.client.quorum_requests import (
    ClusterDescription,
    QuorumInfo,
    QuorumRequestError,
    describe_cluster_nodes,
)
from pykafka_ops.client.wire import WireError
from pykafka_ops.models.groups import TopicPartition
from pykafka_ops.models.monitor import ClusterSnapshot, MetadataQuorum, PartitionOffsets
from pykafka_ops.models.records import ConsumeReport
from pykafka_ops.models.skew import SkewReport
from pykafka_ops.models.topics import BrokerInfo, ClusterInfo
from pykafka_ops.services.configs import resource_configs
from pykafka_ops.services.consume import (
    ConsumeRequest,
    RecordSink,
    StartOffset,
    consume,
)
from pykafka_ops.services.groups import list_groups
from pykafka_ops.services.hanging_transactions import HangingTransactionFinder
from pykafka_ops.services.lag import group_offsets, with_log_end
from pykafka_ops.services.monitor_rows import address_text
from pykafka_ops.services.processes import NodeSampler
from pykafka_ops.services.skew_scan import Progress
from pykafka_ops.services.topics import metadata_info, with_reassignments

#: Polls between two reads of every topic's retention configs.
CONFIG_REFRESH_POLLS = 30
#: Records per partition a tail starts with.
TAIL_BACKLOG = 20


#: librdkafka's bounds for ``socket.timeout.ms``.
SOCKET_TIMEOUT_MS_RANGE = (10, 300_000)


def polling_settings(settings: ClientSettings) -> ClientSettings:
    """``settings`` with ``socket.timeout.ms`` = the request timeout (unless the properties set it):
    a broker that does not answer a poll's request in time is disconnected, so that librdkafka
    asks another broker next time (see the module docstring)."""
    if "socket.timeout.ms" in settings.properties:
        return settings
    low, high = SOCKET_TIMEOUT_MS_RANGE
    timeout_ms = min(max(round(settings.timeout_s * 1000), low), high)
    return dataclasses.replace(settings, properties={**settings.properties, "socket.timeout.ms": str(timeout_ms)})


def fenced_of(cluster: ClusterDescription | QuorumRequestError) -> tuple[BrokerInfo, ...] | None:
    """The fenced brokers of a DescribeCluster answer; None unless the answer could list them (v2)."""
    if isinstance(cluster, QuorumRequestError) or not cluster.includes_fenced:
        return None
    return tuple(BrokerInfo(b.broker_id, b.host, b.port) for b in cluster.brokers if b.is_fenced)


def _listener(node_id: int, endpoint: str) -> BrokerInfo | None:
    """``NAME://host:port`` (``[v6]:port``) as an address; None if it does not parse."""
    host, _, port = endpoint.partition("://")[2].rpartition(":")
    return BrokerInfo(node_id, host.strip("[]"), int(port)) if host and port.isdigit() else None


def quorum_of(answer: QuorumInfo | QuorumRequestError) -> MetadataQuorum | None:
    """The quorum of a DescribeQuorum answer; None for an error."""
    if isinstance(answer, QuorumRequestError):
        return None
    endpoints = tuple(e for e in (_listener(n.node_id, n.endpoints[0]) for n in answer.nodes if n.endpoints)
                      if e is not None)
    return MetadataQuorum(answer.leader_id if answer.leader_id >= 0 else None, answer.leader_epoch,
                          tuple(v.replica_id for v in answer.voters), tuple(o.replica_id for o in answer.observers),
                          endpoints)


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
        polling = polling_settings(settings)
        self._admin = KafkaAdmin(polling)
        self._client = admin_client(polling)
        self._nodes = NodeSampler(state_file) if state_file is not None else None
        self._hanging = HangingTransactionFinder(polling, self._admin, self._client)
        self._retention: dict[str, int | None] = {}
        self._listed: list[str] | None = None
        """The groups ListGroups named at the last poll it answered."""
        self._polls = 0

    def _metadata(self) -> ClusterInfo:
        """Metadata, with the replicas reassignments are adding (asked only while some ISR lacks a
        replica: ``with_reassignments``)."""
        info = metadata_info(metadata(self._client, self.settings))
        # asked of the live brokers first, as ``cluster_nodes``: a stopped bootstrap server must not stall the poll
        servers = dict.fromkeys([address_text(b.host, b.port) or "" for b in info.brokers] +
                                [s.strip() for s in self.bootstrap_servers.split(",")])
        asked = dataclasses.replace(self.settings, bootstrap_servers=",".join(s for s in servers if s))
        return dataclasses.replace(info, topics=with_reassignments(asked, info.topics))

    async def collect(self) -> ClusterSnapshot:
        """One poll (see the module docstring)."""
        info = await in_thread(self._metadata)
        tps = [TopicPartition(t.name, p.partition) for t in info.topics for p in t.partitions]
        self._polls += 1
        if self._polls % CONFIG_REFRESH_POLLS == 0:
            self._retention = {}
        names = [t.name for t in info.topics if t.name not in self._retention]
        (drafts, groups_error), earliest, configs, (fenced, quorum) = await asyncio.gather(
            self._group_offsets(metadata_answered=True), self._admin.list_offsets(tps, "earliest"), self._configs(names),
            self.cluster_nodes(info.brokers))
        committed = {TopicPartition(r.topic, r.partition) for g in drafts for r in g.partitions}
        latest, stable = await asyncio.gather(self._admin.list_offsets(set(tps) | committed, "latest"),
                                              self._admin.list_offsets(tps, "latest", "read_committed"))
        errors = [groups_error] if groups_error else []
        if isinstance(configs, Exception):
            errors.append(f"topic configs: {configs}")
        else:
            self._retention.update(configs)
        known = {t.name for t in info.topics}
        self._retention = {name: ms for name, ms in self._retention.items() if name in known}
        offsets = tuple(PartitionOffsets(tp.topic, tp.partition, _offset(earliest.get(tp)), _offset(latest.get(tp)),
                                         _offset(stable.get(tp)))
                        for tp in tps)
        hanging, hanging_error = await self._hanging.find(offsets, [b.id for b in info.brokers])
        errors += [f"hanging transactions: {hanging_error}"] if hanging_error else []
        nodes = await in_thread(self._nodes.sample) if self._nodes is not None else ()
        return ClusterSnapshot(info.cluster_id, info.controller_id, info.brokers, info.topics, offsets,
                               tuple(with_log_end(drafts, latest)), dict(self._retention), nodes, tuple(errors),
                               fenced, quorum, hanging)

    async def cluster_nodes(self, brokers: Sequence[BrokerInfo]) -> tuple[tuple[BrokerInfo, ...] | None,
                                                                           MetadataQuorum | None]:
        """The fenced brokers and the metadata quorum (see the module docstring), each None when
        unknown. Asked of ``brokers`` (Metadata's: the live ones, by the cluster's own account),
        then of the bootstrap servers, so that a bootstrap server that is stopped or gone does not
        hide them."""
        if self.settings.properties.get("security.protocol", "plaintext").lower() != "plaintext":
            return None, None  # our wire client speaks neither TLS nor SASL
        servers = dict.fromkeys([address_text(b.host, b.port) or "" for b in brokers] +
                                [s.strip() for s in self.bootstrap_servers.split(",")])
        try:
            answer = await in_thread(describe_cluster_nodes, ",".join(s for s in servers if s), self.settings.timeout_s)
        except (WireError, ValueError):  # no server answered (or an address that does not parse)
            return None, None
        return fenced_of(answer.cluster), quorum_of(answer.quorum)

    async def _group_offsets(self, metadata_answered: bool = False) -> tuple[list[Any], str | None]:
        """Every group's offsets, and why the groups could not be listed if they could not: then
        the groups an earlier poll listed are read (ListGroups goes to every broker, and one that
        is stopped or fenced must not hide the groups the others coordinate). With no earlier
        listing the error is raised, as before: `pko lag` must not pass on an empty list.

        No answer at all (``ClusterUnreachableError``) is raised too, unless ``metadata_answered``:
        the cluster answered this poll's Metadata, so the broker that let ListGroups time out is
        one that is stopped, not the cluster (librdkafka reports a timeout of one broker of a
        fanned-out ListGroups as the whole call's error when no broker listed a group)."""
        error = None
        if self._groups:
            ids = list(self._groups)
        else:
            try:
                ids = self._listed = [g.group_id for g in await list_groups(self._admin)]
            except ClusterUnreachableError:
                if not metadata_answered or self._listed is None:
                    raise
                ids = self._listed
                error = (f"consumer groups: a broker did not answer ListGroups within {self.settings.timeout_s:g} s "
                         "(showing the groups listed before)")
            except Exception as exc:  # AdminError, or whatever a half-answered ListGroups raises
                if self._listed is None:
                    raise
                ids = self._listed
                error = f"consumer groups: {exc or type(exc).__name__} (showing the groups listed before)"
        return await group_offsets(self._admin, ids), error

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
