"""Preferred leaders on three real nodes (issue 16 item 3): ElectLeaders (key 43) and
`pko leader-election`, and ``auto.leader.rebalance.enable``.

A restarted node loses the leadership of the partitions it prefers to the nodes that stayed up.
With the automatic balance off, `pko leader-election --election-type PREFERRED` (and
confluent-kafka's ``AdminClient.elect_leaders``) gives it back; a second run answers "Valid
replica already elected"; an unknown partition fails with Kafka's exception; ApiVersions
advertises ElectLeaders 0-2 and a raw v0 request sent to any node is forwarded to the active
controller. With the balance on and a 1 s check interval, the leadership comes back with no
command. kafka-python 3.0 has no leader-election call (``perform_leader_election`` came later),
so it is not exercised. Usage errors of the command need no cluster.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import ElectionType, TopicPartition
from confluent_kafka.admin import AdminClient
from integration_helpers import wait_until
from quorum_helpers import call
from typer.testing import CliRunner

from cluster.pytest_plugin import RunningCluster, start_cluster
from commands.main import app
from pykafka_ops.protocol.api_keys import ApiKey

TOPIC, PARTITIONS = "pref", 6
YAML = f"""\
cluster: {{name: preferred}}
nodes:
  - {{id: 1}}
  - {{id: 2}}
  - {{id: 3}}
topics:
  - {{name: {TOPIC}, partitions: {PARTITIONS}, replication.factor: 3}}
