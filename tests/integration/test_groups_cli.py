"""`pko consumer-groups` end to end on our cluster, with real confluent-kafka and kafka-python consumers.

The real `pko` binary (subprocess) where the exact process behaviour matters (exit codes,
streams), the in-process runner elsewhere. The cluster starts groups at once
(``group.initial.rebalance.delay.ms: 0``); waits poll with deadlines, nothing sleeps.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from group_clients import (
    Pko,
    commit,
    create_topic,
    group_member,
    produce,
    read_from_committed,
    rows,
    unique,
    wait_until,
)

from cluster.pytest_plugin import RunningCluster, start_cluster

_SCRIPT = Path(sys.executable).parent / "pko"
PKO = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "commands.main"]
COUNTS = {0: 5, 1: 3, 2: 4}


@pytest.fixture(scope="module")
def groups_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """A node of our own (one test restarts it) with fast group settings."""
    with start_cluster("cluster: {name: groups}\nnodes:\n  - {id: 1}\nbroker: {num.partitions: 3}\n",
                       tmp_path_factory.mktemp("groups"), **{"group.initial.rebalance.delay.ms": 0,
                                                            "offsets.topic.num.partitions": 3}) as running:
        yield running


@pytest.fixture
def bootstrap(groups_cluster: RunningCluster) -> str:
    return groups_cluster.bootstrap_servers


@pytest.fixture
def topic(bootstrap: str) -> str:
    """A fresh 3-partition topic holding COUNTS records."""
    name = unique("orders")
    create_topic(bootstrap, name, 3)
    produce(bootstrap, name, COUNTS)
    return name


def pko_process(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real binary, as a script would run it."""
    return subprocess.run([*PKO, "consumer-groups", "-b", bootstrap, *args], capture_output=True, text=True, check=False,
                          timeout=60)


def describe_json(bootstrap: str, group: str) -> dict:
    (described,) = json.loads(Pko(bootstrap)("--describe", "--group", group, "--output", "json").stdout)["groups"]
    return described


def test_describe_while_consuming_lag_falls_to_zero(bootstrap: str, topic: str) -> None:
    group = unique("worker")
    commit(bootstrap, group, {(topic, p): 0 for p in COUNTS})
    lagging = pko_process(bootstrap, "--describe", "--group", group, "--fail-on-lag", "0")
    assert lagging.returncode == 3
    assert lagging.stderr.endswith(f"pko: group '{group}' lags 5 records on {topic}-0 (--fail-on-lag 0)\n")
    with group_member(bootstrap, group, [topic], client_id="lag-worker") as member:
        def caught_up() -> dict | None:
            described = describe_json(bootstrap, group)
            owned = all(p["client_id"] == "lag-worker" for p in described["partitions"])
            return described if owned and described["total_lag"] == 0 else None

        described = wait_until(caught_up, 30, f"group {group} to consume everything")
        assert (described["state"], len(member.consumed)) == ("Stable", sum(COUNTS.values()))
        assert [(p["partition"], p["current_offset"], p["lag"], p["host"]) for p in described["partitions"]] == [
            (p, n, 0, "/127.0.0.1") for p, n in COUNTS.items()]
        assert pko_process(bootstrap, "--describe", "--group", group, "--fail-on-lag", "0").returncode == 0


def test_missing_group_exits_1_with_kafkas_message(bootstrap: str) -> None:
    group = unique("nobody")
    result = pko_process(bootstrap, "--describe", "--group", group)
    assert (result.returncode, result.stdout, result.stderr) == (
        1, f"\nError: Consumer group '{group}' does not exist.\n", "")


@pytest.mark.parametrize(("scenario", "resumes_at"), [
    (["--to-earliest"], {0: 0, 1: 0, 2: 0}),
    (["--to-offset", "2"], {0: 2, 1: 2, 2: 2}),
    (["--shift-by", "-1"], {0: 2, 1: 1, 2: 2}),
    (["--to-current"], {0: 3, 1: 2, 2: 3}),
    (["--to-datetime", "2000-01-01T00:00:00Z"], {0: 0, 1: 0, 2: 0}),
    (["--by-duration", "PT1H"], {0: 0, 1: 0, 2: 0}),
])
def test_reset_execute_then_a_consumer_resumes_at_the_new_offsets(bootstrap: str, topic: str, scenario: list[str],
                                                                  resumes_at: dict[int, int]) -> None:
    group = unique("resume")
    commit(bootstrap, group, {(topic, 0): 3, (topic, 1): 2, (topic, 2): 3})
    result = Pko(bootstrap)("--reset-offsets", "--group", group, "--all-topics", *scenario, "--execute")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert read_from_committed(bootstrap, group, topic, 3) == resumes_at


def test_to_latest_then_a_kafka_python_consumer_sees_only_new_records(bootstrap: str, topic: str) -> None:
    from kafka import KafkaConsumer

    group = unique("latest")
    commit(bootstrap, group, {(topic, p): 0 for p in COUNTS})
    assert Pko(bootstrap)("--reset-offsets", "--group", group, "--topic", topic, "--to-latest", "--execute").exit_code == 0
    produce(bootstrap, topic, {0: 1, 1: 1, 2: 1})
    consumer = KafkaConsumer(topic, group_id=group, bootstrap_servers=bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=15_000)
    try:
        first = {}
        for record in consumer:
            first.setdefault(record.partition, record.offset)
            if len(first) == 3:
                break
    finally:
        consumer.close()
    assert first == COUNTS


