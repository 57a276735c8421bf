"""Several log dirs per node (issue 20 item 2), with a real node process and real clients.

A node with two log dirs (``nodes[].log_dirs``): DescribeLogDirs answers one result per dir and
DescribeConfigs lists both in ``log.dirs``; AlterReplicaLogDirs (kafka-python) moves a partition to
the other dir while an idempotent acks=all producer (confluent-kafka) keeps writing to it, within
``replica.alter.log.dirs.io.max.bytes.per.second``; DescribeLogDirs shows the future replica in the
destination while it is copied, then the partition only there; every acknowledged record is read
back once at its offset, and again after a restart, which finds the partition in its new dir. The
move prints its figures as one JSON line. A move interrupted by kill -9 resumes from what it had
copied once the node is back (the rate lowered dynamically to make it last). A follower replica
moves while it replicates (min.insync.replicas 2: every acks=all write needs it in sync). Kafka's
error codes are checked through the wire client.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from integration_helpers import create_topic, drain_confluent, wire
from kafka import KafkaAdminClient, TopicPartitionReplica
from kafka.errors import NoError

from cluster.pytest_plugin import RunningCluster, start_cluster, wait_until
from pykafka_ops.protocol.api_keys import ApiKey

IO_RATE = 4_000_000
"""Bytes/s of the moves (``replica.alter.log.dirs.io.max.bytes.per.second``): the prefill takes a
couple of seconds to copy, so the producer writes throughout the move."""
LOG_DIRS_YAML = f"""\
cluster: {{name: logdirs}}
nodes:
  - {{id: 1, log_dirs: [disk-a, disk-b]}}
broker:
  num.partitions: 1
  default.replication.factor: 1
  min.insync.replicas: 1
  log.segment.bytes: 1048576
  replica.alter.log.dirs.io.max.bytes.per.second: {IO_RATE}
"""
WRITE_RATE = 500_000
"""Bytes/s of the writer during the move."""
PREFILL_RECORDS = 16_000
VALUE_BYTES = 500
LOG_DIR_NOT_FOUND, REPLICA_NOT_AVAILABLE = 57, 9


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with start_cluster(LOG_DIRS_YAML, tmp_path_factory.mktemp("log-dirs")) as running:
        yield running


@pytest.fixture(scope="module")
def kafka_admin(node: RunningCluster) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=node.bootstrap_servers)
    yield client
    client.close()


def _dirs(node: RunningCluster) -> list[str]:
    return [str(path.resolve()) for path in node.config.log_dirs(1)]


def _placement(admin: KafkaAdminClient, topic: str) -> dict[str, list[tuple[int, bool, int]]]:
    """log dir → (partition, is future, offset lag) of ``topic`` in it, by kafka-python's DescribeLogDirs."""
    (broker,) = admin.describe_log_dirs({topic: [0]})
    return {d["log_dir"]: [(p["partition_index"], p["is_future_key"], p["offset_lag"])
                           for t in d["topics"] for p in t["partitions"]] for d in broker["log_dirs"]}


