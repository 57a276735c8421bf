"""Raft core messages through real KRaft RPC bytes (our codec) and back: ``cluster/raft/kraft_rpc.py``
(with ``kraft_fetch_rpc.py`` and ``kraft_wire.py``)."""

from __future__ import annotations

import dataclasses
import struct
import uuid
from typing import Any

import pytest

from cluster.raft import kraft_rpc
from cluster.raft.kraft_fetch_rpc import fetch_replica_id, is_replica_fetch
from cluster.raft.kraft_rpc import (
    BEGIN_QUORUM_EPOCH,
    END_QUORUM_EPOCH,
    FETCH,
    FETCH_SNAPSHOT,
    MIN_VERSIONS,
    VERSIONS,
    VOTE,
    check_cluster_id,
    check_voter_id,
    error_response_body,
    payload_from_request,
    payload_from_response,
    request_body,
    request_sender,
    response_body,
)
from cluster.raft.kraft_wire import METADATA_TOPIC, METADATA_TOPIC_ID, KraftRpcError
from cluster.raft.log import Entry, OffsetAndEpoch
from cluster.raft.messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    Errors,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    LeaderIdAndEpoch,
    VoteRequest,
    VoteResponse,
)
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.codec import ErrorCode

CLUSTER = "MkU3OEVBNTcwNTJENDM2Qk"

REQUESTS = [
    VoteRequest(candidate_epoch=7, candidate_id=1, last_offset_epoch=6, last_offset=120),
    BeginQuorumEpochRequest(leader_id=1, leader_epoch=7),
    EndQuorumEpochRequest(leader_id=1, leader_epoch=7, preferred_successors=(3, 2)),
    FetchRequest(replica_id=2, fetch_offset=118, last_fetched_epoch=6, current_leader_epoch=7, max_wait_ms=500),
    FetchSnapshotRequest(replica_id=2, current_leader_epoch=7, snapshot_id=OffsetAndEpoch(100, 6), position=4096,
                         max_bytes=8192),
]

LEADER = LeaderIdAndEpoch(1, 7)
ENTRIES = (Entry(10, 6, b"a"), Entry(11, 6, b"b"), Entry(12, 7, b"\x00\x00", control=True), Entry(13, 7, b"c"))
RESPONSES = [
    VoteResponse(Errors.NONE, leader_id=-1, leader_epoch=7, vote_granted=True),
    BeginQuorumEpochResponse(Errors.NONE, leader_id=1, leader_epoch=7),
    EndQuorumEpochResponse(Errors.NONE, leader_id=1, leader_epoch=7),
    FetchResponse(Errors.NONE, LEADER, high_watermark=12, entries=ENTRIES, log_start_offset=10),
    FetchSnapshotResponse(Errors.NONE, LEADER, snapshot_id=OffsetAndEpoch(100, 6), size=10_000, position=4096,
                          data=bytes(range(256)) * 4),
]


def _versions(api_key: int) -> range:
    return range(MIN_VERSIONS[api_key], VERSIONS[api_key] + 1)


def _cases(messages: list[Any]) -> list[tuple[Any, int]]:
    return [pytest.param(m, v, id=f"{type(m).__name__}-v{v}")
            for m in messages for v in _versions(kraft_rpc.api_key_of(m))]


def wire_request(api_key: int, version: int, body: dict[str, Any]) -> Any:
    """Encode a request with our codec, check its header, decode its body."""
    raw = memoryview(codec.encode_request(api_key, version, 42, "controller-1", body))
    header = codec.decode_request_header(raw)
    assert (header.api_key, header.api_version, header.correlation_id) == (api_key, version, 42)
    return codec.decode_request(api_key, version, raw, header.size)


def request_round_trip(payload: Any, version: int | None = None, **kwargs: Any) -> tuple[Any, Any]:
    api_key, version, body = request_body(payload, CLUSTER, version=version, **kwargs)
    kio_request = wire_request(api_key, version, body)
    return payload_from_request(api_key, version, kio_request, source_id=request_sender(payload)), kio_request


def wire_response(api_key: int, version: int, body: dict[str, Any]) -> Any:
    return codec.decode_response(api_key, version, codec.encode_response_body(api_key, version, body))


