"""Offsets in transactions (issue 17 item 3, KIP-447) on one node, with raw requests.

A producer id from InitProducerId (no transactional id), TxnOffsetCommit to the group's
coordinator, and WriteTxnMarkers on the group's ``__consumer_offsets`` partition, as the
transaction coordinator sends them. Checked: pending offsets are invisible to OffsetFetch and
answer UNSTABLE_OFFSET_COMMIT with ``require_stable``; they survive kill -9 as pending; a COMMIT
marker makes them the group's offsets, an ABORT drops them; a zombie member is fenced. Then
confluent-kafka's consume-transform-produce: ``send_offsets_to_transaction`` commits the group's
offsets with the transaction, and an aborted transaction leaves them unchanged. One cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from integration_helpers import create_topic, init_producer_id, unique_topic, wire

from cluster.pytest_plugin import RunningCluster, start_cluster, wait_until
from pykafka_ops.client.wire import WireClient
from pykafka_ops.protocol.api_keys import ApiKey

YAML = """\
cluster: {name: txn-offsets}
nodes:
  - {id: 1}
broker:
  offsets.topic.num.partitions: 1
  transaction.state.log.num.partitions: 1
"""
OFFSETS_TOPIC = "__consumer_offsets"
COORDINATOR_LOAD_IN_PROGRESS, UNKNOWN_MEMBER_ID, UNSTABLE_OFFSET_COMMIT = 14, 25, 88


def _txn_commit(client: WireClient, group: str, pid: int, epoch: int, topic: str, offsets: dict[int, int],
                generation: int = -1, member: str = "") -> list[int]:
    """TxnOffsetCommit v3: the partitions' error codes."""
    answer = client.request(ApiKey.TXN_OFFSET_COMMIT, 3, {
        "transactional_id": "tx", "group_id": group, "producer_id": pid, "producer_epoch": epoch,
        "generation_id": generation, "member_id": member, "group_instance_id": None,
        "topics": [{"name": topic, "partitions": [
            {"partition_index": p, "committed_offset": o, "committed_leader_epoch": -1, "committed_metadata": "m"}
            for p, o in offsets.items()]}]})
    return [p.error_code for t in answer.topics for p in t.partitions]


def _fetch(client: WireClient, group: str, topic: str, stable: bool) -> list[tuple[int, int, int]]:
    """OffsetFetch v7 of partitions 0 and 1: (partition, offset, error)."""
    answer: Any = client.request(ApiKey.OFFSET_FETCH, 7, {
        "group_id": group, "topics": [{"name": topic, "partition_indexes": [0, 1]}], "require_stable": stable})
    assert answer.error_code == 0, answer
    return [(p.partition_index, p.committed_offset, p.error_code) for t in answer.topics for p in t.partitions]


def _marker(client: WireClient, pid: int, epoch: int, commit: bool) -> list[int]:
    answer = client.request(ApiKey.WRITE_TXN_MARKERS, 1, {"markers": [{
        "producer_id": pid, "producer_epoch": epoch, "transaction_result": commit, "coordinator_epoch": 0,
        "topics": [{"name": OFFSETS_TOPIC, "partition_indexes": [0]}]}]})
    return [p.error_code for m in answer.markers for t in m.topics for p in t.partitions]


def _wait_loaded(client: WireClient, group: str) -> None:
    def loaded() -> bool:
        answer = client.request(ApiKey.OFFSET_FETCH, 7, {"group_id": group, "topics": None, "require_stable": False})
        return answer.error_code != COORDINATOR_LOAD_IN_PROGRESS
    wait_until(loaded, 20, f"group {group} loaded")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with start_cluster(YAML, tmp_path_factory.mktemp("txn-offsets")) as running:
        yield running


