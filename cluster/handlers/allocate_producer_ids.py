"""AllocateProducerIds (key 67), version 0, on the controller listener: a block of producer ids
for a broker, unique across the cluster (Kafka's ``ProducerIdControlManager``).

Errors as Kafka: NOT_CONTROLLER, BROKER_ID_NOT_REGISTERED, STALE_BROKER_EPOCH, and the commit's
error (REQUEST_TIMED_OUT when the quorum does not commit in time).

Concurrency: runs on the node's event loop, like every handler.
"""

from __future__ import annotations

from typing import Any

from cluster.controller.event_queue import MetadataCommitError
from cluster.handlers import CONTROLLER, handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


@handles(ApiKey.ALLOCATE_PRODUCER_IDS, versions=(0, 0), listeners=(CONTROLLER,))
async def handle_allocate_producer_ids(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Commit and hand out the next block of producer ids."""
    if not ctx.authorized_on_cluster(AclOperation.CLUSTER_ACTION):  # Kafka's ControllerApis: CLUSTER_ACTION
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "producer_id_start": -1,
                "producer_id_len": 0}
    try:
        first, size = await ctx.broker.controller.allocate_producer_ids(request.broker_id, request.broker_epoch)
    except MetadataCommitError as exc:
        return {"throttle_time": 0, "error_code": exc.error_code, "producer_id_start": -1, "producer_id_len": 0}
    return {"throttle_time": 0, "error_code": ErrorCode.none, "producer_id_start": first, "producer_id_len": size}
