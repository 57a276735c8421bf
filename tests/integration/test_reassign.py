"""Partition reassignment on three real nodes (issue 20 item 3): `pko reassign` end to end.

(a) an RF-2 partition moves from {1,2} to {2,3} through `pko reassign --execute` while an
idempotent acks=all producer writes: no acknowledged record is lost, `--verify` reports the
completion and clears the throttles; (b) with a low `--throttle` on a partition pre-loaded with a
few MB, `--cancel` mid-move leaves the original assignment (replicas and ISR {1,2}, no log left on
broker 3); (c) ``__consumer_offsets`` created with RF 1 is raised to RF 3 by `--generate
--replication-factor 3` then `--execute`, the leaders unchanged and the committed offsets still
readable; (d) kafka-python's ``alter_partition_reassignments`` / ``list_partition_reassignments``;
(e) a replica moved between log dirs; (f) a move survives kill -9 of the partition's leader or of
the active controller mid-move.
Every wait is a deadline poll; each test prints its figures as one JSON line.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from faults.checker import check
from faults.clients import RecordingProducer, drain, high_watermarks
from faults.cluster_ops import leader_of, quorum_leader, restart, wait_for_replicas_at
from faults.history import History
from integration_helpers import wait_until
from quorum_helpers import call
from typer.testing import CliRunner

from cluster.launcher_probe import under_replicated
from cluster.pytest_plugin import RunningCluster, start_cluster
from commands.main import app
from pykafka_ops.protocol.api_keys import ApiKey

OFFSETS_PARTITIONS = 3
#: Records written before test (a)'s move, and its throttle (B/s): the move lasts a few seconds.
PRELOAD_RECORDS, MOVE_THROTTLE = 30_000, 200_000
#: librdkafka's log of the recording producer (connection refused once the cluster is down), muted.
QUIET = logging.getLogger("test_reassign.librdkafka")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False
YAML = f"""\
cluster: {{name: reassign}}
nodes:
  - {{id: 1}}
  - {{id: 2}}
  - {{id: 3}}
broker:
  offsets.topic.replication.factor: 1
  offsets.topic.num.partitions: {OFFSETS_PARTITIONS}
  group.initial.rebalance.delay.ms: 0
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with start_cluster(YAML, tmp_path_factory.mktemp("reassign")) as running:
        yield running


def _pko(cluster: RunningCluster, *args: str) -> Any:
    """`pko reassign -b BOOTSTRAP ARGS` in process; fails the test on an unexpected exit code."""
    result = CliRunner().invoke(app, ["reassign", "-b", cluster.bootstrap_servers, *args])
    assert result.exit_code == 0, f"pko reassign {' '.join(args)}: {result.exit_code} {result.stdout}{result.stderr}"
    return result


def _plan(directory: Path, assignment: Mapping[tuple[str, int], Sequence[int]]) -> Path:
    path = directory / f"plan-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": t, "partition": p, "replicas": list(r)} for (t, p), r in assignment.items()]}))
    return path


def _partition(cluster: RunningCluster, topic: str, partition: int = 0, node: int = 1) -> Any:
    """Metadata v12 partition entry as ``node`` sees it."""
    answer = call(cluster, node, ApiKey.METADATA, 12, {"topics": [{"name": topic, "topic_id": None}],
                                                        "allow_auto_topic_creation": False,
                                                        "include_topic_authorized_operations": False}, timeout=5)
    return next(p for p in answer.topics[0].partitions if p.partition_index == partition)


def _replicas_and_isr(cluster: RunningCluster, topic: str) -> tuple[list[int], list[int]]:
    """The replica set and ISR, sorted: a cancelled move keeps the reassignment's order (Kafka's
    ``PartitionReassignmentRevert``: [2, 3, 1] less the adding 3 gives [2, 1])."""
    partition = _partition(cluster, topic)
    return sorted(partition.replica_nodes), sorted(partition.isr_nodes)


def _create(cluster: RunningCluster, topic: str, replicas: Sequence[int]) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers, "log_level": 0})
    admin.create_topics([NewTopic(topic, 1, replica_assignment=[list(replicas)])], operation_timeout=10,
                        request_timeout=30)[topic].result(timeout=30)
    wait_until(lambda: _partition(cluster, topic).leader_id in replicas, 30, f"{topic}-0 has a leader")


