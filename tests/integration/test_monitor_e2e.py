"""`pko monitor` and `pko lag` end to end: a real cluster, a producer, a slow consumer in its own
process, the app headless. The group row shows growing lag and non-zero rates; once the consumer
is killed (SIGKILL: no LeaveGroup), STALL while its session lasts, then STOP. Deadline pollers
only (Pilot pauses), a 3-poll window and 0.3 s polls keep it short."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from group_members import create_topic, unique
from typer.testing import CliRunner

from cluster.pytest_plugin import RunningCluster
from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.models.monitor import MonitorOptions
from pykafka_ops.services.monitor import MonitorServices
from pykafka_ops.services.snapshot import KafkaClusterSource
from tui.app import MonitorApp
from tui.widgets.lag_table import LagTable

#: A consumer that processes 20 records/s and commits each one (much slower than the producer).
SLOW_CONSUMER = """
import sys, time
from confluent_kafka import Consumer
consumer = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "client.id": "slow-consumer",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
consumer.subscribe([sys.argv[3]])
while True:
    msg = consumer.poll(0.1)
    if msg is not None and not msg.error():
        consumer.commit(message=msg, asynchronous=False)
        time.sleep(0.05)
"""


def produce_until(bootstrap: str, topic: str, stop: threading.Event) -> None:
    """About 200 records/s until ``stop``."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    n = 0
    while not stop.is_set():
        for _ in range(20):
            producer.produce(topic, key=b"k%d" % (n % 7), value=b"v%d" % n)
            n += 1
        producer.poll(0)
        stop.wait(0.1)
    producer.flush(10)


@pytest.fixture
def traffic(cluster: RunningCluster) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """(topic, group, the consumer process): a producer thread and a slow consumer, running."""
    topic, group = unique("monitored"), unique("slow-group")
    create_topic(cluster.bootstrap_servers, topic, 3)
    stop = threading.Event()
    producer = threading.Thread(target=produce_until, args=(cluster.bootstrap_servers, topic, stop), daemon=True)
    producer.start()
    consumer = subprocess.Popen([sys.executable, "-c", SLOW_CONSUMER, cluster.bootstrap_servers, group, topic])
    try:
        yield topic, group, consumer
    finally:
        consumer.kill()
        consumer.wait(10)
        stop.set()
        producer.join(15)


def row(app: MonitorApp, group: str) -> dict[str, Any] | None:
    """The group's row on the groups screen, by column name."""
    table = app.screen.query_one("#groups", LagTable)
    for key, cells in table.entries:
        if key == group:
            return dict(zip(table._column_names, cells))
    return None


async def test_monitor_shows_growing_lag_and_rates_then_stop_when_the_consumer_dies(
        cluster: RunningCluster, traffic: tuple[str, str, subprocess.Popen[bytes]]) -> None:
    topic, group, consumer = traffic
    services = MonitorServices(KafkaClusterSource(ClientSettings(cluster.bootstrap_servers)), MonitorOptions(window=3))
    app = MonitorApp(services, refresh_s=0.3, alerts=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")

        async def wait_for(check: Any, timeout_s: float, what: str) -> Any:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                found = check()
                if found:
                    return found
                await pilot.pause(0.1)
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}; last row {row(app, group)}")

        def consuming() -> dict[str, Any] | None:
            r = row(app, group)
            return r if r and r["STATE"] == "Stable" and r["LAG"] > 0 and r["CONSUME/S"] not in (None, "0.0") else None

        first = await wait_for(consuming, 30, "the group consuming with lag")
        later = await wait_for(lambda: (r := consuming()) and r["LAG"] > first["LAG"] + 50 and r, 20, "lag to grow")
        assert float(later["CONSUME/S"]) > 0
        topic_view = next(t for t in app.frame.topics if t.name == topic)  # type: ignore[union-attr]
        assert topic_view.produce_rate and topic_view.produce_rate > 50
        assert later["TIME-LAG"] is not None and later["METHOD"] in ("record", "interp")

        consumer.kill()
        await wait_for(lambda: (r := row(app, group)) and r["STATUS"] == "STOP", 40, "STOP after the kill")
        stopped = row(app, group)
        assert stopped is not None and stopped["STATE"] == "Empty"
        (view,) = [g for g in app.frame.groups if g.group_id == group]  # type: ignore[union-attr]
        assert "no owner (group Empty)" in view.reason
    services.close()


def test_pko_lag_prints_the_group_rows_as_json_and_fails_on_stop(cluster: RunningCluster) -> None:
    from group_clients import commit, produce

    from commands.main import app

    topic, group = unique("lagged"), unique("stopped")
    create_topic(cluster.bootstrap_servers, topic, 2)
    produce(cluster.bootstrap_servers, topic, {0: 5, 1: 3})
    commit(cluster.bootstrap_servers, group, {(topic, 0): 1})
    argv = ["lag", "-b", cluster.bootstrap_servers, "--group", group, "--window", "2", "--interval", "0.2"]
    result = CliRunner().invoke(app, [*argv, "--output", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    (described,) = payload["groups"]
    assert (payload["version"], payload["window"], payload["poll"]) == (1, 2, 2)
    assert (described["group"], described["state"], described["total_lag"], described["status"]) == (
        group, "Empty", 4, "STOP")
    assert [(p["partition"], p["lag"], p["lag_method"]) for p in described["partitions"]] == [(0, 4, "record")]
    failed = CliRunner().invoke(app, [*argv, "--fail-on", "stall", "--output", "text"], catch_exceptions=False)
    assert failed.exit_code == 3
    assert f"group '{group}' is STOP" in failed.stderr
    header, first = failed.stdout.splitlines()[:2]
    assert header.split()[:4] == ["GROUP", "STATE", "MEMBERS", "LAG"]
    assert first.split()[:4] == [group, "Empty", "0", "4"] and "STOP" in first.split()


def test_monitor_finds_the_cluster_of_its_config_without_bootstrap_servers(cluster: RunningCluster,
                                                                          tmp_path: Path) -> None:
    from commands.main import app
    from pykafka_ops.client.connection import resolve_bootstrap

    assert resolve_bootstrap(None, cluster.config_path) == cluster.bootstrap_servers
    stopped = tmp_path / "stopped.yaml"
    stopped.write_text("cluster: {name: stopped, data_dir: data}\nnodes:\n  - {id: 1, port: 1, roles: [broker, controller]}\n")
    result = CliRunner().invoke(app, ["monitor", "-c", str(stopped)], env={"PKO_BOOTSTRAP": ""})
    assert result.exit_code == 2
    assert f"the cluster of {stopped} is not running (start it with `pko cluster up -c {stopped}`)" in result.stderr
