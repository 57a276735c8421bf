"""DescribeLogDirs (key 35), versions 1-4: the node's log dirs and the partitions in them.

A pko node has one log dir, its data dir (Kafka's ``log.dirs`` with one entry). As Kafka's
``ReplicaManager.describeLogDirs``: per dir its absolute path and, for each partition log it holds
(all of them when ``topics`` is null, else those named that it holds — others are left out), the
partition's size (bytes of its segments), ``offset_lag`` and ``is_future_key`` (false: pko moves
no replica between dirs). ``offset_lag`` is Kafka's ``getLogEndOffsetLag`` for a current log:
max(high watermark − log end offset, 0) of the local log. The metadata log is not a partition
log (Kafka keeps it apart). v3: a top-level error code. v4: the dir's total and usable bytes.
"""

from __future__ import annotations

import shutil
from typing import Any

from cluster.controller.quorum import METADATA_TOPIC
from cluster.handlers import handles
from cluster.network.request import RequestContext
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


def _wanted(request: Any) -> dict[str, set[int]] | None:
    """topic → partitions asked for, or None for every partition."""
    if request.topics is None:
        return None
    wanted: dict[str, set[int]] = {}
    for topic in request.topics:
        wanted.setdefault(topic.topic, set()).update(topic.partitions)
    return wanted


@handles(ApiKey.DESCRIBE_LOG_DIRS, versions=(1, 4))
def handle_describe_log_dirs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Describe this node's log dir."""
    log_manager = ctx.broker.log_manager
    wanted = _wanted(request)
    topics: dict[str, list[dict[str, Any]]] = {}
    for (topic, index), partition_log in sorted(log_manager.logs.items()):
        if topic == METADATA_TOPIC or (wanted is not None and index not in wanted.get(topic, ())):
            continue
        lag = max(partition_log.high_watermark - partition_log.log_end_offset, 0)
        topics.setdefault(topic, []).append({"partition_index": index, "partition_size": partition_log.size_bytes,
                                             "offset_lag": lag, "is_future_key": False})
    log_dir = log_manager.log_dir.resolve()
    usage = shutil.disk_usage(log_dir)
    result = {"error_code": ErrorCode.none, "log_dir": str(log_dir), "total_bytes": usage.total,
              "usable_bytes": usage.free,
              "topics": [{"name": name, "partitions": partitions} for name, partitions in topics.items()]}
    return {"throttle_time": 0, "error_code": ErrorCode.none, "results": [result]}
