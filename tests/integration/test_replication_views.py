"""Operators see replication (issue 16 item 4), on real node processes: one node of three is paused
(SIGSTOP) until it is fenced and out of every ISR, then resumed.

While it is paused, `pko cluster status` shows the under-replicated partitions on their leaders,
the paused node's replicas out of the ISR and the partition it alone hosts offline, and its ISR
shrinks; `pko topics --describe --under-replicated-partitions / --unavailable-partitions` list
those partitions; `pko lag` raises a WARN (under-replicated) and an ERR (offline) alert for the
topics its group consumes (JSON fields, one stderr line each, exit 3 with ``--fail-on WARN``); the
monitor's service layer (what `pko monitor` shows) has the same counts and alerts, and a new
alert once. After the resume every one of them clears. One cluster serves every check, each
waited for with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from cluster.pytest_plugin import ClusterFactory, wait_until
from pykafka_ops.client.connection import client_settings
from pykafka_ops.models.monitor import MonitorFrame
from pykafka_ops.services.monitor import MonitorServices
from pykafka_ops.services.snapshot import KafkaClusterSource

PKO = str(Path(sys.executable).parent / "pko")
GROUP = "replication-views"
THREE_NODES_YAML = """\
cluster: {name: replication-views}
nodes:
  - {id: 1}
  - {id: 2}
  - {id: 3}
broker:
  offsets.topic.num.partitions: 3
  group.initial.rebalance.delay.ms: 0
topics:
  - {name: orders, partitions: 3, replication.factor: 3, config: {min.insync.replicas: 2}}
"""
#: Seconds each condition gets (fencing takes broker.session.timeout.ms = 2 s on a test cluster).
DEADLINE_S = 30


def pko(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PKO, *args], capture_output=True, text=True, timeout=60)


def status(config_path: Path) -> dict[int, dict[str, Any]]:
    result = pko("cluster", "status", "-c", str(config_path), "--output", "json")
    assert result.returncode == 0, result.stderr
    return {node["id"]: node for node in json.loads(result.stdout)}


def listed(bootstrap: str, flag: str) -> set[tuple[str, int]]:
    """(topic, partition) of the kafka-topics lines `--describe FLAG` prints."""
    result = pko("topics", "--describe", flag, "-b", bootstrap, "--exclude-internal")
    assert result.returncode == 0, result.stderr
    fields = [dict(f.split(": ", 1) for f in line.strip().split("\t")) for line in result.stdout.splitlines()]
    return {(f["Topic"], int(f["Partition"])) for f in fields}


def lag_alerts(bootstrap: str) -> list[tuple[str, str, list[int]]]:
    result = pko("lag", "-b", bootstrap, "--group", GROUP, "--window", "2", "--interval", "0.1", "--output", "json")
    assert result.returncode == 0, result.stderr
    return [(a["level"], a["topic"], a["partitions"]) for a in json.loads(result.stdout)["alerts"]]


def commit_group(bootstrap: str, partitions: list[TopicPartition]) -> None:
    """A group with committed offsets on ``partitions`` (Empty: no member), so `pko lag` shows their topics."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=partitions, asynchronous=False)
    finally:
        consumer.close()


