"""Committed offsets and group membership survive a node restart — clean (SIGTERM) and kill -9:
``__consumer_offsets`` is replayed when the node leads its partitions again. A member that kept
running through the restart carries on in its generation; a new member resumes at the
committed offsets instead of the beginning."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from group_clients import wait_until
from group_members import GroupMember, all_consumed, committed, create_topic, end_offsets, produce, unique
from cluster.pytest_plugin import RunningCluster, start_cluster
from group_members import GROUPS_YAML

PARTITIONS = 3
#: Reconnect quickly to the restarted node (librdkafka backs off up to 10 s by default).
RECONNECT = {"reconnect.backoff.max.ms": 500}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with start_cluster(GROUPS_YAML, tmp_path_factory.mktemp("group-durability")) as running:
        yield running


@pytest.mark.parametrize("how", ["clean", "kill -9"])
def test_offsets_and_the_group_survive_a_restart(cluster: RunningCluster, how: str) -> None:
    bootstrap = cluster.bootstrap_servers
    topic, group = unique("orders"), unique("durable")
    create_topic(bootstrap, topic, PARTITIONS)
    produce(bootstrap, topic, 90)
    member = GroupMember(bootstrap, group, topic, options=RECONNECT).start()
    try:
        ends = end_offsets(bootstrap, topic, PARTITIONS)
        wait_until(lambda: committed(bootstrap, group, topic, PARTITIONS) == ends, 20, "commits at the log end")
        settled = member.rebalances

        if how == "kill -9":
            cluster.kill(1, "KILL")
        cluster.restart(1)

        assert committed(bootstrap, group, topic, PARTITIONS) == ends
        produce(bootstrap, topic, 30, start=90)
        ends = end_offsets(bootstrap, topic, PARTITIONS)
        wait_until(lambda: all_consumed([member], ends), 20, "the running member to carry on")
        wait_until(lambda: committed(bootstrap, group, topic, PARTITIONS) == ends, 20, "its commits after the restart")
        assert member.rebalances == settled  # the reloaded group kept its generation and member
    finally:
        member.stop()

    produce(bootstrap, topic, 30, start=120)
    successor = GroupMember(bootstrap, group, topic).start()
    try:
        wait_until(lambda: sum(map(len, successor.consumed.values())) >= 30, 20, "the 30 new records")
        assert {p: min(offsets) for p, offsets in successor.consumed.items()} == {
            p: ends[p] for p in successor.consumed}  # resumed at the committed offsets, not at 0
    finally:
        successor.stop()
