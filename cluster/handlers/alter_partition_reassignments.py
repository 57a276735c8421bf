"""AlterPartitionReassignments (key 45), versions 0-1 (KIP-455; v1: KIP-860's
``allow_replication_factor_change``).

Sent to any broker, it is forwarded to the active controller (``forwarding``), which starts,
replaces or cancels (``replicas`` null) the reassignment of each partition
(``ReassignmentControl.alter_partition_reassignments``). Per-partition errors as Kafka's; a request
that fails as a whole (not authorized: CLUSTER_AUTHORIZATION_FAILED; no answer within
``timeout_ms``: REQUEST_TIMED_OUT) carries its error at the top and on every partition. The
answer comes once the reassignment is committed, not once the data has moved: clients follow it
with ListPartitionReassignments (``pko reassign --verify``).
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from cluster.controller.reassignment_control import ReassignmentRequest, ReassignmentResult
from cluster.handlers import BROKER, CONTROLLER, handles
from cluster.handlers.forwarding import forwarded
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


def _requested(request: Any) -> list[ReassignmentRequest]:
    return [ReassignmentRequest(t.name, p.partition_index, None if p.replicas is None else tuple(p.replicas))
            for t in request.topics for p in t.partitions]


def _body(request: Any, code: ErrorCode, message: str | None, results: list[ReassignmentResult]) -> dict[str, Any]:
    """The response body, results grouped by topic in the order asked."""
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_topic.setdefault(r.topic, []).append({"partition_index": r.partition, "error_code": r.error_code,
                                                 "error_message": r.error_message})
    return {"throttle_time": 0, "error_code": code, "error_message": message,
            "allow_replication_factor_change": getattr(request, "allow_replication_factor_change", True),
            "responses": [{"name": name, "partitions": rows} for name, rows in by_topic.items()]}


def _error_response(request: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    return _body(request, code, message, [ReassignmentResult(r.topic, r.partition, code, message)
                                          for r in _requested(request)])


@handles(ApiKey.ALTER_PARTITION_REASSIGNMENTS, versions=(0, 1), listeners=(BROKER, CONTROLLER))
@forwarded(_error_response)
async def handle_alter_partition_reassignments(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Alter reassignments through the controller, waiting at most the request's ``timeout_ms``."""
    if not ctx.authorized_on_cluster(AclOperation.ALTER):  # Kafka: ALTER on the cluster
        return _error_response(request, ErrorCode.cluster_authorization_failed, "Cluster authorization failed.")
    allow_rf_change = getattr(request, "allow_replication_factor_change", True) if ctx.api_version >= 1 else True
    timeout = request.timeout.total_seconds() if isinstance(request.timeout, datetime.timedelta) else 0
    altering = asyncio.ensure_future(
        ctx.broker.controller.alter_partition_reassignments(_requested(request), allow_rf_change))
    try:  # shielded: a change being committed completes even if the client stops waiting
        results = await (asyncio.wait_for(asyncio.shield(altering), timeout) if timeout > 0 else altering)
    except TimeoutError:
        return _error_response(request, ErrorCode.request_timed_out,
                               f"the reassignment was not committed within {timeout * 1000:g} ms (timeout_ms)")
    return _body(request, ErrorCode.none, None, results)