class _Writer(threading.Thread):
    """An idempotent acks=all producer writing to partition 0 until stopped; records what was acked."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                                  "linger.ms": 5})
        self.acked: dict[int, bytes] = {}
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.sent = 0

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))
        else:
            assert msg.offset() not in self.acked, f"offset {msg.offset()} acknowledged twice"
            self.acked[msg.offset()] = msg.value()

    def send(self, count: int) -> None:
        for _ in range(count):
            value = f"{self.sent:08d}".encode().ljust(VALUE_BYTES, b".")
            while True:
                try:
                    self.producer.produce(self.topic, value, partition=0, on_delivery=self._delivered)
                    break
                except BufferError:
                    self.producer.poll(0.05)
            self.sent += 1
            self.producer.poll(0)

    def run(self) -> None:
        while not self.stopping.wait(0.01):  # pacing, about WRITE_RATE bytes/s: well below IO_RATE, or the
            self.send(WRITE_RATE // VALUE_BYTES // 100)  # copy could never catch up (nor could Kafka's)

    def finish(self) -> None:
        """Stop writing (if started), wait for every answer and close the producer."""
        self.stopping.set()
        if self.ident is not None:
            self.join(30)
        assert self.producer.flush(60) == 0
        del self.producer  # closed now, not retrying connections through the restarts to come


def _read_back(node: RunningCluster, topic: str, acked: dict[int, bytes]) -> int:
    """Every acknowledged record is read once, at its offset; returns the records read."""
    consumer = Consumer({"bootstrap.servers": node.bootstrap_servers, "group.id": "log-dirs-ends"})
    try:
        end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=15)[1]
    finally:
        consumer.close()
    seen = drain_confluent(node, topic, {0: end})[0]
    offsets, values = [s.offset for s in seen], [s.value for s in seen]
    assert len(offsets) == len(set(offsets)) and len(values) == len(set(values)), "a record was read twice"
    by_offset = {s.offset: s.value for s in seen}
    missing = [offset for offset, value in acked.items() if by_offset.get(offset) != value]
    assert not missing, f"{len(missing)} acknowledged records not read back at their offsets, e.g. {missing[:5]}"
    return len(seen)


def test_each_log_dir_is_described_and_listed_in_log_dirs(node: RunningCluster, kafka_admin: KafkaAdminClient) -> None:
    topic = "described"
    create_topic(node, topic, partitions=2)
    (broker,) = kafka_admin.describe_log_dirs({topic: [0, 1]})
    described = {d["log_dir"]: sorted(p["partition_index"] for t in d["topics"] for p in t["partitions"])
                 for d in broker["log_dirs"]}
    assert sorted(described) == sorted(_dirs(node)), "one result per log dir, not the node dir"
    assert sorted(p for ps in described.values() for p in ps) == [0, 1]
    assert all(len(ps) == 1 for ps in described.values()), "new partitions spread over the dirs"
    for log_dir in _dirs(node):
        assert (Path(log_dir) / "meta.properties").read_text().count("directory.id=") == 1  # KIP-858
    with wire(node) as client:
        answer = client.request(ApiKey.DESCRIBE_LOG_DIRS, 4, {"topics": None})
        assert len(answer.results) == 2 and all(r.total_bytes >= r.usable_bytes > 0 for r in answer.results)
        configs = client.request(ApiKey.DESCRIBE_CONFIGS, 4, {"resources": [
            {"resource_type": 4, "resource_name": "1", "configuration_keys": ["log.dirs"]}],
            "include_synonyms": False, "include_documentation": False})
    (entry,) = configs.results[0].configs
    assert entry.value.split(",") == _dirs(node) and entry.read_only


def test_kafkas_error_codes(node: RunningCluster) -> None:
    with wire(node) as client:
        answer = client.request(ApiKey.ALTER_REPLICA_LOG_DIRS, 2, {"dirs": [
            {"path": "/no/such/dir", "topics": [{"name": "described", "partitions": [0]}]},
            {"path": _dirs(node)[0], "topics": [{"name": "not-yet", "partitions": [3]}]}]})
    codes = {(t.topic_name, p.partition_index): p.error_code for t in answer.results for p in t.partitions}
    assert codes == {("described", 0): LOG_DIR_NOT_FOUND, ("not-yet", 3): REPLICA_NOT_AVAILABLE}


def test_a_partition_moves_to_the_other_dir_while_it_takes_writes(node: RunningCluster,
                                                                  kafka_admin: KafkaAdminClient) -> None:
    topic = "moving"
    create_topic(node, topic, partitions=1)
    writer = _Writer(node.bootstrap_servers, topic)
    writer.send(PREFILL_RECORDS)
    assert writer.producer.flush(60) == 0
    (source,) = [d for d, partitions in _placement(kafka_admin, topic).items() if partitions]
    (destination,) = [d for d in _dirs(node) if d != source]
    prefill_bytes = sum(p.stat().st_size for p in (Path(source) / f"{topic}-0").glob("*.log"))
    writer.start()
    wait_until(lambda: len(writer.acked) > PREFILL_RECORDS + 200, 30, "the writer to be acknowledged")
    began, at_alter = time.monotonic(), len(writer.acked)
    answer = kafka_admin.alter_replica_log_dirs({TopicPartitionReplica(topic, 0, 1): destination})
    assert answer == {TopicPartitionReplica(topic, 0, 1): NoError}
    seen_future: list[int] = []

    def moved() -> bool:
        placement = _placement(kafka_admin, topic)
        seen_future.extend(lag for _p, future, lag in placement[destination] if future)
        return placement[source] == [] and [(p, f) for p, f, _lag in placement[destination]] == [(0, False)]

    wait_until(moved, 120, f"partition 0 of {topic} to be only in {destination}")
    move_s = time.monotonic() - began
    assert move_s >= 0.8 * (prefill_bytes - (1 << 20)) / IO_RATE, "faster than the IO rate (a 1 MiB burst aside)"
    during = len(writer.acked)
    wait_until(lambda: len(writer.acked) > during + 200, 30, "writes after the move to be acknowledged")
    writer.finish()
    assert not writer.errors, writer.errors[:3]
    assert seen_future, "DescribeLogDirs never listed the future replica while it was copied"
    read = _read_back(node, topic, writer.acked)
    size = sum(p.stat().st_size for p in (Path(destination) / f"{topic}-0").glob("*.log"))

    node.restart(1)
    placement = wait_until(lambda: _placement(kafka_admin, topic), 30, "DescribeLogDirs after the restart")
    assert placement == {source: [], destination: [(0, False, 0)]}
    assert not list(Path(source).glob(f"{topic}-0*")), "the old dir is gone"
    assert _read_back(node, topic, writer.acked) == read
    print(json.dumps({"test": "alter_replica_log_dirs", "records_acked": len(writer.acked),
                      "acked_during_move": during - at_alter, "move_s": round(move_s, 2),
                      "mb_moved": round(size / 1e6, 1), "io_rate_mb_s": IO_RATE / 1e6,
                      "max_future_lag_seen": max(seen_future)}))


def _set_io_rate(node: RunningCluster, rate: int | None) -> None:
    """Set (None: delete) node 1's dynamic ``replica.alter.log.dirs.io.max.bytes.per.second``."""
    with wire(node) as client:
        answer = client.request(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": False, "resources": [
            {"resource_type": 4, "resource_name": "1", "configs": [
                {"name": "replica.alter.log.dirs.io.max.bytes.per.second", "config_operation": 0 if rate else 1,
                 "value": str(rate) if rate else None}]}]})
    assert [r.error_code for r in answer.responses] == [0]


