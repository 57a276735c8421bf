"""ListPartitionReassignments (key 46), version 0 (KIP-455): the partitions being reassigned,
with their replicas and the replicas being added and removed.

Forwarded to the active controller as Kafka's brokers do (``forwarding``), which answers from
its metadata image (``ReassignmentControl.list_partition_reassignments``): every reassigning
partition when ``topics`` is null, else those named (unknown ones are left out, as Kafka's).
DESCRIBE on the cluster is required (CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import BROKER, CONTROLLER, handles
from cluster.handlers.forwarding import forwarded
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


def _error_response(_request: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": code, "error_message": message, "topics": []}


@handles(ApiKey.LIST_PARTITION_REASSIGNMENTS, versions=(0, 0), listeners=(BROKER, CONTROLLER))
@forwarded(_error_response)
def handle_list_partition_reassignments(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """The ongoing reassignments, as the active controller knows them."""
    if not ctx.authorized_on_cluster(AclOperation.DESCRIBE):  # Kafka: DESCRIBE on the cluster
        return _error_response(request, ErrorCode.cluster_authorization_failed, "Cluster authorization failed.")
    topics = None if request.topics is None else [(t.name, t.partition_indexes) for t in request.topics]
    listed = ctx.broker.controller.list_partition_reassignments(topics)
    return {"throttle_time": 0, "error_code": ErrorCode.none, "error_message": None, "topics": [
        {"name": name, "partitions": [{"partition_index": p.partition, "replicas": list(p.replicas),
                                       "adding_replicas": list(p.adding_replicas),
                                       "removing_replicas": list(p.removing_replicas)} for p in partitions]}
        for name, partitions in listed]}
