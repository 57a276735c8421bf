"""ListTransactions (key 66), versions 0-2 (KIP-664; v1: ``duration_filter``, KIP-994; v2:
``transactional_id_pattern``, KIP-1152).

Answered by each broker for the transactional ids it coordinates (Kafka's
``TransactionStateManager.listTransactionStates``): filtered by state names (unknown names are
echoed in ``unknown_state_filters``), producer ids, from v1 a minimum running time, and from v2 a
regular expression the whole id must match (an empty or null pattern matches every id; one that
does not compile is INVALID_REGULAR_EXPRESSION). Python's ``re`` stands in for Java's
``Pattern``: they agree on the usual syntax. COORDINATOR_LOAD_IN_PROGRESS while any
``__transaction_state`` partition loads. With an authorizer only the ids the principal may
DESCRIBE are listed.
"""

from __future__ import annotations

import re
from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


@handles(ApiKey.LIST_TRANSACTIONS, versions=(0, 2))
def handle_list_transactions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """List this coordinator's transactions matching the filters."""
    pattern_text = getattr(request, "transactional_id_pattern", None)
    try:
        pattern = re.compile(pattern_text) if pattern_text else None
    except re.error:
        return {"throttle_time": 0, "error_code": ErrorCode.invalid_regular_expression, "unknown_state_filters": [],
                "transaction_states": []}
    error, unknown, listed = ctx.broker.txn_coordinator.state.list_transaction_states(
        request.producer_id_filters, request.state_filters, getattr(request, "duration_filter", -1))
    return {"throttle_time": 0, "error_code": error, "unknown_state_filters": unknown,
            "transaction_states": [{"transactional_id": m.transactional_id, "producer_id": m.producer_id,
                                    "transaction_state": m.state.display_name} for m in listed
                                   if (pattern is None or pattern.fullmatch(m.transactional_id))
                                   and ctx.authorized(AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID,
                                                      m.transactional_id)]}  # Kafka: only ids it may DESCRIBE
