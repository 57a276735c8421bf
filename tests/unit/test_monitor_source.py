"""The monitor's source degrades instead of failing a poll. Fenced brokers and the quorum leader
(``describe_cluster_nodes``, then ``fenced_of`` / ``quorum_of``, then
``KafkaClusterSource.cluster_nodes``) against a scripted broker: a socket server speaking our
codec that answers as the broker it imitates would — Kafka 4 (DescribeCluster v2 listing fenced
brokers, DescribeQuorum), an older broker (DescribeCluster v1, no DescribeQuorum), Kafka errors,
a broker that hangs up: whatever it answers, they are unknown (None), never an exception. And a
ListGroups that fails (a stopped broker) keeps the groups listed before."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cluster.pytest_plugin import free_ports
from pykafka_ops.client.admin import AdminError
from pykafka_ops.client.connection import ClientSettings, ClusterUnreachableError
from pykafka_ops.client.quorum_requests import (
    ClusterDescription,
    QuorumRequestError,
    describe_cluster_nodes,
)
from pykafka_ops.client.wire import WireError
from pykafka_ops.models.groups import GroupDescription, GroupListing, TopicPartition
from pykafka_ops.models.monitor import MetadataQuorum
from pykafka_ops.models.topics import BrokerInfo
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.codec import ErrorCode
from pykafka_ops.services.snapshot import KafkaClusterSource, fenced_of, quorum_of

API_VERSIONS, DESCRIBE_QUORUM, DESCRIBE_CLUSTER = 18, 55, 60
#: An answer: the response body, or None to close the connection instead.
Answer = Callable[[Any], dict[str, Any] | None]


class ScriptedBroker:
    """A listener on 127.0.0.1 that advertises ``apis`` (key → (max version, answer)) in
    ApiVersions v0 and answers each request with its ``answer``; ``requests`` keeps
    (key, version, decoded request) of every other request it got."""

    def __init__(self, apis: dict[int, tuple[int, Answer]]) -> None:
        self.apis = apis
        self.requests: list[tuple[int, int, Any]] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.getsockname()[1]}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._server.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            while head := conn.recv(4):
                (size,) = struct.unpack(">i", head)
                frame = b""
                while len(frame) < size:
                    frame += conn.recv(size - len(frame))
                header = codec.decode_request_header(memoryview(frame))
                key, version = header.api_key, header.api_version
                if key == API_VERSIONS:
                    body: dict[str, Any] | None = {"error_code": 0, "api_keys": [
                        {"api_key": API_VERSIONS, "min_version": 0, "max_version": 3},
                        *({"api_key": k, "min_version": 0, "max_version": v} for k, (v, _a) in self.apis.items())]}
                else:
                    request = codec.decode_request(key, version, memoryview(frame), header.size)
                    self.requests.append((key, version, request))
                    body = self.apis[key][1](request)
                if body is None:
                    return
                payload = codec.encode_response(key, version, header.correlation_id, body)
                conn.sendall(struct.pack(">i", len(payload)) + payload)


@pytest.fixture
def scripted() -> Iterator[Callable[[dict[int, tuple[int, Answer]]], ScriptedBroker]]:
    brokers: list[ScriptedBroker] = []

    def start(apis: dict[int, tuple[int, Answer]]) -> ScriptedBroker:
        brokers.append(ScriptedBroker(apis))
        return brokers[-1]

    yield start
    for broker in brokers:
        broker.close()


def _broker(broker_id: int, fenced: bool = False) -> dict[str, Any]:
    return {"broker_id": broker_id, "host": f"10.0.0.{broker_id}", "port": 9092, "rack": None, "is_fenced": fenced}


def cluster_answer(brokers: list[dict[str, Any]], error_code: int = 0) -> Answer:
    def answer(request: Any) -> dict[str, Any]:
        listed = [b for b in brokers if getattr(request, "include_fenced_brokers", False) or not b["is_fenced"]]
        return {"throttle_time": 0, "error_code": error_code, "error_message": None, "endpoint_type": 1,
                "cluster_id": "c-1", "controller_id": 1, "brokers": listed if not error_code else [],
                "cluster_authorized_operations": -(2**31)}
    return answer


def _replica(replica_id: int) -> dict[str, Any]:
    return {"replica_id": replica_id, "log_end_offset": 40, "last_fetch_timestamp": -1, "last_caught_up_timestamp": -1}


def quorum_answer(leader_id: int, epoch: int = 7, error_code: int = 0) -> Answer:
    def answer(_request: Any) -> dict[str, Any]:
        partition = {"partition_index": 0, "error_code": error_code, "leader_id": leader_id, "leader_epoch": epoch,
                     "high_watermark": 40, "current_voters": [_replica(i) for i in (1, 2, 3, 9)],
                     "observers": [_replica(4)]}
        nodes = [{"node_id": 9, "listeners": [{"name": "CONTROLLER", "host": "10.0.0.9", "port": 9093}]},
                 {"node_id": 1, "listeners": [{"name": "CONTROLLER", "host": "::1", "port": 9193}]}]
        return {"error_code": 0, "topics": [{"topic_name": "__cluster_metadata", "partitions": [partition]}],
                "nodes": nodes}
    return answer


KAFKA_4_BROKERS = [_broker(1), _broker(2), _broker(3, fenced=True)]


def test_kafka_4_names_the_fenced_brokers_and_the_quorum_leader(scripted: Any) -> None:
    broker = scripted({DESCRIBE_CLUSTER: (2, cluster_answer(KAFKA_4_BROKERS)), DESCRIBE_QUORUM: (2, quorum_answer(2))})
    nodes = describe_cluster_nodes(broker.address, 5)
    assert isinstance(nodes.cluster, ClusterDescription) and nodes.cluster.includes_fenced
    [(_key, version, request)] = [r for r in broker.requests if r[0] == DESCRIBE_CLUSTER]
    assert (version, request.include_fenced_brokers) == (2, True)
    assert fenced_of(nodes.cluster) == (BrokerInfo(3, "10.0.0.3", 9092),)
    assert quorum_of(nodes.quorum) == MetadataQuorum(
        2, 7, (1, 2, 3, 9), (4,), (BrokerInfo(9, "10.0.0.9", 9093), BrokerInfo(1, "::1", 9193)))


def test_a_broker_before_describe_cluster_v2_and_describe_quorum_leaves_both_unknown(scripted: Any) -> None:
    """Kafka 3.x in ZooKeeper mode, say: DescribeCluster v1 lists unfenced brokers only (so an
    absent broker is not known to be fenced), and there is no quorum to describe."""
    broker = scripted({DESCRIBE_CLUSTER: (1, cluster_answer(KAFKA_4_BROKERS))})
    nodes = describe_cluster_nodes(broker.address, 5)
    assert isinstance(nodes.cluster, ClusterDescription) and not nodes.cluster.includes_fenced
    assert [b.broker_id for b in nodes.cluster.brokers] == [1, 2]
    assert isinstance(nodes.quorum, QuorumRequestError) and nodes.quorum.code == "UNSUPPORTED_VERSION"
    assert (fenced_of(nodes.cluster), quorum_of(nodes.quorum)) == (None, None)


def test_kafka_errors_leave_each_half_unknown_on_its_own(scripted: Any) -> None:
    broker = scripted({DESCRIBE_CLUSTER: (2, cluster_answer(KAFKA_4_BROKERS, ErrorCode.unsupported_version)),
                       DESCRIBE_QUORUM: (2, quorum_answer(-1, error_code=ErrorCode.not_leader_or_follower))})
    nodes = describe_cluster_nodes(broker.address, 5)
    assert isinstance(nodes.cluster, QuorumRequestError) and nodes.cluster.code == "UNSUPPORTED_VERSION"
    assert isinstance(nodes.quorum, QuorumRequestError) and nodes.quorum.code == "NOT_LEADER_OR_FOLLOWER"
    assert (fenced_of(nodes.cluster), quorum_of(nodes.quorum)) == (None, None)


def test_a_quorum_electing_a_leader_has_none() -> None:
    """DescribeQuorum answers leader -1 while the voters elect one."""
    from pykafka_ops.client.quorum_requests import QuorumInfo

    assert quorum_of(QuorumInfo(-1, 8, 40, (), ())) == MetadataQuorum(None, 8, (), ())


def test_a_broker_that_hangs_up_is_skipped_for_the_next_server(scripted: Any) -> None:
    rude = scripted({DESCRIBE_CLUSTER: (2, lambda _request: None)})
    polite = scripted({DESCRIBE_CLUSTER: (2, cluster_answer(KAFKA_4_BROKERS)), DESCRIBE_QUORUM: (2, quorum_answer(1))})
    nodes = describe_cluster_nodes(f"{rude.address},{polite.address}", 5)
    assert nodes.answered_by == polite.address
    (dead,) = free_ports(1)
    with pytest.raises(WireError):
        describe_cluster_nodes(f"{rude.address},127.0.0.1:{dead}", 5)


def test_a_stopped_broker_does_not_use_up_the_time_of_the_next(scripted: Any) -> None:
    """A stopped (SIGSTOP) broker's kernel still accepts connections; it never answers."""
    stopped = socket.create_server(("127.0.0.1", 0))  # listening, never accepting or answering
    polite = scripted({DESCRIBE_CLUSTER: (2, cluster_answer(KAFKA_4_BROKERS)), DESCRIBE_QUORUM: (2, quorum_answer(1))})
    try:
        nodes = describe_cluster_nodes(f"127.0.0.1:{stopped.getsockname()[1]},{polite.address}", 2)
        assert nodes.answered_by == polite.address
    finally:
        stopped.close()


