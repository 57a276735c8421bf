"""`pko cluster quorum` (kafka-metadata-quorum describe) and the DescribeQuorum handler (key 55),
end to end: the real `pko` binary and a wire client against a real node started by the plugin.

The node is a single voter: it leads, its log end offset is the high watermark, and as Kafka's
leader it reports "now" (wall clock, ms) as its own last fetch and caught-up times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from group_clients import Broker, create_topic, unique

from cluster.pytest_plugin import RunningCluster, free_ports, start_cluster
from pykafka_ops.client.wire import WireClient
from pykafka_ops.protocol.codec import ErrorCode

_SCRIPT = Path(sys.executable).parent / "pko"
PKO = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "commands.main"]
DESCRIBE_QUORUM, API_VERSIONS, DESCRIBE_CLUSTER = 55, 18, 60
METADATA_TOPIC = "__cluster_metadata"
STATUS_LABELS = ["ClusterId", "LeaderId", "LeaderEpoch", "HighWatermark", "MaxFollowerLag", "MaxFollowerLagTimeMs",
                 "CurrentVoters", "CurrentObservers"]


def pko(*args: object) -> subprocess.CompletedProcess[str]:
    """The real `pko` binary, stdout a pipe, without $PKO_BOOTSTRAP (so -c and -b decide)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PKO_BOOTSTRAP", "PKO_DEBUG")}
    return subprocess.run([*PKO, *map(str, args)], check=False, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=90)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """A single-node cluster of this module's own (its metadata log grows only by these tests)."""
    with start_cluster("cluster: {name: quorum}\nnodes:\n  - {id: 1}\nbroker: {num.partitions: 1}\n",
                       tmp_path_factory.mktemp("pko-quorum")) as cluster:
        yield cluster


def _port(cluster: RunningCluster) -> int:
    return cluster.config.nodes[0].port


def _describe(cluster: RunningCluster, version: int, topics: list[dict[str, object]] | None = None) -> object:
    body = {"topics": topics if topics is not None else
            [{"topic_name": METADATA_TOPIC, "partitions": [{"partition_index": 0}]}]}
    with WireClient("127.0.0.1", _port(cluster), 10) as client:
        return client.request(DESCRIBE_QUORUM, version, body)


def _cluster_id(cluster: RunningCluster) -> str:
    with WireClient("127.0.0.1", _port(cluster), 10) as client:
        return str(client.request(DESCRIBE_CLUSTER, 0, {}).cluster_id)


def _near_now(ms: int) -> bool:
    return abs(ms - time.time() * 1000) < 60_000


# -- the handler, per version -------------------------------------------------------------------


def test_api_versions_lists_describe_quorum_0_to_2(node: RunningCluster) -> None:
    with WireClient("127.0.0.1", _port(node), 10) as client:
        keys = {k.api_key: (k.min_version, k.max_version) for k in client.request(API_VERSIONS, 0, {}).api_keys}
    assert keys.get(DESCRIBE_QUORUM) == (0, 2)


@pytest.mark.parametrize("version", [0, 1, 2])
def test_describe_quorum_answers_the_single_voter(node: RunningCluster, version: int) -> None:
    response = _describe(node, version)
    assert response.error_code == ErrorCode.none
    (topic,) = response.topics
    (partition,) = topic.partitions
    assert (topic.topic_name, partition.partition_index, partition.error_code) == (METADATA_TOPIC, 0, ErrorCode.none)
    assert partition.leader_id == 1 and partition.leader_epoch >= 1 and partition.high_watermark > 0
    (voter,) = partition.current_voters
    assert partition.observers == ()
    assert (voter.replica_id, voter.log_end_offset) == (1, partition.high_watermark)
    if version >= 1:  # the leader reports "now" for itself
        assert _near_now(voter.last_fetch_timestamp) and _near_now(voter.last_caught_up_timestamp)
    if version >= 2:
        assert response.error_message is None and partition.error_message is None
        assert voter.replica_directory_id is None  # the zero UUID: unknown (KIP-853)
        (described,) = response.nodes
        (listener,) = described.listeners
        assert (described.node_id, listener.host, listener.port) == (1, "127.0.0.1", _port(node))


