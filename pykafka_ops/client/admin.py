"""An async facade over confluent-kafka's AdminClient (and a Consumer) for the group services.

confluent-kafka's admin calls return ``concurrent.futures.Future`` objects resolved by
librdkafka's background thread; ``asyncio.wrap_future`` turns them into awaitables, so many
calls run at once without a thread each (kaskade's ``make_it_async`` idea, without the threads).
Blocking calls (a Consumer reading one record, the raw OffsetDelete) go through
``asyncio.to_thread``. Results are ``pykafka_ops.models`` objects: nothing confluent-kafka leaks
out. ``GroupAdmin`` is the Protocol the services depend on, so the TUI can pass a fake.

Errors: a Kafka error becomes ``AdminError`` (Kafka's constant in ``code``); a cluster that does
not answer becomes ``ClusterUnreachableError`` naming the bootstrap servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.librdkafka import UNREACHABLE
from pykafka_ops.models.groups import GroupDescription, GroupListing, MemberDescription, TopicPartition
from pykafka_ops.models.topics import BrokerInfo

#: confluent-kafka's ConsumerGroupState names → Kafka's GroupState names.
_STATES = {"PREPARING_REBALANCING": "PreparingRebalance", "COMPLETING_REBALANCING": "CompletingRebalance",
           "STABLE": "Stable", "DEAD": "Dead", "EMPTY": "Empty", "UNKNOWN": "Unknown"}

#: Kafka's ``Errors.message()`` for the codes OffsetDelete and FindCoordinator answer with.
ERROR_MESSAGES: Mapping[str, str] = {
    "GROUP_ID_NOT_FOUND": "The group id does not exist.",
    "NON_EMPTY_GROUP": "The group is not empty.",
    "INVALID_GROUP_ID": "The configured groupId is invalid.",
    "GROUP_AUTHORIZATION_FAILED": "Group authorization failed.",
    "TOPIC_AUTHORIZATION_FAILED": "Topic authorization failed.",
    "GROUP_SUBSCRIBED_TO_TOPIC": "The consumer group is actively subscribed to the topic",
    "UNKNOWN_TOPIC_OR_PARTITION": "This server does not host this topic-partition.",
    "COORDINATOR_NOT_AVAILABLE": "The coordinator is not available.",
    "COORDINATOR_LOAD_IN_PROGRESS": "The coordinator is loading and hence can't process requests.",
    "NOT_COORDINATOR": "This is not the correct coordinator.",
}

OffsetSpecName = str
"""``"earliest"``, ``"latest"`` or ``"max_timestamp"``; an ``int`` spec is a timestamp in ms."""
IsolationLevelName = str
"""``"read_uncommitted"`` or ``"read_committed"`` (Kafka's ``isolation.level``)."""


class AdminError(Exception):
    """A Kafka error answered by the cluster; ``code`` is Kafka's constant (``GROUP_ID_NOT_FOUND``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ListedOffset:
    """A ListOffsets answer: the offset and, for timestamp queries, the record's timestamp (ms)."""

    offset: int
    timestamp: int = -1


class GroupAdmin(Protocol):
    """What the group services need from a cluster."""

    settings: ClientSettings

    async def list_groups(self) -> list[GroupListing]: ...
    async def describe_groups(self, group_ids: Iterable[str]) -> dict[str, GroupDescription | AdminError]: ...
    async def committed_offsets(self, group_id: str) -> dict[TopicPartition, tuple[int, int | None]]: ...
    async def list_offsets(self, partitions: Iterable[TopicPartition],
                           spec: OffsetSpecName | int) -> dict[TopicPartition, ListedOffset | AdminError]: ...
    async def topic_partitions(self, topics: Iterable[str]) -> dict[str, tuple[int, ...] | AdminError]: ...
    async def alter_offsets(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None: ...
    async def delete_groups(self, group_ids: Iterable[str]) -> dict[str, AdminError | None]: ...
    async def delete_offsets(self, group_id: str,
                             partitions: Iterable[TopicPartition]) -> tuple[str, dict[TopicPartition, str]]: ...
    async def record_timestamps(self, positions: Mapping[TopicPartition, int]) -> dict[TopicPartition, int | str]: ...


class KafkaAdmin:
    """``GroupAdmin`` over confluent-kafka; every call is bounded by ``settings.timeout_s``."""

    def __init__(self, settings: ClientSettings) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        from pykafka_ops.config.client import PropertiesError

        self.settings = settings
        try:
            self._client = AdminClient(settings.librdkafka())
        except KafkaException as exc:  # a bad --command-config property: a usage error
            raise PropertiesError(f"invalid client configuration: {exc.args[0].str()}") from None
        self._timeout = settings.timeout_s

    async def _result(self, future: Any) -> Any:
        """Await a confluent-kafka future; its KafkaException becomes AdminError or unreachable."""
        from confluent_kafka import KafkaException

        try:
            return await asyncio.wrap_future(future)
        except KafkaException as exc:
            raise self._translate(exc.args[0]) from None

    async def _outcomes(self, futures: Mapping[Any, Any], keys: Iterable[Any]) -> list[Any]:
        """The result of ``futures[key]`` for each key, awaited together; a Kafka error is returned, not raised."""
        async def one(key: Any) -> Any:
            try:
                return await self._result(futures[key])
            except AdminError as exc:
                return exc

        return list(await asyncio.gather(*(one(k) for k in keys)))

    def _translate(self, error: Any) -> Exception:
        """A Kafka error → ``AdminError``; no answer at all → ``ClusterUnreachableError`` (one line, exit 1)."""
        if error.name() in UNREACHABLE:
            return self.settings.unreachable(error.str())
        return AdminError(error.name(), error.str())

    async def ensure_reachable(self) -> None:
        """Raise ``ClusterUnreachableError`` at once when no bootstrap server accepts a connection."""
        if not await asyncio.to_thread(self.settings.any_server_accepts):
            raise self.settings.unreachable("connection refused or no route to host")

    async def list_groups(self) -> list[GroupListing]:
        """Every consumer group with its state (ListGroups)."""
        result = await self._result(self._client.list_consumer_groups(request_timeout=self._timeout))
        if result.errors and not result.valid:
            error = result.errors[0]  # a KafkaError (a KafkaException wraps one in older releases)
            raise self._translate(error.args[0] if isinstance(error, BaseException) else error)
        return [GroupListing(g.group_id, _STATES.get(g.state.name, "Unknown") if g.state else "Unknown")
                for g in result.valid]

    async def describe_groups(self, group_ids: Iterable[str]) -> dict[str, GroupDescription | AdminError]:
        """One DescribeGroups answer per group; a group the coordinator does not know is ``Dead``."""
        ids = list(dict.fromkeys(group_ids))
        if not ids:
            return {}
        futures = self._client.describe_consumer_groups(ids, request_timeout=self._timeout)
        answers = await self._outcomes(futures, ids)
        return {g: (GroupDescription(g, "Dead") if a.code == "GROUP_ID_NOT_FOUND" else a) if isinstance(a, AdminError)
                else _description(a) for g, a in zip(ids, answers)}

    async def committed_offsets(self, group_id: str) -> dict[TopicPartition, tuple[int, int | None]]:
        """Every committed (offset, leader epoch) of ``group_id`` (OffsetFetch for all partitions)."""
        from confluent_kafka import ConsumerGroupTopicPartitions

        futures = self._client.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group_id)],
                                                           request_timeout=self._timeout)
        answer = await self._result(futures[group_id])
        return {TopicPartition(tp.topic, tp.partition): (tp.offset, tp.leader_epoch)
                for tp in answer.topic_partitions or () if tp.offset >= 0 and tp.error is None}

    async def list_offsets(self, partitions: Iterable[TopicPartition], spec: OffsetSpecName | int,
                           isolation_level: IsolationLevelName = "read_uncommitted",
                           ) -> dict[TopicPartition, ListedOffset | AdminError]:
        """ListOffsets for each partition: earliest, latest, max_timestamp or a timestamp (ms).
        ``latest`` is the high watermark, or the last stable offset with ``read_committed``."""
        from confluent_kafka import IsolationLevel
        from confluent_kafka import TopicPartition as CkTopicPartition
        from confluent_kafka.admin import OffsetSpec

        wanted = list(dict.fromkeys(partitions))
        if not wanted:
            return {}
        offset_spec = OffsetSpec.for_timestamp(spec) if isinstance(spec, int) else getattr(OffsetSpec, spec)()
        futures = self._client.list_offsets({CkTopicPartition(tp.topic, tp.partition): offset_spec for tp in wanted},
                                            isolation_level=getattr(IsolationLevel, isolation_level.upper()),
                                            request_timeout=self._timeout)
        by_key = {TopicPartition(tp.topic, tp.partition): f for tp, f in futures.items()}
        answers = await self._outcomes(by_key, wanted)
        return {tp: a if isinstance(a, AdminError) else ListedOffset(a.offset, a.timestamp)
                for tp, a in zip(wanted, answers)}

    async def topic_partitions(self, topics: Iterable[str]) -> dict[str, tuple[int, ...] | AdminError]:
        """The partition ids of each topic (Metadata), or the error for a topic that has none."""
        from confluent_kafka import KafkaException

        names = list(dict.fromkeys(topics))
        if not names:
            return {}
        try:
            metadata = await asyncio.to_thread(self._client.list_topics, timeout=self._timeout)
        except KafkaException as exc:
            raise self._translate(exc.args[0]) from None
        result: dict[str, tuple[int, ...] | AdminError] = {}
        for name in names:
            topic = metadata.topics.get(name)
            error = topic.error if topic is not None else None
            if topic is None or (error is not None and error.name().startswith("UNKNOWN_TOPIC")):
                result[name] = AdminError("UNKNOWN_TOPIC_OR_PART", f"Topic '{name}' does not exist")
            elif error is not None:
                result[name] = AdminError(error.name(), error.str())
            else:
                result[name] = tuple(sorted(topic.partitions))
        return result

    async def alter_offsets(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` for ``group_id`` (OffsetCommit, no metadata, as kafka-consumer-groups)."""
        from confluent_kafka import ConsumerGroupTopicPartitions
        from confluent_kafka import TopicPartition as CkTopicPartition

        request = ConsumerGroupTopicPartitions(group_id, [CkTopicPartition(tp.topic, tp.partition, offset)
                                                          for tp, offset in offsets.items()])
        futures = self._client.alter_consumer_group_offsets([request], request_timeout=self._timeout)
        answer = await self._result(futures[group_id])
        failed = [tp for tp in answer.topic_partitions or () if tp.error is not None]
        if failed:
            raise AdminError(failed[0].error.name(), f"{failed[0].topic}-{failed[0].partition}: {failed[0].error.str()}")

    async def delete_groups(self, group_ids: Iterable[str]) -> dict[str, AdminError | None]:
        """DeleteGroups; per group None on success or the error."""
        ids = list(dict.fromkeys(group_ids))
        if not ids:
            return {}
        futures = self._client.delete_consumer_groups(ids, request_timeout=self._timeout)
        answers = await self._outcomes(futures, ids)
        return {g: a if isinstance(a, AdminError) else None for g, a in zip(ids, answers)}

    async def delete_offsets(self, group_id: str,
                             partitions: Iterable[TopicPartition]) -> tuple[str, dict[TopicPartition, str]]:
        """OffsetDelete (key 47) through our codec: top-level and per-partition Kafka error constants."""
        from pykafka_ops.client.group_requests import GroupRequestError, offset_delete

        protocol = self.settings.properties.get("security.protocol", "plaintext").lower()
        if protocol != "plaintext":
            raise AdminError("UNSUPPORTED_FEATURE", f"--delete-offsets needs a plaintext listener (security.protocol={protocol})")
        pairs = [(tp.topic, tp.partition) for tp in partitions]
        try:
            top, per_partition = await asyncio.to_thread(
                offset_delete, self.settings.bootstrap_servers, self._timeout, group_id, pairs)
        except GroupRequestError as exc:
            raise AdminError(exc.code, str(exc)) from None
        except ConnectionError as exc:
            raise self.settings.unreachable(exc) from None
        return top, {TopicPartition(t, p): code for (t, p), code in per_partition.items()}

    async def record_timestamps(self, positions: Mapping[TopicPartition, int],
                                isolation_level: IsolationLevelName = "read_committed") -> dict[TopicPartition, int | str]:
        """The timestamp (ms) of the first record at or after each offset, or why there is none
        (read as a consumer with ``isolation_level``: librdkafka's default, read_committed, reads
        nothing at or past a partition's last stable offset)."""
        if not positions:
            return {}
        from pykafka_ops.client.record_reader import read_timestamps

        return await asyncio.to_thread(read_timestamps, self.settings, dict(positions), isolation_level)

    def close(self) -> None:
        """Release the client (librdkafka threads end when the object is collected)."""
        del self._client


def _description(group: Any) -> GroupDescription:
    coordinator = group.coordinator
    members = tuple(
        MemberDescription(m.member_id, m.client_id, m.host, m.group_instance_id or None,
                          tuple(sorted(TopicPartition(tp.topic, tp.partition)
                                       for tp in (m.assignment.topic_partitions if m.assignment else ()))))
        for m in group.members)
    state = group.state.name if group.state is not None else "UNKNOWN"
    return GroupDescription(group.group_id, _STATES.get(state, "Unknown"),
                            BrokerInfo(coordinator.id, coordinator.host, coordinator.port) if coordinator else None,
                            group.partition_assignor or "", members)
