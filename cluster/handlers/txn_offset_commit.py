"""TxnOffsetCommit (key 28), versions 0-4 (KIP-98, KIP-447).

Sent by a transactional producer to the group's coordinator after AddOffsetsToTxn: the consumer
offsets to commit in its open transaction. v0: transactional id, group id, producer id and epoch,
per partition offset and metadata. v1: same fields. v2: committed leader epoch. v3 (flexible):
generation id, member id, group instance id — the consumer's group metadata
(``send_offsets_to_transaction`` with a ConsumerGroupMetadata), so a zombie consumer of an old
generation is fenced (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID). v4: same fields.
v5 (the coordinator adds the offsets partition itself, KIP-890's transaction version 2) is not
served, as this broker does not advertise ``transaction.version`` 2.

The offsets are appended in the producer's transaction (an older producer epoch gets
INVALID_PRODUCER_EPOCH from the log) and become visible to OffsetFetch when the transaction
commits (``cluster.group.txn_offsets``). Per-partition errors as OffsetCommit's.
"""

from __future__ import annotations

import time
from typing import Any

from cluster.group.offsets_topic import OffsetCommitValue
from cluster.handlers import handles
from cluster.handlers.offset_commit import NO_LEADER_EPOCH, commit_answer
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

#: Generation of v0-2 requests (no group metadata): accepted as Kafka's ``validateOffsetCommit`` does.
NO_GENERATION = -1


@handles(ApiKey.TXN_OFFSET_COMMIT, versions=(0, 4))
async def handle_txn_offset_commit(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Append the offsets to the group's partition in the producer's transaction; one error per partition."""
    now_ms = int(time.time() * 1000)
    offsets = {
        (topic.name, p.partition_index): OffsetCommitValue(
            p.committed_offset, getattr(p, "committed_leader_epoch", NO_LEADER_EPOCH), p.committed_metadata or "",
            now_ms)
        for topic in request.topics for p in topic.partitions
    }
    # Kafka: WRITE on the transactional id, READ on the group
    if not ctx.authorized(AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, request.transactional_id):
        return commit_answer(request, dict.fromkeys(offsets, ErrorCode.transactional_id_authorization_failed))
    if not ctx.authorized(AclOperation.READ, ResourceType.GROUP, request.group_id):
        return commit_answer(request, dict.fromkeys(offsets, ErrorCode.group_authorization_failed))
    errors = await ctx.broker.group_coordinator.txn_commit_offsets(
        request.group_id, request.producer_id, request.producer_epoch,
        getattr(request, "generation_id", NO_GENERATION), getattr(request, "member_id", ""),
        getattr(request, "group_instance_id", None), offsets)
    return commit_answer(request, errors)