@pytest.mark.parametrize("version", [0, 1, 2])
def test_describe_quorum_of_another_partition_is_unknown_topic_or_partition(node: RunningCluster,
                                                                              version: int) -> None:
    asked = [{"topic_name": METADATA_TOPIC, "partitions": [{"partition_index": 1}]},
             {"topic_name": "orders", "partitions": [{"partition_index": 0}, {"partition_index": 3}]}]
    response = _describe(node, version, asked)
    assert response.error_code == ErrorCode.none
    assert [(t.topic_name, [(p.partition_index, p.error_code) for p in t.partitions]) for t in response.topics] == [
        (METADATA_TOPIC, [(1, ErrorCode.unknown_topic_or_partition)]),
        ("orders", [(0, ErrorCode.unknown_topic_or_partition), (3, ErrorCode.unknown_topic_or_partition)])]
    if version >= 2:
        assert response.topics[0].partitions[0].error_message == "This server does not host this topic-partition."


def test_the_high_watermark_follows_metadata_commits(node: RunningCluster) -> None:
    before = _describe(node, 2).topics[0].partitions[0].high_watermark
    create_topic(node.bootstrap_servers, unique("quorum-hw"), 2)
    after = _describe(node, 2).topics[0].partitions[0]
    assert after.high_watermark > before and after.current_voters[0].log_end_offset == after.high_watermark


# -- pko cluster quorum ---------------------------------------------------------------------------