def test_export_from_file_round_trip_moves_a_consumer(bootstrap: str, topic: str, tmp_path: Path) -> None:
    source, target = unique("source"), unique("target")
    commit(bootstrap, source, {(topic, 0): 4, (topic, 1): 1, (topic, 2): 2})
    exported = pko_process(bootstrap, "--reset-offsets", "--group", source, "--all-topics", "--to-current", "--export",
                           "--dry-run")
    assert exported.stdout == f"{topic},0,4\n{topic},1,1\n{topic},2,2\n\n"
    (tmp_path / "plan.csv").write_text(exported.stdout)
    applied = pko_process(bootstrap, "--reset-offsets", "--group", target, "--from-file", str(tmp_path / "plan.csv"),
                          "--execute")
    assert applied.returncode == 0
    assert read_from_committed(bootstrap, target, topic, 3) == {0: 4, 1: 1, 2: 2}


def test_active_group_is_refused_and_keeps_its_offsets(bootstrap: str, topic: str) -> None:
    group = unique("busy")
    with group_member(bootstrap, group, [topic]) as member:
        wait_until(lambda: len(member.consumed) == sum(COUNTS.values()), 30, "the member to consume everything")
        refused = pko_process(bootstrap, "--reset-offsets", "--group", group, "--all-topics", "--to-earliest",
                              "--execute")
        not_deleted = pko_process(bootstrap, "--delete", "--group", group)
        offsets = [p["current_offset"] for p in describe_json(bootstrap, group)["partitions"]]
    assert refused.returncode == 1
    assert refused.stdout.startswith(f"\nError: Assignments can only be reset if the group '{group}' is inactive, "
                                     "but the current state is Stable.\n")
    assert not_deleted.returncode == 1
    assert not_deleted.stdout.startswith(f"\nError: Deletion of some consumer groups failed:\n* Group '{group}' "
                                         "could not be deleted due to: ")
    assert offsets == list(COUNTS.values())


def test_delete_and_delete_offsets(bootstrap: str, topic: str) -> None:
    group = unique("gone")
    commit(bootstrap, group, {(topic, 0): 1, (topic, 1): 1, (topic, 2): 1})
    partial = pko_process(bootstrap, "--delete-offsets", "--group", group, "--topic", f"{topic}:1,2", "--topic",
                          "no-such-topic")
    assert (partial.returncode, rows(partial.stdout)) == (1, [
        f"Request succeeded for deleting offsets from group {group}.".split(), ["TOPIC", "PARTITION", "STATUS"],
        ["no-such-topic", "-", "Error:", "Topic", "'no-such-topic'", "does", "not", "exist"],
        [topic, "1", "Successful"], [topic, "2", "Successful"]])
    assert [p["partition"] for p in describe_json(bootstrap, group)["partitions"]] == [0]
    deleted = pko_process(bootstrap, "--delete", "--group", group)
    assert (deleted.returncode, deleted.stdout) == (0, f"Deletion of requested consumer groups ('{group}') was successful.\n")
    assert pko_process(bootstrap, "--describe", "--group", group).returncode == 1


def test_offsets_survive_a_broker_restart(groups_cluster: RunningCluster, topic: str) -> None:
    bootstrap = groups_cluster.bootstrap_servers
    group = unique("durable")
    commit(bootstrap, group, {(topic, 0): 1})
    reset = Pko(bootstrap)("--reset-offsets", "--group", group, "--topic", topic, "--to-offset", "2", "--execute")
    assert reset.exit_code == 0
    before = describe_json(bootstrap, group)["partitions"]
    groups_cluster.restart(1)
    after = wait_until(lambda: describe_json(bootstrap, group)["partitions"], 30, "offsets after the restart")
    assert [(p["partition"], p["current_offset"]) for p in after] == [(p["partition"], 2) for p in before] == [
        (0, 2), (1, 2), (2, 2)]


def test_demo_orders_worker_commits_after_each_record_and_resumes(bootstrap: str) -> None:
    from commands.demo import describe_group
    from pykafka_ops.services.demo import run_orders_demo, run_orders_worker

    first = run_orders_demo(bootstrap, orders=6, seed=1)
    processed, described = run_orders_worker(bootstrap, first.produced, lambda: describe_group(bootstrap))
    assert processed == 6
    table = rows(described)
    assert table[0] == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST",
                        "CLIENT-ID"]
    assert {(r[0], r[5], r[7], r[8]) for r in table[1:]} == {("orders-worker", "0", "/127.0.0.1", "pko-demo")}
    second = run_orders_demo(bootstrap, orders=4, seed=2)
    resumed, _ = run_orders_worker(bootstrap, second.produced, lambda: None)
    assert resumed == 4  # the group resumed at its committed offsets: nothing read twice
