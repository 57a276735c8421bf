"""Raft core Fetch and FetchSnapshot messages ⇄ Kafka's Fetch (1) and FetchSnapshot (59) bodies
(KIP-595, KIP-630), as our codec (kio) spells them: the replication half of the KRaft RPCs.

``cluster.raft.kraft_rpc`` checks the API and version and calls these for the two APIs; the
election RPCs (Vote, BeginQuorumEpoch, EndQuorumEpoch) are mapped there. Fetch names the metadata
topic by id from v13 and by name before; a Fetch from replica id -1 (``CONSUMER_REPLICA_ID``) is a
consumer's, not a quorum member's (:func:`is_replica_fetch`). Bodies are plain dicts for the codec
and the same for every version (the codec drops keys a version lacks: ``replica_id`` below Fetch
v15, ``replica_state`` from it); decoded bodies are kio's dataclasses. Malformed messages raise
:class:`cluster.raft.kraft_wire.KraftRpcError`.

Concurrency: plain functions.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from cluster.raft.batches import decode_entries, encode_entries
from cluster.raft.kraft_wire import (
    METADATA_PARTITION,
    METADATA_TOPIC,
    METADATA_TOPIC_ID,
    NO_DIRECTORY_ID,
    KraftRpcError,
    error_from_wire,
    error_to_wire,
)
from cluster.raft.log import OffsetAndEpoch
from cluster.raft.messages import (
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    LeaderIdAndEpoch,
)
from pykafka_ops.protocol.codec import ErrorCode

__all__ = [
    "CONSUMER_REPLICA_ID", "MAX_FETCH_SIZE_BYTES", "fetch_replica_id", "fetch_request_body",
    "fetch_request_payload", "fetch_response_body", "fetch_response_payload",
    "fetch_snapshot_request_body", "fetch_snapshot_request_payload", "fetch_snapshot_response_body",
    "fetch_snapshot_response_payload", "is_replica_fetch",
]

#: ``FetchRequest.CONSUMER_REPLICA_ID``: the replica id of a fetch that is not a replica's.
CONSUMER_REPLICA_ID = -1

#: ``KafkaRaftClient.MAX_FETCH_SIZE_BYTES`` (= ``MAX_BATCH_SIZE_BYTES``, 8 MiB).
MAX_FETCH_SIZE_BYTES = 8 * 1024 * 1024


def fetch_replica_id(kio_request: Any) -> int:
    """The fetcher's replica id: ``replica_id`` below v15, ``replica_state.replica_id`` from v15
    (Kafka's ``FetchRequest.replicaId``)."""
    replica_id = getattr(kio_request, "replica_id", CONSUMER_REPLICA_ID)
    if replica_id != CONSUMER_REPLICA_ID:
        return replica_id
    state = getattr(kio_request, "replica_state", None)
    return state.replica_id if state is not None else CONSUMER_REPLICA_ID


def is_replica_fetch(kio_request: Any) -> bool:
    """Whether a decoded Fetch is a KRaft replica's: it comes from a replica id (>= 0, Kafka's
    ``FetchRequest.isValidBrokerId``) and asks for ``__cluster_metadata-0`` alone (by name, or by
    ``METADATA_TOPIC_ID`` from v13). A consumer's fetch (librdkafka, Kafka clients: replica id -1)
    is not, whatever it asks for."""
    return fetch_replica_id(kio_request) >= 0 and _fetch_topic_ok(kio_request.topics)


# --------------------------------------------------------------------------- requests


def fetch_request_body(payload: FetchRequest, cluster_id: str) -> dict[str, Any]:
    """The body dict of a core Fetch, as ``RaftUtil.singletonFetchRequest`` builds it."""
    partition = {"partition": METADATA_PARTITION, "current_leader_epoch": payload.current_leader_epoch,
                 "fetch_offset": payload.fetch_offset, "last_fetched_epoch": payload.last_fetched_epoch,
                 "log_start_offset": -1, "partition_max_bytes": MAX_FETCH_SIZE_BYTES,
                 "replica_directory_id": None}
    return {"cluster_id": cluster_id, "replica_id": payload.replica_id,
            "replica_state": {"replica_id": payload.replica_id, "replica_epoch": -1},
            "max_wait": payload.max_wait_ms, "min_bytes": 0, "max_bytes": MAX_FETCH_SIZE_BYTES,
            "isolation_level": 0, "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": METADATA_TOPIC, "topic_id": METADATA_TOPIC_ID, "partitions": [partition]}],
            "forgotten_topics_data": [], "rack_id": ""}


