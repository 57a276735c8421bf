"""OffsetFetch (key 9), versions 1-8.

v1: group id and partitions; a group-level error is repeated in every partition. v2: null
topics = every partition the group committed; a top-level error code. v3: throttle time. v4:
same fields. v5: committed leader epoch. v6: flexible. v7: require_stable — a partition whose offsets an open transaction holds
(TxnOffsetCommit, KIP-447) answers UNSTABLE_OFFSET_COMMIT with offset -1, so the consumer retries
until the transaction ends (without it, the last committed offset is answered). v8: several groups per
request, one answer (and error) per group.

A partition without a committed offset answers offset -1, leader epoch -1, metadata "".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cluster.group.offsets_topic import OffsetCommitValue
from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

TOP_LEVEL_ERROR_VERSION = 2
MULTI_GROUP_VERSION = 8


@handles(ApiKey.OFFSET_FETCH, versions=(1, 8))
def handle_offset_fetch(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Read committed offsets of one group (v1-7) or several (v8)."""
    if ctx.api_version >= MULTI_GROUP_VERSION:
        return {"throttle_time": 0,
                "groups": [{"group_id": g.group_id, **_fetch(ctx, g.group_id, g.topics, request.require_stable)}
                           for g in request.groups]}
    stable = getattr(request, "require_stable", False)
    return {"throttle_time": 0, **_fetch(ctx, request.group_id, request.topics, stable)}


def _fetch(ctx: RequestContext, group_id: str, topics: Sequence[Any] | None, require_stable: bool) -> dict[str, Any]:
    wanted = None if topics is None else [(t.name, p) for t in topics for p in t.partition_indexes]
    coordinator = ctx.broker.group_coordinator
    if not ctx.authorized(AclOperation.DESCRIBE, ResourceType.GROUP, group_id):  # Kafka: DESCRIBE on the group
        error, offsets = ErrorCode.group_authorization_failed, {}
    else:
        error, offsets = coordinator.fetch_offsets(group_id, wanted)
    unstable = coordinator.unstable_offsets(group_id, offsets) if require_stable and error == ErrorCode.none else set()
    if error != ErrorCode.none:
        if ctx.api_version >= TOP_LEVEL_ERROR_VERSION or wanted is None:
            return {"error_code": error, "topics": []}
        offsets = dict.fromkeys(wanted)  # v1: the error goes in every partition
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for (topic, partition), value in sorted(offsets.items()) if wanted is None else offsets.items():
        if (topic, partition) in unstable:  # Kafka's getOffsets: INVALID_OFFSET, no metadata
            by_topic.setdefault(topic, []).append(_partition(partition, None, ErrorCode.unstable_offset_commit))
        else:
            by_topic.setdefault(topic, []).append(_partition(partition, value, error))
    return {"error_code": error, "topics": [{"name": name, "partitions": parts} for name, parts in by_topic.items()]}


def _partition(index: int, value: OffsetCommitValue | None, error: ErrorCode) -> dict[str, Any]:
    return {"partition_index": index, "committed_offset": value.offset if value else -1,
            "committed_leader_epoch": value.leader_epoch if value else -1,
            "metadata": value.metadata if value else "", "error_code": error}
