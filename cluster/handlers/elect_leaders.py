"""ElectLeaders (key 43), versions 0-2 (KIP-183, KIP-460).

v0: preferred elections only, no top-level error code. v1: ``election_type`` (0 PREFERRED,
1 UNCLEAN) and a top-level error code. v2: flexible. ``topic_partitions`` null asks for every
partition. Sent to any broker, it is forwarded to the active controller (``forwarding``), which
elects (``LeaderElectionControl.elect_leaders``). Errors as Kafka's: per partition NONE,
ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE,
UNKNOWN_TOPIC_OR_PARTITION; a request that fails as a whole (an unknown election type:
INVALID_REQUEST; no controller within ``timeout_ms``: REQUEST_TIMED_OUT) carries its error at the
top and on every requested partition (``ElectLeadersRequest.getErrorResponse``).
"""

from __future__ import annotations

import asyncio
import datetime
from itertools import groupby
from typing import Any

from cluster.controller.leader_election import PREFERRED, ElectLeadersResult
from cluster.controller.metadata_image import MetadataImage
from cluster.handlers import BROKER, CONTROLLER, handles
from cluster.handlers.forwarding import forwarded
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


def _requested(request: Any) -> list[tuple[str, int]] | None:
    """(topic, partition) pairs asked for, or None for every partition."""
    if request.topic_partitions is None:
        return None
    return [(t.topic, p) for t in request.topic_partitions for p in t.partitions]


def _body(code: ErrorCode, results: list[tuple[str, int, ErrorCode, str | None]]) -> dict[str, Any]:
    """The response body: results grouped by topic, in the order given."""
    return {"throttle_time": 0, "error_code": code, "replica_election_results": [
        {"topic": topic, "partition_result": [
            {"partition_id": p, "error_code": c, "error_message": m} for _t, p, c, m in rows]}
        for topic, rows in groupby(results, key=lambda r: r[0])]}


def _error_response(request: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    return _body(code, [(t, p, code, message) for t, p in _requested(request) or ()])


def _settled(answer: Any, image: MetadataImage) -> bool:
    """Every partition elected has its new leader in ``image``: the preferred replica (PREFERRED)
    or, after an unclean election, a leader alone in the ISR."""
    for topic_result in answer.replica_election_results:
        topic = image.topics.get(topic_result.topic)
        for result in topic_result.partition_result:
            if result.error_code != ErrorCode.none:
                continue
            partition = topic.partitions.get(result.partition_id) if topic is not None else None
            if partition is None or partition.leader == -1 or (
                    partition.leader != partition.replicas[0] and partition.isr != (partition.leader,)):
                return False
    return True


@handles(ApiKey.ELECT_LEADERS, versions=(0, 2), listeners=(BROKER, CONTROLLER))
@forwarded(_error_response, _settled)
async def handle_elect_leaders(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Elect leaders through the controller, waiting at most the request's ``timeout_ms``."""
    if not ctx.authorized_on_cluster(AclOperation.ALTER):  # Kafka: ALTER on the cluster
        return _error_response(request, ErrorCode.cluster_authorization_failed, "Cluster authorization failed.")
    election_type = getattr(request, "election_type", PREFERRED) if ctx.api_version >= 1 else PREFERRED
    timeout = request.timeout.total_seconds() if isinstance(request.timeout, datetime.timedelta) else 0
    election = asyncio.ensure_future(ctx.broker.controller.elect_leaders(election_type, _requested(request)))
    try:  # shielded: an election that is being committed completes even if the client stops waiting
        answer: ElectLeadersResult = await (asyncio.wait_for(asyncio.shield(election), timeout) if timeout > 0
                                            else election)
    except TimeoutError:
        return _error_response(request, ErrorCode.request_timed_out,
                               f"the election did not complete within {timeout * 1000:g} ms (timeout_ms)")
    return _body(answer.error_code, [(r.topic, r.partition, r.error_code, r.error_message) for r in answer.results])
