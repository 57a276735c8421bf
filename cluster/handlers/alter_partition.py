"""AlterPartition (key 56), versions 2-3, on the controller listener: a partition leader asks the
active controller to change the ISR (shrink after ``replica.lag.time.max.ms``, expand on
catch-up); Kafka's ``ReplicationControlManager.alterPartition``, here
``AlterPartitionControl.alter_partition``.

v2: topics by id (KIP-841; v0-v1 named topics and spoke to the ZooKeeper controller: not
    implemented, Kafka 3.7+ brokers send v2 or v3); the new ISR as broker ids.
v3: the new ISR with each member's broker epoch (``new_isr_with_epochs``, KIP-903), so a
    replica that restarted since the leader saw it is INELIGIBLE_REPLICA.

Errors as Kafka: NOT_CONTROLLER and STALE_BROKER_EPOCH at the top level (then no topics); per
partition UNKNOWN_TOPIC_ID, UNKNOWN_TOPIC_OR_PARTITION, NOT_CONTROLLER, FENCED_LEADER_EPOCH,
INVALID_REQUEST, INVALID_UPDATE_VERSION, INELIGIBLE_REPLICA. ``leader_recovery_state`` is read
(RECOVERING is refused: an unclean leader is written RECOVERED at once, as pko's brokers have no
recovery step; see ``cluster.controller.partition_change``) and always answered RECOVERED.

Concurrency: runs on the node's event loop, like every handler.
"""

from __future__ import annotations

from typing import Any

from cluster.controller.alter_partition import (
    IsrMember,
    PartitionIsrRequest,
    TopicIsrRequest,
)
from cluster.handlers import CONTROLLER, handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


def _new_isr(partition: Any, version: int) -> tuple[IsrMember, ...]:
    if version >= 3:
        return tuple(IsrMember(m.broker_id, m.broker_epoch) for m in partition.new_isr_with_epochs)
    return tuple(IsrMember(broker_id) for broker_id in partition.new_isr)


@handles(ApiKey.ALTER_PARTITION, versions=(2, 3), listeners=(CONTROLLER,))
async def handle_alter_partition(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Check and commit the requested ISR changes; answer each partition's state."""
    if not ctx.authorized_on_cluster(AclOperation.CLUSTER_ACTION):  # Kafka's ControllerApis: CLUSTER_ACTION
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "topics": []}
    topics = [TopicIsrRequest(topic.topic_id, tuple(
        PartitionIsrRequest(p.partition_index, p.leader_epoch, _new_isr(p, ctx.api_version), p.partition_epoch,
                            p.leader_recovery_state) for p in topic.partitions)) for topic in request.topics]
    result = await ctx.broker.controller.alter_partition(request.broker_id, request.broker_epoch, topics)
    return {"throttle_time": 0, "error_code": result.error_code, "topics": [
        {"topic_id": topic_id, "partitions": [
            {"partition_index": p.partition, "error_code": p.error_code, "leader_id": p.leader_id,
             "leader_epoch": p.leader_epoch, "isr": list(p.isr), "leader_recovery_state": p.leader_recovery_state,
             "partition_epoch": p.partition_epoch} for p in partitions]}
        for topic_id, partitions in result.topics]}
