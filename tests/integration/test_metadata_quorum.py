"""A quorum of three controller processes keeps the metadata log (issue "KRaft quorum").

Three controller-only nodes elect a leader over their controller listeners (Vote,
BeginQuorumEpoch, Fetch of ``__cluster_metadata-0``). Writes go to the active controller with
Kafka's own RPCs — BrokerRegistration and CreateTopics — and the followers answer NOT_CONTROLLER.
Then: kill -9 of the leader → another leader, and writes continue; the killed node restarts
and catches up; with two of three down a write fails with REQUEST_TIMED_OUT within
controller.quorum.request.timeout.ms (an unknown outcome, as in Kafka), and writes succeed again
once one returns; every node ends with
the same committed metadata. Nothing here sleeps to wait: every wait polls a condition with a
deadline. The figures (election times) are printed as one JSON line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from integration_helpers import wait_until
from quorum_helpers import call, create_on, create_when_led, elect, register_broker

from cluster.pytest_plugin import RunningCluster, start_cluster
from pykafka_ops.protocol.api_keys import ApiKey

QUORUM_YAML = """\
cluster: {name: quorum}
nodes:
  - {id: 1, roles: [controller]}
  - {id: 2, roles: [controller]}
  - {id: 3, roles: [controller]}
broker:
  broker.session.timeout.ms: 600000           # the test's broker registers once, never heartbeats
  controller.quorum.election.timeout.ms: 1000  # Kafka's quorum defaults, not the test cluster's
  controller.quorum.fetch.timeout.ms: 2000
  controller.quorum.election.backoff.max.ms: 1000
  controller.quorum.request.timeout.ms: 2000
