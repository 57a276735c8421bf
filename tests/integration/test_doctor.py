"""`pko doctor` against a real node: pitfalls built on purpose and each one found with its
evidence — a key carrying 40 % of a topic's writes, a group falling behind a producer (manual
commits), an empty stalled group, 4 consumers on 2 partitions, an RF-1 topic marked critical,
a committed offset minutes from retention, an acks=1 producer on the critical topic (seen by the
node's admin endpoint), a topic whose keys two producers place with CRC-32 and murmur2 — while a healthy topic and group yield nothing;
exit 3 at ``--fail-on``, 0 for the healthy part alone."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka import TopicPartition as KafkaPartition
from group_clients import wait_until
from group_members import GROUPS_YAML, GroupMember, create_topic, produce, unique, wait_for_assignment
from typer.testing import CliRunner

from cluster.pytest_plugin import RunningCluster, start_cluster
from commands.main import app

RETENTION_MS = 600_000
"""The short topic keeps 10 minutes; its records are written 8 minutes old: lost in about 2."""


@dataclass
class SlowMember(GroupMember):
    """A member that takes 50 ms per record (and commits each one): 20 records/s."""

    def _process(self, partition: int, offset: int) -> None:
        super()._process(partition, offset)
        time.sleep(0.05)


@dataclass
class Scene:
    """The names of what the module built."""

    bootstrap: str
    config_path: str
    skewed: str
    busy: str
    slow_group: str
    abandoned: str
    pair: str
    idle_group: str
    critical: str
    short: str
    laggard: str
    healthy: str
    healthy_group: str
    mixed: str


def commit(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit ``offsets`` for ``group`` without joining it (the group stays Empty)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})

    def committed() -> bool:
        try:
            consumer.commit(offsets=[KafkaPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
        except KafkaException as exc:  # _WAIT_COORD until librdkafka has found the coordinator
            if exc.args[0].code() != KafkaError._WAIT_COORD:
                raise
            return False
        return True

    try:
        wait_until(committed, 15, f"a commit of {group}", interval_s=0.1)
    finally:
        consumer.close()


def produce_until(bootstrap: str, topic: str, stop: threading.Event) -> None:
    """About 100 records/s until ``stop``."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    while not stop.is_set():
        for i in range(10):
            producer.produce(topic, key=b"k%d" % i, value=b"v")
        producer.poll(0)
        stop.wait(0.1)
    producer.flush(10)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """A node with every pitfall built, the producer and the consumers running."""
    with start_cluster(GROUPS_YAML, tmp_path_factory.mktemp("doctor")) as cluster:
        yield from _build(cluster)


def _build(cluster: RunningCluster) -> Iterator[Scene]:
    b = cluster.bootstrap_servers
    s = Scene(b, str(cluster.config_path), unique("skewed"), unique("busy"), unique("slow"), unique("abandoned"), unique("pair"),
              unique("idle"), unique("critical"), unique("short"), unique("laggard"), unique("healthy"),
              unique("healthy-group"), unique("mixed"))
    for name, partitions, config in ((s.skewed, 3, None), (s.busy, 1, None), (s.pair, 2, None),
                                     (s.critical, 3, None), (s.short, 1, {"retention.ms": str(RETENTION_MS)}),
                                     (s.healthy, 3, None), (s.mixed, 4, None)):
        create_topic(b, name, partitions, config)
    producer = Producer({"bootstrap.servers": b, "linger.ms": 5})
    for i in range(2000):  # 40 % of the writes carry one key
        producer.produce(s.skewed, key=b"customer-42" if i % 5 < 2 else b"customer-%d" % i, value=b"order")
    old = int(time.time() * 1000) - 8 * 60_000
    for i in range(50):
        producer.produce(s.short, key=b"k%d" % i, value=b"v", timestamp=old + i)
    java = Producer({"bootstrap.servers": b, "linger.ms": 5, "partitioner": "murmur2_random"})
    for i in range(200):  # the same keys from librdkafka's default (CRC-32) and a Java-like producer
        producer.produce(s.mixed, key=b"user-%d" % i, value=b"c")
        java.produce(s.mixed, key=b"user-%d" % i, value=b"j")
    assert producer.flush(15) == 0 and java.flush(15) == 0
    loose = Producer({"bootstrap.servers": b, "acks": 1, "client.id": "loose-writer"})
    loose.produce(s.critical, key=b"payment", value=b"100 EUR")
    assert loose.flush(15) == 0
    produce(b, s.healthy, 300)
    commit(b, s.abandoned, s.skewed, {0: 1, 1: 1, 2: 1})
    commit(b, s.laggard, s.short, {0: 0})
    stop = threading.Event()
    writer = threading.Thread(target=produce_until, args=(b, s.busy, stop), daemon=True)
    writer.start()
    idle = [GroupMember(b, s.idle_group, s.pair).start() for _ in range(4)]
    slow = SlowMember(b, s.slow_group, s.busy).start()
    healthy = GroupMember(b, s.healthy_group, s.healthy).start()
    try:
        wait_for_assignment(idle, [1, 1, 0, 0], 2)
        wait_until(lambda: sum(map(len, healthy.consumed.values())) == 300, 20, "the healthy group to catch up")
        wait_until(lambda: slow.consumed, 20, "the slow member to start")
        yield s
    finally:
        stop.set()
        for m in [*idle, slow, healthy]:
            m.stop()
        writer.join(15)


