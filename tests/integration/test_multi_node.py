"""Several nodes, one cluster (issue "Multi-node cluster"): real node processes, real clients.

Three combined nodes: a 6-partition topic leads on all three brokers; confluent-kafka and
kafka-python produce to and consume from every partition through any broker; a consumer group
whose coordinator is not the quorum leader commits; a broker that does not lead a partition
answers NOT_LEADER_OR_FOLLOWER; the whole cluster goes down and up with every topic, record and
offset. Faults: kill -9 of a broker (fenced after broker.session.timeout.ms, its partitions shown
offline by Metadata and `pko topics --describe --unavailable-partitions`, back with their data
after a restart), SIGSTOP past the session timeout (fenced, then unfenced after SIGCONT), kill -9
of the quorum leader (CreateTopics through a survivor succeeds; the node rejoins). Three
controllers and two brokers run the same round trip. Each fault test prints its figures as one
JSON line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from integration_helpers import wait_until
from kafka import KafkaConsumer, KafkaProducer
from quorum_helpers import call

from cluster import launcher
from cluster.group.offsets_topic import partition_for
from cluster.pytest_plugin import RunningCluster, start_cluster
from pykafka_ops.protocol.api_keys import ApiKey

PKO = str(Path(sys.executable).parent / "pko")
OFFSETS_PARTITIONS = 6
THREE_NODES_YAML = f"""\
cluster: {{name: three}}
nodes:
  - {{id: 1}}
  - {{id: 2}}
  - {{id: 3}}
broker:
  num.partitions: 3
  offsets.topic.num.partitions: {OFFSETS_PARTITIONS}
  group.initial.rebalance.delay.ms: 0
topics:
  - {{name: orders, partitions: 6, replication.factor: 1}}
"""
DEDICATED_YAML = f"""\
cluster: {{name: dedicated}}
nodes:
  - {{id: 1, roles: [controller]}}
  - {{id: 2, roles: [controller]}}
  - {{id: 3, roles: [controller]}}
  - {{id: 4, roles: [broker]}}
  - {{id: 5, roles: [broker]}}
broker:
  offsets.topic.num.partitions: {OFFSETS_PARTITIONS}
  group.initial.rebalance.delay.ms: 0
topics:
  - {{name: orders, partitions: 4, replication.factor: 1}}