def _completed(cluster: RunningCluster, plan: Path, name: str) -> bool:
    result = _pko(cluster, "--verify", "--reassignment-json-file", str(plan))
    return f"Reassignment of partition {name} is completed." in result.stdout


def _log_bytes(cluster: RunningCluster, node: int, name: str) -> int:
    """Bytes of ``node``'s segment files of partition ``name`` (0 when it holds none)."""
    return sum(f.stat().st_size for d in cluster.config.log_dirs(node) for f in (d / name).glob("*.log"))


def _holds_log(cluster: RunningCluster, node: int, name: str) -> bool:
    return any((d / name).exists() for d in cluster.config.log_dirs(node))


def test_a_partition_moves_under_acks_all_writes_without_losing_a_record(cluster: RunningCluster,
                                                                          tmp_path: Path) -> None:
    topic = f"moving-{uuid.uuid4().hex[:6]}"
    _create(cluster, topic, [1, 2])
    history = History()
    preload = RecordingProducer(cluster.bootstrap_servers, topic, history, proc="pre", logger=QUIET)
    preload.start(limit=PRELOAD_RECORDS, partitions=[0])  # a backlog the throttled move takes seconds over
    wait_until(lambda: preload.acked == PRELOAD_RECORDS, 120, f"{PRELOAD_RECORDS} records preloaded")
    preload.stop()
    producer = RecordingProducer(cluster.bootstrap_servers, topic, history, logger=QUIET).start(partitions=[0],
                                                                                               rate_per_s=300)
    try:
        wait_until(lambda: producer.acked >= 300, 60, "300 records acknowledged before the move")
        plan = _plan(tmp_path, {(topic, 0): [2, 3]})
        started = time.monotonic()
        executed = _pko(cluster, "--execute", "--reassignment-json-file", str(plan), "--throttle", str(MOVE_THROTTLE))
        assert f"The inter-broker throttle limit was set to {MOVE_THROTTLE} B/s" in executed.stdout
        assert "Save this to use as the --reassignment-json-file option during rollback" in executed.stdout
        assert f"Successfully started partition reassignment for {topic}-0" in executed.stdout
        wait_until(lambda: _completed(cluster, plan, f"{topic}-0"), 120, "the reassignment completed")
        moved_s = time.monotonic() - started
        acked_during_move = producer.acked - 300
        acked_at_move = producer.acked
        wait_until(lambda: producer.acked >= acked_at_move + 300, 60, "300 more records acknowledged after the move")
    finally:
        producer.stop()
    verified = _pko(cluster, "--verify", "--reassignment-json-file", str(plan))
    assert "Clearing broker-level throttles on brokers 1,2,3" in verified.stdout
    assert f"Clearing topic-level throttles on topic {topic}" in verified.stdout
    partition = _partition(cluster, topic)
    assert (list(partition.replica_nodes), sorted(partition.isr_nodes)) == ([2, 3], [2, 3])
    # the new replica (3) holds what the old ones had: both replicas compared below the high watermark
    ends = high_watermarks(cluster.bootstrap_servers, topic, [0])
    replicas, _ = wait_for_replicas_at(cluster, topic, ends, nodes=[2, 3], timeout_s=30)
    assert not _holds_log(cluster, 1, f"{topic}-0"), "broker 1 still holds the partition it no longer replicates"
    result = check(history, drain(cluster.bootstrap_servers, topic, [0]), replicas=replicas, high_watermarks=ends)
    assert result.valid and result.acked > PRELOAD_RECORDS + 600, result.summary()
    assert result.replicas_compared == 2 and not result.divergent, result.summary()
    print(json.dumps({"test": "reassign_under_writes", "lost": 0, "move_s": round(moved_s, 2),
                      "throttle_bps": MOVE_THROTTLE, "acked_during_move": acked_during_move,
                      "leader": partition.leader_id, **result.figures()}))


