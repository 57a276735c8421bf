"""AlterReplicaLogDirs (key 34), versions 1-2 (KIP-113): move replicas between this broker's log dirs.

As Kafka's ``KafkaApis.handleAlterReplicaLogDirsRequest``: ALTER on the cluster is required (else
every partition answers CLUSTER_AUTHORIZATION_FAILED); each partition named (with the dir it
should go to; a partition named twice goes to the last dir) is answered by
``ReplicaAlterLogDirsManager.alter_log_dir`` with Kafka's per-partition error codes
(LOG_DIR_NOT_FOUND, KAFKA_STORAGE_ERROR, REPLICA_NOT_AVAILABLE, NONE), grouped by topic. The move
itself runs in the background; DescribeLogDirs shows its progress (the future replica's
``offset_lag``). v2: flexible.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode


@handles(ApiKey.ALTER_REPLICA_LOG_DIRS, versions=(1, 2))
def handle_alter_replica_log_dirs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Start (or cancel, or record) the moves asked for; one error code per partition."""
    wanted: dict[tuple[str, int], str] = {}
    for log_dir in request.dirs:
        for topic in log_dir.topics:
            for partition in topic.partitions:
                wanted[(topic.name, partition)] = log_dir.path
    authorized = ctx.authorized_on_cluster(AclOperation.ALTER)  # Kafka: ALTER on the cluster
    results: dict[str, list[dict[str, Any]]] = {}
    for (topic, partition), path in wanted.items():
        code = ctx.broker.alter_log_dirs.alter_log_dir((topic, partition), path) if authorized \
            else ErrorCode.cluster_authorization_failed
        results.setdefault(topic, []).append({"partition_index": partition, "error_code": code})
    return {"throttle_time": 0, "results": [{"topic_name": topic, "partitions": partitions}
                                            for topic, partitions in results.items()]}