"""
NOT_LEADER_OR_FOLLOWER = 6
LEADER_NOT_AVAILABLE = 5


def _metadata(cluster: RunningCluster, node: int) -> Any:
    return call(cluster, node, ApiKey.METADATA, 12, {"topics": None, "allow_auto_topic_creation": False,
                                                      "include_topic_authorized_operations": False}, timeout=5)


def _leaders(cluster: RunningCluster, node: int, topic: str) -> dict[int, int]:
    (entry,) = [t for t in _metadata(cluster, node).topics if t.name == topic]
    return {p.partition_index: p.leader_id for p in entry.partitions}


def _quorum_leader(cluster: RunningCluster, node: int) -> int:
    answer = call(cluster, node, ApiKey.DESCRIBE_QUORUM, 1, {"topics": [
        {"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]}, timeout=5)
    return int(answer.topics[0].partitions[0].leader_id)


def _produce(bootstrap: str, topic: str, partitions: int, per_partition: int, tag: str) -> int:
    """confluent-kafka (idempotent) and kafka-python each write ``per_partition`` records to every
    partition: the number acknowledged."""
    acked: list[Any] = []
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(topic, f"{tag}-ck-{p}-{i}".encode(), partition=p,
                             on_delivery=lambda err, msg: acked.append(msg) if err is None else None)
    assert producer.flush(30) == 0
    legacy = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    futures = [legacy.send(topic, f"{tag}-kp-{p}-{i}".encode(), partition=p)
               for p in range(partitions) for i in range(per_partition)]
    legacy.flush(30)
    acked.extend(future.get(timeout=30) for future in futures)
    legacy.close()
    return len(acked)


def _end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in range(partitions)}
    finally:
        consumer.close()


def _consume_all_with_kafka_python(bootstrap: str, topic: str, expected: int) -> set[bytes]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=20_000)
    values = set()
    for message in consumer:
        values.add(message.value)
        if len(values) >= expected:
            break
    consumer.close()
    return values


def _group_led_elsewhere(cluster: RunningCluster, quorum_leader: int) -> tuple[str, int]:
    """A group id whose coordinator (the leader of its __consumer_offsets partition) is not the
    quorum leader, and that coordinator (FindCoordinator creates __consumer_offsets first)."""
    call(cluster, 1, ApiKey.FIND_COORDINATOR, 3, {"key": "any", "key_type": 0})
    leaders = wait_until(lambda: [t for t in _metadata(cluster, 1).topics if t.name == "__consumer_offsets"]
                         and _leaders(cluster, 1, "__consumer_offsets"), 10, "__consumer_offsets on broker 1")
    for i in range(1000):
        group = f"group-{i}"
        coordinator = leaders[partition_for(group, OFFSETS_PARTITIONS)]
        if coordinator not in (quorum_leader, -1):
            return group, coordinator
    raise AssertionError(f"every __consumer_offsets partition is led by {quorum_leader}: {leaders}")


def _consume_in_group(bootstrap: str, topic: str, group: str, expected: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 30
    while got < expected and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            got += 1
    consumer.commit(asynchronous=False)
    consumer.close()
    return got


def _committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=15)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def test_three_brokers_serve_every_partition_and_keep_it_all_across_down_and_up(tmp_path: Path) -> None:
    with start_cluster(THREE_NODES_YAML, tmp_path) as cluster:
        bootstrap = cluster.bootstrap_servers
        leaders = _leaders(cluster, 2, "orders")
        assert set(leaders.values()) == {1, 2, 3}  # every broker leads some partitions
        assert all(_leaders(cluster, node, "orders") == leaders for node in (1, 3))
        metadata = _metadata(cluster, 3)
        assert sorted(b.node_id for b in metadata.brokers) == [1, 2, 3]
        assert metadata.controller_id in (1, 2, 3)  # a live broker, as Kafka's KRaft brokers answer

        # a broker answers NOT_LEADER_OR_FOLLOWER for a partition it does not lead
        partition, owner = next((p, b) for p, b in leaders.items() if b != 1)
        produced = call(cluster, 1, ApiKey.LIST_OFFSETS, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
            {"name": "orders", "partitions": [{"partition_index": partition, "timestamp": -1,
                                               "current_leader_epoch": -1}]}]})
        assert produced.topics[0].partitions[0].error_code == NOT_LEADER_OR_FOLLOWER, owner

        # admin requests sent to any broker reach the active controller
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{cluster.config.node(3).port}"})
        admin.create_topics([NewTopic("events", 6, 1)])["events"].result(timeout=30)
        # every broker learns of it from the metadata log soon after (as in Kafka, not at once)
        wait_until(lambda: set(_leaders(cluster, 1, "events").values()) == {1, 2, 3}, 10, "events on broker 1")

        # producer ids come in blocks from the active controller: unique across brokers
        producer_ids = [call(cluster, node, ApiKey.INIT_PRODUCER_ID, 4, {
            "transactional_id": None, "transaction_timeout": 60000, "producer_id": -1,
            "producer_epoch": -1}).producer_id for node in (1, 2, 3, 1)]
        assert len(set(producer_ids)) == 4 and min(producer_ids) >= 0

        acked = _produce(bootstrap, "orders", 6, 20, "first")
        assert acked == 240
        values = _consume_all_with_kafka_python(bootstrap, "orders", acked)
        assert {f"first-ck-{p}-0".encode() for p in range(6)} <= values and len(values) == acked

        quorum_leader = _quorum_leader(cluster, 1)
        group, coordinator = _group_led_elsewhere(cluster, quorum_leader)
        assert _consume_in_group(bootstrap, "orders", group, acked) == acked
        committed = _committed(bootstrap, group, "orders", 6)
        assert sum(committed.values()) == acked
        ends = _end_offsets(bootstrap, "orders", 6)

        launcher.down(cluster.config)
        started = time.monotonic()
        launcher.up(cluster.config)
        up_s = time.monotonic() - started
        assert _end_offsets(bootstrap, "orders", 6) == ends
        assert _committed(bootstrap, group, "orders", 6) == committed
        assert {t.name for t in _metadata(cluster, 2).topics} >= {"orders", "events", "__consumer_offsets"}
        assert len(_consume_all_with_kafka_python(bootstrap, "orders", acked)) == acked
    print(json.dumps({"test": "three_brokers_round_trip", "records": acked, "group_coordinator": coordinator,
                      "quorum_leader": quorum_leader, "restart_up_s": round(up_s, 2)}))


def _describe_unavailable(cluster: RunningCluster, node: int, topic: str) -> str:
    result = subprocess.run([PKO, "topics", "--describe", "--unavailable-partitions", "--topic", topic, "-b",
                             f"127.0.0.1:{cluster.config.node(node).port}"],
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


def _fenced(cluster: RunningCluster, asked: int, broker: int) -> bool:
    metadata = _metadata(cluster, asked)
    return broker not in {b.node_id for b in metadata.brokers}


def test_a_lost_broker_is_fenced_its_partitions_go_offline_and_come_back(tmp_path: Path) -> None:
    with start_cluster(THREE_NODES_YAML, tmp_path) as cluster:
        bootstrap = cluster.bootstrap_servers
        quorum_leader = _quorum_leader(cluster, 1)
        victim = next(n for n in (1, 2, 3) if n != quorum_leader)
        survivor = next(n for n in (1, 2, 3) if n != victim)
        _produce(bootstrap, "orders", 6, 10, "before")
        ends = _end_offsets(bootstrap, "orders", 6)
        led = sorted(p for p, b in _leaders(cluster, survivor, "orders").items() if b == victim)
        assert led

        cluster.kill(victim)  # kill -9
        killed = time.monotonic()
        wait_until(lambda: _fenced(cluster, survivor, victim), 15, f"broker {victim} fenced")
        fenced_s = time.monotonic() - killed
        (entry,) = [t for t in _metadata(cluster, survivor).topics if t.name == "orders"]
        offline = {p.partition_index: p for p in entry.partitions if p.partition_index in led}
        assert all(p.leader_id == -1 and p.error_code == LEADER_NOT_AVAILABLE and list(p.offline_replicas) == [victim]
                   for p in offline.values())
        listed = _describe_unavailable(cluster, survivor, "orders")
        assert all(f"Partition: {p}\t" in listed for p in led), listed

        cluster.restart(victim)
        assert _leaders(cluster, survivor, "orders")[led[0]] == victim
        assert _end_offsets(bootstrap, "orders", 6) == ends  # back with their data

        # SIGSTOP past the session timeout: fenced; SIGCONT: unfenced again
        paused_node = victim
        cluster.pause(paused_node)
        paused = time.monotonic()
        wait_until(lambda: _fenced(cluster, survivor, paused_node), 15, f"paused broker {paused_node} fenced")
        pause_fenced_s = time.monotonic() - paused
        cluster.resume(paused_node)
        resumed = time.monotonic()
        wait_until(lambda: not _fenced(cluster, survivor, paused_node), 20, f"broker {paused_node} unfenced")
        unfenced_s = time.monotonic() - resumed
        wait_until(lambda: -1 not in _leaders(cluster, survivor, "orders").values(), 10, "every partition led")
    print(json.dumps({"test": "broker_fenced_and_back", "session_timeout_ms": 2000,
                      "kill_to_fenced_s": round(fenced_s, 2), "pause_to_fenced_s": round(pause_fenced_s, 2),
                      "resume_to_unfenced_s": round(unfenced_s, 2), "offline_partitions": len(led)}))


def _create_through(cluster: RunningCluster, node: int, name: str) -> bool:
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{cluster.config.node(node).port}"})
    try:
        admin.create_topics([NewTopic(name, 3, 1)], request_timeout=10)[name].result(timeout=15)
    except Exception as exc:  # noqa: BLE001 - TOPIC_ALREADY_EXISTS: an earlier attempt made it
        return "TOPIC_ALREADY_EXISTS" in str(exc)
    return True


def test_the_quorum_leader_dies_and_a_survivor_still_creates_topics(tmp_path: Path) -> None:
    with start_cluster(THREE_NODES_YAML, tmp_path) as cluster:
        quorum_leader = _quorum_leader(cluster, 1)
        survivor = next(n for n in (1, 2, 3) if n != quorum_leader)
        cluster.kill(quorum_leader)
        killed = time.monotonic()
        wait_until(lambda: _create_through(cluster, survivor, "after-failover"), 30, "CreateTopics on a survivor")
        create_s = time.monotonic() - killed
        new_leader = _quorum_leader(cluster, survivor)
        assert new_leader not in (quorum_leader, -1)
        cluster.restart(quorum_leader)  # it rejoins: registered, unfenced, serving
        wait_until(lambda: not _fenced(cluster, survivor, quorum_leader), 15, f"node {quorum_leader} unfenced")
        wait_until(lambda: {t.name for t in _metadata(cluster, quorum_leader).topics} >= {"after-failover", "orders"},
                   10, f"node {quorum_leader} caught up")
        acked = _produce(cluster.bootstrap_servers, "after-failover", 3, 5, "rejoined")
        assert sum(_end_offsets(cluster.bootstrap_servers, "after-failover", 3).values()) == acked
    print(json.dumps({"test": "quorum_leader_killed", "killed": quorum_leader, "new_leader": new_leader,
                      "kill_to_create_s": round(create_s, 2)}))


def test_dedicated_controllers_and_brokers_round_trip(tmp_path: Path) -> None:
    with start_cluster(DEDICATED_YAML, tmp_path) as cluster:
        bootstrap = cluster.bootstrap_servers
        assert sorted(b.node_id for b in _metadata(cluster, 4).brokers) == [4, 5]
        assert set(_leaders(cluster, 5, "orders").values()) == {4, 5}
        quorum_leader = _quorum_leader(cluster, 4)  # a broker forwards DescribeQuorum
        assert quorum_leader in (1, 2, 3)
        acked = _produce(bootstrap, "orders", 4, 10, "dedicated")
        group = f"dedicated-{uuid.uuid4().hex[:6]}"
        assert _consume_in_group(bootstrap, "orders", group, acked) == acked
        cluster.kill(quorum_leader)
        wait_until(lambda: _create_through(cluster, 4, "after-controller-loss"), 30, "CreateTopics on broker 4")
        wait_until(lambda: set(_leaders(cluster, 5, "after-controller-loss").values()) <= {4, 5}, 10,
                   "the new topic on broker 5")
        assert sum(_committed(bootstrap, group, "orders", 4).values()) == acked
