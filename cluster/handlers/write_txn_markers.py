"""WriteTxnMarkers (key 27), version 1 (Kafka 4.0 removed v0, KIP-896).

Sent to partition leaders by a transaction coordinator at the end of a transaction, and by
``kafka-transactions abort`` (KIP-664): each marker (producer id and epoch, COMMIT or ABORT,
coordinator epoch) is appended to each named partition with acks=all semantics
(``cluster.replication.txn_markers``), and the request is answered when every partition has an
outcome. A marker replicated in a ``__consumer_offsets`` partition also ends the producer's
transactional offset commits there (``GroupCoordinator.on_txn_completed``). v2 (a transaction version per marker, KIP-890's TV2) is not served: this broker does not
advertise ``transaction.version`` 2.

Concurrency: every append happens in the handler's turn of the event loop; only the wait for
replication is awaited.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cluster.group.offsets_topic import OFFSETS_TOPIC
from cluster.handlers import HandlerResult, handles
from cluster.network.request import RequestContext
from cluster.replication.txn_markers import append_txn_marker
from cluster.security.acls import AclOperation
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol.api_keys import ApiKey

#: Kafka's ``request.timeout.ms`` default: how long a marker may wait for its replicas.
DEFAULT_TIMEOUT_MS = 30_000


@handles(ApiKey.WRITE_TXN_MARKERS, versions=(1, 1))
def handle_write_txn_markers(ctx: RequestContext, request: Any) -> HandlerResult:
    """Append every marker to every partition; answer once all are replicated or refused."""
    if not ctx.authorized_on_cluster(AclOperation.CLUSTER_ACTION):  # Kafka's KafkaApis: CLUSTER_ACTION
        denied = ErrorCode.cluster_authorization_failed
        return {"markers": [{"producer_id": m.producer_id, "topics": [
            {"name": t.name, "partitions": [{"partition_index": i, "error_code": denied} for i in t.partition_indexes]}
            for t in m.topics]} for m in request.markers]}
    replicas = ctx.broker.replica_manager
    timeout_ms = ctx.broker.config.get("request.timeout.ms", DEFAULT_TIMEOUT_MS)
    plan = []
    for marker in request.markers:
        topics = []
        for topic in marker.topics:
            futures = [(index, append_txn_marker(replicas, topic.name, index, marker.producer_id,
                                                 marker.producer_epoch, marker.coordinator_epoch,
                                                 marker.transaction_result, timeout_ms))
                       for index in topic.partition_indexes]
            if topic.name == OFFSETS_TOPIC:
                for index, future in futures:
                    _complete_group_offsets(ctx, index, marker.producer_id, marker.transaction_result, future)
            topics.append((topic.name, futures))
        plan.append((marker.producer_id, topics))
    pending = [f for _pid, topics in plan for _name, futures in topics for _i, f in futures if not f.done()]
    if not pending:
        return _answer(plan)
    return _answer_when_done(plan, pending)


def _complete_group_offsets(ctx: RequestContext, index: int, producer_id: int, commit: bool,
                            written: asyncio.Future[ErrorCode]) -> None:
    """Once a marker is replicated in a ``__consumer_offsets`` partition, the group coordinator
    ends the producer's pending offsets there (Kafka's ``onTransactionCompleted``), before the
    answer: the callback runs ahead of the gather that the answer waits for."""
    def done(future: asyncio.Future[ErrorCode]) -> None:
        if future.result() == ErrorCode.none:
            ctx.broker.group_coordinator.on_txn_completed(index, producer_id, commit)

    if written.done():
        done(written)
    else:
        written.add_done_callback(done)


async def _answer_when_done(plan: list[Any], pending: list[asyncio.Future[ErrorCode]]) -> dict[str, Any]:
    await asyncio.gather(*pending)
    return _answer(plan)


def _answer(plan: list[Any]) -> dict[str, Any]:
    return {"markers": [
        {"producer_id": pid, "topics": [
            {"name": name, "partitions": [{"partition_index": index, "error_code": ErrorCode(f.result())}
                                          for index, f in futures]}
            for name, futures in topics]}
        for pid, topics in plan]}
