"""InitProducerId (key 22), versions 0-4: idempotent and transactional producers.

Without a transactional id, each call gets a new producer id with epoch 0 (as Kafka does for
non-transactional producers, also when v3+ passes an old id/epoch: KIP-360's bump applies to
transactional ids). Producer ids come in blocks the active controller commits to the metadata log
(AllocateProducerIds), so they are unique across the cluster and never reused after a restart;
while no block can be had, the answer is COORDINATOR_LOAD_IN_PROGRESS (retriable), as Kafka's.

With a transactional id, the transaction coordinator answers
(``TransactionCoordinator.handle_init_producer_id``): a new id or an epoch bump that fences older
instances, with v3+'s producer id/epoch as KIP-360's expected pair. As Kafka's
``KafkaApis.handleInitProducerIdRequest``: a producer id without an epoch (or the reverse) is
INVALID_REQUEST, and clients before v4 get INVALID_PRODUCER_EPOCH for PRODUCER_FENCED.
v5 (TRANSACTION_ABORTABLE, KIP-890) and v6 (two-phase commit, KIP-939) are not served.
"""

from __future__ import annotations

import datetime
from typing import Any

from cluster.controller.event_queue import MetadataCommitError
from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

NO_PRODUCER_ID, NO_PRODUCER_EPOCH = -1, -1


def _answer(error: ErrorCode, producer_id: int = -1, producer_epoch: int = -1) -> dict[str, Any]:
    return {"throttle_time": 0, "error_code": error, "producer_id": producer_id, "producer_epoch": producer_epoch}


def _timeout_ms(value: Any) -> int:
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    return int(value)


def _unauthorized(ctx: RequestContext, transactional_id: str | None) -> ErrorCode | None:
    """Kafka's ``KafkaApis.handleInitProducerIdRequest``: WRITE on the transactional id; without
    one, IDEMPOTENT_WRITE on the cluster or WRITE on some topic (KIP-679)."""
    if transactional_id is not None:
        if not ctx.authorized(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id):
            return ErrorCode.transactional_id_authorization_failed
    elif not (ctx.authorized_on_cluster(AclOperation.IDEMPOTENT_WRITE)
              or ctx.authorized_on_any(AclOperation.WRITE, ResourceType.TOPIC)):
        return ErrorCode.cluster_authorization_failed
    return None


@handles(ApiKey.INIT_PRODUCER_ID, versions=(0, 4))
async def handle_init_producer_id(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Hand out a producer id (and epoch, for a transactional id)."""
    producer_id = getattr(request, "producer_id", NO_PRODUCER_ID)
    producer_epoch = getattr(request, "producer_epoch", NO_PRODUCER_EPOCH)
    if (producer_id == NO_PRODUCER_ID) != (producer_epoch == NO_PRODUCER_EPOCH):
        return _answer(ErrorCode.invalid_request)
    if ctx.authorizing:
        denied = _unauthorized(ctx, request.transactional_id)
        if denied is not None:
            return _answer(denied)
    if request.transactional_id is not None:
        expected = None if producer_id == NO_PRODUCER_ID else (producer_id, producer_epoch)
        result = await ctx.broker.txn_coordinator.handle_init_producer_id(
            request.transactional_id, _timeout_ms(request.transaction_timeout), expected)
        error = result.error
        if ctx.api_version < 4 and error == ErrorCode.producer_fenced:
            error = ErrorCode.invalid_producer_epoch
        return _answer(error, result.producer_id, result.producer_epoch)
    try:
        new_id = await ctx.broker.producer_ids.next_id()
    except MetadataCommitError:  # no block from the controller: retriable, as Kafka's RPCProducerIdManager
        return _answer(ErrorCode.coordinator_load_in_progress)
    return _answer(ErrorCode.none, new_id, 0)
