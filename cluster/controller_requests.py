"""ControllerRequests: everything a broker asks of the active controller, wherever it runs.

On the node that leads the metadata quorum the controller is called in process; elsewhere the
request goes to the quorum leader's controller listener (``NodeChannel``) as the Kafka RPC
Kafka's brokers send: BrokerRegistration, BrokerHeartbeat, AllocateProducerIds, CreateTopics
(Kafka's ``AutoTopicCreationManager``), AlterPartition (ISR changes, for the
``AlterPartitionManager``), and the admin requests clients send to any broker,
forwarded unchanged (Kafka's ``ForwardingManager``, KIP-590, without the envelope: the controller
listener takes them as they are).

While no leader is known, the controller is unreachable or it answers NOT_CONTROLLER (it lost the
leadership meanwhile), a request is tried again every ``controller.quorum.retry.backoff.ms`` until
``controller.quorum.request.timeout.ms`` has passed; a forwarded admin request whose answer names
NOT_CONTROLLER anywhere is sent again until its own timeout (Kafka's
``NodeToControllerRequestThread``).

Concurrency: owned by the node's event loop; every method runs on it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from cluster.controller.alter_partition import (
    AlterPartitionResult,
    PartitionIsrResult,
    TopicIsrRequest,
)
from cluster.controller.cluster_control import BrokerEndpoint, HeartbeatResult
from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.topics import NewTopic, TopicResult
from cluster.network.node_channel import (
    NodeChannel,
    NodeUnreachableError,
)
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol.api_keys import ApiKey

if TYPE_CHECKING:
    from cluster.broker import Broker

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Versions this broker sends (what our controller listener and Kafka 3.7+ controllers take).
REGISTRATION_VERSION, HEARTBEAT_VERSION, ALLOCATE_VERSION, CREATE_TOPICS_VERSION = 3, 1, 0, 7
#: AlterPartition v3: topic ids and ISR members with broker epochs (KIP-903); our controller takes 2-3.
ALTER_PARTITION_VERSION = 3
#: Seconds a forwarded request without a timeout of its own may wait for an active controller
#: (Kafka's ``request.timeout.ms`` default).
FORWARD_TIMEOUT_S = 30.0
#: Seconds a forwarded topic change may take to reach this broker's metadata before it answers.
SETTLE_S = 2.0


class ControllerRequests:
    """Requests to the active controller (see module docstring)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        settings = broker.config
        self.timeout_s = settings["controller.quorum.request.timeout.ms"] / 1000
        self.backoff_s = max(settings["controller.quorum.retry.backoff.ms"], 10) / 1000
        self.channel = NodeChannel(broker.node_id, broker.cluster.voters.get)

    @property
    def active_controller(self) -> int:
        """The node id of the quorum leader (-1 while none is known)."""
        return self.broker.controller.quorum.node.leader_id

    @property
    def local(self) -> bool:
        """Whether this node is the active controller (requests are then calls)."""
        return self.broker.controller.is_active

    async def _call(self, local: Callable[[], Awaitable[T]], remote: Callable[[int], Awaitable[T]],
                    retry: Callable[[T], bool]) -> T | None:
        """``local()`` on the active controller, else ``remote(leader id)``, again while the answer
        is ``retry``-able or none came, until the request timeout; the last answer or None."""
        deadline = time.monotonic() + self.timeout_s
        answer: T | None = None
        while True:
            leader = self.active_controller
            try:
                if self.local:
                    answer = await local()
                elif leader >= 0 and leader != self.broker.node_id:  # not itself: still replaying
                    answer = await remote(leader)
            except NodeUnreachableError as exc:
                log.debug("controller request failed: %s", exc)
            if (answer is not None and not retry(answer)) or time.monotonic() >= deadline:
                return answer
            await asyncio.sleep(self.backoff_s)

    # -- broker lifecycle ------------------------------------------------------------------

    async def register(self, endpoint: BrokerEndpoint) -> tuple[ErrorCode, int]:
        """BrokerRegistration: (error, broker epoch)."""

        async def remote(leader: int) -> tuple[ErrorCode, int]:
            body = {"broker_id": endpoint.broker_id, "cluster_id": endpoint.cluster_id,
                    "incarnation_id": uuid.UUID(endpoint.incarnation_id), "rack": endpoint.rack,
                    "listeners": [{"name": "PLAINTEXT", "host": endpoint.host, "port": endpoint.port,
                                   "security_protocol": 0}], "features": [], "log_dirs": [],
                    "previous_broker_epoch": -1}
            answer, _ = await self.channel.send(leader, ApiKey.BROKER_REGISTRATION, REGISTRATION_VERSION, body,
                                                self.timeout_s)
            return ErrorCode(answer.error_code), answer.broker_epoch

        result = await self._call(lambda: self.broker.controller.register_broker(endpoint), remote,
                                  lambda r: r[0] == ErrorCode.not_controller)
        return result or (ErrorCode.request_timed_out, -1)

    async def heartbeat(self, broker_id: int, broker_epoch: int, metadata_offset: int,
                        want_shut_down: bool = False) -> HeartbeatResult:
        """BrokerHeartbeat (one try: the next heartbeat is the retry)."""

        async def remote(leader: int) -> HeartbeatResult:
            body = {"broker_id": broker_id, "broker_epoch": broker_epoch, "current_metadata_offset": metadata_offset,
                    "want_fence": False, "want_shut_down": want_shut_down, "offline_log_dirs": []}
            answer, _ = await self.channel.send(leader, ApiKey.BROKER_HEARTBEAT, HEARTBEAT_VERSION, body,
                                                self.timeout_s)
            return HeartbeatResult(ErrorCode(answer.error_code), answer.is_caught_up, answer.is_fenced,
                                   answer.should_shut_down)

        result = await self._call(
            lambda: self.broker.controller.broker_heartbeat(broker_id, broker_epoch, metadata_offset, False,
                                                            want_shut_down),
            remote, lambda r: False)
        return result or HeartbeatResult(ErrorCode.request_timed_out)

    # -- metadata writes -------------------------------------------------------------------

    async def allocate_producer_ids(self) -> tuple[int, int]:
        """A block of producer ids (AllocateProducerIds); MetadataCommitError if none is given."""
        broker_id, epoch = self.broker.node_id, self.broker.lifecycle.broker_epoch

        async def local() -> tuple[ErrorCode, int, int]:
            try:
                first, size = await self.broker.controller.allocate_producer_ids(broker_id, epoch)
            except MetadataCommitError as exc:
                return exc.error_code, -1, 0
            return ErrorCode.none, first, size

        async def remote(leader: int) -> tuple[ErrorCode, int, int]:
            answer, _ = await self.channel.send(leader, ApiKey.ALLOCATE_PRODUCER_IDS, ALLOCATE_VERSION,
                                                {"broker_id": broker_id, "broker_epoch": epoch}, self.timeout_s)
            return ErrorCode(answer.error_code), answer.producer_id_start, answer.producer_id_len

        result = await self._call(local, remote, lambda r: r[0] == ErrorCode.not_controller)
        if result is None or result[0] != ErrorCode.none:
            code = result[0] if result is not None else ErrorCode.request_timed_out
            raise MetadataCommitError(code, f"no producer ids from the controller ({code.name})")
        return result[1], result[2]

    async def alter_partition(self, broker_epoch: int, topics: Sequence[TopicIsrRequest]) -> AlterPartitionResult:
        """AlterPartition (ISR changes of partitions this broker leads) on the active controller;
        tried again on NOT_CONTROLLER until the request timeout (then REQUEST_TIMED_OUT). The
        caller (``AlterPartitionManager``) retries what is left unanswered."""
        broker_id = self.broker.node_id

        async def remote(leader: int) -> AlterPartitionResult:
            answer, _ = await self.channel.send(leader, ApiKey.ALTER_PARTITION, ALTER_PARTITION_VERSION,
                                                alter_partition_body(broker_id, broker_epoch, topics), self.timeout_s)
            return alter_partition_result(answer)

        result = await self._call(lambda: self.broker.controller.alter_partition(broker_id, broker_epoch, topics),
                                  remote, lambda r: r.error_code == ErrorCode.not_controller)
        return result or AlterPartitionResult(ErrorCode.request_timed_out)

    async def create_topics(self, topics: Sequence[NewTopic]) -> list[TopicResult]:
        """CreateTopics on the active controller; returns once the topics created are in this
        broker's metadata too (or after ``SETTLE_S``)."""

        async def remote(leader: int) -> list[TopicResult]:
            body = {"topics": [{"name": t.name, "num_partitions": t.partitions,
                                "replication_factor": t.replication_factor,
                                "assignments": [{"partition_index": p, "broker_ids": list(r)}
                                                for p, r in t.assignments.items()],
                                "configs": [{"name": k, "value": None if v is None else str(v)}
                                            for k, v in t.config.items()]} for t in topics],
                    "timeout": int(self.timeout_s * 1000), "validate_only": False}
            answer, _ = await self.channel.send(leader, ApiKey.CREATE_TOPICS, CREATE_TOPICS_VERSION, body,
                                                self.timeout_s)
            return [TopicResult(t.name, ErrorCode(t.error_code), t.error_message, t.topic_id, t.num_partitions,
                                t.replication_factor) for t in answer.topics]

        results = await self._call(lambda: self.broker.controller.create_topics(topics), remote,
                                   lambda r: any(t.error_code == ErrorCode.not_controller for t in r))
        if results is None:
            return [TopicResult(t.name, ErrorCode.request_timed_out, "no active controller answered") for t in topics]
        created = {r.name for r in results if r.error_code == ErrorCode.none}
        await self.settle(lambda image: created <= image.topics.keys())
        return results

    async def forward(self, api_key: int, version: int, request: Any) -> tuple[Any, bytes] | None:
        """A client's admin request, sent as it is to the active controller: its answer, decoded
        and as body bytes, or None once this node is the active controller (the caller then serves it);
        NodeUnreachableError if no controller answered within the request's own timeout
        (``timeout_ms`` of CreateTopics and the like; else Kafka's default ``request.timeout.ms``,
        30 s): a new active controller may take an election to appear."""
        timeout_s = self.forward_timeout_s(request)
        deadline = time.monotonic() + timeout_s
        answered: tuple[Any, bytes] | None = None
        while not self.local:
            leader = self.active_controller
            if leader >= 0:
                try:
                    answered = await self.channel.send(leader, api_key, version, request, self.timeout_s)
                except NodeUnreachableError as exc:
                    log.debug("forwarding failed: %s", exc)
                else:
                    # Kafka's NodeToControllerRequestThread: an answer naming NOT_CONTROLLER anywhere came
                    # from a controller that lost its leadership: ask the next one
                    if not names_not_controller(answered[0]):
                        return answered
                    log.debug("forwarded request answered NOT_CONTROLLER by node %d; retrying", leader)
            if time.monotonic() >= deadline:
                if answered is not None:
                    return answered  # NOT_CONTROLLER: the client retries
                raise NodeUnreachableError(f"no active controller answered within {timeout_s * 1000:g} ms")
            await asyncio.sleep(self.backoff_s)
        return None

    def forward_timeout_s(self, request: Any) -> float:
        """How long a forwarded request may wait for an active controller: its own ``timeout_ms``
        (else Kafka's default request timeout), at least ``controller.quorum.request.timeout.ms``."""
        timeout = getattr(request, "timeout", None)
        timeout_s = timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else FORWARD_TIMEOUT_S
        return max(timeout_s, self.timeout_s)

    async def settle(self, done: Callable[[Any], bool]) -> None:
        """Wait (at most ``SETTLE_S``) until this broker's metadata image satisfies ``done``."""
        deadline = time.monotonic() + SETTLE_S
        while not done(self.broker.image) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def close(self) -> None:
        """Close the connections to controllers (the node is stopping)."""
        self.channel.close()


