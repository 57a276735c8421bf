"""InitProducerId (key 22), versions 0-4, for idempotent producers.

Each call gets a new producer id with epoch 0 (as Kafka does for non-transactional producers,
also when v3+ passes an old id/epoch: KIP-360's bump applies to transactional ids). Producer
ids come in blocks committed to the metadata log, so they are never reused after a restart.
Transactional ids are refused with INVALID_REQUEST until the transaction coordinator lands.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


@handles(ApiKey.INIT_PRODUCER_ID, versions=(0, 4))
async def handle_init_producer_id(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Hand out a producer id."""
    if request.transactional_id is not None:
        return {"throttle_time": 0, "error_code": ErrorCode.invalid_request, "producer_id": -1, "producer_epoch": -1}
    producer_id = await ctx.broker.producer_ids.next_id()
    return {"throttle_time": 0, "error_code": ErrorCode.none, "producer_id": producer_id, "producer_epoch": 0}