def test_the_source_asks_metadatas_brokers_when_the_bootstrap_server_is_gone(scripted: Any) -> None:
    broker = scripted({DESCRIBE_CLUSTER: (2, cluster_answer(KAFKA_4_BROKERS)), DESCRIBE_QUORUM: (2, quorum_answer(2))})
    (dead,) = free_ports(1)
    source = KafkaClusterSource(ClientSettings(f"127.0.0.1:{dead}", timeout_s=5))
    try:
        host, port = broker.address.split(":")
        fenced, quorum = asyncio.run(source.cluster_nodes((BrokerInfo(2, host, int(port)),)))
        assert fenced == (BrokerInfo(3, "10.0.0.3", 9092),)
        assert quorum is not None and quorum.leader_id == 2
        # nobody answers: unknown, not an error
        assert asyncio.run(source.cluster_nodes(())) == (None, None)
    finally:
        source.close()


def test_the_source_does_not_speak_tls_or_sasl(scripted: Any) -> None:
    broker = scripted({DESCRIBE_CLUSTER: (2, cluster_answer(KAFKA_4_BROKERS)), DESCRIBE_QUORUM: (2, quorum_answer(2))})
    (dead,) = free_ports(1)
    source = KafkaClusterSource(ClientSettings(f"127.0.0.1:{dead}", {"security.protocol": "SSL"}, 5))
    try:
        host, port = broker.address.split(":")
        assert asyncio.run(source.cluster_nodes((BrokerInfo(2, host, int(port)),))) == (None, None)
        assert broker.requests == []
    finally:
        source.close()


