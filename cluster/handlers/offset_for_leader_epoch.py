"""OffsetForLeaderEpoch (key 23), versions 2-4.

For each partition, the end offset of the requested ``leader_epoch`` from the partition's
leader-epoch cache (KIP-101; Kafka's ``LeaderEpochFileCache.endOffsetFor``): the log end offset for
the latest epoch, else the start offset of the next higher epoch, answered with the largest epoch
≤ the requested one; -1/-1 when it is unknown. Answered by the leader only, as Kafka does
(NOT_LEADER_OR_FOLLOWER elsewhere); a client-known ``current_leader_epoch`` is checked (KIP-320:
FENCED_LEADER_EPOCH if older, UNKNOWN_LEADER_EPOCH if newer). Consumers (librdkafka, Java) send it
after a leader epoch change to check their position was not truncated away (KIP-320).
v2: current_leader_epoch, throttle_time. v3: replica_id (-1 for a consumer). v4: flexible.
Kafka 4 removed v0-1 (KIP-896), which our codec does not know.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


@handles(ApiKey.OFFSET_FOR_LEADER_EPOCH, versions=(2, 4))
def handle_offset_for_leader_epoch(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Look up the end offset of one leader epoch per requested partition."""
    topics = []
    # Kafka: CLUSTER_ACTION on the cluster (followers), else DESCRIBE on each topic
    every_topic = not ctx.authorizing or ctx.authorized_on_cluster(AclOperation.CLUSTER_ACTION)
    for topic in request.topics:
        if every_topic or ctx.authorized(AclOperation.DESCRIBE, ResourceType.TOPIC, topic.topic):
            partitions = [_end_offset(ctx, topic.topic, p) for p in topic.partitions]
        else:
            partitions = [_answer(p.partition, ErrorCode.topic_authorization_failed) for p in topic.partitions]
        topics.append({"topic": topic.topic, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}


def _end_offset(ctx: RequestContext, topic: str, p: Any) -> dict[str, Any]:
    replica_manager = ctx.broker.replica_manager
    partition = replica_manager.partition(topic, p.partition)
    if partition is None:
        return _answer(p.partition, replica_manager.absent_error(topic, p.partition))
    refusal = partition.leader_error(getattr(p, "current_leader_epoch", -1))
    if refusal is not None:
        return _answer(p.partition, refusal)
    log = partition.log
    epoch, end_offset = log.leader_epochs.end_offset_for(p.leader_epoch, log.log_end_offset)
    return _answer(p.partition, ErrorCode.none, epoch, end_offset)


def _answer(index: int, code: ErrorCode, epoch: int = -1, end_offset: int = -1) -> dict[str, Any]:
    return {"partition": index, "error_code": code, "leader_epoch": epoch, "end_offset": end_offset}
