"""DescribeQuorum (key 55, KIP-595), which confluent-kafka has no call for, over ``WireClient``.

Kafka's ``Admin.describeMetadataQuorum``: the request names ``__cluster_metadata`` partition 0
and goes to any broker (brokers forward it to the active controller since Kafka 3.3; our nodes
answer from their own quorum). The answer is checked as ``KafkaAdminClient`` checks it (a
top-level error, then exactly that one topic and partition, then the partition's error) and
becomes ``QuorumInfo``, with Kafka's admin names. Retriable errors (NOT_LEADER_OR_FOLLOWER while
a leader is elected) and unreachable servers are retried, server after server, until the timeout.
DescribeCluster on the same connection gives the cluster id, as ``kafka-metadata-quorum
describe --status`` shows it.

``describe_cluster_nodes`` is what `pko monitor` asks at every poll: DescribeCluster (v2 with
``include_fenced_brokers``, so fenced brokers are listed too) and DescribeQuorum on one
connection, once, each answer standing alone (a broker without one of the APIs still answers
the other).

Blocking; the service runs it in a thread. Plaintext listeners only (as ``group_requests``).
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pykafka_ops.client.wire import WireClient, WireError, bootstrap_addresses
from pykafka_ops.errors import error_name
from pykafka_ops.protocol import codec

METADATA_TOPIC = "__cluster_metadata"
METADATA_PARTITION = 0
API_VERSIONS, DESCRIBE_QUORUM, DESCRIBE_CLUSTER = 18, 55, 60
_RETRY_BACKOFF_S = 0.1


class QuorumRequestError(Exception):
    """A Kafka error answered to DescribeQuorum (``code`` is Kafka's constant), or a broker that
    does not support it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ReplicaState:
    """Kafka's ``QuorumInfo.ReplicaState``; timestamps are None when unknown (-1, or before v1)."""

    replica_id: int
    replica_directory_id: str | None
    log_end_offset: int
    last_fetch_timestamp: int | None = None
    last_caught_up_timestamp: int | None = None


@dataclass(frozen=True)
class QuorumNode:
    """Kafka's ``QuorumInfo.Node``: a voter and its endpoints (``RaftVoterEndpoint.toString``)."""

    node_id: int
    endpoints: tuple[str, ...]


@dataclass(frozen=True)
class QuorumInfo:
    """Kafka's ``QuorumInfo``, plus the cluster id and the server that answered."""

    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: tuple[ReplicaState, ...]
    observers: tuple[ReplicaState, ...]
    nodes: tuple[QuorumNode, ...] = ()
    cluster_id: str | None = None
    answered_by: str = ""


def kafka_uuid_text(value: uuid.UUID | None) -> str | None:
    """Kafka's ``Uuid.toString`` (URL-safe base64, no padding); None for none or the zero UUID."""
    if value is None or value.int == 0:
        return None
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def _versions(client: WireClient) -> dict[int, int]:
    """The highest version of each API both the broker and our codec speak (ApiVersions v0)."""
    response = client.request(API_VERSIONS, 0, {})
    common = {}
    for entry in response.api_keys:
        ours = codec.known_versions(entry.api_key)
        if ours is not None and entry.min_version <= ours[1] and ours[0] <= entry.max_version:
            common[int(entry.api_key)] = min(entry.max_version, ours[1])
    return common


def _replica(state: Any) -> ReplicaState:
    def known(value: int | None) -> int | None:
        return None if value is None or value < 0 else int(value)

    return ReplicaState(state.replica_id, kafka_uuid_text(getattr(state, "replica_directory_id", None)),
                        state.log_end_offset, known(getattr(state, "last_fetch_timestamp", None)),
                        known(getattr(state, "last_caught_up_timestamp", None)))


def _endpoint(listener: Any) -> str:
    host = f"[{listener.host}]" if ":" in listener.host else listener.host
    return f"{listener.name}://{host}:{listener.port}"


def _kafka_error(code: int, message: str | None) -> QuorumRequestError:
    """``NAME: message`` (the server's message, else Kafka's text for the code when we know it)."""
    from pykafka_ops.client.admin import ERROR_MESSAGES

    name = error_name(code)
    text = message or ERROR_MESSAGES.get(name)
    return QuorumRequestError(name, f"DescribeQuorum: {name}: {text}" if text else f"DescribeQuorum: {name}")


def _check(response: Any) -> Any:
    """The partition of a DescribeQuorum answer, checked as ``KafkaAdminClient`` checks it."""
    if response.error_code != 0:
        raise _kafka_error(response.error_code, getattr(response, "error_message", None))
    if len(response.topics) != 1:
        raise QuorumRequestError("UNKNOWN_SERVER_ERROR",
                                 f"DescribeMetadataQuorum received {len(response.topics)} topics when 1 was expected")
    topic = response.topics[0]
    if topic.topic_name != METADATA_TOPIC:
        raise QuorumRequestError("UNKNOWN_SERVER_ERROR", f"DescribeMetadataQuorum received a topic with name "
                                                         f"{topic.topic_name} when {METADATA_TOPIC} was expected")
    if len(topic.partitions) != 1 or topic.partitions[0].partition_index != METADATA_PARTITION:
        indexes = [p.partition_index for p in topic.partitions]
        raise QuorumRequestError("UNKNOWN_SERVER_ERROR", f"DescribeMetadataQuorum received topic {topic.topic_name} "
                                                         f"with partitions {indexes} when [{METADATA_PARTITION}] "
                                                         "was expected")
    partition = topic.partitions[0]
    if partition.error_code != 0:
        raise _kafka_error(partition.error_code, getattr(partition, "error_message", None))
    return partition


def _ask(client: WireClient) -> QuorumInfo:
    versions = _versions(client)
    version = versions.get(DESCRIBE_QUORUM)
    if version is None:
        raise QuorumRequestError("UNSUPPORTED_VERSION", f"the broker at {client.address} does not support "
                                                        f"DescribeQuorum (key {DESCRIBE_QUORUM}): a KRaft cluster "
                                                        "on Kafka 3.3 or later answers it")
    body = {"topics": [{"topic_name": METADATA_TOPIC, "partitions": [{"partition_index": METADATA_PARTITION}]}]}
    response = client.request(DESCRIBE_QUORUM, version, body)
    partition = _check(response)
    cluster_id = None
    if DESCRIBE_CLUSTER in versions:
        described = client.request(DESCRIBE_CLUSTER, versions[DESCRIBE_CLUSTER],
                                   {"include_cluster_authorized_operations": False, "endpoint_type": 1})
        cluster_id = described.cluster_id if described.error_code == 0 else None
    nodes = tuple(QuorumNode(n.node_id, tuple(map(_endpoint, n.listeners))) for n in getattr(response, "nodes", ()))
    return QuorumInfo(partition.leader_id, partition.leader_epoch, partition.high_watermark,
                      tuple(map(_replica, partition.current_voters)), tuple(map(_replica, partition.observers)),
                      nodes, cluster_id, client.address)


def describe_metadata_quorum(bootstrap_servers: str, timeout_s: float) -> QuorumInfo:
    """The metadata quorum as its leader reports it, asked through any bootstrap server.

    Raises ``QuorumRequestError`` for a Kafka error that is not retriable (or still there at the
    timeout) and ``WireError`` when no server answered at all.
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception = WireError("no bootstrap server answered")
    while True:
        for host, port in bootstrap_addresses(bootstrap_servers):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise last_error
            try:
                with WireClient(host, port, remaining) as client:
                    return _ask(client)
            except WireError as exc:
                last_error = exc
            except QuorumRequestError as exc:
                if not _retriable(exc.code):
                    raise
                last_error = exc
        if time.monotonic() + _RETRY_BACKOFF_S >= deadline:
            raise last_error
        time.sleep(_RETRY_BACKOFF_S)


def _retriable(code: str) -> bool:
    try:
        return bool(codec.ErrorCode[code.lower()].retriable)
    except KeyError:
        return False


# -- the nodes as `pko monitor` polls them ---------------------------------------------------

#: DescribeCluster v2 (KIP-1073): ``include_fenced_brokers`` lists fenced brokers too, with ``is_fenced``.
INCLUDE_FENCED_VERSION = 2
#: DescribeCluster ``endpoint_type`` (v1+): the brokers' listeners.
BROKERS_ENDPOINT = 1
#: The least time ``describe_cluster_nodes`` gives one server (s).
MIN_SERVER_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class DescribedBroker:
    """A broker of a DescribeCluster answer. ``is_fenced`` can only be true in a v2 answer to
    ``include_fenced_brokers``: older versions list unfenced brokers only, as Metadata does."""

    broker_id: int
    host: str
    port: int
    rack: str | None = None
    is_fenced: bool = False


@dataclass(frozen=True)
class ClusterDescription:
    """Kafka's ``DescribeClusterResult``; ``includes_fenced`` says whether fenced brokers are listed
    (a v2 answer), so that an absent broker can be told from one the version could not name."""

    cluster_id: str | None
    controller_id: int | None
    brokers: tuple[DescribedBroker, ...]
    includes_fenced: bool


@dataclass(frozen=True)
class ClusterNodes:
    """DescribeCluster and DescribeQuorum, asked on one connection: each is the answer or the error
    (``QuorumRequestError``, ``UNSUPPORTED_VERSION`` for a broker without the API) that replaced it."""

    cluster: ClusterDescription | QuorumRequestError
    quorum: QuorumInfo | QuorumRequestError
    answered_by: str


def _request_error(api: str, code: int, message: str | None) -> QuorumRequestError:
    from pykafka_ops.client.admin import ERROR_MESSAGES

    name = error_name(code)
    text = message or ERROR_MESSAGES.get(name)
    return QuorumRequestError(name, f"{api}: {name}: {text}" if text else f"{api}: {name}")


def _unsupported(client: WireClient, api: str, key: int) -> QuorumRequestError:
    return QuorumRequestError("UNSUPPORTED_VERSION",
                              f"the broker at {client.address} does not support {api} (key {key})")


def _describe_cluster(client: WireClient, versions: dict[int, int]) -> ClusterDescription:
    """DescribeCluster at the highest common version, with ``include_fenced_brokers`` from v2 on."""
    version = versions.get(DESCRIBE_CLUSTER)
    if version is None:
        raise _unsupported(client, "DescribeCluster", DESCRIBE_CLUSTER)
    includes_fenced = version >= INCLUDE_FENCED_VERSION
    response = client.request(DESCRIBE_CLUSTER, version, {"include_cluster_authorized_operations": False,
                                                          "endpoint_type": BROKERS_ENDPOINT,
                                                          "include_fenced_brokers": includes_fenced})
    if response.error_code != 0:
        raise _request_error("DescribeCluster", response.error_code, getattr(response, "error_message", None))
    brokers = tuple(DescribedBroker(b.broker_id, b.host, b.port, b.rack, bool(getattr(b, "is_fenced", False)))
                    for b in response.brokers)
    return ClusterDescription(response.cluster_id or None,
                              response.controller_id if response.controller_id >= 0 else None,
                              tuple(sorted(brokers, key=lambda b: b.broker_id)), includes_fenced)


def _describe_quorum(client: WireClient, versions: dict[int, int]) -> QuorumInfo:
    """DescribeQuorum at the highest common version, checked as ``_ask`` checks it."""
    version = versions.get(DESCRIBE_QUORUM)
    if version is None:
        raise _unsupported(client, "DescribeQuorum", DESCRIBE_QUORUM)
    body = {"topics": [{"topic_name": METADATA_TOPIC, "partitions": [{"partition_index": METADATA_PARTITION}]}]}
    response = client.request(DESCRIBE_QUORUM, version, body)
    partition = _check(response)
    nodes = tuple(QuorumNode(n.node_id, tuple(map(_endpoint, n.listeners))) for n in getattr(response, "nodes", ()))
    return QuorumInfo(partition.leader_id, partition.leader_epoch, partition.high_watermark,
                      tuple(map(_replica, partition.current_voters)), tuple(map(_replica, partition.observers)),
                      nodes, None, client.address)


def describe_cluster_nodes(bootstrap_servers: str, timeout_s: float) -> ClusterNodes:
    """Every registered broker, fenced ones included when the broker speaks DescribeCluster v2
    (Kafka 4.0, KIP-1073), and the metadata quorum (DescribeQuorum), asked once — no retries: a
    monitor asks again at its next poll — of the first of ``bootstrap_servers`` that answers.

    Each server gets an equal share of ``timeout_s`` (at least ``MIN_SERVER_TIMEOUT_S``): a stopped
    broker (SIGSTOP) accepts connections but never answers, and must not use up the time of the
    servers after it. A Kafka error or a missing API (Apache Kafka before 4.0, ZooKeeper mode,
    Redpanda, Tansu) becomes that half's ``QuorumRequestError``; the other half is still
    answered. Raises ``WireError`` when no server answered at all. Plaintext listeners only.
    """
    deadline = time.monotonic() + timeout_s
    last_error = WireError("no bootstrap server answered")
    addresses = bootstrap_addresses(bootstrap_servers)
    share = max(timeout_s / len(addresses), MIN_SERVER_TIMEOUT_S)
    for host, port in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            with WireClient(host, port, min(share, remaining)) as client:
                versions = _versions(client)
                cluster: ClusterDescription | QuorumRequestError
                quorum: QuorumInfo | QuorumRequestError
                try:
                    cluster = _describe_cluster(client, versions)
                except QuorumRequestError as exc:
                    cluster = exc
                try:
                    quorum = _describe_quorum(client, versions)
                except QuorumRequestError as exc:
                    quorum = exc
                return ClusterNodes(cluster, quorum, client.address)
        except WireError as exc:
            last_error = exc
    raise last_error
