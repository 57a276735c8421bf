"""DescribeLogDirs (key 35), versions 1-4: the node's log dirs and the partitions in each.

As Kafka's ``ReplicaManager.describeLogDirs``: one result per log dir (``nodes[].log_dirs``, else the
node dir; a metadata-only node dir that holds no partition log is not a log dir and is left out),
with its absolute path and, for each partition log it holds (all of them when ``topics`` is null,
else those named that it holds — others are left out), the partition's size (bytes of its
segments), ``offset_lag`` and ``is_future_key``. A replica being moved (AlterReplicaLogDirs) is
listed in its current dir and, with ``is_future_key`` true, in its destination. ``offset_lag`` is
Kafka's ``getLogEndOffsetLag``: for a current log max(high watermark − log end offset, 0), for a
future one the current log end offset − the future's. The metadata log is not a partition log
(Kafka keeps it apart). DESCRIBE on the cluster is required (else v3+ answers
CLUSTER_AUTHORIZATION_FAILED at the top, older versions no dirs). v3: a top-level error code. v4:
each dir's total and usable bytes.
"""

from __future__ import annotations

import shutil
from typing import Any

from cluster.controller.quorum import METADATA_TOPIC
from cluster.handlers import handles
from cluster.log.log_dir import LogDir
from cluster.log.manager import LogManager
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation
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


def _describe_dir(log_manager: LogManager, log_dir: LogDir, wanted: dict[str, set[int]] | None) -> dict[str, Any]:
    topics: dict[str, list[dict[str, Any]]] = {}
    for (topic, index), partition_log, future in sorted(log_manager.logs_in(log_dir), key=lambda e: (e[0], e[2])):
        if topic == METADATA_TOPIC or (wanted is not None and index not in wanted.get(topic, ())):
            continue
        current = log_manager.logs.get((topic, index))
        if future:
            lag = current.log_end_offset - partition_log.log_end_offset if current is not None else -1
        else:
            lag = max(partition_log.high_watermark - partition_log.log_end_offset, 0)
        topics.setdefault(topic, []).append({"partition_index": index, "partition_size": partition_log.size_bytes,
                                             "offset_lag": lag, "is_future_key": future})
    path = log_dir.path.resolve()
    usage = shutil.disk_usage(path)
    return {"error_code": ErrorCode.none, "log_dir": str(path), "total_bytes": usage.total,
            "usable_bytes": usage.free,
            "topics": [{"name": name, "partitions": partitions} for name, partitions in topics.items()]}


@handles(ApiKey.DESCRIBE_LOG_DIRS, versions=(1, 4))
def handle_describe_log_dirs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Describe this node's log dirs."""
    if not ctx.authorized_on_cluster(AclOperation.DESCRIBE):  # Kafka: DESCRIBE on the cluster
        return {"throttle_time": 0, "error_code": ErrorCode.cluster_authorization_failed, "results": []}
    log_manager = ctx.broker.log_manager
    wanted = _wanted(request)
    dirs = [d for d in log_manager.dirs.values()
            if d in log_manager.placement_dirs or any(tp[0] != METADATA_TOPIC for tp, _l, _f in log_manager.logs_in(d))]
    return {"throttle_time": 0, "error_code": ErrorCode.none,
            "results": [_describe_dir(log_manager, d, wanted) for d in dirs]}