def fetch_snapshot_request_body(payload: FetchSnapshotRequest, cluster_id: str) -> dict[str, Any]:
    """The body dict of a core FetchSnapshot, as ``RaftUtil.singletonFetchSnapshotRequest`` builds it."""
    snapshot = {"partition": METADATA_PARTITION, "current_leader_epoch": payload.current_leader_epoch,
                "snapshot_id": _snapshot_id_to_wire(payload.snapshot_id),
                "position": payload.position, "replica_directory_id": NO_DIRECTORY_ID}
    return {"cluster_id": cluster_id, "replica_id": payload.replica_id, "max_bytes": payload.max_bytes,
            "topics": [{"name": METADATA_TOPIC, "partitions": [snapshot]}]}


def fetch_request_payload(kio_request: Any) -> FetchRequest:
    """The core Fetch in a decoded Fetch request; INVALID_REQUEST (:class:`KraftRpcError`) if it is
    not for ``__cluster_metadata-0`` alone or waits a negative time."""
    if not _fetch_topic_ok(kio_request.topics):
        raise KraftRpcError(ErrorCode.invalid_request, f"a KRaft Fetch must name only {METADATA_TOPIC}-0")
    p = kio_request.topics[0].partitions[0]
    max_wait_ms = kio_request.max_wait // datetime.timedelta(milliseconds=1)
    if max_wait_ms < 0:
        raise KraftRpcError(ErrorCode.invalid_request, f"negative max_wait_ms {max_wait_ms}")
    return FetchRequest(fetch_replica_id(kio_request), p.fetch_offset, p.last_fetched_epoch,
                        p.current_leader_epoch, max_wait_ms)


def fetch_snapshot_request_payload(kio_request: Any) -> FetchSnapshotRequest:
    """The core FetchSnapshot in a decoded FetchSnapshot request; INVALID_REQUEST
    (:class:`KraftRpcError`) if it is not for ``__cluster_metadata-0`` alone."""
    p = _snapshot_partition(kio_request.topics, "partition", ErrorCode.invalid_request)
    return FetchSnapshotRequest(kio_request.replica_id, p.current_leader_epoch,
                                OffsetAndEpoch(p.snapshot_id.end_offset, p.snapshot_id.epoch),
                                p.position, kio_request.max_bytes)


# --------------------------------------------------------------------------- responses


