"""Replicated ``__consumer_offsets`` (issue 16 item 1) on three real nodes: FindCoordinator answers
COORDINATOR_NOT_AVAILABLE while fewer brokers than ``offsets.topic.replication.factor`` are
registered, and an offset commit is answered only once the in-sync replicas have it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from cluster.group.offsets_topic import partition_for
from cluster.pytest_plugin import RunningCluster, start_cluster, wait_until
from faults.cluster_ops import leader_of, wait_for_full_isr
from pykafka_ops.protocol.api_keys import ApiKey
from quorum_helpers import call

OFFSETS_PARTITIONS = 3
YAML = f"""\
cluster: {{name: coordinators}}
nodes:
  - {{id: 1}}
  - {{id: 2}}
  - {{id: 3}}
broker:
  offsets.topic.num.partitions: {OFFSETS_PARTITIONS}
  offsets.topic.replication.factor: 3
  min.insync.replicas: 2
  offsets.commit.timeout.ms: 3000
  group.initial.rebalance.delay.ms: 0
topics:
  - {{name: orders, partitions: 2, replication.factor: 3}}
"""
GROUP = "billing"
NONE, COORDINATOR_NOT_AVAILABLE = 0, 15


def _coordinator(cluster: RunningCluster, via: int) -> tuple[int, int]:
    """(error code, coordinator node id) as FindCoordinator v3 answers on ``via``."""
    answer = call(cluster, via, ApiKey.FIND_COORDINATOR, 3, {"key": GROUP, "key_type": 0})
    return answer.error_code, answer.node_id


def _commit(cluster: RunningCluster, node: int, offset: int) -> int:
    """A membership-less OffsetCommit v8 of ``offset`` for orders-0 sent to ``node``: its error."""
    answer = call(cluster, node, ApiKey.OFFSET_COMMIT, 8, {
        "group_id": GROUP, "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
        "topics": [{"name": "orders", "partitions": [{"partition_index": 0, "committed_offset": offset,
                                                      "committed_leader_epoch": -1, "committed_metadata": ""}]}]},
        timeout=15)
    return answer.topics[0].partitions[0].error_code


def _committed(cluster: RunningCluster) -> int:
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": GROUP})
    try:
        (found,) = consumer.committed([TopicPartition("orders", 0)], timeout=10)
        return found.offset
    finally:
        consumer.close()


def test_commits_wait_for_the_isr_and_the_coordinator_waits_for_enough_brokers(tmp_path: Path) -> None:
    """With two of three brokers registered FindCoordinator answers COORDINATOR_NOT_AVAILABLE
    (the topic cannot have its 3 replicas yet); then an offset commit is answered only once the
    in-sync replicas have it. The coordinator's kill -9, with a group consuming, is fault test
    ``test_coordinator_kill_9_the_group_resumes_from_its_committed_offsets``."""
    with start_cluster(YAML, tmp_path) as cluster:
        cluster.kill(3)
        wait_until(lambda: 3 not in {b.node_id for b in call(cluster, 1, ApiKey.METADATA, 12, {
            "topics": [], "allow_auto_topic_creation": False,
            "include_topic_authorized_operations": False}).brokers}, 15, "broker 3 fenced")
        assert _coordinator(cluster, 1)[0] == COORDINATOR_NOT_AVAILABLE
        cluster.restart(3)
        wait_until(lambda: _coordinator(cluster, 1)[0] == NONE, 20, "a coordinator once broker 3 is back")
        _, coordinator = _coordinator(cluster, 1)
        assert leader_of(cluster, "__consumer_offsets", partition_for(GROUP, OFFSETS_PARTITIONS)) == coordinator
        wait_for_full_isr(cluster, "__consumer_offsets")
        assert _commit(cluster, coordinator, 10) == NONE

        # both followers stopped: the commit is appended by the leader but never acknowledged
        # (min.insync.replicas 2), where a leader-only acknowledgment would have answered NONE
        followers = [n for n in (1, 2, 3) if n != coordinator]
        for node in followers:
            cluster.pause(node)
        started = time.monotonic()
        assert _commit(cluster, coordinator, 20) == COORDINATOR_NOT_AVAILABLE
        refused_s = time.monotonic() - started
        for node in followers:
            cluster.resume(node)
        wait_for_full_isr(cluster, "__consumer_offsets", timeout_s=30)
        assert wait_until(lambda: _commit(cluster, coordinator, 30) == NONE or None, 15, "a commit after resume")
        assert _committed(cluster) == 30
    print(json.dumps({"test": "replicated_offset_commits", "coordinator": coordinator,
                      "unreplicated_commit_refused_s": round(refused_s, 2)}))