def test_cancel_mid_move_leaves_the_original_assignment(cluster: RunningCluster, tmp_path: Path) -> None:
    topic = f"slow-{uuid.uuid4().hex[:6]}"
    _create(cluster, topic, [1, 2])
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "linger.ms": 20, "log_level": 0})
    payload = b"x" * 1000
    for _ in range(4000):  # 4 MB
        producer.produce(topic, payload, partition=0)
        producer.poll(0)
    assert producer.flush(60) == 0
    plan = _plan(tmp_path, {(topic, 0): [2, 3]})
    _pko(cluster, "--execute", "--reassignment-json-file", str(plan), "--throttle", "100000")
    wait_until(lambda: "adding: 3." in _pko(cluster, "--list").stdout, 30, "the reassignment listed as adding broker 3")
    wait_until(lambda: _log_bytes(cluster, 3, f"{topic}-0") > 0, 30, "broker 3 copying the partition")
    midway = _pko(cluster, "--verify", "--reassignment-json-file", str(plan), "--preserve-throttles")
    assert f"Reassignment of partition {topic}-0 is still in progress." in midway.stdout
    described = CliRunner().invoke(app, ["topics", "--describe", "--topic", topic, "-b", cluster.bootstrap_servers])
    assert "\tReplicas: 2,3,1\tIsr: 1,2\tAdding Replicas: 3\tRemoving Replicas: 1\t" in described.stdout, \
        described.stdout  # kafka-topics' describe of a partition being reassigned
    host, port = cluster.bootstrap_servers.split(",")[0].rsplit(":", 1)
    assert f"{topic}-0" not in under_replicated(host, int(port), 5)  # what `cluster restart --rolling` waits on
    urp = CliRunner().invoke(app, ["topics", "--describe", "--topic", topic, "--under-replicated-partitions",
                                   "-b", cluster.bootstrap_servers])
    assert urp.exit_code == 0 and f"Topic: {topic}" not in urp.stdout, urp.stdout
    assert [n.under_replicated for n in cluster.status() if n.under_replicated] == []  # pko cluster status
    copied = _log_bytes(cluster, 3, f"{topic}-0")
    cancelled = _pko(cluster, "--cancel", "--reassignment-json-file", str(plan))
    assert f"Successfully cancelled partition reassignment for: {topic}-0" in cancelled.stdout
    assert "Clearing broker-level throttles on brokers 1,2,3" in cancelled.stdout
    started = time.monotonic()
    seen: list[Any] = []
    try:
        wait_until(lambda: seen.append(_replicas_and_isr(cluster, topic)) or seen[-1] == ([1, 2], [1, 2]), 30,
                   "replicas and ISR back to {1,2}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last seen (replicas, ISR): {seen[-1:]}") from None
    wait_until(lambda: not _holds_log(cluster, 3, f"{topic}-0"), 60, "broker 3 dropped its partial copy")
    assert "No partition reassignments found." in _pko(cluster, "--list").stdout
    print(json.dumps({"test": "reassign_cancel", "preloaded_mb": 4, "throttle_bps": 100000, "copied_bytes": copied,
                      "cleanup_s": round(time.monotonic() - started, 2)}))


def test_consumer_offsets_raised_from_rf_1_to_3_keeps_leaders_and_offsets(cluster: RunningCluster,
                                                                          tmp_path: Path) -> None:
    topic, group = f"committed-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    _create(cluster, topic, [1, 2, 3])
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": group,
                         "enable.auto.commit": False, "log_level": 0})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, 42)], asynchronous=False)
    finally:
        consumer.close()
    leaders = {p: _partition(cluster, "__consumer_offsets", p).leader_id for p in range(OFFSETS_PARTITIONS)}
    topics = tmp_path / "topics.json"
    topics.write_text(json.dumps({"version": 1, "topics": [{"topic": "__consumer_offsets"}]}))
    generated = _pko(cluster, "--generate", "--topics-to-move-json-file", str(topics), "--replication-factor", "3")
    current_text, proposed_text = generated.stdout.split("\n\n")
    assert current_text.startswith("Current partition replica assignment\n")
    proposal = json.loads(proposed_text.removeprefix("Proposed partition reassignment configuration\n"))
    assert [p["replicas"][0] for p in proposal["partitions"]] == [leaders[p] for p in range(OFFSETS_PARTITIONS)]
    assert all(sorted(p["replicas"]) == [1, 2, 3] for p in proposal["partitions"])
    plan = tmp_path / "rf3.json"
    plan.write_text(json.dumps(proposal))
    started = time.monotonic()
    _pko(cluster, "--execute", "--reassignment-json-file", str(plan))
    for p in range(OFFSETS_PARTITIONS):
        wait_until(lambda p=p: _completed(cluster, plan, f"__consumer_offsets-{p}"), 120, f"__consumer_offsets-{p} at RF 3")
    wait_until(lambda: all(sorted(_partition(cluster, "__consumer_offsets", p).isr_nodes) == [1, 2, 3]
                           for p in range(OFFSETS_PARTITIONS)), 60, "every __consumer_offsets ISR full")
    assert {p: _partition(cluster, "__consumer_offsets", p).leader_id for p in range(OFFSETS_PARTITIONS)} == leaders
    reader = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": group, "log_level": 0})
    try:
        (committed,) = reader.committed([TopicPartition(topic, 0)], timeout=30)
    finally:
        reader.close()
    assert committed.offset == 42
    print(json.dumps({"test": "reassign_offsets_rf3", "partitions": OFFSETS_PARTITIONS,
                      "raise_s": round(time.monotonic() - started, 2), "committed_offset": committed.offset}))


