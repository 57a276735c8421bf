"""The brokers screen against real node processes: three combined nodes (``configs/three-brokers.yaml``)
show the quorum leader; a node stopped (SIGSTOP) past ``broker.session.timeout.ms`` shows FENCED —
its process is there, DescribeCluster v2 lists it fenced — and running again after SIGCONT. The
stopped broker is the one the monitor reads Metadata from whenever that is not the quorum leader:
the monitor must not keep waiting on it (nor on its ListGroups answer).
Deadline pollers only: the test polls until the screen shows the state or the deadline passes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from monitor_fakes import poll

from cluster.pytest_plugin import RunningCluster, start_cluster
from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.models.monitor import MonitorOptions
from pykafka_ops.services.monitor import MonitorServices
from pykafka_ops.services.snapshot import KafkaClusterSource
from tui.app import MonitorApp
from tui.widgets.lag_table import LagTable

THREE_BROKERS = Path(__file__).resolve().parents[2] / "configs" / "three-brokers.yaml"
#: Short broker sessions, so that a stopped broker is fenced within seconds (Kafka's names).
FAST_FENCING = {"broker.session.timeout.ms": 2000, "broker.heartbeat.interval.ms": 300}
DEADLINE_S = 40.0


@pytest.fixture(scope="module")
def three_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with start_cluster(THREE_BROKERS, tmp_path_factory.mktemp("monitor-three"), **FAST_FENCING) as cluster:
        yield cluster


def _rows(app: MonitorApp) -> dict[str, dict[str, Any]]:
    table = app.screen.query_one("#brokers", LagTable)
    return {key: dict(zip(table._column_names, cells)) for key, cells in table.entries}


async def _poll_until(app: MonitorApp, pilot: Any, done: Any) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        await poll(app, pilot)
        rows = _rows(app)
        if done(rows) or time.monotonic() > deadline:
            return rows


async def test_a_stopped_broker_is_fenced_then_running_and_the_quorum_leader_is_marked(
        three_nodes: RunningCluster) -> None:
    settings = ClientSettings(three_nodes.bootstrap_servers, timeout_s=3)
    source = KafkaClusterSource(settings, state_file=three_nodes.config.state_file)
    app = MonitorApp(MonitorServices(source, MonitorOptions(window=2)), refresh_s=0, alerts=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        rows = await _poll_until(app, pilot, lambda rows: len(rows) == 3 and all(
            r["STATE"] == "running" for r in rows.values()) and any(r["QUORUM"] == "Leader" for r in rows.values()))
        assert [r["STATE"] for r in rows.values()] == ["running"] * 3, rows
        assert sorted(r["QUORUM"] for r in rows.values()) == ["Follower", "Follower", "Leader"]
        assert all(r["ROLES"] == "broker,controller" for r in rows.values())
        leader = next(key for key, r in rows.items() if r["QUORUM"] == "Leader")
        title = str(app.screen.query_one("#brokers", LagTable).border_title)
        assert f"3 running, 0 fenced, 0 down · quorum leader {leader}, epoch" in title
        # Keep the quorum's leader serving. Stop the broker the monitor reads Metadata from when it can:
        # Metadata's controller id is the broker that answered, and librdkafka keeps asking the broker
        # it used last while its connection is up, which a stopped broker's stays.
        assert app.frame is not None
        answering = str(app.frame.overview.controller_id)
        victim = answering if answering in rows and answering != leader else next(k for k in rows if k != leader)
        pid = rows[victim]["PID"]
        os.kill(pid, signal.SIGSTOP)
        try:
            rows = await _poll_until(app, pilot, lambda rows: rows[victim]["STATE"] == "FENCED")
            assert rows[victim]["STATE"] == "FENCED", rows
            assert rows[victim]["LEADERS"] == 0
            assert "2 running, 1 fenced, 0 down" in str(app.screen.query_one("#brokers", LagTable).border_title)
        finally:
            os.kill(pid, signal.SIGCONT)
        rows = await _poll_until(app, pilot, lambda rows: rows[victim]["STATE"] == "running")
        assert rows[victim]["STATE"] == "running", rows
    source.close()