def test_a_move_interrupted_by_kill_9_resumes_after_the_restart(node: RunningCluster,
                                                                kafka_admin: KafkaAdminClient) -> None:
    topic = "resumed"
    create_topic(node, topic, partitions=1)
    writer = _Writer(node.bootstrap_servers, topic)
    writer.send(PREFILL_RECORDS)
    writer.finish()
    (source,) = [d for d, partitions in _placement(kafka_admin, topic).items() if partitions]
    (destination,) = [d for d in _dirs(node) if d != source]
    _set_io_rate(node, 1_000_000)  # dynamic: the copy now takes several seconds
    try:
        kafka_admin.alter_replica_log_dirs({TopicPartitionReplica(topic, 0, 1): destination})

        def copying() -> int:
            lags = [lag for _p, future, lag in _placement(kafka_admin, topic)[destination] if future]
            return lags[0] if lags and lags[0] < PREFILL_RECORDS * 3 // 4 else 0

        lag_before = wait_until(copying, 30, "a quarter of the partition to be copied")
        node.kill(1, "KILL")
        node.restart(1)
        (_p, _future, lag_after), = wait_until(lambda: _placement(kafka_admin, topic)[destination], 30,
                                                "DescribeLogDirs after the restart")
        assert lag_after <= lag_before, "the copy resumed from what it had, not from the start"
        restarted = time.monotonic()
        wait_until(lambda: _placement(kafka_admin, topic) == {source: [], destination: [(0, False, 0)]}, 60,
                   f"partition 0 of {topic} to be only in {destination}")
    finally:
        _set_io_rate(node, None)
    assert _read_back(node, topic, writer.acked) == PREFILL_RECORDS
    print(json.dumps({"test": "alter_replica_log_dirs_after_kill_9", "lag_at_kill": lag_before,
                      "lag_after_restart": lag_after,
                      "finished_s_after_restart": round(time.monotonic() - restarted, 2)}))