def _status_lines(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()
    assert [line[:24].rstrip().rstrip(":") for line in lines] == STATUS_LABELS, stdout
    assert all(line[23] == " " and (len(line) == 24 or line[24] != " ") for line in lines), stdout  # column 25
    return {line[:24].rstrip().rstrip(":"): line[24:] for line in lines}


def test_status_is_kafka_metadata_quorums_layout(node: RunningCluster) -> None:
    default = pko("cluster", "quorum", "-b", node.bootstrap_servers)
    assert default.returncode == 0, default.stderr
    fields = _status_lines(default.stdout)
    high_watermark = _describe(node, 2).topics[0].partitions[0].high_watermark
    assert fields == {"ClusterId": _cluster_id(node), "LeaderId": "1", "LeaderEpoch": fields["LeaderEpoch"],
                      "HighWatermark": str(high_watermark), "MaxFollowerLag": "0", "MaxFollowerLagTimeMs": "0",
                      "CurrentVoters": f'[{{"id": 1, "endpoints": ["PLAINTEXT://127.0.0.1:{_port(node)}"]}}]',
                      "CurrentObservers": "[]"}
    assert int(fields["LeaderEpoch"]) >= 1
    explicit = pko("cluster", "quorum", "--status", "-b", node.bootstrap_servers)
    assert (explicit.returncode, explicit.stdout) == (0, default.stdout)


def test_status_json_and_yaml(node: RunningCluster) -> None:
    result = pko("cluster", "quorum", "--status", "-b", node.bootstrap_servers, "--output", "json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert list(status) == ["cluster_id", "leader_id", "leader_epoch", "high_watermark", "max_follower_lag",
                            "max_follower_lag_time_ms", "current_voters", "current_observers"]
    assert (status["cluster_id"], status["leader_id"], status["max_follower_lag"]) == (_cluster_id(node), 1, 0)
    assert status["current_voters"] == [{"id": 1, "directory_id": None,
                                         "endpoints": [f"PLAINTEXT://127.0.0.1:{_port(node)}"]}]
    assert status["current_observers"] == []
    import yaml

    as_yaml = pko("cluster", "quorum", "-b", node.bootstrap_servers, "--output", "yaml")
    assert as_yaml.returncode == 0 and yaml.safe_load(as_yaml.stdout)["leader_id"] == 1


def test_replication_table_text_and_json(node: RunningCluster) -> None:
    result = pko("cluster", "quorum", "--replication", "-b", node.bootstrap_servers)
    assert result.returncode == 0, result.stderr
    header, *rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [h.strip() for h in header] == ["NodeId", "LogEndOffset", "Lag", "LastFetchTimestamp",
                                           "LastCaughtUpTimestamp", "Status"]
    (row,) = [[cell.strip() for cell in r] for r in rows]
    high_watermark = _describe(node, 2).topics[0].partitions[0].high_watermark
    assert row[:3] == ["1", str(high_watermark), "0"] and row[5] == "Leader"
    assert _near_now(int(row[3])) and _near_now(int(row[4]))
    as_json = pko("cluster", "quorum", "--replication", "-b", node.bootstrap_servers, "--output", "json")
    (replica,) = json.loads(as_json.stdout)
    assert {k: replica[k] for k in ("node_id", "directory_id", "log_end_offset", "lag", "status")} == {
        "node_id": 1, "directory_id": None, "log_end_offset": high_watermark, "lag": 0, "status": "Leader"}
    assert _near_now(replica["last_fetch_timestamp"]) and _near_now(replica["last_caught_up_timestamp"])


def test_the_cluster_file_gives_the_bootstrap_servers(node: RunningCluster) -> None:
    result = pko("cluster", "quorum", "-c", node.config_path, "--output", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["leader_id"] == 1


def test_unreachable_bootstrap_is_one_line_exit_1() -> None:
    (port,) = free_ports(1)
    for flag in ("--status", "--replication"):
        result = pko("cluster", "quorum", flag, "-b", f"127.0.0.1:{port}", "--timeout", "3000")
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in result.stderr, result.stderr
        assert result.stdout == ""


@pytest.mark.parametrize(("args", "message"), [
    (["--status", "--replication"], "Only one of --status or --replication should be specified"),
    (["--bogus"], "No such option: --bogus"),
    (["--timeout", "0"], "Invalid value for '--timeout'"),
], ids=["status-and-replication", "unknown-flag", "bad-timeout"])
def test_bad_arguments_are_one_line_exit_2(args: list[str], message: str) -> None:
    (port,) = free_ports(1)
    result = pko("cluster", "quorum", *args, "-b", f"127.0.0.1:{port}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("pko: ") and message in result.stderr


def test_a_broker_without_describe_quorum_is_named(broker: Broker) -> None:
    """Tansu has no KRaft quorum: one line naming the broker and the API, exit 1 (ours answers)."""
    result = pko("cluster", "quorum", "-b", broker.bootstrap, "--timeout", "5000")
    if broker.name == "pko":
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "DescribeQuorum" in result.stderr, result.stderr


def test_status_and_replication_arithmetic_of_a_three_voter_quorum() -> None:
    """kafka-metadata-quorum's arithmetic on an answer as the Raft quorum will give it: the lag of
    the furthest voter and its caught-up delay, rows leader → followers → observers."""
    from pykafka_ops.client.quorum_requests import QuorumInfo, QuorumNode, ReplicaState
    from pykafka_ops.services.quorum import replication_of, status_of

    info = QuorumInfo(
        leader_id=2, leader_epoch=7, high_watermark=95,
        voters=(ReplicaState(1, None, 90, 1_000, 900), ReplicaState(2, None, 100, 1_500, 1_500),
                ReplicaState(3, "AAAAAAAAAAAAAAAAAAAAAQ", 95, None, None)),
        observers=(ReplicaState(4, None, 80, 1_400, 1_200),),
        nodes=(QuorumNode(1, ("CONTROLLER://h1:9093",)), QuorumNode(2, ("CONTROLLER://h2:9093",))),
        cluster_id="c")
    status = status_of(info)
    assert (status.max_follower_lag, status.max_follower_lag_time_ms) == (10, 600)
    assert [m.kafka_text() for m in status.current_voters] == [
        '{"id": 1, "endpoints": ["CONTROLLER://h1:9093"]}', '{"id": 2, "endpoints": ["CONTROLLER://h2:9093"]}',
        '{"id": 3, "directoryId": "AAAAAAAAAAAAAAAAAAAAAQ"}']
    assert [(r.node_id, r.lag, r.last_fetch_timestamp, r.status) for r in replication_of(info)] == [
        (2, 0, 1_500, "Leader"), (1, 10, 1_000, "Follower"), (3, 5, -1, "Follower"), (4, 20, 1_400, "Observer")]
    unknown = status_of(QuorumInfo(2, 7, 95, info.voters[1:2] + (ReplicaState(3, None, 90, None, None),), ()))
    assert (unknown.max_follower_lag, unknown.max_follower_lag_time_ms) == (10, -1)
