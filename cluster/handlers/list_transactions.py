"""ListTransactions (key 66), versions 0-1 (KIP-664; v1: ``duration_filter``, KIP-994).

Answered by each broker for the transactional ids it coordinates (Kafka's
``TransactionStateManager.listTransactionStates``): filtered by state names (unknown names are
echoed in ``unknown_state_filters``), producer ids and, from v1, a minimum running time.
COORDINATOR_LOAD_IN_PROGRESS while any ``__transaction_state`` partition loads. v2's
transactional id pattern (KIP-1152) is not served.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from pykafka_ops.protocol.api_keys import ApiKey


@handles(ApiKey.LIST_TRANSACTIONS, versions=(0, 1))
def handle_list_transactions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """List this coordinator's transactions matching the filters."""
    error, unknown, listed = ctx.broker.txn_coordinator.state.list_transaction_states(
        request.producer_id_filters, request.state_filters, getattr(request, "duration_filter", -1))
    return {"throttle_time": 0, "error_code": error, "unknown_state_filters": unknown,
            "transaction_states": [{"transactional_id": m.transactional_id, "producer_id": m.producer_id,
                                    "transaction_state": m.state.display_name} for m in listed]}