"""
NOT_CONTROLLER = 41
REQUEST_TIMED_OUT = 7
REQUEST_TIMEOUT_S = 2.0  # controller.quorum.request.timeout.ms, Kafka's default
PKO = str(Path(sys.executable).parent / "pko")


def _metadata(cluster: RunningCluster, node: int) -> str:
    result = subprocess.run([PKO, "cluster", "metadata", "--node", str(node), "-c", str(cluster.config_path)],
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


def test_three_controllers_elect_fail_over_and_agree(tmp_path: Path) -> None:
    with start_cluster(QUORUM_YAML, tmp_path) as cluster:
        nodes = [1, 2, 3]
        leader, first_election_s = elect(cluster, nodes)
        assert register_broker(cluster, leader) == 0
        assert create_on(cluster, leader, "before-failover") == 0
        for follower in set(nodes) - {leader}:
            assert create_on(cluster, follower, "on-a-follower") == NOT_CONTROLLER

        cluster.kill(leader)  # kill -9
        survivors = [n for n in nodes if n != leader]
        new_leader, failover_s = elect(cluster, survivors)
        assert new_leader != leader
        # NOT_CONTROLLER until the new leader's leadership is committed (it is then the active controller)
        create_when_led(cluster, survivors, "after-failover")

        cluster.restart(leader)  # it comes back as a voter and catches up
        create_when_led(cluster, nodes, "after-restart")
        new_leader = elect(cluster, nodes)[0]

        others = [n for n in nodes if n != new_leader]
        for node in others:
            cluster.kill(node)
        started = time.monotonic()
        assert create_on(cluster, new_leader, "without-a-majority") in (REQUEST_TIMED_OUT, NOT_CONTROLLER)
        refused_in_s = time.monotonic() - started
        assert refused_in_s < REQUEST_TIMEOUT_S + 2

        cluster.restart(others[0])  # a majority again
        _leader_again, recovery_s = elect(cluster, [new_leader, others[0]])
        create_when_led(cluster, [new_leader, others[0]], "after-recovery")
        cluster.restart(others[1])

        def same_metadata() -> bool:  # `pko cluster metadata` reads each node's committed log
            outputs = {_metadata(cluster, node) for node in nodes}
            return len(outputs) == 1 and "after-recovery" in outputs.pop()

        # a write that timed out has an unknown outcome, as in Kafka: its records stayed in the
        # leader's log and commit once a majority holds them (if that leader keeps its epoch)
        wait_until(same_metadata, 15, "the same metadata on all three nodes")

    print(json.dumps({"test": "metadata_quorum", "first_election_s": round(first_election_s, 2),
                      "failover_after_kill9_s": round(failover_s, 2), "write_refused_without_majority_s":
                      round(refused_in_s, 2), "recovery_s": round(recovery_s, 2)}))


SNAPSHOT_YAML = QUORUM_YAML + "  metadata.log.max.record.bytes.between.snapshots: 20000\n"


def _log(cluster: RunningCluster, node: int) -> str:
    return (cluster.config.data_dir / "logs" / f"node-{node}.log").read_text()


def test_snapshots_bound_the_replay_and_a_far_behind_node_catches_up_by_fetch_snapshot(tmp_path: Path) -> None:
    """KIP-630: every controller snapshots its image every 20 kB of records and deletes the log
    before it; a follower that was down meanwhile is below the leader's log start, so it loads
    the leader's snapshot (FetchSnapshot) and goes on from there; a restarted node replays from
    its own snapshot; all three end with the same metadata."""
    with start_cluster(SNAPSHOT_YAML, tmp_path) as cluster:
        nodes = [1, 2, 3]
        leader, _seconds = elect(cluster, nodes)
        assert register_broker(cluster, leader) == 0
        behind = next(n for n in nodes if n != leader)
        cluster.kill(behind)
        started = time.monotonic()
        for i in range(400):  # 1 200 records: about 300 kB, some fifteen snapshots
            assert create_on(cluster, leader, f"t{i:03d}") == 0
        write_s = time.monotonic() - started
        assert "metadata snapshot at offset" in _log(cluster, leader)

        cluster.restart(behind)
        wait_until(lambda: "installed the leader's metadata snapshot" in _log(cluster, behind), 20,
                   f"node {behind} to load the leader's snapshot")
        wait_until(lambda: len({_metadata(cluster, node) for node in nodes}) == 1, 20,
                   "the same metadata on all three nodes")

        cluster.restart(leader)  # a clean restart: its image comes from its latest snapshot
        assert "metadata image loaded from the snapshot at offset" in _log(cluster, leader)
        create_when_led(cluster, nodes, "after-snapshots")
        wait_until(lambda: len({_metadata(cluster, node) for node in nodes}) == 1, 20,
                   "the same metadata on all three nodes after the restart")
        metadata = _metadata(cluster, 1)
        assert "topic t399 " in metadata and "topic after-snapshots " in metadata

    print(json.dumps({"test": "metadata_snapshots", "records": 1200, "write_s": round(write_s, 2)}))


def test_the_raft_apis_are_on_the_controller_listener_only(tmp_path: Path) -> None:
    """Kafka's listener types: the KRaft RPCs (Vote, BeginQuorumEpoch, EndQuorumEpoch,
    FetchSnapshot) are offered on the controller listener and never in the client listener's
    ApiVersions; DescribeQuorum is on both."""
    raft_apis = {ApiKey.VOTE, ApiKey.BEGIN_QUORUM_EPOCH, ApiKey.END_QUORUM_EPOCH, ApiKey.FETCH_SNAPSHOT}
    # the client listener of a combined node, and the controller listener of a controller-only one
    with start_cluster("cluster: {name: listeners}\nnodes:\n  - {id: 1}\n", tmp_path / "single") as single:
        keys = {entry.api_key for entry in call(single, 1, ApiKey.API_VERSIONS, 3, {
            "client_software_name": "t", "client_software_version": "1"}).api_keys}
        assert not raft_apis & keys and ApiKey.DESCRIBE_QUORUM in keys
    with start_cluster(QUORUM_YAML, tmp_path / "quorum") as quorum:
        keys = {entry.api_key for entry in call(quorum, 1, ApiKey.API_VERSIONS, 3, {
            "client_software_name": "t", "client_software_version": "1"}).api_keys}
        assert raft_apis <= keys and ApiKey.DESCRIBE_QUORUM in keys and ApiKey.PRODUCE not in keys
