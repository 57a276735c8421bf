"""Snapshot tests (pytest-textual-snapshot): the layout of every screen at 120×40, fed by real data
objects recorded from a real cluster (``recorded.py``, made by ``record_monitor_data.py``).

After an intended layout change: ``pytest tests/tui/test_snapshots.py --snapshot-update``, then
look at the SVGs in ``__snapshots__/`` before committing them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from monitor_fakes import FakeClock, ReplaySource, services
from recorded import SKEW_REPORT, SNAPSHOTS, TAIL_RECORDS, TAKEN_AT, TIMESTAMPS
from recorded_nodes import SNAPSHOTS_FOUR_NODES
from textual.pilot import Pilot

from pykafka_ops.models.monitor import ClusterSnapshot
from tui.app import MonitorApp
from tui.screens.tail import TailScreen

SIZE = (120, 40)


def replay_app(snapshots: Sequence[ClusterSnapshot] = SNAPSHOTS) -> MonitorApp:
    """The app over the recorded polls (manual refresh, alerts off: no timers, no toasts)."""
    source = ReplaySource(FakeClock(TAKEN_AT[0]), snapshots, TIMESTAMPS)
    source.skew_report = SKEW_REPORT
    source.tail_records = list(TAIL_RECORDS)
    return MonitorApp(services(source), refresh_s=0, alerts=False)


def replayed(then: Callable[[MonitorApp], Any] | None = None) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Before the screenshot: every recorded poll, then ``then(app)`` (to open a screen)."""
    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, MonitorApp)
        for taken_at in TAKEN_AT[1:]:  # the app polled the first one at start
            await app.workers.wait_for_complete()
            app.services.clock.now = taken_at  # type: ignore[attr-defined]
            app.poll_now()
        await app.workers.wait_for_complete()
        await pilot.pause()
        if then is not None:
            then(app)
            await pilot.pause()
            finite = [w for w in app.workers if w.group != "tail"]  # a tail never ends
            if finite:  # (an empty list would mean every worker)
                await app.workers.wait_for_complete(finite)
            await pilot.pause()
        if isinstance(app.screen, TailScreen):
            app.screen.drain()
            await pilot.pause()
    return run_before


@pytest.mark.parametrize("keys", [(), ("2",), ("3",), ("4",), ("2", "question_mark")],
                         ids=["overview", "groups", "topics", "brokers", "help"])
def test_mode_screens(snap_compare: Any, keys: tuple[str, ...]) -> None:
    assert snap_compare(replay_app(), press=keys, terminal_size=SIZE, run_before=replayed())


@pytest.mark.parametrize("keys", [(), ("4",)], ids=["overview", "brokers"])
def test_four_node_cluster(snap_compare: Any, keys: tuple[str, ...]) -> None:
    """Running, fenced and down nodes, roles, the quorum leader (``recorded_nodes``)."""
    assert snap_compare(replay_app(SNAPSHOTS_FOUR_NODES), press=keys, terminal_size=SIZE, run_before=replayed())


def test_group_detail(snap_compare: Any) -> None:
    assert snap_compare(replay_app(), terminal_size=SIZE, run_before=replayed(lambda app: app.open_group("orders-app")))


def test_topic_detail(snap_compare: Any) -> None:
    assert snap_compare(replay_app(), terminal_size=SIZE, run_before=replayed(lambda app: app.open_topic("orders")))


def test_skew_report(snap_compare: Any) -> None:
    def open_skew(app: MonitorApp) -> None:
        from tui.screens.skew import SkewScreen

        app.push_screen(SkewScreen("orders"))

    assert snap_compare(replay_app(), terminal_size=SIZE, run_before=replayed(open_skew))


def test_tail(snap_compare: Any) -> None:
    assert snap_compare(replay_app(), terminal_size=SIZE, run_before=replayed(lambda app: app.open_tail("payments")))


def test_doctor(snap_compare: Any) -> None:
    """The Doctor screen over the recorded polls (``d``)."""
    assert snap_compare(replay_app(), press=("d",), terminal_size=SIZE, run_before=replayed())
