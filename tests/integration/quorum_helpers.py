"""Helpers of the metadata-quorum tests and benchmark: find the active controller, register a
broker and create a topic with Kafka's own RPCs on a controller listener."""

from __future__ import annotations

import time
import uuid
from typing import Any

from integration_helpers import wait_until

from cluster.pytest_plugin import RunningCluster
from pykafka_ops.client.wire import WireClient
from pykafka_ops.protocol.api_keys import ApiKey

BROKER_ID = 100
NOT_CONTROLLER = 41


def call(cluster: RunningCluster, node: int, api_key: ApiKey, version: int, body: dict[str, Any],
         timeout: float = 10.0) -> Any:
    """One request to ``node``'s listener (a controller-only node's is its controller listener)."""
    with WireClient(cluster.config.host, cluster.config.node(node).port, timeout=timeout) as client:
        return client.request(api_key, version, body)


def leader(cluster: RunningCluster, alive: list[int]) -> int:
    """The node that answers DescribeQuorum as the leader (followers answer NOT_LEADER_OR_FOLLOWER)."""
    for node in alive:
        try:
            answer = call(cluster, node, ApiKey.DESCRIBE_QUORUM, 1, {"topics": [
                {"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]}, timeout=2)
        except (OSError, ConnectionError):
            continue
        partition = answer.topics[0].partitions[0]
        if partition.error_code == 0 and partition.leader_id == node:
            return node
    raise AssertionError(f"no leader among {alive}")


def register_broker(cluster: RunningCluster, node: int, timeout_s: float = 10) -> int:
    """BrokerRegistration of broker ``BROKER_ID`` on ``node``, then one BrokerHeartbeat that has
    it unfenced (so that topics can be placed on it): the first error code, or 0. A quorum
    leader answers NOT_CONTROLLER until its leadership is committed (it is then the active
    controller, as Kafka's): that answer is retried until ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = call(cluster, node, ApiKey.BROKER_REGISTRATION, 0, {
            "broker_id": BROKER_ID, "cluster_id": "", "incarnation_id": uuid.uuid4(), "features": [], "rack": None,
            "listeners": [{"name": "PLAINTEXT", "host": "127.0.0.1", "port": 19092, "security_protocol": 0}]})
        if answer.error_code != NOT_CONTROLLER or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if answer.error_code:
        return answer.error_code
    heartbeat = call(cluster, node, ApiKey.BROKER_HEARTBEAT, 0, {
        "broker_id": BROKER_ID, "broker_epoch": answer.broker_epoch, "current_metadata_offset": 2**62,
        "want_fence": False, "want_shut_down": False})
    return heartbeat.error_code or (0 if not heartbeat.is_fenced else -1)


def create_on(cluster: RunningCluster, node: int, name: str) -> int:
    """CreateTopics of ``name`` (2 partitions) on ``node``: the error code."""
    answer = call(cluster, node, ApiKey.CREATE_TOPICS, 7, {
        "topics": [{"name": name, "num_partitions": 2, "replication_factor": 1, "assignments": [], "configs": []}],
        "timeout": 5000, "validate_only": False})
    return answer.topics[0].error_code


def elect(cluster: RunningCluster, alive: list[int]) -> tuple[int, float]:
    """The leader among ``alive`` once there is one, and how long that took (seconds)."""
    started = time.monotonic()
    found = wait_until(lambda: leader(cluster, alive), 15, f"a leader among nodes {alive}")
    return found, time.monotonic() - started


TOPIC_ALREADY_EXISTS = 36


def create_when_led(cluster: RunningCluster, alive: list[int], name: str, timeout_s: float = 15) -> None:
    """Create ``name`` on whichever node leads, retrying while leadership moves (a restarted
    voter may still start an election). TOPIC_ALREADY_EXISTS counts as done: an earlier attempt
    whose answer was lost (a timeout is an unknown outcome) did create it."""

    def attempt() -> bool:
        return create_on(cluster, leader(cluster, alive), name) in (0, TOPIC_ALREADY_EXISTS)

    wait_until(attempt, timeout_s, f"topic {name} created on the active controller")
