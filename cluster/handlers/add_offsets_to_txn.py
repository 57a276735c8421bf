"""AddOffsetsToTxn (key 25), versions 0-3: a transactional producer is about to send a consumer
group's offsets in its transaction (``send_offsets_to_transaction``).

The group's ``__consumer_offsets`` partition joins the transaction
(``TransactionCoordinator.handle_add_offsets``, Kafka's ``KafkaApis.handleAddOffsetsToTxnRequest``);
clients before v2 get INVALID_PRODUCER_EPOCH in place of PRODUCER_FENCED. v4 (TRANSACTION_ABORTABLE,
KIP-890) is not served.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol.api_keys import ApiKey


@handles(ApiKey.ADD_OFFSETS_TO_TXN, versions=(0, 3))
async def handle_add_offsets_to_txn(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Add the group's offsets partition to the producer's transaction."""
    # Kafka: WRITE on the transactional id, READ on the group
    if not ctx.authorized(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, request.transactional_id):
        return {"throttle_time": 0, "error_code": ErrorCode.transactional_id_authorization_failed}
    if not ctx.authorized(AclOperation.READ, ResourceType.GROUP, request.group_id):
        return {"throttle_time": 0, "error_code": ErrorCode.group_authorization_failed}
    error = await ctx.broker.txn_coordinator.handle_add_offsets(
        request.transactional_id, request.producer_id, request.producer_epoch, request.group_id)
    if ctx.api_version < 2 and error == ErrorCode.producer_fenced:
        error = ErrorCode.invalid_producer_epoch
    return {"throttle_time": 0, "error_code": error}
