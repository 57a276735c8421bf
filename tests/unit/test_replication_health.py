"""Replication health without a cluster: per-broker counts (URP on the leader, offline, out of
the ISR, leader imbalance), the alerts of `pko lag` / `pko monitor`, ISR changes counted from
metadata records, kafka-topics' partition filters, and the replication fields of
`pko cluster status`."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import psutil
import pytest

from cluster import launcher_status
from cluster.launcher_status import ClusterView
from commands.cluster_status import node_json
from commands.topics import _selected
from pykafka_ops.config.cluster import parse
from pykafka_ops.models.replication import (
    OFFLINE,
    UNDER_REPLICATED,
    BrokerReplication,
    IsrChangeCounts,
)
from pykafka_ops.models.topics import PartitionDescription, TopicDescription
from pykafka_ops.services.isr_history import count_isr_changes
from pykafka_ops.services.monitor_rows import alert_text, replication_text
from pykafka_ops.services.monitor_views import topic_view
from pykafka_ops.services.replication import (
    alerts_of_topics,
    broker_replication,
    new_alerts,
    replication_alerts,
)
from pykafka_ops.state import NodeState


def part(partition: int, leader: int | None, replicas: tuple[int, ...], isr: tuple[int, ...]) -> PartitionDescription:
    return PartitionDescription("orders", partition, leader, replicas, isr)


#: Three brokers, node 3 out: p0 lost it from the ISR, p1 moved to its second replica, p2 (RF 1 on 3) is offline.
PARTITIONS = (part(0, 1, (1, 3, 2), (1, 2)), part(1, 2, (3, 2, 1), (2, 1)), part(2, None, (3,), (3,)),
              part(3, 2, (2, 1, 3), (2, 1, 3)))


def test_per_broker_counts_urp_on_the_leader_offline_and_out_of_sync_on_the_hosts() -> None:
    counts = broker_replication(PARTITIONS, brokers=[4])
    assert counts == {
        1: BrokerReplication(1, replicas=3, leaders=1, preferred_leaders=1, preferred_led=1, under_replicated=1),
        2: BrokerReplication(2, replicas=3, leaders=2, preferred_leaders=1, preferred_led=1, under_replicated=1),
        3: BrokerReplication(3, replicas=4, preferred_leaders=2, offline=1, out_of_sync=2),
        4: BrokerReplication(4),  # a broker that hosts nothing is listed when asked for
    }
    assert (counts[3].leader_imbalance, counts[3].imbalance_ratio) == (2, 1.0)
    assert (counts[1].leader_imbalance, counts[4].imbalance_ratio) == (0, None)


def test_a_topic_view_counts_urp_offline_and_partitions_off_their_preferred_leader() -> None:
    from types import SimpleNamespace

    from pykafka_ops.models.monitor import ClusterSnapshot, MonitorOptions
    from pykafka_ops.services.history import MonitorHistory

    topic = TopicDescription("orders", "", False, PARTITIONS)
    snapshot = ClusterSnapshot(None, None, (), (topic,), (), (), {})
    view = topic_view(topic, snapshot, MonitorHistory(MonitorOptions()), {}, (None, None), {})
    assert (view.under_replicated, view.offline, view.not_preferred) == (2, 1, 2)  # offline p2 keeps its 1-of-1 ISR
    assert [replication_text(p) for p in view.partitions] == ["URP", "URP", "OFFLINE", "ok"]
    assert replication_text(SimpleNamespace(leader=2, replicas=(1, 2), isr=(1, 2), adding_replicas=())) == \
        "not preferred"
    # a replica a reassignment is adding is not missing from the ISR (KIP-455); one it keeps is
    moving = SimpleNamespace(leader=1, replicas=(2, 3, 1), isr=(1, 2), adding_replicas=(3,))
    assert replication_text(moving) == "not preferred"
    assert replication_text(SimpleNamespace(**{**vars(moving), "isr": (1,)})) == "URP"


def test_alerts_one_per_topic_and_kind_offline_first_and_rung_once() -> None:
    topics = [("orders", PARTITIONS), ("audit", (part(0, 1, (1, 2), (1, 2)),))]
    alerts = replication_alerts(topics)
    assert [(a.topic, a.kind, a.partitions, a.level) for a in alerts] == [
        ("orders", OFFLINE, (2,), "ERR"), ("orders", UNDER_REPLICATED, (0, 1), "WARN")]
    assert alert_text(alerts[1]) == "WARN topic 'orders': 2 under-replicated partitions (0, 1)"
    assert alerts[0].message == "topic 'orders': 1 offline partition (2)"
    previous = {(a.topic, a.kind): a for a in alerts}
    assert new_alerts(alerts, previous) == ()
    fewer = replication_alerts([("orders", PARTITIONS[1:])])
    assert [a.partitions for a in new_alerts(fewer, previous)] == [(1,)]  # other partitions: rung again
    assert alerts_of_topics(alerts, ["audit"]) == ()


def test_isr_changes_are_counted_on_the_replica_that_left_or_joined() -> None:
    topic = str(uuid.uuid4())
    records = [
        (1, {"type": "PartitionRecord", "topic_id": topic, "partition": 0, "isr": [1, 2, 3]}),
        (2, {"type": "PartitionRecord", "topic_id": topic, "partition": 1, "isr": [3, 1]}),
        (3, {"type": "FenceBrokerRecord", "id": 3}),
        (4, {"type": "PartitionChangeRecord", "topic_id": topic, "partition": 0, "isr": [1, 2]}),
        (5, {"type": "PartitionChangeRecord", "topic_id": topic, "partition": 1, "leader": 1, "isr": [1]}),
        (6, {"type": "PartitionChangeRecord", "topic_id": topic, "partition": 1, "leader": 3}),  # no ISR change
        (7, {"type": "PartitionChangeRecord", "topic_id": topic, "partition": 0, "isr": [1, 2, 3]}),
        (8, {"type": "PartitionChangeRecord", "topic_id": topic, "partition": 2, "isr": [2]}),  # in the snapshot
    ]
    assert count_isr_changes(records, {(topic, 2): (2, 3)}) == {
        3: IsrChangeCounts(shrinks=3, expands=1)}


@pytest.mark.parametrize(("flags", "expected"), [
    ({}, [0, 1, 2, 3]),
    ({"under_replicated": True}, [0, 1]),  # Kafka: ISR < replicas; offline p2 keeps a full 1-of-1 ISR
    ({"unavailable": True}, [2]),
    ({"under_replicated": True, "unavailable": True}, [0, 1, 2]),  # several filters: any of them (kafka-topics)
    ({"under_min_isr": True}, [2]),
    ({"at_min_isr": True}, [0, 1]),
])
def test_kafka_topics_partition_filters(flags: dict[str, bool], expected: list[int]) -> None:
    topic = TopicDescription("orders", "", False, PARTITIONS, min_insync_replicas=2)
    filters = {"under_replicated": False, "under_min_isr": False, "at_min_isr": False, "unavailable": False, **flags}
    assert [p.partition for p in _selected(topic, filters, frozenset({1, 2, 3}))] == expected


def test_unavailable_includes_a_leader_that_is_not_a_live_broker() -> None:
    topic = TopicDescription("orders", "", False, PARTITIONS, min_insync_replicas=2)
    filters = {"under_replicated": False, "under_min_isr": False, "at_min_isr": False, "unavailable": True}
    assert [p.partition for p in _selected(topic, filters, frozenset({1, 3}))] == [1, 2, 3]


def test_cluster_status_shows_each_brokers_replication(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = parse("nodes:\n  - {id: 1, port: 9091, roles: [controller]}\n  - {id: 2, port: 9092, roles: [broker]}\n"
                   "  - {id: 3, port: 9093, roles: [broker]}\n", tmp_path / "c.yaml", tmp_path)
    me = psutil.Process(os.getpid())
    running = {2: (NodeState(2, me.pid, 9092, ["broker"], time.time(), "log"), me)}
    view = ClusterView(frozenset({2, 3}), {2: 1}, 1, broker_replication(PARTITIONS[:2], [2, 3]))
    monkeypatch.setattr(launcher_status, "running_nodes", lambda _config: running)
    monkeypatch.setattr(launcher_status, "cluster_view", lambda _config, _nodes, _timeout: view)
    monkeypatch.setattr(launcher_status, "_isr_changes", lambda _config, _leader: {3: IsrChangeCounts(2, 1)})
    nodes = launcher_status.status(config, cpu_interval_s=0)
    fields = ("under_replicated_partitions", "offline_partitions", "out_of_sync_replicas", "isr_shrinks", "isr_expands")
    assert [[node_json(n)[f] for f in fields] for n in nodes] == [
        [None, None, None, None, None], [1, 0, 0, 0, 0], [0, 0, 2, 2, 1]]  # node 1 is no broker
