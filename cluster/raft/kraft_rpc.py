"""Raft core messages ⇄ Kafka's KRaft RPC bodies (KIP-595, KIP-630), as our codec (kio) spells them.

The core (``cluster/raft/messages.py``) knows one partition and no cluster; the wire names
``__cluster_metadata-0`` in every message, the Fetch topic by id (``Uuid.METADATA_TOPIC_ID``), and
the cluster id. This module adds and checks those, as Kafka's ``RaftUtil`` builds and
``KafkaRaftClient`` validates the messages. Bodies are plain dicts for ``codec.encode_request`` /
``codec.encode_response_body``; decoded bodies are kio's dataclasses from ``codec.decode_request``
/ ``codec.decode_response``. It is the entry point for every KRaft API: API keys, versions and
checks, and the Vote/BeginQuorumEpoch/EndQuorumEpoch bodies; the Fetch and FetchSnapshot bodies
are in ``cluster.raft.kraft_fetch_rpc``, the metadata log's wire names and
:class:`~cluster.raft.kraft_wire.KraftRpcError` in ``cluster.raft.kraft_wire``.

Versions (``VERSIONS``): the highest kio knows whose fields the core's values fill honestly —
Vote v2, BeginQuorumEpoch v1, EndQuorumEpoch v1, Fetch v17, FetchSnapshot v1; Fetch needs v12+ (the
first with ``diverging_epoch``/``current_leader``/``snapshot_id``/``cluster_id``). FetchSnapshot v1
differs from v0 only by tagged fields (the follower's directory id, the leader's endpoint). Vote v2
carries ``pre_vote`` (KIP-996); a v0/v1 Vote is a real vote. Not chosen: Fetch v18, whose follower
``high_watermark`` (KIP-1166) the core's FetchRequest does not carry. Bodies built here are the same
dict for every version: the codec drops keys a version lacks (``replica_id`` below Fetch v15,
``replica_state`` from it). KIP-853 directory ids are unknown to the core and sent as Kafka sends an
absent one (``ReplicaKey.NO_DIRECTORY_ID``, the zero UUID); they are ignored when read.

Inbound request, in Kafka's order: ``check_cluster_id`` (INCONSISTENT_CLUSTER_ID), then
``payload_from_request``, which raises ``KraftRpcError`` (INVALID_REQUEST for another topic
or partition, UNSUPPORTED_VERSION for what the core cannot express); answer a ``KraftRpcError``
with ``error_response_body`` (Kafka's ``RaftUtil.errorResponse``). ``payload_from_response``
raises ``KraftRpcError`` for a top-level error or an unknown partition error: the caller treats
the response as lost, as ``KafkaRaftClient`` does (``handleTopLevelError``), and the core retries.

Concurrency: plain functions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from cluster.raft.kraft_fetch_rpc import (
    fetch_request_body,
    fetch_request_payload,
    fetch_response_body,
    fetch_response_payload,
    fetch_snapshot_request_body,
    fetch_snapshot_request_payload,
    fetch_snapshot_response_body,
    fetch_snapshot_response_payload,
)
from cluster.raft.kraft_wire import (
    METADATA_PARTITION,
    METADATA_TOPIC,
    NO_DIRECTORY_ID,
    KraftRpcError,
    error_from_wire,
    error_to_wire,
)
from cluster.raft.messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    Payload,
    VoteRequest,
    VoteResponse,
)
from pykafka_ops.protocol.codec import ErrorCode

__all__ = [
    "BEGIN_QUORUM_EPOCH", "END_QUORUM_EPOCH", "FETCH", "FETCH_SNAPSHOT", "MIN_FETCH_VERSION", "MIN_VERSIONS",
    "VERSIONS", "VOTE", "api_key_of", "check_cluster_id", "check_voter_id", "error_response_body",
    "payload_from_request", "payload_from_response", "request_body", "request_sender", "response_body",
]

#: API keys, named as Kafka's ``ApiKeys``.
FETCH, VOTE, BEGIN_QUORUM_EPOCH, END_QUORUM_EPOCH, FETCH_SNAPSHOT = 1, 52, 53, 54, 59

#: The version each API is sent at (see the module docstring for why).
VERSIONS: Mapping[int, int] = {VOTE: 2, BEGIN_QUORUM_EPOCH: 1, END_QUORUM_EPOCH: 1, FETCH: 17, FETCH_SNAPSHOT: 1}

#: Lowest version of each API this mapping reads or writes; Fetch below v12 has no diverging epoch.
MIN_VERSIONS: Mapping[int, int] = {VOTE: 0, BEGIN_QUORUM_EPOCH: 0, END_QUORUM_EPOCH: 0, FETCH: 12,
                                   FETCH_SNAPSHOT: 0}
MIN_FETCH_VERSION = MIN_VERSIONS[FETCH]

_API_KEYS: Mapping[type, int] = {
    VoteRequest: VOTE, VoteResponse: VOTE,
    BeginQuorumEpochRequest: BEGIN_QUORUM_EPOCH, BeginQuorumEpochResponse: BEGIN_QUORUM_EPOCH,
    EndQuorumEpochRequest: END_QUORUM_EPOCH, EndQuorumEpochResponse: END_QUORUM_EPOCH,
    FetchRequest: FETCH, FetchResponse: FETCH,
    FetchSnapshotRequest: FETCH_SNAPSHOT, FetchSnapshotResponse: FETCH_SNAPSHOT,
}


def api_key_of(payload: Payload) -> int:
    """The Kafka API key that carries a core request or response."""
    return _API_KEYS[type(payload)]


# --------------------------------------------------------------------------- checks


def check_cluster_id(request_cluster_id: str | None, ours: str) -> ErrorCode | None:
    """INCONSISTENT_CLUSTER_ID if the request names another cluster, else None; a request without
    a cluster id is accepted (``KafkaRaftClient.hasValidClusterId``), and so is any request while
    we do not know ours: a controller learns the cluster id from the quorum (the first leader
    names the cluster) instead of from a storage format step, so a new one sends ""."""
    if not request_cluster_id or not ours or request_cluster_id == ours:
        return None
    return ErrorCode.inconsistent_cluster_id


def check_voter_id(kio_request: Any, local_id: int) -> ErrorCode | None:
    """INVALID_VOTER_KEY if a Vote or BeginQuorumEpoch (v1+) is addressed to another voter than
    ``local_id``; -1 (absent, v0) is accepted (``RaftUtil.voteRequestVoterKey`` and
    ``KafkaRaftClient.isValidVoterKey``)."""
    voter_id = getattr(kio_request, "voter_id", -1)
    return None if voter_id < 0 or voter_id == local_id else ErrorCode.invalid_voter_key


def request_sender(payload: Payload) -> int:
    """The node id a core request names as its sender (for the ``Message`` envelope)."""
    if isinstance(payload, VoteRequest):
        return payload.candidate_id
    if isinstance(payload, (BeginQuorumEpochRequest, EndQuorumEpochRequest)):
        return payload.leader_id
    if isinstance(payload, (FetchRequest, FetchSnapshotRequest)):
        return payload.replica_id
    raise TypeError(f"not a core request: {type(payload).__name__}")


# --------------------------------------------------------------------------- requests


def request_body(payload: Payload, cluster_id: str, *, destination_id: int = -1, version: int | None = None,
                 leader_endpoints: Sequence[tuple[str, str, int]] = ()) -> tuple[int, int, dict[str, Any]]:
    """(api key, version, body dict) of a core request, as ``RaftUtil.singleton*Request`` builds it.

    ``destination_id`` is the receiving voter (Vote and BeginQuorumEpoch ``voter_id``, v1+; -1 if
    unknown); ``leader_endpoints`` are the leader's (listener name, host, port) for
    BeginQuorumEpoch/EndQuorumEpoch v1 (empty: receivers use their voter set's endpoints).
    """
    api_key = api_key_of(payload)
    version = VERSIONS[api_key] if version is None else version
    if not MIN_VERSIONS[api_key] <= version <= VERSIONS[api_key]:
        raise ValueError(f"api {api_key} v{version} is outside {MIN_VERSIONS[api_key]}..{VERSIONS[api_key]}")
    endpoints = [{"name": name, "host": host, "port": port} for name, host, port in leader_endpoints]
    if isinstance(payload, FetchRequest):
        return api_key, version, fetch_request_body(payload, cluster_id)
    if isinstance(payload, FetchSnapshotRequest):
        return api_key, version, fetch_snapshot_request_body(payload, cluster_id)
    if isinstance(payload, VoteRequest):
        partition = {"replica_epoch": payload.candidate_epoch, "replica_id": payload.candidate_id,
                     "replica_directory_id": NO_DIRECTORY_ID, "voter_directory_id": NO_DIRECTORY_ID,
                     "last_offset_epoch": payload.last_offset_epoch, "last_offset": payload.last_offset,
                     "pre_vote": payload.pre_vote}
        if payload.pre_vote and version < 2:
            raise ValueError(f"a pre-vote needs Vote v2, not v{version}")
        extra: dict[str, Any] = {"voter_id": destination_id}
    elif isinstance(payload, BeginQuorumEpochRequest):
        partition = {"voter_directory_id": NO_DIRECTORY_ID, "leader_id": payload.leader_id,
                     "leader_epoch": payload.leader_epoch}
        extra = {"voter_id": destination_id, "leader_endpoints": endpoints}
    elif isinstance(payload, EndQuorumEpochRequest):
        partition = {"leader_id": payload.leader_id, "leader_epoch": payload.leader_epoch,
                     "preferred_successors": list(payload.preferred_successors),
                     "preferred_candidates": [{"candidate_id": c, "candidate_directory_id": NO_DIRECTORY_ID}
                                              for c in payload.preferred_successors]}
        extra = {"leader_endpoints": endpoints}
    else:
        raise TypeError(f"not a core request: {type(payload).__name__}")
    return api_key, version, {"cluster_id": cluster_id, **extra, "topics": _topics(partition)}


#: The largest epoch a KRaft message may carry. Epochs grow by one per election, so one near the
#: int32 limit can only come from a bogus peer, and a node that took it would overflow int32 at its
#: next election (its log could then not be written: found by the controller-listener fuzzer).
MAX_EPOCH = 2**31 - 2**20


def _checked_epochs(payload: Payload, error: ErrorCode) -> Payload:
    """``payload``, or KraftRpcError(``error``) if one of its epochs is beyond ``MAX_EPOCH``."""
    for field in dataclasses.fields(payload):  # type: ignore[arg-type]
        value = getattr(payload, field.name)
        if field.name.endswith("epoch") and isinstance(value, int) and value > MAX_EPOCH:
            raise KraftRpcError(error, f"{field.name} {value} is beyond the largest epoch {MAX_EPOCH}")
    return payload


def payload_from_request(api_key: int, version: int, kio_request: Any, source_id: int | None = None) -> Payload:
    """The core request in a decoded KRaft request (check the cluster id first).

    ``source_id`` is the node the transport attributes the request to, if it knows one; a request
    whose own sender id (candidate, leader, replica) differs from it is INVALID_REQUEST.
    Raises :class:`KraftRpcError`: INVALID_REQUEST if the request is not for ``__cluster_metadata-0``
    alone (``RaftUtil.hasValidTopicPartition``), carries an epoch beyond ``MAX_EPOCH`` or, for
    Fetch, waits a negative time;
    UNSUPPORTED_VERSION for a version outside this mapping.
    """
    if api_key not in MIN_VERSIONS or version < MIN_VERSIONS[api_key]:
        raise KraftRpcError(ErrorCode.unsupported_version, f"api {api_key} v{version} is not a KRaft RPC we map")
    payload: Payload
    if api_key == FETCH:
        payload = fetch_request_payload(kio_request)
    elif api_key == FETCH_SNAPSHOT:
        payload = fetch_snapshot_request_payload(kio_request)
    else:
        p = _single_partition(kio_request.topics, "request")
        if api_key == VOTE:
            payload = VoteRequest(p.replica_epoch, p.replica_id, p.last_offset_epoch, p.last_offset,
                                  version >= 2 and bool(p.pre_vote))  # v0/v1: a real vote
        elif api_key == BEGIN_QUORUM_EPOCH:
            payload = BeginQuorumEpochRequest(p.leader_id, p.leader_epoch)
        else:
            successors = (tuple(c.candidate_id for c in p.preferred_candidates) if version >= 1
                          else tuple(p.preferred_successors))
            payload = EndQuorumEpochRequest(p.leader_id, p.leader_epoch, successors)
    if source_id is not None and request_sender(payload) != source_id:
        raise KraftRpcError(ErrorCode.invalid_request,
                            f"request names sender {request_sender(payload)}, it came from {source_id}")
    return _checked_epochs(payload, ErrorCode.invalid_request)


# --------------------------------------------------------------------------- responses


def response_body(payload: Payload, *, leader_endpoint: tuple[str, int] | None = None) -> dict[str, Any]:
    """The body dict of a core response, for any version of its API (``RaftUtil.singleton*Response``).

    ``leader_endpoint`` (host, port) is the known leader's address on the listener the request
    came in on; it is sent (``node_endpoints``, v1+ / Fetch v16+) only when a leader is known.
    """
    leader_id = (payload.current_leader.leader_id if isinstance(payload, (FetchResponse, FetchSnapshotResponse))
                 else payload.leader_id)
    nodes = ([{"node_id": leader_id, "host": leader_endpoint[0], "port": leader_endpoint[1]}]
             if leader_endpoint is not None and leader_id >= 0 else [])
    if isinstance(payload, FetchResponse):
        return fetch_response_body(payload, nodes)
    if isinstance(payload, FetchSnapshotResponse):
        return fetch_snapshot_response_body(payload, nodes)
    if not isinstance(payload, (VoteResponse, BeginQuorumEpochResponse, EndQuorumEpochResponse)):
        raise TypeError(f"not a core response: {type(payload).__name__}")
    partition = {"partition_index": METADATA_PARTITION, "error_code": error_to_wire(payload.error),
                 "leader_id": payload.leader_id, "leader_epoch": payload.leader_epoch}
    if isinstance(payload, VoteResponse):
        partition["vote_granted"] = payload.vote_granted
    return {"error_code": ErrorCode.none, "topics": _topics(partition), "node_endpoints": nodes}


def error_response_body(api_key: int, error: ErrorCode) -> dict[str, Any]:
    """A response carrying only a top-level error (Kafka's ``RaftUtil.errorResponse``)."""
    if api_key == FETCH:
        return {"throttle_time": 0, "error_code": error, "session_id": 0, "responses": []}
    if api_key == FETCH_SNAPSHOT:
        return {"throttle_time": 0, "error_code": error, "topics": []}
    if api_key in (VOTE, BEGIN_QUORUM_EPOCH, END_QUORUM_EPOCH):
        return {"error_code": error, "topics": []}
    raise ValueError(f"api {api_key} is not a KRaft RPC")


def payload_from_response(api_key: int, version: int, kio_response: Any) -> Payload:
    """The core response in a decoded KRaft response.

    Raises :class:`KraftRpcError` for a top-level error, a response not for ``__cluster_metadata-0``
    alone, or a partition error the core does not know (e.g. INVALID_VOTER_KEY): the caller treats
    the response as lost; an epoch beyond ``MAX_EPOCH`` is such an error too.
    """
    return _checked_epochs(_response_payload(api_key, version, kio_response), ErrorCode.unknown_server_error)


def _response_payload(api_key: int, version: int, kio_response: Any) -> Payload:
    if api_key not in MIN_VERSIONS or version < MIN_VERSIONS[api_key]:
        raise KraftRpcError(ErrorCode.unsupported_version, f"api {api_key} v{version} is not a KRaft RPC we map")
    if kio_response.error_code != ErrorCode.none:
        raise KraftRpcError(ErrorCode(kio_response.error_code), "top-level error")
    if api_key == FETCH:
        return fetch_response_payload(kio_response)
    if api_key == FETCH_SNAPSHOT:
        return fetch_snapshot_response_payload(kio_response)
    p = _single_partition(kio_response.topics, "response", ErrorCode.unknown_server_error)
    error = error_from_wire(p.error_code)
    if api_key == VOTE:
        return VoteResponse(error, p.leader_id, p.leader_epoch, p.vote_granted)
    if api_key == BEGIN_QUORUM_EPOCH:
        return BeginQuorumEpochResponse(error, p.leader_id, p.leader_epoch)
    return EndQuorumEpochResponse(error, p.leader_id, p.leader_epoch)


# --------------------------------------------------------------------------- helpers


def _topics(partition: dict[str, Any]) -> list[dict[str, Any]]:
    """The one topic, one partition list of Vote/BeginQuorumEpoch/EndQuorumEpoch bodies."""
    return [{"topic_name": METADATA_TOPIC, "partitions": [{"partition_index": METADATA_PARTITION, **partition}]}]


def _single_partition(topics: Sequence[Any], what: str, error: ErrorCode = ErrorCode.invalid_request) -> Any:
    """The partition of a by-name single-partition message, if it is ``__cluster_metadata-0``."""
    if (len(topics) != 1 or topics[0].topic_name != METADATA_TOPIC or len(topics[0].partitions) != 1
            or topics[0].partitions[0].partition_index != METADATA_PARTITION):
        raise KraftRpcError(error, f"KRaft {what} must name only {METADATA_TOPIC}-{METADATA_PARTITION}")
    return topics[0].partitions[0]
