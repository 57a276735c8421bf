"""`pko reassign` without a cluster: kafka-reassign-partitions' argument rules and file checks
(one line, exit 2), an unreachable cluster (one line naming it, exit 1), and --execute's and
--verify's steps against a stand-in for the cluster's calls (the throttle configs Kafka's tool
sets, then clears)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from commands.main import app
from pykafka_ops.models.reassign import BrokerInfo, OngoingReassignment, PartitionError
from pykafka_ops.services import reassign as service

PLAN = {"version": 1, "partitions": [{"topic": "t", "partition": 0, "replicas": [2, 3]}]}


def _pko(*args: str) -> Any:
    return CliRunner().invoke(app, ["reassign", *args])


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(PLAN))
    return path


@pytest.mark.parametrize(("args", "message"), [
    ([], "Command must include exactly one action: --generate, --execute, --verify, --cancel, --list"),
    (["--list", "--verify"], "Command must include exactly one action: --generate, --execute, --verify, --cancel, --list"),
    (["--execute"], 'Missing required argument "[reassignment-json-file]"'),
    (["--generate", "--broker-list", "1"], 'Missing required argument "[topics-to-move-json-file]"'),
    (["--list", "--throttle", "100"], 'Option "[throttle]" can\'t be used with action "[list]"'),
    (["--verify", "--reassignment-json-file", "{plan}", "--additional"],
     'Option "[additional]" can\'t be used with action "[verify]"'),
    (["--execute", "--reassignment-json-file", "{plan}", "--output", "json"],
     'Option "[output]" can\'t be used with action "[execute]"'),
])
def test_kafkas_argument_rules(args: list[str], message: str, plan_file: Path) -> None:
    result = _pko("-b", "127.0.0.1:1", *[a.replace("{plan}", str(plan_file)) for a in args])
    assert (result.exit_code, result.stderr) == (2, f"pko: {message}\n")


@pytest.mark.parametrize(("content", "message"), [
    ('{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}',
     "Size of replicas list [1, 2] is different from size of log dirs list [any] for partition t-0"),
    ('{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}',
     "Partition reassignment contains duplicate topic partitions: t-0"),
    ("[1,", "The input string is not a valid JSON: Expecting value: line 1 column 4 (char 3)"),
])
def test_a_bad_plan_is_one_line_and_exit_2(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = _pko("-b", "127.0.0.1:1", "--execute", "--reassignment-json-file", str(path))
    assert result.exit_code == 2
    assert result.stderr in (f"pko: {path}: {message}\n", f"pko: {message}\n")


def test_an_unreachable_cluster_is_named(plan_file: Path) -> None:
    for args in (["--list"], ["--verify", "--reassignment-json-file", str(plan_file)]):
        result = _pko("-b", "127.0.0.1:1", *args)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("pko: cannot reach the Kafka cluster at 127.0.0.1:1")
        assert result.stderr.count("\n") == 1


class FakeCluster:
    """The calls `services.reassign` makes, answered from memory; configs set are recorded."""

    def __init__(self, ongoing: tuple[OngoingReassignment, ...] = ()) -> None:
        self.ongoing = ongoing
        self.replicas = {("t", 0): (1, 2)}
        self.configs: list[tuple[str, str, dict[str, str], tuple[str, ...]]] = []
        self.altered: list[dict[Any, Any]] = []
        self.refused: tuple[PartitionError, ...] = ()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        brokers = tuple(BrokerInfo(b, "127.0.0.1", 9000 + b) for b in (1, 2, 3))

        async def view(_settings: Any) -> service.ClusterView:
            return service.ClusterView(brokers, dict(self.replicas))

        async def alter_configs(_settings: Any, kind: str, name: str, to_set: Any, to_delete: Any = ()) -> None:
            self.configs.append((kind, name, dict(to_set), tuple(to_delete)))

        def alter(_settings: Any, changes: Any) -> tuple[PartitionError, ...]:
            self.altered.append(dict(changes))
            return self.refused

        monkeypatch.setattr(service, "cluster_view", view)
        monkeypatch.setattr(service, "alter_configs", alter_configs)
        monkeypatch.setattr(service, "list_partition_reassignments", lambda _s, _p=None: self.ongoing)
        monkeypatch.setattr(service, "alter_partition_reassignments", alter)


def test_execute_prints_the_rollback_sets_kafkas_throttles_and_starts(plan_file: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = FakeCluster()
    cluster.install(monkeypatch)
    result = _pko("-b", "127.0.0.1:1", "--execute", "--reassignment-json-file", str(plan_file), "--throttle", "5000")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Current partition replica assignment\n\n"
        '{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any","any"]}]}\n\n'
        "Save this to use as the --reassignment-json-file option during rollback\n"
        "Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle "
        "is removed.\n"
        "The inter-broker throttle limit was set to 5000 B/s\n"
        "Successfully started partition reassignment for t-0\n")
    rates = {"leader.replication.throttled.rate": "5000", "follower.replication.throttled.rate": "5000"}
    assert cluster.configs == [
        ("topics", "t", {"leader.replication.throttled.replicas": "0:1,0:2",
                         "follower.replication.throttled.replicas": "0:3"}, ()),
        ("brokers", "1", rates, ()), ("brokers", "2", rates, ()), ("brokers", "3", rates, ())]
    assert cluster.altered == [{("t", 0): (2, 3)}]


def test_execute_refuses_to_run_beside_a_reassignment_without_additional(plan_file: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    FakeCluster((OngoingReassignment("u", 0, (1, 2, 3), (3,), (1,)),)).install(monkeypatch)
    result = _pko("-b", "127.0.0.1:1", "--execute", "--reassignment-json-file", str(plan_file))
    assert result.exit_code == 1
    assert result.stderr == f"pko: {service.CANNOT_EXECUTE_BECAUSE_OF_EXISTING}\n"


def test_execute_refuses_an_unknown_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeCluster().install(monkeypatch)
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"partitions": [{"topic": "t", "partition": 0, "replicas": [2, 7]}]}))
    result = _pko("-b", "127.0.0.1:1", "--execute", "--reassignment-json-file", str(path))
    assert (result.exit_code, result.stderr) == (1, "pko: Unknown broker id 7\n")


def test_a_partition_the_cluster_refuses_is_named_with_kafkas_error(plan_file: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = FakeCluster()
    cluster.refused = (PartitionError("t", 0, "INVALID_REPLICA_ASSIGNMENT", "Replica 3 is fenced."),)
    cluster.install(monkeypatch)
    result = _pko("-b", "127.0.0.1:1", "--execute", "--reassignment-json-file", str(plan_file))
    assert result.exit_code == 1
    assert result.stdout.endswith("during rollback\nError reassigning partition(s):\n"
                                  "t-0: INVALID_REPLICA_ASSIGNMENT: Replica 3 is fenced.\n")
    assert result.stderr == "pko: 1 partition(s) could not be reassigned\n"


def test_verify_reports_and_clears_throttles_once_nothing_moves(plan_file: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = FakeCluster()
    cluster.replicas[("t", 0)] = (2, 3)
    cluster.install(monkeypatch)
    result = _pko("-b", "127.0.0.1:1", "--verify", "--reassignment-json-file", str(plan_file))
    assert result.exit_code == 0, result.output
    assert result.stdout == ("Status of partition reassignment:\nReassignment of partition t-0 is completed.\n"
                             "Clearing broker-level throttles on brokers 1,2,3\nClearing topic-level throttles on topic t\n")
    broker_throttles = ("leader.replication.throttled.rate", "follower.replication.throttled.rate",
                        "replica.alter.log.dirs.io.max.bytes.per.second")
    assert cluster.configs == [("brokers", str(b), {}, broker_throttles) for b in (1, 2, 3)] + [
        ("topics", "t", {}, ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas"))]


def test_verify_in_progress_keeps_throttles_and_exits_0_with_data(plan_file: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = FakeCluster((OngoingReassignment("t", 0, (1, 2, 3), (3,), (1,)),))
    cluster.install(monkeypatch)
    result = _pko("-b", "127.0.0.1:1", "--verify", "--reassignment-json-file", str(plan_file), "--output", "json")
    assert result.exit_code == 0 and cluster.configs == []
    assert json.loads(result.stdout) == {
        "partitions": [{"topic": "t", "partition": 0, "state": "in_progress", "current_replicas": [1, 2, 3],
                        "target_replicas": [2, 3]}],
        "log_dir_moves": [], "reassignments_in_progress": True, "log_dir_moves_in_progress": False,
        "throttles_cleared": None}


def test_cancel_names_what_it_cancelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reassignment that only adds a replica (an RF raise) is cancelled too, as Kafka's Scala tool
    did (the Java port skips it)."""
    cluster = FakeCluster((OngoingReassignment("t", 0, (1, 2, 3), (3,), ()),))
    cluster.install(monkeypatch)
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"partitions": [{"topic": "t", "partition": 0, "replicas": [2, 3]},
                                               {"topic": "t", "partition": 1, "replicas": [2, 3]}]}))
    result = _pko("-b", "127.0.0.1:1", "--cancel", "--reassignment-json-file", str(path), "--preserve-throttles")
    assert result.exit_code == 0, result.output
    assert result.stdout == ("Successfully cancelled partition reassignment for: t-0\nNo active reassignment for: t-1\n"
                             "None of the specified partition moves are active.\n")
    assert cluster.altered == [{("t", 0): None}] and cluster.configs == []


def test_list_as_text_and_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeCluster((OngoingReassignment("t", 0, (1, 2, 3), (3,), (1,)),)).install(monkeypatch)
    result = _pko("-b", "127.0.0.1:1", "--list")
    assert result.stdout == "Current partition reassignments:\nt-0: replicas: 1,2,3. adding: 3. removing: 1.\n"
    result = _pko("-b", "127.0.0.1:1", "--list", "--output", "yaml")
    assert result.stdout.startswith("reassignments:\n- topic: t\n  partition: 0\n")