def response_round_trip(payload: Any, version: int, **kwargs: Any) -> tuple[Any, Any]:
    api_key = kraft_rpc.api_key_of(payload)
    kio_response = wire_response(api_key, version, response_body(payload, **kwargs))
    return payload_from_response(api_key, version, kio_response), kio_response


# ------------------------------------------------------------------------- versions


def test_chosen_versions_are_known_to_the_codec() -> None:
    assert VERSIONS == {VOTE: 2, BEGIN_QUORUM_EPOCH: 1, END_QUORUM_EPOCH: 1, FETCH: 17, FETCH_SNAPSHOT: 1}
    for api_key, version in VERSIONS.items():
        low, high = codec.known_versions(api_key)
        assert low <= MIN_VERSIONS[api_key] <= version <= high


def test_request_body_refuses_versions_outside_the_mapping() -> None:
    with pytest.raises(ValueError):
        request_body(REQUESTS[0], CLUSTER, version=3)  # beyond Vote v2 (pre-vote, KIP-996)
    with pytest.raises(ValueError):
        request_body(REQUESTS[3], CLUSTER, version=11)  # no diverging epoch below Fetch v12


# ------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(("payload", "version"), _cases(REQUESTS))
def test_request_round_trip(payload: Any, version: int) -> None:
    back, kio_request = request_round_trip(payload, version, destination_id=2)
    assert back == payload
    assert kio_request.cluster_id == CLUSTER
    topic = kio_request.topics[0]
    if isinstance(payload, FetchRequest):
        assert (topic.topic_id if version >= 13 else topic.topic) == (METADATA_TOPIC_ID if version >= 13
                                                                      else METADATA_TOPIC)
        assert topic.partitions[0].partition == 0
        assert fetch_replica_id(kio_request) == 2 and is_replica_fetch(kio_request)
        if version >= 15:
            assert kio_request.replica_state.replica_id == 2 and not hasattr(kio_request, "replica_id")
        else:
            assert kio_request.replica_id == 2
    elif isinstance(payload, FetchSnapshotRequest):
        assert topic.name == METADATA_TOPIC and topic.partitions[0].partition == 0
        assert kio_request.replica_id == 2 and kio_request.max_bytes == 8192
        partition = topic.partitions[0]
        assert (partition.snapshot_id.end_offset, partition.snapshot_id.epoch, partition.position) == (100, 6, 4096)
    else:
        assert topic.topic_name == METADATA_TOPIC and topic.partitions[0].partition_index == 0
        if isinstance(payload, (VoteRequest, BeginQuorumEpochRequest)):
            assert getattr(kio_request, "voter_id", -1) == (2 if version >= 1 else -1)


@pytest.mark.parametrize(("payload", "version"), _cases(RESPONSES))
def test_response_round_trip(payload: Any, version: int) -> None:
    back, kio_response = response_round_trip(payload, version)
    assert back == payload
    assert kio_response.error_code == ErrorCode.none


def test_fetch_entries_of_two_epochs_and_a_control_entry() -> None:
    back, kio_response = response_round_trip(RESPONSES[3], VERSIONS[FETCH])
    assert back.entries == ENTRIES
    assert [e.epoch for e in back.entries] == [6, 6, 7, 7] and [e.control for e in back.entries] == [0, 0, 1, 0]
    partition = kio_response.responses[0].partitions[0]
    assert kio_response.responses[0].topic_id == METADATA_TOPIC_ID == uuid.UUID("00000000-0000-0000-0000-000000000001")
    assert (partition.current_leader.leader_id, partition.current_leader.leader_epoch) == (1, 7)
    assert partition.high_watermark == 12 and partition.diverging_epoch.epoch == -1
    assert partition.log_start_offset == 10
    assert (partition.snapshot_id.end_offset, partition.snapshot_id.epoch) == (-1, -1)


def test_diverging_epoch_answer() -> None:
    answer = FetchResponse(Errors.NONE, LEADER, high_watermark=9, diverging_epoch=OffsetAndEpoch(offset=11, epoch=5))
    for version in _versions(FETCH):
        back, kio_response = response_round_trip(answer, version)
        assert back == answer
        diverging = kio_response.responses[0].partitions[0].diverging_epoch
        assert (diverging.epoch, diverging.end_offset) == (5, 11)


