"""DescribeTransactions (key 65), version 0 (KIP-664).

Answered by the transaction coordinator for the ids it owns (Kafka's
``TransactionCoordinator.handleDescribeTransactions``): state name (``Ongoing``,
``CompleteCommit``...), timeout, start time, producer id and epoch, and the partitions of the
transaction (while Prepare*, those still without a marker). Per id: NOT_COORDINATOR when another
broker leads its ``__transaction_state`` partition, COORDINATOR_LOAD_IN_PROGRESS while it loads,
TRANSACTIONAL_ID_NOT_FOUND when unknown (or Dead, being expired).
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from cluster.txn.state_manager import TransactionStateManager
from cluster.txn.transaction_log import by_topic
from cluster.txn.transaction_metadata import TransactionState
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol.api_keys import ApiKey


@handles(ApiKey.DESCRIBE_TRANSACTIONS, versions=(0, 0))
def handle_describe_transactions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Describe each requested transactional id."""
    manager = ctx.broker.txn_coordinator.state
    return {"throttle_time": 0, "transaction_states": [
        describe_transaction(manager, tid) if ctx.authorized(AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, tid)
        else _denied(tid) for tid in request.transactional_ids]}


def _denied(transactional_id: str) -> dict[str, Any]:
    """Kafka's answer for an id without DESCRIBE: TRANSACTIONAL_ID_AUTHORIZATION_FAILED."""
    return {"transactional_id": transactional_id, "error_code": ErrorCode.transactional_id_authorization_failed,
            "transaction_state": "", "transaction_timeout": 0, "transaction_start_time": -1, "producer_id": -1,
            "producer_epoch": -1, "topics": []}


def describe_transaction(manager: TransactionStateManager, transactional_id: str) -> dict[str, Any]:
    """One ``TransactionState`` entry of the response."""
    entry: dict[str, Any] = {"transactional_id": transactional_id, "transaction_state": "",
                             "transaction_timeout": 0, "transaction_start_time": -1, "producer_id": -1,
                             "producer_epoch": -1, "topics": []}
    error, found = manager.get_transaction_state(transactional_id)
    if error != ErrorCode.none:
        return entry | {"error_code": error}
    if found is None or found.metadata.state == TransactionState.DEAD:
        return entry | {"error_code": ErrorCode.transactional_id_not_found}
    metadata = found.metadata
    return entry | {"error_code": ErrorCode.none, "transaction_state": metadata.state.display_name,
                    "transaction_timeout": metadata.timeout_ms,
                    "transaction_start_time": metadata.start_timestamp_ms,
                    "producer_id": metadata.producer_id, "producer_epoch": metadata.producer_epoch,
                    "topics": [{"topic": topic, "partitions": indexes}
                               for topic, indexes in by_topic(metadata.partitions).items()]}
