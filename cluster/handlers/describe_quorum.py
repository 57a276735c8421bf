"""DescribeQuorum (key 55), versions 0-2: the metadata quorum as its leader reports it (KIP-595).

Answered as Kafka's ``KafkaRaftClient.handleDescribeQuorumRequest``: a request that does not name
exactly ``__cluster_metadata`` partition 0 gets UNKNOWN_TOPIC_OR_PARTITION on every partition it
names (``DescribeQuorumRequest.getPartitionLevelErrorResponse``); a node that is not the leader
answers NOT_LEADER_OR_FOLLOWER for the metadata partition (``singletonErrorResponse``); the leader
answers its id, epoch, high watermark and each voter's and observer's log end offset. Kafka's
brokers forward the request to the active controller, and so do ours (``forwarding``): on the
controller listener every node answers from its own quorum.

v1: + last fetch and last caught-up timestamps (the leader reports "now" for itself, -1 where
unknown). v2 (flexible): + replica directory ids (KIP-853; unknown here: the zero UUID, Kafka's
``ReplicaKey.NO_DIRECTORY_ID``), the voters' listeners (``nodes``) and error messages.

The data comes from the quorum's ``describe()`` (a ``QuorumDescription``, ``RaftQuorum``).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from cluster.handlers import BROKER, CONTROLLER, handles
from cluster.handlers.forwarding import forwarded
from cluster.network.request import RequestContext
from cluster.raft.config import QuorumDescription, ReplicaDescription
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

if TYPE_CHECKING:
    from cluster.broker import Broker

METADATA_TOPIC = "__cluster_metadata"
METADATA_PARTITION = 0
#: ``ReplicaKey.NO_DIRECTORY_ID``: what Kafka sends for a replica whose directory id is unknown.
NO_DIRECTORY_ID = uuid.UUID(int=0)
#: Kafka's ``Errors.message()`` for the partition errors this API answers (v2 sends them).
_MESSAGES = {
    ErrorCode.unknown_topic_or_partition: "This server does not host this topic-partition.",
    ErrorCode.not_leader_or_follower: "For requests intended only for the leader, this error indicates that the "
                                      "broker is not the current leader. For requests intended for any replica, "
                                      "this error indicates that the broker is not a replica of the topic partition.",
}


def _replica(row: ReplicaDescription) -> dict[str, Any]:
    return {"replica_id": row.replica_id,
            "replica_directory_id": getattr(row, "replica_directory_id", None) or NO_DIRECTORY_ID,
            "log_end_offset": row.log_end_offset, "last_fetch_timestamp": row.last_fetch_timestamp,
            "last_caught_up_timestamp": row.last_caught_up_timestamp}


def _nodes(broker: Broker, description: QuorumDescription) -> list[dict[str, Any]]:
    """v2 ``nodes``: each voter's quorum listener, where the cluster file places it: Kafka's
    CONTROLLER listener on a node that has one (a controller port, or a controller-only node),
    else the node's one listener."""
    nodes = []
    for voter in description.voters:
        try:
            node = broker.cluster.node(voter.replica_id)
        except KeyError:  # a voter the cluster file does not list: no listener to tell
            continue
        own_listener = getattr(node, "controller_port", None) is not None or not node.is_broker
        name, port = ("CONTROLLER" if own_listener else "PLAINTEXT"), getattr(node, "quorum_port", node.port)
        nodes.append({"node_id": voter.replica_id,
                      "listeners": [{"name": name, "host": broker.cluster.host_of(voter.replica_id), "port": port}]})
    return nodes


def _error_response(topics: list[tuple[str, list[int]]], error: ErrorCode) -> dict[str, Any]:
    """``error`` on each (topic, partitions) named; the other partition fields keep Kafka's defaults."""
    return {"error_code": ErrorCode.none, "error_message": None, "nodes": [],
            "topics": [{"topic_name": name,
                        "partitions": [{"partition_index": p, "error_code": error, "error_message": _MESSAGES[error],
                                        "current_voters": [], "observers": []} for p in partitions]}
                       for name, partitions in topics]}


def _names_metadata_partition(request: Any) -> bool:
    """Kafka's ``hasValidTopicPartition``: exactly one topic, ``__cluster_metadata``, partition 0."""
    topics = request.topics
    return (len(topics) == 1 and topics[0].topic_name == METADATA_TOPIC and len(topics[0].partitions) == 1
            and topics[0].partitions[0].partition_index == METADATA_PARTITION)


def _unanswered(request: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    return {"error_code": code, "error_message": message, "topics": [], "nodes": []}


@handles(ApiKey.DESCRIBE_QUORUM, versions=(0, 2), listeners=(BROKER, CONTROLLER))
@forwarded(_unanswered)
def handle_describe_quorum(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Describe the metadata quorum."""
    if not _names_metadata_partition(request):
        named = [(t.topic_name, [p.partition_index for p in t.partitions]) for t in request.topics]
        return _error_response(named, ErrorCode.unknown_topic_or_partition)
    description = ctx.broker.controller.quorum.describe()
    if description.leader_id != ctx.broker.node_id:
        return _error_response([(METADATA_TOPIC, [METADATA_PARTITION])], ErrorCode.not_leader_or_follower)
    partition = {"partition_index": METADATA_PARTITION, "error_code": ErrorCode.none, "error_message": None,
                 "leader_id": description.leader_id, "leader_epoch": description.leader_epoch,
                 "high_watermark": description.high_watermark,
                 "current_voters": [_replica(r) for r in description.voters],
                 "observers": [_replica(r) for r in description.observers]}
    return {"error_code": ErrorCode.none, "error_message": None,
            "topics": [{"topic_name": METADATA_TOPIC, "partitions": [partition]}],
            "nodes": _nodes(ctx.broker, description)}