def test_snapshot_id_answer() -> None:
    """A Fetch the leader's log no longer serves: the snapshot to load (KIP-630)."""
    answer = FetchResponse(Errors.NONE, LEADER, high_watermark=120, snapshot_id=OffsetAndEpoch(100, 6),
                           log_start_offset=100)
    for version in _versions(FETCH):
        back, kio_response = response_round_trip(answer, version)
        assert back == answer
        snapshot_id = kio_response.responses[0].partitions[0].snapshot_id
        assert (snapshot_id.end_offset, snapshot_id.epoch) == (100, 6)


def test_fetch_snapshot_chunk_bytes_arrive_unchanged() -> None:
    chunk = RESPONSES[4]
    for version in _versions(FETCH_SNAPSHOT):
        back, kio_response = response_round_trip(chunk, version, leader_endpoint=("ctrl-1", 9093))
        assert back.data == chunk.data and (back.size, back.position) == (10_000, 4096)
        partition = kio_response.topics[0].partitions[0]
        assert kio_response.topics[0].name == METADATA_TOPIC and partition.index == 0
        assert bytes(partition.unaligned_records) == chunk.data
        endpoints = getattr(kio_response, "node_endpoints", ())
        assert [(n.node_id, n.port) for n in endpoints] == ([(1, 9093)] if version >= 1 else [])


def test_fetch_snapshot_of_an_empty_snapshot() -> None:
    empty = FetchSnapshotResponse(Errors.NONE, LEADER, OffsetAndEpoch(3, 1), size=0, position=0, data=b"")
    assert response_round_trip(empty, 1)[0] == empty


def test_leader_endpoint_is_sent_when_a_leader_is_known() -> None:
    _, kio_response = response_round_trip(RESPONSES[1], 1, leader_endpoint=("ctrl-1", 9093))
    assert [(n.node_id, n.host, n.port) for n in kio_response.node_endpoints] == [(1, "ctrl-1", 9093)]
    _, kio_response = response_round_trip(RESPONSES[0], 1, leader_endpoint=("ctrl-1", 9093))
    assert kio_response.node_endpoints == ()  # leader_id -1: nothing to point at
    _, kio_response = response_round_trip(RESPONSES[3], 17, leader_endpoint=("ctrl-1", 9093))
    assert [(n.node_id, n.port) for n in kio_response.node_endpoints] == [(1, 9093)]


def test_leader_endpoints_in_begin_quorum_epoch_request() -> None:
    _, kio_request = request_round_trip(REQUESTS[1], 1, leader_endpoints=[("CONTROLLER", "ctrl-1", 9093)])
    assert [(e.name, e.host, e.port) for e in kio_request.leader_endpoints] == [("CONTROLLER", "ctrl-1", 9093)]


def test_end_quorum_epoch_successors_in_both_shapes() -> None:
    _, v0 = request_round_trip(REQUESTS[2], 0)
    _, v1 = request_round_trip(REQUESTS[2], 1)
    assert v0.topics[0].partitions[0].preferred_successors == (3, 2)
    assert [c.candidate_id for c in v1.topics[0].partitions[0].preferred_candidates] == [3, 2]


# ------------------------------------------------------------------------- errors


@pytest.mark.parametrize("error", list(Errors), ids=lambda e: e.name)
def test_error_answers_round_trip(error: Errors) -> None:
    answers = [VoteResponse(error, 3, 8, False), BeginQuorumEpochResponse(error, 3, 8),
               EndQuorumEpochResponse(error, -1, 8), FetchResponse(error, LeaderIdAndEpoch(3, 8)),
               FetchSnapshotResponse(error, LeaderIdAndEpoch(3, 8))]
    for answer in answers:
        version = VERSIONS[kraft_rpc.api_key_of(answer)]
        back, kio_response = response_round_trip(answer, version)
        assert back == answer
        partitions = kio_response.responses if isinstance(answer, FetchResponse) else kio_response.topics
        assert int(partitions[0].partitions[0].error_code) == int(error)


