"""The metadata log ``__cluster_metadata-0``: its name and topic settings. The quorum that
replicates it is ``cluster.controller.raft_quorum.RaftQuorum``.
"""

from __future__ import annotations

METADATA_TOPIC = "__cluster_metadata"
#: Topic settings of the metadata log: never deleted by retention (Kafka uses snapshots), and never
#: compacted, whatever log.cleanup.policy says (its record keys are record types, not identities).
#: A batch may hold up to 8 MiB, KRaft's own limit (KafkaRaftClient.MAX_BATCH_SIZE_BYTES).
METADATA_LOG_CONFIG = {"retention.ms": -1, "retention.bytes": -1, "segment.bytes": 64 * 1024 * 1024,
                       "cleanup.policy": "delete", "max.message.bytes": 8 * 1024 * 1024}