def test_a_paused_node_shows_as_urp_offline_and_alerts_everywhere_then_clears(
        pko_cluster_factory: ClusterFactory) -> None:
    cluster = pko_cluster_factory(THREE_NODES_YAML)
    path, everyone = cluster.config_path, cluster.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": everyone})
    commit_group(everyone, [TopicPartition("orders", p, 0) for p in range(3)])
    coordinator = admin.describe_consumer_groups([GROUP])[GROUP].result(DEADLINE_S).coordinator.id
    before = status(path)
    quorum_leader = next(i for i, n in before.items() if n["quorum_leader"])
    # keep the quorum leader and the group's coordinator up: the views are what this test is about
    victim = next(i for i in (3, 2, 1) if i not in (quorum_leader, coordinator))
    solo = f"solo-on-{victim}"  # one replica, on the victim: offline while it is fenced
    created = pko("topics", "--create", "--topic", solo, "--replica-assignment", str(victim), "-b", everyone)
    assert created.returncode == 0, created.stderr
    wait_until(lambda: listed(everyone, "--unavailable-partitions") == set() and
               (solo, 0) in listed(everyone, "--at-min-isr-partitions"), DEADLINE_S, f"{solo} led")
    commit_group(everyone, [TopicPartition(solo, 0, 0)])
    survivors = ",".join(f"127.0.0.1:{cluster.config.node(i).port}" for i in (1, 2, 3) if i != victim)
    services = MonitorServices(KafkaClusterSource(client_settings(survivors, None, 5000)))

    cluster.pause(victim)
    try:
        # pko cluster status: URP on the leaders, the victim's replicas out of the ISR, its
        # partition offline, its ISR shrinks
        def degraded() -> dict[int, dict[str, Any]] | None:
            nodes = status(path)
            urp = sum(n["under_replicated_partitions"] or 0 for n in nodes.values())
            shown = urp >= 3 and nodes[victim]["isr_shrinks"] >= 3 and nodes[victim]["offline_partitions"] == 1
            return nodes if shown else None
        nodes = wait_until(degraded, DEADLINE_S, "URP, offline and ISR shrinks in pko cluster status")
        assert (nodes[victim]["state"], nodes[victim]["under_replicated_partitions"]) == ("paused", 0)  # leads nothing
        assert nodes[victim]["out_of_sync_replicas"] >= 3
        assert nodes[victim]["isr_expands"] == before[victim]["isr_expands"]

        # pko topics --describe
        urp = wait_until(lambda: listed(survivors, "--under-replicated-partitions"), DEADLINE_S, "URP listed")
        assert {("orders", p) for p in range(3)} <= urp and (solo, 0) not in urp  # its ISR is its one replica
        assert listed(survivors, "--unavailable-partitions") == {(solo, 0)}

        # pko lag: alerts as JSON fields, text lines on stderr, --fail-on WARN exits 3
        expected = [("ERR", solo, [0]), ("WARN", "orders", [0, 1, 2])]
        wait_until(lambda: sorted(lag_alerts(survivors)) == expected, DEADLINE_S, "pko lag alerts")
        text = pko("lag", "-b", survivors, "--group", GROUP, "--window", "2", "--interval", "0.1",
                   "--output", "text", "--fail-on", "WARN")
        assert text.returncode == 3, text.stderr
        assert "pko: WARN topic 'orders': 3 under-replicated partitions (0, 1, 2)\n" in text.stderr
        assert f"pko: ERR topic '{solo}': 1 offline partition (0)\n" in text.stderr

        # the monitor's service layer: counts per topic and broker, alerts, a new alert rung once
        def monitored() -> MonitorFrame | None:
            frame = asyncio.run(services.poll())
            kinds = {(a.topic, a.kind) for a in frame.alerts}
            return frame if {("orders", "under_replicated"), (solo, "offline")} <= kinds else None
        frame = wait_until(monitored, DEADLINE_S, "URP and offline in the monitor's views")
        orders = next(t for t in frame.topics if t.name == "orders")
        assert (orders.under_replicated, orders.offline) == (3, 0)
        assert frame.overview.offline == 1 and frame.overview.under_replicated >= 3
        broker = next(b for b in frame.brokers if b.id == victim)
        assert (broker.offline, broker.leaders) == (1, 0) and broker.out_of_sync >= 3
        assert broker.preferred_leaders >= 1  # it should lead its own partition at least
        assert sum(b.under_replicated for b in frame.brokers) == frame.overview.under_replicated
        again = asyncio.run(services.poll())
        assert ("orders", "under_replicated") not in {(a.topic, a.kind) for a in again.new_alerts}
    finally:
        cluster.resume(victim)

    wait_until(lambda: all(not n["under_replicated_partitions"] and not n["offline_partitions"]
                           for n in status(path).values()), DEADLINE_S, "URP cleared in pko cluster status")
    assert status(path)[victim]["isr_expands"] >= 3
    wait_until(lambda: not listed(survivors, "--under-replicated-partitions"), DEADLINE_S, "URP cleared in topics")
    wait_until(lambda: lag_alerts(survivors) == [], DEADLINE_S, "pko lag alerts cleared")
    wait_until(lambda: not asyncio.run(services.poll()).alerts, DEADLINE_S, "monitor alerts cleared")
    services.close()
