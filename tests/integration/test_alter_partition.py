"""AlterPartition (key 56) over the wire, on the controller listener of a real cluster: three
controller-only nodes and one broker. A test broker (id 100, as in the quorum tests) registers
with Kafka's RPCs and leads a 1-replica topic placed on it; its AlterPartition requests go to the
active controller (DescribeQuorum names it). The rules themselves are unit tests
(tests/unit/test_alter_partition_control.py); this proves the wiring: the handler is registered on the
controller listener only, decodes v2 and v3, and answers top-level and per-partition errors."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from quorum_helpers import BROKER_ID, call, elect

from cluster.pytest_plugin import RunningCluster, start_cluster
from pykafka_ops.protocol.api_keys import ApiKey

ALTER_PARTITION_YAML = """\
cluster: {name: alter-partition}
nodes:
  - {id: 1, roles: [controller]}
  - {id: 2, roles: [controller]}
  - {id: 3, roles: [controller]}
  - {id: 4, roles: [broker]}
broker:
  broker.session.timeout.ms: 600000           # the test's broker 100 registers once, never heartbeats again
  controller.quorum.election.timeout.ms: 1000  # Kafka's quorum defaults: leadership stays put
  controller.quorum.fetch.timeout.ms: 2000
  controller.quorum.election.backoff.max.ms: 1000
  controller.quorum.request.timeout.ms: 2000
"""
NONE, INVALID_REQUEST, NOT_CONTROLLER, STALE_BROKER_EPOCH = 0, 42, 41, 77
CONTROLLERS = [1, 2, 3]


def _register(cluster: RunningCluster, node: int) -> int:
    """Broker 100 registered and unfenced through ``node``: its broker epoch."""
    answer = call(cluster, node, ApiKey.BROKER_REGISTRATION, 0, {
        "broker_id": BROKER_ID, "cluster_id": "", "incarnation_id": uuid.uuid4(), "features": [], "rack": None,
        "listeners": [{"name": "PLAINTEXT", "host": "127.0.0.1", "port": 19092, "security_protocol": 0}]})
    assert answer.error_code == NONE
    beat = call(cluster, node, ApiKey.BROKER_HEARTBEAT, 0, {
        "broker_id": BROKER_ID, "broker_epoch": answer.broker_epoch, "current_metadata_offset": 2**62,
        "want_fence": False, "want_shut_down": False})
    assert beat.error_code == NONE and not beat.is_fenced
    return int(answer.broker_epoch)


def _topic_on_broker_100(cluster: RunningCluster, node: int, name: str) -> uuid.UUID:
    answer = call(cluster, node, ApiKey.CREATE_TOPICS, 7, {
        "topics": [{"name": name, "num_partitions": -1, "replication_factor": -1, "configs": [],
                    "assignments": [{"partition_index": 0, "broker_ids": [BROKER_ID]}]}],
        "timeout": 5000, "validate_only": False})
    assert answer.topics[0].error_code == NONE
    return answer.topics[0].topic_id


def _alter(cluster: RunningCluster, node: int, version: int, broker_epoch: int, topic_id: uuid.UUID,
           new_isr: list[int]) -> Any:
    partition: dict[str, Any] = {"partition_index": 0, "leader_epoch": 0, "partition_epoch": 0,
                                 "leader_recovery_state": 0}
    if version >= 3:
        partition["new_isr_with_epochs"] = [{"broker_id": b, "broker_epoch": -1} for b in new_isr]
    else:
        partition["new_isr"] = new_isr
    return call(cluster, node, ApiKey.ALTER_PARTITION, version, {
        "broker_id": BROKER_ID, "broker_epoch": broker_epoch, "topics": [{"topic_id": topic_id,
                                                                          "partitions": [partition]}]})


def test_alter_partition_on_the_active_controller(tmp_path: Path) -> None:
    with start_cluster(ALTER_PARTITION_YAML, tmp_path) as cluster:
        leader, _ = elect(cluster, CONTROLLERS)
        epoch = _register(cluster, leader)
        topic_id = _topic_on_broker_100(cluster, leader, "isr-wire")

        for follower in set(CONTROLLERS) - {leader}:
            refused = _alter(cluster, follower, 3, epoch, topic_id, [BROKER_ID])
            assert (refused.error_code, refused.topics) == (NOT_CONTROLLER, ())

        stale = _alter(cluster, leader, 3, epoch - 1, topic_id, [BROKER_ID])
        assert (stale.error_code, stale.topics) == (STALE_BROKER_EPOCH, ())

        for version in (2, 3):
            for new_isr in ([], [4]):  # empty, or without the leader (4 is not even a replica)
                answer = _alter(cluster, leader, version, epoch, topic_id, new_isr)
                assert answer.error_code == NONE
                assert answer.topics[0].topic_id == topic_id
                assert answer.topics[0].partitions[0].error_code == INVALID_REQUEST

        same = _alter(cluster, leader, 3, epoch, topic_id, [BROKER_ID]).topics[0].partitions[0]
        assert (same.error_code, same.leader_id, same.leader_epoch, same.isr, same.partition_epoch) == (
            NONE, BROKER_ID, 0, (BROKER_ID,), 0)