@pytest.mark.parametrize("api_key", [VOTE, BEGIN_QUORUM_EPOCH, END_QUORUM_EPOCH, FETCH, FETCH_SNAPSHOT])
def test_top_level_error_is_a_lost_response(api_key: int) -> None:
    kio_response = wire_response(api_key, VERSIONS[api_key],
                                 error_response_body(api_key, ErrorCode.inconsistent_cluster_id))
    with pytest.raises(KraftRpcError) as raised:
        payload_from_response(api_key, VERSIONS[api_key], kio_response)
    assert raised.value.error == ErrorCode.inconsistent_cluster_id


def test_partition_error_the_core_does_not_know_is_a_lost_response() -> None:
    body = response_body(RESPONSES[0])
    body["topics"][0]["partitions"][0]["error_code"] = ErrorCode.invalid_voter_key
    with pytest.raises(KraftRpcError) as raised:
        payload_from_response(VOTE, 1, wire_response(VOTE, 1, body))
    assert raised.value.error == ErrorCode.invalid_voter_key


def test_cluster_id_check() -> None:
    assert check_cluster_id(None, CLUSTER) is None  # Kafka does not enforce an absent cluster id
    assert check_cluster_id(CLUSTER, CLUSTER) is None
    assert check_cluster_id("another", CLUSTER) == ErrorCode.inconsistent_cluster_id
    assert check_cluster_id("", CLUSTER) is None  # a new controller that has not learnt it yet
    assert check_cluster_id(CLUSTER, "") is None  # nor have we
    api_key, version, body = request_body(REQUESTS[3], "another")
    assert check_cluster_id(wire_request(api_key, version, body).cluster_id, CLUSTER) == ErrorCode.inconsistent_cluster_id


def test_voter_id_check() -> None:
    _, kio_request = request_round_trip(REQUESTS[0], 1, destination_id=2)
    assert check_voter_id(kio_request, 2) is None
    assert check_voter_id(kio_request, 3) == ErrorCode.invalid_voter_key
    _, kio_v0 = request_round_trip(REQUESTS[0], 0, destination_id=2)
    assert check_voter_id(kio_v0, 3) is None  # v0 names no voter


def test_other_topic_or_partition_is_invalid_request() -> None:
    api_key, version, body = request_body(REQUESTS[0], CLUSTER)
    body["topics"][0]["topic_name"] = "orders"
    with pytest.raises(KraftRpcError) as raised:
        payload_from_request(api_key, version, wire_request(api_key, version, body))
    assert raised.value.error == ErrorCode.invalid_request
    api_key, version, body = request_body(REQUESTS[3], CLUSTER)
    body["topics"][0]["partitions"][0]["partition"] = 1
    with pytest.raises(KraftRpcError):
        payload_from_request(api_key, version, wire_request(api_key, version, body))


def test_fetch_snapshot_of_another_topic_or_partition_is_invalid_request() -> None:
    for key, value in (("name", "orders"), ("partition", 1)):
        api_key, version, body = request_body(REQUESTS[4], CLUSTER)
        target = body["topics"][0] if key == "name" else body["topics"][0]["partitions"][0]
        target[key] = value
        with pytest.raises(KraftRpcError) as raised:
            payload_from_request(api_key, version, wire_request(api_key, version, body))
        assert raised.value.error == ErrorCode.invalid_request
    body = response_body(RESPONSES[4])
    body["topics"][0]["partitions"][0]["index"] = 1
    with pytest.raises(KraftRpcError):
        payload_from_response(FETCH_SNAPSHOT, 1, wire_response(FETCH_SNAPSHOT, 1, body))


def test_sender_must_match_the_transport_source() -> None:
    api_key, version, body = request_body(REQUESTS[3], CLUSTER)
    kio_request = wire_request(api_key, version, body)
    assert payload_from_request(api_key, version, kio_request, source_id=None) == REQUESTS[3]
    with pytest.raises(KraftRpcError) as raised:
        payload_from_request(api_key, version, kio_request, source_id=3)
    assert raised.value.error == ErrorCode.invalid_request


