"""AddPartitionsToTxn (key 24), versions 0-3: a transactional producer names the partitions it is
about to write in its transaction.

As Kafka's ``KafkaApis.handleAddPartitionsToTxnRequest`` for the client versions (v0-3): a
partition the metadata does not know answers UNKNOWN_TOPIC_OR_PARTITION and every other one of the
request OPERATION_NOT_ATTEMPTED, without asking the coordinator; otherwise the transaction
coordinator's one answer (``TransactionCoordinator.handle_add_partitions``) goes to every partition,
INVALID_PRODUCER_EPOCH in place of PRODUCER_FENCED before v2. v4+ is KIP-890's broker-side
verification form (a batch of transactions, ``verify_only``), used by brokers of transaction
version 2 only; v5 adds TRANSACTION_ABORTABLE. Neither is served.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol.api_keys import ApiKey


@handles(ApiKey.ADD_PARTITIONS_TO_TXN, versions=(0, 3))
async def handle_add_partitions_to_txn(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Add the request's partitions to the producer's transaction."""
    requested = [(topic.name, index) for topic in request.v3_and_below_topics for index in topic.partitions]
    topics = ctx.broker.image.topics
    if ctx.authorizing:
        denied = _unauthorized(ctx, request.v3_and_below_transactional_id, requested)
        if denied:
            return _answer({tp: denied.get(tp, ErrorCode.operation_not_attempted) for tp in requested})
    unknown = {tp for tp in requested
               if tp[0] not in topics or tp[1] not in topics[tp[0]].partitions}
    if unknown:
        errors = {tp: ErrorCode.unknown_topic_or_partition if tp in unknown else ErrorCode.operation_not_attempted
                  for tp in requested}
        return _answer(errors)
    error = await ctx.broker.txn_coordinator.handle_add_partitions(
        request.v3_and_below_transactional_id, request.v3_and_below_producer_id,
        request.v3_and_below_producer_epoch, requested)
    if ctx.api_version < 2 and error == ErrorCode.producer_fenced:
        error = ErrorCode.invalid_producer_epoch
    return _answer(dict.fromkeys(requested, error))


def _unauthorized(ctx: RequestContext, transactional_id: str, requested: list[tuple[str, int]]
                  ) -> dict[tuple[str, int], ErrorCode]:
    """Kafka's ``KafkaApis.handleAddPartitionsToTxnRequest``: WRITE on the transactional id (else
    every partition TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and on each topic (TOPIC_AUTHORIZATION_FAILED)."""
    if not ctx.authorized(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id):
        return dict.fromkeys(requested, ErrorCode.transactional_id_authorization_failed)
    return {tp: ErrorCode.topic_authorization_failed for tp in requested
            if not ctx.authorized(AclOperation.WRITE, ResourceType.TOPIC, tp[0])}


def _answer(errors: dict[tuple[str, int], ErrorCode]) -> dict[str, Any]:
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for (name, index), error in errors.items():
        by_topic.setdefault(name, []).append({"partition_index": index, "partition_error_code": error})
    return {"throttle_time": 0, "results_by_topic_v3_and_below": [
        {"name": name, "results_by_partition": results} for name, results in by_topic.items()]}
