"""InitProducerId (key 22), versions 0-4, for idempotent producers.

Each call gets a new producer id with epoch 0 (as Kafka does for non-transactional producers,
also when v3+ passes an old id/epoch: KIP-360's bump applies to transactional ids). Producer
ids come in blocks the active controller commits to the metadata log (AllocateProducerIds), so
they are unique across the cluster and never reused after a restart; while no block can be had,
the answer is COORDINATOR_LOAD_IN_PROGRESS (retriable), as Kafka's.
Transactional ids are refused with INVALID_REQUEST until the transaction coordinator lands.
"""

from __future__ import annotations

from typing import Any

from cluster.controller.event_queue import MetadataCommitError
from cluster.handlers import handles
from cluster.network.request import RequestContext
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


@handles(ApiKey.INIT_PRODUCER_ID, versions=(0, 4))
async def handle_init_producer_id(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Hand out a producer id."""
    if request.transactional_id is not None:
        return {"throttle_time": 0, "error_code": ErrorCode.invalid_request, "producer_id": -1, "producer_epoch": -1}
    try:
        producer_id = await ctx.broker.producer_ids.next_id()
    except MetadataCommitError:  # no block from the controller: retriable, as Kafka's RPCProducerIdManager
        return {"throttle_time": 0, "error_code": ErrorCode.coordinator_load_in_progress, "producer_id": -1,
                "producer_epoch": -1}
    return {"throttle_time": 0, "error_code": ErrorCode.none, "producer_id": producer_id, "producer_epoch": 0}