def test_a_pre_vote_is_sent_and_read_as_vote_v2_and_older_votes_are_real_votes() -> None:
    assert VERSIONS[VOTE] == 2
    pre_vote = dataclasses.replace(REQUESTS[0], pre_vote=True)
    api_key, version, body = request_body(pre_vote, CLUSTER)
    assert (api_key, version, body["topics"][0]["partitions"][0]["pre_vote"]) == (VOTE, 2, True)
    assert payload_from_request(VOTE, 2, wire_request(VOTE, 2, body)) == pre_vote
    plain = request_body(REQUESTS[0], CLUSTER)[2]
    assert payload_from_request(VOTE, 2, wire_request(VOTE, 2, plain)) == REQUESTS[0]
    for old in (0, 1):  # no PreVote field: a real vote, whatever the dict said
        assert payload_from_request(VOTE, old, wire_request(VOTE, old, body)).pre_vote is False
    with pytest.raises(ValueError):
        request_body(pre_vote, CLUSTER, version=1)


def test_fetch_v18_is_read_and_fetch_below_v12_is_not() -> None:
    body = request_body(REQUESTS[3], CLUSTER)[2]
    assert payload_from_request(FETCH, 18, wire_request(FETCH, 18, body)) == REQUESTS[3]
    with pytest.raises(KraftRpcError) as raised:
        payload_from_request(FETCH, 11, wire_request(FETCH, 11, body))
    assert raised.value.error == ErrorCode.unsupported_version


# ------------------------------------------------------------------------- consumer fetches


def _string(s: str) -> bytes:
    return struct.pack(">h", len(s)) + s.encode()


def librdkafka_fetch_v11() -> bytes:
    """A Fetch v11 as librdkafka's ``rd_kafka_FetchRequest`` writes it (non-flexible), packed by hand."""
    header = struct.pack(">hhi", FETCH, 11, 7) + _string("rdkafka")
    body = struct.pack(">iiiibii", -1, 500, 1, 52428800, 1, 0, -1)  # replica, wait, min, max, isolation, session
    body += struct.pack(">i", 1) + _string("orders") + struct.pack(">i", 1)
    body += struct.pack(">iiqqi", 0, -1, 42, -1, 1048576)  # partition, leader epoch, offset, log start, max
    body += struct.pack(">i", 0) + _string("")  # no forgotten topics, rack id ""
    return header + body


def test_librdkafka_fetch_is_a_consumer_fetch() -> None:
    raw = memoryview(librdkafka_fetch_v11())
    header = codec.decode_request_header(raw)
    kio_request = codec.decode_request(FETCH, header.api_version, raw, header.size)
    assert kio_request.replica_id == -1 and kio_request.topics[0].topic == "orders"
    assert fetch_replica_id(kio_request) == -1
    assert not is_replica_fetch(kio_request)


def test_java_consumer_fetch_v17_is_a_consumer_fetch_even_for_the_metadata_topic() -> None:
    body = request_body(REQUESTS[3], CLUSTER)[2]
    del body["replica_id"], body["replica_state"]  # a consumer leaves ReplicaState at its default
    kio_request = wire_request(FETCH, 17, body)
    assert kio_request.replica_state.replica_id == -1
    assert not is_replica_fetch(kio_request)
    replica = wire_request(FETCH, 17, request_body(REQUESTS[3], CLUSTER)[2])
    assert is_replica_fetch(replica)


@pytest.mark.parametrize("request_payload", [
    VoteRequest(candidate_epoch=2**31 - 1, candidate_id=2, last_offset_epoch=0, last_offset=0),
    BeginQuorumEpochRequest(leader_id=2, leader_epoch=2**31 - 1),
    FetchRequest(replica_id=2, fetch_offset=0, last_fetched_epoch=0, current_leader_epoch=2**31 - 1, max_wait_ms=0),
])
def test_an_epoch_near_the_int32_limit_is_an_invalid_request(request_payload: Any) -> None:
    """A node that took epoch 2**31 - 1 would overflow at its next election and never write its
    log again (the controller-listener fuzzer's find): such a request is INVALID_REQUEST."""
    with pytest.raises(KraftRpcError) as raised:
        request_round_trip(request_payload)
    assert raised.value.error == ErrorCode.invalid_request
    response = dataclasses.replace(RESPONSES[0], leader_epoch=kraft_rpc.MAX_EPOCH + 1)
    with pytest.raises(KraftRpcError):
        payload_from_response(VOTE, VERSIONS[VOTE], wire_response(VOTE, VERSIONS[VOTE], response_body(response)))
