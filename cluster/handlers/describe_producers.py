"""DescribeProducers (key 61), version 0 (KIP-664).

Answered from a replica's producer state (Kafka's ``ReplicaManager.activeProducerState`` and
``Partition.activeProducerState`` over ``ProducerStateManager.activeProducers``): per active
producer id its epoch, last sequence, last timestamp, the coordinator epoch of its last marker
and the first offset of its open transaction (-1 when none). Clients ask the leader; as Kafka's,
a follower answers too (``kafka-transactions describe-producers --broker-id`` asks a chosen
replica), and a broker without a replica of the partition answers NOT_LEADER_OR_FOLLOWER (or
UNKNOWN_TOPIC_OR_PARTITION when it does not exist).
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.log.producer_state import ProducerStateManager
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol.api_keys import ApiKey


@handles(ApiKey.DESCRIBE_PRODUCERS, versions=(0, 0))
def handle_describe_producers(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """The active producers of each requested partition this broker holds."""
    replicas = ctx.broker.replica_manager
    topics = []
    for topic in request.topics:
        partitions = []
        for index in topic.partition_indexes:
            partition = replicas.partition(topic.name, index)
            entry: dict[str, Any] = {"partition_index": index, "error_code": ErrorCode.none, "active_producers": []}
            if not ctx.authorized(AclOperation.READ, ResourceType.TOPIC, topic.name):  # Kafka: READ on the topic
                entry["error_code"] = ErrorCode.topic_authorization_failed
            elif partition is None:
                entry["error_code"] = replicas.absent_error(topic.name, index)
            else:
                entry["active_producers"] = active_producers(partition.log.producer_state)
            partitions.append(entry)
        topics.append({"name": topic.name, "partitions": partitions})
    return {"throttle_time": 0, "topics": topics}


def active_producers(state: ProducerStateManager) -> list[dict[str, Any]]:
    """The response's ``ProducerState`` entries of one partition, by producer id."""
    return [{"producer_id": pid, "producer_epoch": entry.epoch, "last_sequence": entry.last_seq,
             "last_timestamp": entry.last_timestamp, "coordinator_epoch": entry.coordinator_epoch,
             "current_txn_start_offset": entry.current_txn_first_offset}
            for pid, entry in sorted(state.producers.items())]