def names_not_controller(answer: Any) -> bool:
    """Whether any ``error_code`` of an answer — decoded (a dataclass) or a body to encode (a
    dict) — at the top level, per topic or per partition, is NOT_CONTROLLER (Kafka's
    ``errorCounts().containsKey(NOT_CONTROLLER)``)."""
    if isinstance(answer, (tuple, list)):
        return any(names_not_controller(item) for item in answer)
    if isinstance(answer, dict):
        fields = answer.items()
    elif dataclasses.is_dataclass(answer):
        fields = ((f.name, getattr(answer, f.name)) for f in dataclasses.fields(answer))
    else:
        return False
    return any((name == "error_code" and value == ErrorCode.not_controller)
               or (isinstance(value, (tuple, list)) and names_not_controller(value)) for name, value in fields)


def alter_partition_body(broker_id: int, broker_epoch: int, topics: Sequence[TopicIsrRequest]) -> dict[str, Any]:
    """An AlterPartition v3 request body (``ALTER_PARTITION_VERSION``)."""
    return {"broker_id": broker_id, "broker_epoch": broker_epoch, "topics": [
        {"topic_id": topic.topic_id, "partitions": [
            {"partition_index": p.partition, "leader_epoch": p.leader_epoch, "partition_epoch": p.partition_epoch,
             "leader_recovery_state": p.leader_recovery_state,
             "new_isr_with_epochs": [{"broker_id": m.broker_id, "broker_epoch": m.broker_epoch} for m in p.new_isr]}
            for p in topic.partitions]} for topic in topics]}


def alter_partition_result(answer: Any) -> AlterPartitionResult:
    """A decoded AlterPartition response as the controller's ``AlterPartitionResult``."""
    return AlterPartitionResult(ErrorCode(answer.error_code), tuple(
        (topic.topic_id, tuple(PartitionIsrResult(p.partition_index, ErrorCode(p.error_code), p.leader_id,
                                                  p.leader_epoch, tuple(p.isr), p.partition_epoch,
                                                  p.leader_recovery_state) for p in topic.partitions))
        for topic in answer.topics))