TWO_NODES_YAML = f"""\
cluster: {{name: logdirs2}}
nodes:
  - {{id: 1, roles: [controller]}}
  - {{id: 2, roles: [broker], log_dirs: [n2-a, n2-b]}}
  - {{id: 3, roles: [broker], log_dirs: [n3-a, n3-b]}}
broker:
  num.partitions: 1
  default.replication.factor: 2
  min.insync.replicas: 2
  replica.alter.log.dirs.io.max.bytes.per.second: {IO_RATE}
"""


def test_a_follower_replica_moves_while_it_replicates(tmp_path: Path) -> None:
    """min.insync.replicas 2: every acks=all write during the move needs the moving follower in sync."""
    with start_cluster(TWO_NODES_YAML, tmp_path) as cluster:
        admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers)
        try:
            topic = "followed"
            admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 2}}, wait_for_metadata=True)
            leader = wait_until(lambda: _leader(cluster, topic), 30, f"a leader of {topic}")
            follower = 5 - leader
            writer = _Writer(cluster.bootstrap_servers, topic)
            writer.send(PREFILL_RECORDS // 2)
            assert writer.producer.flush(60) == 0
            (broker,) = admin.describe_log_dirs({topic: [0]}, brokers=[follower])
            (source,) = [d["log_dir"] for d in broker["log_dirs"] if d["topics"]]
            (destination,) = [str(p.resolve()) for p in cluster.config.log_dirs(follower) if str(p.resolve()) != source]
            writer.start()
            began = time.monotonic()
            answer = admin.alter_replica_log_dirs({TopicPartitionReplica(topic, 0, follower): destination})
            assert answer == {TopicPartitionReplica(topic, 0, follower): NoError}

            def moved() -> bool:
                (broker,) = admin.describe_log_dirs({topic: [0]}, brokers=[follower])
                where = {d["log_dir"]: [(p["partition_index"], p["is_future_key"]) for t in d["topics"]
                                        for p in t["partitions"]] for d in broker["log_dirs"]}
                return where == {source: [], destination: [(0, False)]}

            wait_until(moved, 120, f"the replica of {topic} on broker {follower} to be only in {destination}")
            move_s = time.monotonic() - began
            during = len(writer.acked)
            wait_until(lambda: len(writer.acked) > during + 200, 30, "writes after the move to be acknowledged")
            writer.finish()
            assert not writer.errors, writer.errors[:3]
            _read_back(cluster, topic, writer.acked)
            print(json.dumps({"test": "alter_replica_log_dirs_follower", "records_acked": len(writer.acked),
                              "move_s": round(move_s, 2)}))
        finally:
            admin.close()


def _leader(cluster: RunningCluster, topic: str) -> int:
    with wire(cluster, node=2) as client:  # node 1 is the controller
        answer = client.request(ApiKey.METADATA, 12, {"topics": [{"name": topic, "topic_id": None}],
                                                      "allow_auto_topic_creation": False,
                                                      "include_topic_authorized_operations": False})
    return answer.topics[0].partitions[0].leader_id if answer.topics[0].partitions else 0