def test_txn_offsets_pending_commit_abort_and_restart(cluster: RunningCluster) -> None:
    topic, group = unique_topic("txo"), unique_topic("g")
    create_topic(cluster, topic, partitions=2)
    with wire(cluster) as client:
        versions = {k.api_key: (k.min_version, k.max_version) for k in client.request(ApiKey.API_VERSIONS, 3, {
            "client_software_name": "t", "client_software_version": "1"}).api_keys}
        assert versions[ApiKey.TXN_OFFSET_COMMIT] == (0, 4)
        assert client.request(ApiKey.FIND_COORDINATOR, 3, {"key": group, "key_type": 0}).error_code == 0
        _wait_loaded(client, group)
        pid, epoch = init_producer_id(client)
        assert _txn_commit(client, group, pid, epoch, topic, {0: 5, 1: 6}) == [0, 0]
        assert _fetch(client, group, topic, stable=False) == [(0, -1, 0), (1, -1, 0)]
        assert _fetch(client, group, topic, stable=True) == [(0, -1, UNSTABLE_OFFSET_COMMIT),
                                                             (1, -1, UNSTABLE_OFFSET_COMMIT)]
        # a member of a generation the (Empty) group does not have: fenced (KIP-447)
        assert _txn_commit(client, group, pid, epoch, topic, {0: 99}, generation=4, member="zombie") == [
            UNKNOWN_MEMBER_ID]

    cluster.kill(1)  # kill -9 with the transaction open: the offsets come back pending
    cluster.restart(1)
    with wire(cluster) as client:
        _wait_loaded(client, group)
        assert _fetch(client, group, topic, stable=True) == [(0, -1, UNSTABLE_OFFSET_COMMIT),
                                                             (1, -1, UNSTABLE_OFFSET_COMMIT)]
        assert _marker(client, pid, epoch, commit=True) == [0]
        assert _fetch(client, group, topic, stable=True) == [(0, 5, 0), (1, 6, 0)]

        aborting, aborting_epoch = init_producer_id(client)
        assert _txn_commit(client, group, aborting, aborting_epoch, topic, {0: 50}) == [0]
        assert _fetch(client, group, topic, stable=True)[0] == (0, -1, UNSTABLE_OFFSET_COMMIT)
        assert _marker(client, aborting, aborting_epoch, commit=False) == [0]
        assert _fetch(client, group, topic, stable=True) == [(0, 5, 0), (1, 6, 0)]

    cluster.kill(1)  # the log replays to the same answer: the aborted offsets never show
    cluster.restart(1)
    with wire(cluster) as client:
        _wait_loaded(client, group)
        assert _fetch(client, group, topic, stable=True) == [(0, 5, 0), (1, 6, 0)]


def test_send_offsets_to_transaction_commits_with_it_and_abort_leaves_them(cluster: RunningCluster) -> None:
    source, sink, group = unique_topic("ctp-in"), unique_topic("ctp-out"), unique_topic("ctp")
    create_topic(cluster, source, partitions=1)
    create_topic(cluster, sink, partitions=1)
    plain = Producer({"bootstrap.servers": cluster.bootstrap_servers})
    for i in range(10):
        plain.produce(source, str(i).encode(), partition=0)
    assert plain.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": group,
                         "isolation.level": "read_committed", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "transactional.id": unique_topic("ctp-tid")})
    producer.init_transactions(30)
    try:
        consumer.subscribe([source])

        def copy(count: int, commit: bool) -> None:
            producer.begin_transaction()
            copied = 0

            def consumed() -> bool:
                nonlocal copied
                for message in consumer.consume(count - copied, 0.5):
                    assert message.error() is None, message.error()
                    producer.produce(sink, message.value().upper(), partition=0)
                    copied += 1
                return copied == count
            wait_until(consumed, 30, f"{count} records consumed")
            producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                                 consumer.consumer_group_metadata(), 30)
            if commit:
                producer.commit_transaction(30)
            else:
                producer.abort_transaction(30)

        def committed() -> int:
            return consumer.committed([TopicPartition(source, 0)], 10)[0].offset

        copy(5, commit=True)
        assert committed() == 5  # librdkafka asks with require_stable: the transaction has ended
        copy(5, commit=False)
        assert committed() == 5  # the aborted transaction's offsets never became the group's
    finally:
        consumer.close()