def test_kafka_python_alters_and_lists_reassignments(cluster: RunningCluster) -> None:
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KafkaTopicPartition

    topic = f"kp-{uuid.uuid4().hex[:6]}"
    _create(cluster, topic, [1, 2])
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers)
    try:
        tp = KafkaTopicPartition(topic, 0)
        assert admin.alter_partition_reassignments({tp: [1, 3]}) == {tp: None}
        wait_until(lambda: list(_partition(cluster, topic).replica_nodes) == [1, 3], 60, "replicas [1, 3]")
        assert tp not in admin.list_partition_reassignments([tp])
        answer = admin.alter_partition_reassignments({KafkaTopicPartition(topic, 7): [1, 2]})
        (error,) = answer.values()
        assert error is not None and error.errno == 3  # UNKNOWN_TOPIC_OR_PARTITION
    finally:
        admin.close()
    print(json.dumps({"test": "reassign_kafka_python", "replicas": [1, 3]}))


def test_a_replica_moves_between_log_dirs_of_its_broker(tmp_path: Path) -> None:
    yaml = "cluster: {name: jbod}\nnodes:\n  - {id: 1, log_dirs: [disk-a, disk-b]}\n"
    with start_cluster(yaml, tmp_path / "jbod") as single:
        topic = f"jbod-{uuid.uuid4().hex[:6]}"
        _create(single, topic, [1])
        producer = Producer({"bootstrap.servers": single.bootstrap_servers, "acks": "all", "log_level": 0})
        for i in range(2000):
            producer.produce(topic, b"y" * 1000, key=str(i).encode(), partition=0)
            producer.poll(0)
        assert producer.flush(60) == 0
        source = next(d for d in single.config.log_dirs(1) if (d / f"{topic}-0").exists())
        target = next(d for d in single.config.log_dirs(1) if d != source)
        plan = tmp_path / "dirs.json"
        plan.write_text(json.dumps({"version": 1, "partitions": [
            {"topic": topic, "partition": 0, "replicas": [1], "log_dirs": [str(target)]}]}))
        started = time.monotonic()
        executed = _pko(single, "--execute", "--reassignment-json-file", str(plan),
                        "--replica-alter-log-dirs-throttle", "50000000")
        assert "The replica-alter-dir throttle limit was set to 50000000 B/s" in executed.stdout
        assert f"Successfully started moving log directory to {target} for replica {topic}-0 with broker 1 \n" \
            in executed.stdout
        done = f"Reassignment of replica {topic}-0-1 completed successfully."
        wait_until(lambda: done in _pko(single, "--verify", "--reassignment-json-file", str(plan)).stdout, 60,
                   "the log-dir move completed")
        moved_s = time.monotonic() - started
        wait_until(lambda: not (source / f"{topic}-0").exists(), 30, "the old log dir emptied")
        assert (target / f"{topic}-0").is_dir()
        data = json.loads(_pko(single, "--verify", "--reassignment-json-file", str(plan), "--output", "json").stdout)
        assert data["log_dir_moves"] == [{"topic": topic, "partition": 0, "broker": 1, "state": "completed",
                                          "current_log_dir": str(target), "future_log_dir": None,
                                          "target_log_dir": str(target)}]
        reader = Consumer({"bootstrap.servers": single.bootstrap_servers, "group.id": "jbod", "log_level": 0,
                           "auto.offset.reset": "earliest"})
        try:
            reader.assign([TopicPartition(topic, 0, 0)])
            read: list[Any] = []
            wait_until(lambda: read.extend(m for m in reader.consume(500, 1) if m.error() is None) or len(read) >= 2000,
                       60, "2000 records read back from the moved log")
        finally:
            reader.close()
        print(json.dumps({"test": "reassign_log_dirs", "records": len(read), "move_s": round(moved_s, 2)}))