"""
NONE, ELECTION_NOT_NEEDED = 0, 84


def _partitions(cluster: RunningCluster, node: int = 1) -> dict[int, Any]:
    """Partition index → Metadata v12 partition of the test topic, as ``node`` sees it."""
    answer = call(cluster, node, ApiKey.METADATA, 12, {"topics": [{"name": TOPIC, "topic_id": None}],
                                                        "allow_auto_topic_creation": False,
                                                        "include_topic_authorized_operations": False}, timeout=5)
    return {p.partition_index: p for p in answer.topics[0].partitions}


def _balanced(cluster: RunningCluster) -> bool:
    return all(p.leader_id == p.replica_nodes[0] for p in _partitions(cluster).values())


def _restart_preferred_leader(cluster: RunningCluster) -> tuple[int, list[int], dict[int, int]]:
    """Restart the preferred leader of partition 0 and wait until it is in sync again: (its id,
    the partitions it prefers, every partition's leader epoch before the restart)."""
    wait_until(lambda: _balanced(cluster), 30, "every partition led by its preferred replica")
    before = _partitions(cluster)
    node = before[0].replica_nodes[0]
    preferred = sorted(i for i, p in before.items() if p.replica_nodes[0] == node)
    cluster.restart(node)
    others = next(n for n in (1, 2, 3) if n != node)
    wait_until(lambda: all(node in p.isr_nodes for p in _partitions(cluster, others).values()), 30,
               f"node {node} back in every ISR")
    return node, preferred, {i: p.leader_epoch for i, p in before.items()}


def _pko(*args: str) -> Any:
    """`pko leader-election ARGS`, in process (``exit_code``, ``stdout``, ``stderr``)."""
    return CliRunner().invoke(app, ["leader-election", *args])


def test_preferred_leaders_come_back_on_demand(tmp_path: Path) -> None:
    with start_cluster(YAML, tmp_path, auto_leader_rebalance_enable=False) as cluster:
        bootstrap = cluster.bootstrap_servers
        advertised = {k.api_key: (k.min_version, k.max_version)
                      for k in call(cluster, 1, ApiKey.API_VERSIONS, 0, {}).api_keys}
        assert advertised[ApiKey.ELECT_LEADERS] == (0, 2)

        node, preferred, _epochs = _restart_preferred_leader(cluster)
        moved = _partitions(cluster)
        assert all(moved[i].leader_id != node for i in preferred), "no automatic balance when it is off"

        # confluent-kafka's own call elects the first partition (KIP-460 through librdkafka)
        client = AdminClient({"bootstrap.servers": bootstrap})
        first = TopicPartition(TOPIC, preferred[0])
        answers = client.elect_leaders(ElectionType.PREFERRED, [first]).result(timeout=30)
        assert [(tp.topic, tp.partition, error) for tp, error in answers.items()] == [(TOPIC, preferred[0], None)]

        # the tool elects the rest: the text is the Java tool's
        done = _pko("--election-type", "preferred", "--all-topic-partitions", "-b", bootstrap, "--output", "text")
        assert (done.exit_code, done.stderr) == (0, "")
        names = ", ".join(f"{TOPIC}-{i}" for i in preferred[1:])
        assert done.stdout == f"Successfully completed leader election (PREFERRED) for partitions {names}\n"
        after = _partitions(cluster)
        assert all(p.leader_id == p.replica_nodes[0] for p in after.values())
        assert all(after[i].leader_epoch == moved[i].leader_epoch + 1 for i in preferred)

        # nothing left to do: every partition named answers "already elected"; all of them, nothing
        listed = tmp_path / "partitions.json"
        listed.write_text(json.dumps({"partitions": [{"topic": TOPIC, "partition": i} for i in range(PARTITIONS)]}))
        again = _pko("--election-type", "PREFERRED", "--path-to-json-file", str(listed), "-b", bootstrap,
                     "--output", "text")
        every = ", ".join(f"{TOPIC}-{i}" for i in range(PARTITIONS))
        assert (again.exit_code, again.stdout) == (0, f"Valid replica already elected for partitions {every}\n")
        as_json = _pko("--election-type", "PREFERRED", "--topic", TOPIC, "--partition", "1", "-b", bootstrap,
                       "--output", "json")
        assert json.loads(as_json.stdout) == {"election_type": "PREFERRED", "partitions": [
            {"topic": TOPIC, "partition": 1, "result": "not_needed", "error": None, "message": None}]}
        nothing = _pko("--election-type", "UNCLEAN", "--all-topic-partitions", "-b", bootstrap, "--output", "json")
        assert json.loads(nothing.stdout) == {"election_type": "UNCLEAN", "partitions": []}

        # an unknown partition: Kafka's exception, exit 1 after the line
        unknown = _pko("--election-type", "PREFERRED", "--topic", TOPIC, "--partition", "99", "-b", bootstrap,
                       "--output", "text")
        assert unknown.exit_code == 1
        assert unknown.stdout == (f"Error completing leader election (PREFERRED) for partition: {TOPIC}-99: "
                                  "org.apache.kafka.common.errors.UnknownTopicOrPartitionException: "
                                  f"No such partition as {TOPIC}-99\n")
        assert unknown.stderr == "pko: 1 replica(s) could not be elected\n"

        # a raw v0 request (PREFERRED, no top-level error) through every node, forwarded or not
        for asked in (1, 2, 3):
            v0 = call(cluster, asked, ApiKey.ELECT_LEADERS, 0, {
                "topic_partitions": [{"topic": TOPIC, "partitions": [0]}], "timeout": 5000})
            assert [(r.topic, [(p.partition_id, p.error_code) for p in r.partition_result])
                    for r in v0.replica_election_results] == [(TOPIC, [(0, ELECTION_NOT_NEEDED)])]


def test_preferred_leaders_come_back_by_themselves(tmp_path: Path) -> None:
    with start_cluster(YAML, tmp_path, leader_imbalance_check_interval_seconds=1) as cluster:
        node, preferred, epochs = _restart_preferred_leader(cluster)
        wait_until(lambda: _balanced(cluster), 30, "the preferred leaders back without any command")
        after = _partitions(cluster)
        # each of them moved away at the restart and back: two leader changes at least
        assert all(after[i].leader_id == node and after[i].leader_epoch >= epochs[i] + 2 for i in preferred)


@pytest.mark.parametrize(("args", "message"), [
    (["--all-topic-partitions"], "Missing required option(s): election-type"),
    (["--election-type", "fair", "--all-topic-partitions"],
     "Invalid election type 'fair': expected one of PREFERRED, UNCLEAN (any case)"),
    (["--election-type", "preferred"],
     "One and only one of the following options is required: topic, all-topic-partitions, path-to-json-file"),
    (["--election-type", "preferred", "--topic", "t", "--all-topic-partitions"],
     "One and only one of the following options is required: topic, all-topic-partitions, path-to-json-file"),
    (["--election-type", "preferred", "--topic", "t"], "Missing required option(s): partition"),
    (["--election-type", "unclean", "--partition", "0", "--all-topic-partitions"],
     "Option partition is only allowed if topic is used"),
], ids=["no-type", "bad-type", "no-selection", "two-selections", "topic-without-partition", "partition-alone"])
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["leader-election", "-b", "127.0.0.1:1", *args])
    assert (result.exit_code, result.output) == (2, f"pko: {message}\n")


@pytest.mark.parametrize(("content", "message"), [
    ("", "Replica election data is empty"),
    ('{"topics": []}', 'Replica election data is missing "partitions" field'),
    ('{"partitions": [{"topic": "t", "partition": 0}, {"topic": "t", "partition": 0}]}',
     "Replica election data contains duplicate partitions: t-0"),
], ids=["empty", "no-partitions", "duplicates"])
def test_a_bad_json_file_exits_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "election.json"
    path.write_text(content)
    result = CliRunner().invoke(app, ["leader-election", "-b", "127.0.0.1:1", "--election-type", "preferred",
                                      "--path-to-json-file", str(path)])
    assert (result.exit_code, result.output) == (2, f"pko: {path}: {message}\n")


def test_an_unreachable_cluster_names_the_bootstrap_and_exits_1() -> None:
    result = CliRunner().invoke(app, ["leader-election", "-b", "127.0.0.1:1", "--election-type", "preferred",
                                      "--all-topic-partitions", "--timeout", "2000"])
    assert result.exit_code == 1
    assert result.output.startswith("pko: cannot reach the Kafka cluster at 127.0.0.1:1 within 2 s")
