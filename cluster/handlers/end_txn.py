"""EndTxn (key 26), versions 0-3: a transactional producer commits or aborts its transaction.

The coordinator writes PrepareCommit/PrepareAbort to ``__transaction_state`` and answers once it
is replicated; the markers and Complete* follow in the background
(``TransactionCoordinator.handle_end_txn``, Kafka's ``KafkaApis.handleEndTxnRequest``). Clients
before v2 get INVALID_PRODUCER_EPOCH in place of PRODUCER_FENCED. v4 (TRANSACTION_ABORTABLE) and v5
(an epoch bump per transaction, KIP-890 part 2 / transaction version 2) are not served.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol.api_keys import ApiKey


@handles(ApiKey.END_TXN, versions=(0, 3))
async def handle_end_txn(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Commit or abort the producer's transaction."""
    # Kafka: WRITE on the transactional id
    if not ctx.authorized(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, request.transactional_id):
        return {"throttle_time": 0, "error_code": ErrorCode.transactional_id_authorization_failed}
    error = await ctx.broker.txn_coordinator.handle_end_txn(
        request.transactional_id, request.producer_id, request.producer_epoch, bool(request.committed))
    if ctx.api_version < 2 and error == ErrorCode.producer_fenced:
        error = ErrorCode.invalid_producer_epoch
    return {"throttle_time": 0, "error_code": error}