@pytest.mark.parametrize("victim", ["partition-leader", "active-controller"])
def test_a_move_survives_kill_9_of_the_leader_or_the_controller(victim: str, tmp_path: Path) -> None:
    """A throttled move {1,2} -> {2,3} under an idempotent acks=all producer; kill -9 of the
    partition's leader or of the active controller mid-move, restart, throttle removed: the move
    completes, nothing acknowledged is lost, the new replicas agree, broker 1 drops its copy."""
    with start_cluster(YAML, tmp_path / "cluster") as running:
        topic = f"faulted-{uuid.uuid4().hex[:6]}"
        _create(running, topic, [1, 2])
        bulk = Producer({"bootstrap.servers": running.bootstrap_servers, "acks": "all", "linger.ms": 20,
                         "log_level": 0})
        for _ in range(6000):  # 6 MB the throttled move takes seconds over
            bulk.produce(topic, b"x" * 1000, partition=0)
            bulk.poll(0)
        assert bulk.flush(60) == 0
        history = History()
        producer = RecordingProducer(running.bootstrap_servers, topic, history, logger=QUIET).start(
            partitions=[0], rate_per_s=300)
        plan = _plan(tmp_path, {(topic, 0): [2, 3]})
        try:
            _pko(running, "--execute", "--reassignment-json-file", str(plan), "--throttle", "300000")
            wait_until(lambda: _log_bytes(running, 3, f"{topic}-0") > 0, 30, "broker 3 copying the partition")
            node = quorum_leader(running) if victim == "active-controller" else leader_of(running, topic, 0)
            running.kill(node)
            restart(running, node)
            _pko(running, "--verify", "--reassignment-json-file", str(plan))  # clears the throttles
            wait_until(lambda: _replicas_and_isr(running, topic) == ([2, 3], [2, 3]), 60, "the move completed")
            acked = producer.acked
            wait_until(lambda: producer.acked >= acked + 300, 60, "300 more acks after the move")
        finally:
            producer.stop()
        ends = high_watermarks(running.bootstrap_servers, topic, [0])
        replicas, _ = wait_for_replicas_at(running, topic, ends, nodes=[2, 3], timeout_s=30)
        reads = {p: [(o, v) for o, v in rows if not v.startswith("x")]  # the bulk records are not in the history
                 for p, rows in drain(running.bootstrap_servers, topic, [0]).items()}
        result = check(history, reads, replicas=replicas, high_watermarks=ends)
        assert result.valid and result.replicas_compared == 2 and not result.divergent, result.summary()
        wait_until(lambda: not _holds_log(running, 1, f"{topic}-0"), 30, "broker 1 dropped its copy")
        print(json.dumps({"test": "reassign_survives_kill_9", "victim": victim, "node": node, **result.figures()}))


def test_doctor_warns_of_a_throttle_left_without_a_reassignment(cluster: RunningCluster) -> None:
    """`pko doctor` names a replication throttle left set (as after an --execute never --verified),
    and its fix clears it."""
    b = cluster.bootstrap_servers

    def throttle_findings() -> list[dict[str, Any]]:
        result = CliRunner().invoke(app, ["doctor", "-b", b, "--window", "1", "--polls", "2", "--output", "json",
                                          "--fail-on", "error"])
        assert result.exit_code == 0, result.stdout + result.stderr
        return [f for f in json.loads(result.stdout)["findings"] if f["check"] == "replication-throttle"]

    configs = ["configs", "-b", b, "--alter", "--entity-type", "brokers", "--entity-name", "2"]
    assert CliRunner().invoke(app, [*configs, "--add-config", "follower.replication.throttled.rate=500000"]).exit_code == 0
    (found,) = throttle_findings()
    assert (found["subject"], found["evidence"], found["severity"]) == (
        {"kind": "broker", "name": "2", "partition": None}, {"follower.replication.throttled.rate": 500000}, "warn")
    fixed = CliRunner().invoke(app, found["fix"].split()[1:])  # the fix, as printed: pko configs … --delete-config …
    assert fixed.exit_code == 0, fixed.stdout + fixed.stderr
    assert throttle_findings() == []
