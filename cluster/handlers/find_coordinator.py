"""FindCoordinator (key 10), versions 0-4.

v0: a group id → the coordinator's node id, host and port. v1: key type (0 = group,
1 = transaction) and an error message. v2: same fields (throttling semantics only). v3:
flexible. v4: a batch of keys (KIP-699), one answer per key.

Groups: the leader of the group's ``__consumer_offsets`` partition; the topic is created on the
first request (GroupCoordinator.find_coordinator). Transactions: the leader of the transactional
id's ``__transaction_state`` partition, created on the first request likewise
(TransactionCoordinator.find_coordinator, Kafka's ``KafkaApis.getCoordinator``). Any other key
type: INVALID_REQUEST.
"""

from __future__ import annotations

from typing import Any

from cluster.group.coordinator import Coordinator
from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

GROUP, TRANSACTION = 0, 1


@handles(ApiKey.FIND_COORDINATOR, versions=(0, 4))
async def handle_find_coordinator(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Answer the coordinator of each requested key."""
    key_type = getattr(request, "key_type", GROUP)
    if ctx.api_version >= 4:
        coordinators = [{"key": key, **await _find(ctx, key_type, key)} for key in request.coordinator_keys]
        return {"throttle_time": 0, "coordinators": coordinators}
    return {"throttle_time": 0, **await _find(ctx, key_type, request.key)}


def _unauthorized(ctx: RequestContext, key_type: int, key: str) -> ErrorCode | None:
    """Kafka's ``KafkaApis.getCoordinator``: DESCRIBE on the group or on the transactional id."""
    if key_type == GROUP and not ctx.authorized(AclOperation.DESCRIBE, ResourceType.GROUP, key):
        return ErrorCode.group_authorization_failed
    if key_type == TRANSACTION and not ctx.authorized(AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, key):
        return ErrorCode.transactional_id_authorization_failed
    return None


async def _find(ctx: RequestContext, key_type: int, key: str) -> dict[str, Any]:
    denied = _unauthorized(ctx, key_type, key) if ctx.authorizing else None
    if denied is not None:
        found = Coordinator(denied)
    elif key_type == GROUP:
        found = await ctx.broker.group_coordinator.find_coordinator(key)
    elif key_type == TRANSACTION:
        found = await ctx.broker.txn_coordinator.find_coordinator(key)
    else:
        found = Coordinator(ErrorCode.invalid_request, error_message=f"unknown coordinator key type {key_type}")
    broker = found.broker
    return {"error_code": found.error_code, "error_message": found.error_message,
            "node_id": broker.broker_id if broker else -1, "host": broker.host if broker else "",
            "port": broker.port if broker else -1}
