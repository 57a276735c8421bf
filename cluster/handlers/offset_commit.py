"""OffsetCommit (key 8), versions 2-8.

v2: group id, generation, member id, retention_time (an expiry time for these offsets; -1 =
the broker's offsets.retention.minutes), per partition offset and metadata. v3: throttle time.
v4: same fields. v5: retention_time removed. v6: committed leader epoch. v7:
group_instance_id (static membership; FENCED_INSTANCE_ID). v8: flexible.

Generation -1 commits without group membership (admin tools, manual assignment) — only while the
group is Empty or unknown, else UNKNOWN_MEMBER_ID. Unknown topics or partitions get
UNKNOWN_TOPIC_OR_PARTITION, metadata over 4096 bytes OFFSET_METADATA_TOO_LARGE. Each accepted
offset keeps its metadata, leader epoch and commit timestamp.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from cluster.group.offsets_topic import OffsetCommitValue
from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol.api_keys import ApiKey

NO_LEADER_EPOCH = -1


@handles(ApiKey.OFFSET_COMMIT, versions=(2, 8))
async def handle_offset_commit(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Store committed offsets in ``__consumer_offsets`` (answered once replicated); one error per partition."""
    now_ms = int(time.time() * 1000)
    retention = getattr(request, "retention_time", None)
    retention_ms = int(retention.total_seconds() * 1000) if retention is not None else -1
    expire_timestamp = now_ms + retention_ms if retention_ms >= 0 else -1
    offsets = {
        (topic.name, p.partition_index): OffsetCommitValue(
            p.committed_offset, getattr(p, "committed_leader_epoch", NO_LEADER_EPOCH), p.committed_metadata or "",
            now_ms, expire_timestamp)
        for topic in request.topics for p in topic.partitions
    }
    denied = _unauthorized(ctx, request, offsets) if ctx.authorizing else {}
    errors = dict(denied)
    if not offsets or len(denied) < len(offsets):
        errors |= await ctx.broker.group_coordinator.commit_offsets(
            request.group_id, request.generation_id_or_member_epoch, request.member_id,
            getattr(request, "group_instance_id", None), {k: v for k, v in offsets.items() if k not in denied})
    return commit_answer(request, errors)


def _unauthorized(ctx: RequestContext, request: Any, offsets: Mapping[tuple[str, int], Any]
                  ) -> dict[tuple[str, int], ErrorCode]:
    """Kafka's ``KafkaApis.handleOffsetCommitRequest``: READ on the group (else every partition
    GROUP_AUTHORIZATION_FAILED), and READ on each topic (TOPIC_AUTHORIZATION_FAILED)."""
    if not ctx.authorized(AclOperation.READ, ResourceType.GROUP, request.group_id):
        return dict.fromkeys(offsets, ErrorCode.group_authorization_failed)
    denied_topics = {t for t, _ in offsets if not ctx.authorized(AclOperation.READ, ResourceType.TOPIC, t)}
    return {key: ErrorCode.topic_authorization_failed for key in offsets if key[0] in denied_topics}


def commit_answer(request: Any, errors: Mapping[tuple[str, int], ErrorCode]) -> dict[str, Any]:
    """The answer of an OffsetCommit or TxnOffsetCommit: one error per requested partition."""
    return {"throttle_time": 0, "topics": [
        {"name": topic.name, "partitions": [{"partition_index": p.partition_index,
                                             "error_code": errors[(topic.name, p.partition_index)]}
                                            for p in topic.partitions]}
        for topic in request.topics]}