class StubAdmin:
    """The group calls of ``KafkaAdmin``: ListGroups fails when ``fail`` is set."""

    def __init__(self) -> None:
        self.fail: Exception | None = None

    async def list_groups(self) -> list[GroupListing]:
        if self.fail is not None:
            raise self.fail
        return [GroupListing("orders-app", "Stable")]

    async def describe_groups(self, group_ids: Any) -> dict[str, GroupDescription]:
        return {g: GroupDescription(g, "Stable", BrokerInfo(1, "h", 1), "range", ()) for g in group_ids}

    async def committed_offsets(self, group_id: str) -> dict[TopicPartition, tuple[int, int | None]]:
        return {TopicPartition("orders", 0): (5, None)}


def test_a_failed_list_groups_keeps_the_groups_listed_before_and_says_so() -> None:
    """A stopped broker does not answer ListGroups; the others still coordinate their groups."""
    (dead,) = free_ports(1)
    source = KafkaClusterSource(ClientSettings(f"127.0.0.1:{dead}", timeout_s=5))
    stub = StubAdmin()
    real, source._admin = source._admin, stub  # type: ignore[assignment]
    try:
        stub.fail = AdminError("REQUEST_TIMED_OUT", "Failed while waiting for response from broker 3")
        with pytest.raises(AdminError):  # no earlier listing: raised, as before (`pko lag` exits 1)
            asyncio.run(source._group_offsets())
        stub.fail = None
        drafts, error = asyncio.run(source._group_offsets())
        assert [g.group_id for g in drafts] == ["orders-app"] and error is None
        stub.fail = AdminError("REQUEST_TIMED_OUT", "Failed while waiting for response from broker 3")
        drafts, error = asyncio.run(source._group_offsets())
        assert [g.group_id for g in drafts] == ["orders-app"]
        assert error == ("consumer groups: Failed while waiting for response from broker 3 "
                         "(showing the groups listed before)")
        stub.fail = ClusterUnreachableError("cannot reach the Kafka cluster")
        with pytest.raises(ClusterUnreachableError):  # the whole cluster gone still fails the poll
            asyncio.run(source._group_offsets())
    finally:
        source._admin = real
        source.close()