def doctor(*argv: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["doctor", *argv], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def findings(payload: dict[str, Any], check: str) -> dict[str, dict[str, Any]]:
    """The findings of ``check`` by subject name."""
    return {f["subject"]["name"]: f for f in payload["findings"] if f["check"] == check}


def test_each_pitfall_is_found_with_its_evidence(scene: Scene) -> None:
    code, out, err = doctor("-c", scene.config_path, "--window", "2", "--critical-topics", f"^{scene.critical}$",
                            "--output", "json")
    payload = json.loads(out)
    assert code == 3, err  # the RF-1 critical topic is an error
    assert payload["polls"] == 4 and 1.9 <= payload["window_s"] <= 3.0

    hot = findings(payload, "hot-key")[scene.skewed]
    assert hot["evidence"]["key"] == "customer-42" and hot["evidence"]["share_of_writes"] == pytest.approx(0.4, abs=0.02)
    assert hot["evidence"]["salted_max_over_mean"] < hot["evidence"]["max_over_mean"]
    assert hot["fix"] == f"pko skew {scene.skewed} -b {scene.bootstrap} --what-if-key '{{key}}:{{offset%8}}'"

    lag = findings(payload, "consumer-lag")[scene.slow_group]
    assert lag["evidence"]["status"] == "WARN" and lag["evidence"]["lag"] > 0, lag

    stalled = findings(payload, "stalled-group")
    assert stalled[scene.abandoned]["evidence"]["lag"] == 1997
    assert "--reset-offsets --to-latest" in stalled[scene.abandoned]["fix"]

    idle = findings(payload, "idle-consumers")[scene.idle_group]
    assert idle["evidence"]["members"] == 4 and idle["evidence"]["idle_members"] == 2

    rf = findings(payload, "replication-factor")[scene.critical]
    assert rf["severity"] == "error" and rf["evidence"]["replication_factor"] == 1
    assert findings(payload, "min-insync-replicas")[scene.critical]["fix"].endswith("min.insync.replicas=2")
    acks = findings(payload, "producer-acks")[scene.critical]
    assert acks["severity"] == "error" and acks["evidence"]["client_id"] == "loose-writer"
    assert acks["evidence"]["acks"] == 1

    risk = findings(payload, "retention-risk")[scene.laggard]
    assert risk["evidence"]["topic"] == scene.short and risk["severity"] == "warn"
    assert 60 < risk["evidence"]["loss_in_s"] < 130, risk

    (mixed,) = [f for f in payload["findings"] if f["check"] == "mixed-partitioners"]
    assert mixed["subject"]["name"] == scene.mixed and mixed["severity"] == "warn"
    assert set(mixed["evidence"]["partitioners"].split(",")) == {"consistent_random", "murmur2_random"}
    assert mixed["evidence"]["split_keys"] > 50 and mixed["fix"].startswith("set partitioner=murmur2_random")

    subjects = {f["subject"]["name"] for f in payload["findings"]}
    assert scene.healthy not in subjects and scene.healthy_group not in subjects


def test_a_healthy_topic_and_group_pass_and_text_groups_by_severity(scene: Scene) -> None:
    code, out, err = doctor("-b", scene.bootstrap, "--window", "0.5", "--polls", "2", "--topic", f"^{scene.healthy}$",
                            "--group", f"^{scene.healthy_group}$", "--fail-on", "info", "--output", "text")
    assert code == 0, out + err
    assert ": no findings" in out
    code, out, _err = doctor("-b", scene.bootstrap, "--window", "0.5", "--polls", "2", "--topic", f"^{scene.skewed}$",
                             "--group", "^$", "--fail-on", "warn", "--output", "text")
    assert code == 3
    assert "WARN (1)" in out and "hot-key  partition" in out and "fix: pko skew" in out


def test_unreachable_cluster_and_bad_flags() -> None:
    code, _out, err = doctor("-b", "127.0.0.1:1", "--window", "0.1", "--polls", "2")
    assert code == 1 and "127.0.0.1:1" in err
    assert doctor("-b", "127.0.0.1:1", "--fail-on", "fatal")[0] == 2
    assert doctor("-b", "127.0.0.1:1", "--topic", "(")[0] == 2
    assert doctor("-b", "127.0.0.1:1", "--polls", "1")[0] == 2
