"""Group administration against a real node: confluent-kafka's AdminClient (list, describe,
list/alter offsets, delete groups) and raw requests through our wire client for what it lacks
(OffsetDelete, the OffsetFetch v8 multi-group form, batched FindCoordinator) or to pin Kafka's
error codes exactly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from group_clients import wait_until
from group_members import GroupMember, committed, create_topic, produce, unique
from pykafka_ops.client.wire import WireClient
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol.api_keys import ApiKey
from cluster.pytest_plugin import RunningCluster, start_cluster
from group_members import GROUPS_YAML


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with start_cluster(GROUPS_YAML, tmp_path_factory.mktemp("group-admin")) as running:
        yield running


@pytest.fixture
def admin(cluster: RunningCluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": cluster.bootstrap_servers})


@pytest.fixture
def wire(cluster: RunningCluster) -> Iterator[WireClient]:
    host, port = cluster.bootstrap_servers.split(":")
    with WireClient(host, int(port), timeout=10) as client:
        yield client


def _alter(admin: AdminClient, group: str, offsets: dict[tuple[str, int], int], metadata: str | None = None) -> None:
    partitions = [TopicPartition(t, p, o) if metadata is None else TopicPartition(t, p, o, metadata)
                  for (t, p), o in offsets.items()]
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, partitions)])[group].result(10)


def _error(future: Any) -> str:
    with pytest.raises(KafkaException) as raised:
        future.result(10)
    return raised.value.args[0].name()


def test_list_describe_alter_and_delete_groups_with_the_admin_client(cluster: RunningCluster,
                                                                    admin: AdminClient) -> None:
    bootstrap = cluster.bootstrap_servers
    topic, active, idle = unique("orders"), unique("active"), unique("idle")
    create_topic(bootstrap, topic, 3)
    produce(bootstrap, topic, 30)
    _alter(admin, idle, {(topic, 0): 4, (topic, 1): 5}, metadata="checkpoint-7")
    member = GroupMember(bootstrap, active, topic).start()
    try:
        wait_until(lambda: len(member.assignment) == 3, 20, "the member's assignment")
        listed = {g.group_id: g.state for g in admin.list_consumer_groups().result(10).valid}
        assert listed[active] == ConsumerGroupState.STABLE and listed[idle] == ConsumerGroupState.EMPTY
        stable = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(10).valid
        assert active in {g.group_id for g in stable} and idle not in {g.group_id for g in stable}

        described = {g: f.result(10) for g, f in admin.describe_consumer_groups([active, idle]).items()}
        assert described[active].state == ConsumerGroupState.STABLE
        assert described[active].partition_assignor == "range"
        (desc,) = described[active].members
        assert desc.client_id == member.name and desc.host == "/127.0.0.1"
        assert sorted(tp.partition for tp in desc.assignment.topic_partitions) == [0, 1, 2]
        assert described[idle].state == ConsumerGroupState.EMPTY and not described[idle].members

        request = [ConsumerGroupTopicPartitions(idle, [TopicPartition(topic, 0), TopicPartition(topic, 1)])]
        offsets = admin.list_consumer_group_offsets(request)[idle].result(10).topic_partitions
        assert [(tp.partition, tp.offset, tp.metadata) for tp in offsets] == [(0, 4, "checkpoint-7"),
                                                                              (1, 5, "checkpoint-7")]
        busy = [ConsumerGroupTopicPartitions(active, [TopicPartition(topic, 0, 1)])]
        (refused,) = admin.alter_consumer_group_offsets(busy)[active].result(10).topic_partitions
        assert refused.error.name() == "UNKNOWN_MEMBER_ID"  # an active group's offsets are its members' to commit

        assert _error(admin.delete_consumer_groups([active])[active]) == "NON_EMPTY_GROUP"
        admin.delete_consumer_groups([idle])[idle].result(10)
        assert idle not in {g.group_id for g in admin.list_consumer_groups().result(10).valid}
        assert committed(bootstrap, idle, topic, 2) == {0: -1001, 1: -1001}
        assert _error(admin.delete_consumer_groups([idle])[idle]) == "GROUP_ID_NOT_FOUND"
    finally:
        member.stop()
    wait_until(lambda: admin.describe_consumer_groups([active])[active].result(10).state == ConsumerGroupState.EMPTY,
               10, "the group to be empty once its member left")


def _offset_delete(wire: WireClient, group: str, partitions: list[tuple[str, int]]) -> tuple[int, dict[Any, int]]:
    topics: dict[str, list[dict[str, int]]] = {}
    for t, p in partitions:
        topics.setdefault(t, []).append({"partition_index": p})
    response = wire.request(ApiKey.OFFSET_DELETE, 0, {"group_id": group, "topics": [
        {"name": t, "partitions": parts} for t, parts in topics.items()]})
    return response.error_code, {(t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions}


def test_offset_delete_follows_kafkas_rules(cluster: RunningCluster, admin: AdminClient, wire: WireClient) -> None:
    bootstrap = cluster.bootstrap_servers
    consumed, other, group = unique("consumed"), unique("other"), unique("deleting")
    create_topic(bootstrap, consumed, 1)
    create_topic(bootstrap, other, 1)
    _alter(admin, group, {(consumed, 0): 1, (other, 0): 2})

    assert _offset_delete(wire, unique("missing"), [(other, 0)]) == (ErrorCode.group_id_not_found, {})
    member = GroupMember(bootstrap, group, consumed).start()
    try:
        wait_until(lambda: member.assignment, 20, "the member's assignment")
        error, results = _offset_delete(wire, group, [(consumed, 0), (other, 0), ("no-such-topic", 0)])
        assert error == ErrorCode.none
        assert results == {(consumed, 0): ErrorCode.group_subscribed_to_topic, (other, 0): ErrorCode.none,
                           ("no-such-topic", 0): ErrorCode.unknown_topic_or_partition}
        assert committed(bootstrap, group, other, 1) == {0: -1001}
    finally:
        member.stop()
    wait_until(lambda: _offset_delete(wire, group, [(consumed, 0)]) == (ErrorCode.none, {(consumed, 0): 0}),
               10, "OffsetDelete on the group once Empty")
    assert committed(bootstrap, group, consumed, 1) == {0: -1001}


def test_offset_fetch_all_partitions_and_several_groups_at_once(cluster: RunningCluster, admin: AdminClient,
                                                               wire: WireClient) -> None:
    topic, first, second = unique("fetched"), unique("first"), unique("second")
    create_topic(cluster.bootstrap_servers, topic, 3)
    _alter(admin, first, {(topic, 2): 20, (topic, 0): 10})
    _alter(admin, second, {(topic, 1): 7})

    all_partitions = wire.request(ApiKey.OFFSET_FETCH, 7, {"group_id": first, "topics": None})
    assert all_partitions.error_code == ErrorCode.none
    assert [(t.name, p.partition_index, p.committed_offset) for t in all_partitions.topics for p in t.partitions] == [
        (topic, 0, 10), (topic, 2, 20)]

    many = wire.request(ApiKey.OFFSET_FETCH, 8, {"require_stable": False, "groups": [
        {"group_id": first, "topics": [{"name": topic, "partition_indexes": [0, 1]}]},
        {"group_id": second, "topics": None},
        {"group_id": unique("nobody"), "topics": None}]})
    answers = {g.group_id: [(p.partition_index, p.committed_offset, p.metadata) for t in g.topics for p in t.partitions]
               for g in many.groups}
    assert answers == {first: [(0, 10, ""), (1, -1, "")], second: [(1, 7, "")], many.groups[2].group_id: []}
    assert all(g.error_code == ErrorCode.none for g in many.groups)


def test_find_coordinator_answers_batched_keys_and_transactions(cluster: RunningCluster,
                                                                wire: WireClient) -> None:
    port = int(cluster.bootstrap_servers.split(":")[1])
    batched = wire.request(ApiKey.FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["a", "b"]})
    assert [(c.key, c.node_id, c.port, c.error_code) for c in batched.coordinators] == [
        ("a", 1, port, ErrorCode.none), ("b", 1, port, ErrorCode.none)]
    txn = wire.request(ApiKey.FIND_COORDINATOR, 3, {"key": "tx", "key_type": 1})
    assert (txn.error_code, txn.node_id, txn.port) == (ErrorCode.none, 1, port)  # __transaction_state's leader
    assert wire.request(ApiKey.FIND_COORDINATOR, 0, {"key": "g"}).port == port


def _join(wire: WireClient, group: str, member_id: str = "", session_ms: int = 6000) -> Any:
    return wire.request(ApiKey.JOIN_GROUP, 5, {
        "group_id": group, "session_timeout": session_ms, "rebalance_timeout": 6000, "member_id": member_id,
        "group_instance_id": None, "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b""}]})


def test_requests_get_kafkas_error_codes(cluster: RunningCluster, wire: WireClient) -> None:
    topic = unique("errors")
    create_topic(cluster.bootstrap_servers, topic, 1)
    assert _join(wire, unique("g"), session_ms=500).error_code == ErrorCode.invalid_session_timeout
    assert _join(wire, "").error_code == ErrorCode.invalid_group_id
    assert _join(wire, unique("g"), member_id="ghost").error_code == ErrorCode.unknown_member_id
    first = _join(wire, unique("g"))
    assert (first.error_code, first.member_id != "") == (ErrorCode.member_id_required, True)

    def commit(group: str, generation: int, name: str, metadata: str = "") -> int:
        response = wire.request(ApiKey.OFFSET_COMMIT, 8, {
            "group_id": group, "generation_id_or_member_epoch": generation, "member_id": "",
            "group_instance_id": None, "topics": [{"name": name, "partitions": [
                {"partition_index": 0, "committed_offset": 1, "committed_leader_epoch": -1,
                 "committed_metadata": metadata}]}]})
        return response.topics[0].partitions[0].error_code

    assert commit(unique("g"), -1, "no-such-topic") == ErrorCode.unknown_topic_or_partition
    assert commit(unique("g"), 5, topic) == ErrorCode.illegal_generation
    assert commit(unique("g"), -1, topic, metadata="x" * 5000) == ErrorCode.offset_metadata_too_large
    heartbeat = wire.request(ApiKey.HEARTBEAT, 4, {"group_id": unique("g"), "generation_id": 1, "member_id": "m",
                                                   "group_instance_id": None})
    assert heartbeat.error_code == ErrorCode.unknown_member_id


def test_list_groups_filters_by_state_and_type(cluster: RunningCluster, admin: AdminClient, wire: WireClient) -> None:
    topic, group = unique("listed"), unique("listed")
    create_topic(cluster.bootstrap_servers, topic, 1)
    _alter(admin, group, {(topic, 0): 1})
    empty = wire.request(ApiKey.LIST_GROUPS, 5, {"states_filter": ["empty"], "types_filter": []})
    assert (group, "Empty", "classic") in {(g.group_id, g.group_state, g.group_type) for g in empty.groups}
    assert not wire.request(ApiKey.LIST_GROUPS, 5, {"states_filter": [], "types_filter": ["consumer"]}).groups
    assert group not in {g.group_id for g in wire.request(ApiKey.LIST_GROUPS, 4, {"states_filter": ["Stable"]}).groups}
