"""Consumer groups against a real node with unmodified clients: confluent-kafka with the range,
roundrobin and cooperative-sticky assignors, and kafka-python. Three members of a group share a
6-partition topic two partitions each; when one leaves, the other two own all six; with the
at-least-once loop (commit after processing) every record is consumed, with no gap, and the
committed offsets reach the end. Static members rejoin without a rebalance."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from group_clients import wait_until
from group_members import (
    GROUPS_YAML,
    GroupMember,
    all_consumed,
    committed,
    create_topic,
    end_offsets,
    produce,
    unique,
    wait_for_assignment,
)
from cluster.pytest_plugin import start_cluster

#: Fast groups: no initial rebalance delay, sessions from 1 s, a small __consumer_offsets.
PARTITIONS = 6


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_cluster(GROUPS_YAML, tmp_path_factory.mktemp("groups")) as cluster:
        yield cluster.bootstrap_servers


@pytest.mark.parametrize(("client", "assignor"), [
    ("confluent", "range"),
    ("confluent", "roundrobin"),
    ("confluent", "cooperative-sticky"),
    ("kafka-python", "range"),
])
def test_three_members_share_six_partitions_and_two_take_over_when_one_leaves(
        bootstrap: str, client: str, assignor: str) -> None:
    topic, group = unique("orders"), unique("workers")
    create_topic(bootstrap, topic, PARTITIONS)
    produce(bootstrap, topic, 300)
    members = [GroupMember(bootstrap, group, topic, client, assignor).start() for _ in range(3)]
    try:
        wait_for_assignment(members, [2, 2, 2], PARTITIONS)
        produce(bootstrap, topic, 300, start=300)
        members[0].stop()  # closes: LeaveGroup, the group rebalances
        wait_for_assignment(members[1:], [3, 3], PARTITIONS)
        produce(bootstrap, topic, 300, start=600)
        ends = end_offsets(bootstrap, topic, PARTITIONS)
        assert sum(ends.values()) == 900
        wait_until(lambda: all_consumed(members, ends), 30, "every record consumed")
        wait_until(lambda: committed(bootstrap, group, topic, PARTITIONS) == ends, 15, "commits at the log end")
    finally:
        for member in members[1:]:
            member.stop()


def test_a_static_member_rejoins_in_place_without_a_rebalance(bootstrap: str) -> None:
    topic, group = unique("orders"), unique("static")
    create_topic(bootstrap, topic, PARTITIONS)
    first = GroupMember(bootstrap, group, topic, group_instance_id="worker-1").start()
    second = GroupMember(bootstrap, group, topic, group_instance_id="worker-2").start()
    try:
        wait_for_assignment([first, second], [3, 3], PARTITIONS)
        settled, owned = second.rebalances, first.assignment
        first.stop()  # a static member does not send LeaveGroup
        again = GroupMember(bootstrap, group, topic, group_instance_id="worker-1").start()
        wait_until(lambda: again.assignment, 15, "the restarted static member's assignment")
        assert again.assignment == owned
        produce(bootstrap, topic, 60)
        ends = end_offsets(bootstrap, topic, PARTITIONS)
        wait_until(lambda: all_consumed([again, second], ends), 20, "every record consumed")
        assert second.rebalances == settled  # its partitions were never revoked nor reassigned
        again.stop()
    finally:
        second.stop()