def fetch_response_body(payload: FetchResponse, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The body dict of a core Fetch answer, with ``nodes`` as its ``node_endpoints``."""
    diverging = payload.diverging_epoch
    partition = {
        "partition_index": METADATA_PARTITION, "error_code": error_to_wire(payload.error),
        "high_watermark": payload.high_watermark, "log_start_offset": payload.log_start_offset,
        "diverging_epoch": ({"epoch": diverging.epoch, "end_offset": diverging.offset} if diverging is not None
                            else {"epoch": -1, "end_offset": -1}),
        "snapshot_id": _snapshot_id_to_wire(payload.snapshot_id),
        "current_leader": _leader_to_wire(payload.current_leader),
        "records": encode_entries(payload.entries) if payload.entries else b"",
    }
    return {"throttle_time": 0, "error_code": ErrorCode.none, "session_id": 0, "node_endpoints": nodes,
            "responses": [{"topic": METADATA_TOPIC, "topic_id": METADATA_TOPIC_ID, "partitions": [partition]}]}


def fetch_snapshot_response_body(payload: FetchSnapshotResponse, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The body dict of a core FetchSnapshot answer, with ``nodes`` as its ``node_endpoints``."""
    snapshot = {"index": METADATA_PARTITION, "error_code": error_to_wire(payload.error),
                "snapshot_id": _snapshot_id_to_wire(payload.snapshot_id),
                "current_leader": _leader_to_wire(payload.current_leader),
                "size": payload.size, "position": payload.position, "unaligned_records": bytes(payload.data)}
    return {"throttle_time": 0, "error_code": ErrorCode.none, "node_endpoints": nodes,
            "topics": [{"name": METADATA_TOPIC, "partitions": [snapshot]}]}


def fetch_response_payload(kio_response: Any) -> FetchResponse:
    """The core Fetch answer in a decoded Fetch response (whose top-level error the caller checked)."""
    if not _fetch_topic_ok(kio_response.responses):
        raise KraftRpcError(ErrorCode.unknown_server_error, f"Fetch response is not for {METADATA_TOPIC}-0 alone")
    p = kio_response.responses[0].partitions[0]
    diverging = (OffsetAndEpoch(p.diverging_epoch.end_offset, p.diverging_epoch.epoch)
                 if p.diverging_epoch.epoch >= 0 else None)  # FetchResponse.isDivergingEpoch
    return FetchResponse(error_from_wire(p.error_code), _leader_from_wire(p.current_leader),
                         p.high_watermark, tuple(decode_entries(p.records or b"")), diverging,
                         _snapshot_id_from_wire(p.snapshot_id), p.log_start_offset)


def fetch_snapshot_response_payload(kio_response: Any) -> FetchSnapshotResponse:
    """The core FetchSnapshot answer in a decoded FetchSnapshot response (whose top-level error the
    caller checked)."""
    p = _snapshot_partition(kio_response.topics, "index", ErrorCode.unknown_server_error)
    return FetchSnapshotResponse(error_from_wire(p.error_code), _leader_from_wire(p.current_leader),
                                 _snapshot_id_from_wire(p.snapshot_id), p.size, p.position,
                                 bytes(p.unaligned_records or b""))


# --------------------------------------------------------------------------- helpers


def _fetch_topic_ok(topics: Sequence[Any]) -> bool:
    """Fetch request topics or response ``responses``: ``__cluster_metadata-0`` alone, by topic id
    from v13 and by name before (``RaftUtil.hasValidTopicPartition``)."""
    if len(topics) != 1 or len(topics[0].partitions) != 1:
        return False
    topic, partition = topics[0], topics[0].partitions[0]
    index = getattr(partition, "partition", getattr(partition, "partition_index", None))
    if hasattr(topic, "topic_id"):
        named = topic.topic_id == METADATA_TOPIC_ID
    else:
        named = topic.topic == METADATA_TOPIC
    return named and index == METADATA_PARTITION


def _snapshot_partition(topics: Sequence[Any], index_field: str, error: ErrorCode) -> Any:
    """The partition of a FetchSnapshot request or response (``topics[].name``, partitions keyed
    by ``partition`` / ``index``), if it is ``__cluster_metadata-0`` alone."""
    if (len(topics) != 1 or topics[0].name != METADATA_TOPIC or len(topics[0].partitions) != 1
            or getattr(topics[0].partitions[0], index_field) != METADATA_PARTITION):
        raise KraftRpcError(error, f"KRaft FetchSnapshot must name only {METADATA_TOPIC}-{METADATA_PARTITION}")
    return topics[0].partitions[0]


def _snapshot_id_to_wire(snapshot_id: OffsetAndEpoch | None) -> dict[str, int]:
    """A ``SnapshotId`` dict; (-1, -1) for None."""
    if snapshot_id is None:
        return {"end_offset": -1, "epoch": -1}
    return {"end_offset": snapshot_id.offset, "epoch": snapshot_id.epoch}


def _snapshot_id_from_wire(wire: Any) -> OffsetAndEpoch | None:
    """A ``SnapshotId``; None when unset (-1, -1; Kafka's ``isPartitionSnapshotted``). A half-set
    one is passed on: the core ignores an id with a negative part, as ``KafkaRaftClient`` does."""
    if wire.end_offset == -1 and wire.epoch == -1:
        return None
    return OffsetAndEpoch(wire.end_offset, wire.epoch)


def _leader_to_wire(leader: LeaderIdAndEpoch) -> dict[str, int]:
    return {"leader_id": leader.leader_id, "leader_epoch": leader.leader_epoch}


def _leader_from_wire(wire: Any) -> LeaderIdAndEpoch:
    return LeaderIdAndEpoch(wire.leader_id, wire.leader_epoch)
