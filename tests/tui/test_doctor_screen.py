"""Pilot tests of the Doctor screen over the fake cluster: `pko doctor`'s findings of the current
frame, worst first, redrawn at every poll, ``d`` from any screen."""

from __future__ import annotations

from monitor_fakes import FakeCluster, poll, services
from rich.text import Text
from textual.widgets import Static

from pykafka_ops.services.doctor_frame import NOT_CHECKED, diagnose_frame
from tui.app import MonitorApp
from tui.screens.doctor import DoctorScreen, FindingsTable
from tui.screens.groups import GroupsScreen
from tui.screens.help import HelpScreen

SIZE = (120, 40)


def text_of(app: MonitorApp, selector: str) -> str:
    rendered = app.screen.query_one(selector, Static).render()
    return rendered.plain if isinstance(rendered, Text) else str(rendered)


def rows(app: MonitorApp) -> list[tuple[str, str, str]]:
    """(severity, check, subject) of every row shown."""
    return [(str(c[0]), str(c[1]), str(c[2])) for _key, c in app.screen.query_one(FindingsTable).entries]


def troubled(cluster: FakeCluster) -> FakeCluster:
    """``audit-slow`` behind on ``audit`` with no member (stalled); ``audit-app`` with three members
    on ``audit``'s two partitions (one idle)."""
    for p in range(2):
        cluster.produce("audit", p, 50)
        cluster.commit("audit-slow", "audit", p, 20)
    cluster.join("audit-app", "a1", [("audit", 0)])
    cluster.join("audit-app", "a2", [("audit", 1)])
    cluster.join("audit-app", "a3", [])
    return cluster


async def test_d_shows_the_stalled_group_and_the_idle_consumer(cluster: FakeCluster) -> None:
    app = MonitorApp(services(troubled(cluster)), refresh_s=0)
    async with app.run_test(size=SIZE) as pilot:
        await poll(app, pilot)
        await pilot.press("d")
        assert isinstance(app.screen, DoctorScreen)
        await pilot.pause()
        shown = rows(app)
        assert ("WARN", "stalled-group", "group audit-slow") in shown
        assert ("WARN", "idle-consumers", "group audit-app") in shown
        table = app.screen.query_one(FindingsTable)
        assert table.get_cell_at((0, 0)).style.color is not None  # the severity, coloured by monitor.tcss
        assert table.get_cell_at((0, 1)).style == ""
        evidence = dict(table.entries)["stalled-group group audit-slow"][3]
        assert "lag=60" in str(evidence) and "partitions_behind=2" in str(evidence)
        detail = text_of(app, "#finding-detail")
        assert detail.startswith("WARN ") and "why " in detail and "fix     pko " in detail
        assert "2 warn" in text_of(app, "#doctor-summary")
        assert app.screen.query_one("#doctor-summary").has_class("-warn")
        assert all(part in text_of(app, "#not-checked") for part in NOT_CHECKED)
        assert "run pko doctor" in text_of(app, "#not-checked")
        await pilot.press("down")
        await pilot.pause()
        assert text_of(app, "#finding-detail").split(" · ")[1].startswith(rows(app)[1][2])
        await pilot.press("escape")
        assert not isinstance(app.screen, DoctorScreen)


async def test_findings_follow_each_poll_and_a_healthy_cluster_has_none(cluster: FakeCluster) -> None:
    app = MonitorApp(services(troubled(cluster)), refresh_s=0)
    async with app.run_test(size=SIZE) as pilot:
        await poll(app, pilot)
        await pilot.press("d")
        await pilot.pause()
        assert len(rows(app)) == 2
        for p in range(2):  # the stalled group catches up, the idle member leaves
            cluster.commit("audit-slow", "audit", p, 50)
        cluster.leave("audit-app", "a3")
        await poll(app, pilot)
        assert rows(app) == []
        assert text_of(app, "#doctor-summary").startswith("no findings")
        assert text_of(app, "#finding-detail") == "no findings"
        assert not app.screen.query_one("#doctor-summary").has_class("-warn")


async def test_d_works_from_any_screen_once_and_is_in_the_help(cluster: FakeCluster) -> None:
    app = MonitorApp(services(cluster), refresh_s=0)
    async with app.run_test(size=SIZE) as pilot:
        await poll(app, pilot)
        await pilot.press("2")
        assert isinstance(app.screen, GroupsScreen)
        await pilot.press("d")
        assert isinstance(app.screen, DoctorScreen)
        assert rows(app) == []
        depth = len(app.screen_stack)
        await pilot.press("d")
        assert len(app.screen_stack) == depth
        await pilot.press("escape")
        assert isinstance(app.screen, GroupsScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert ("d", "Doctor") in app.screen.keys
        await pilot.press("d")
        assert isinstance(app.screen, HelpScreen)


async def test_the_diagnosis_covers_the_rate_window(cluster: FakeCluster) -> None:
    """The checks' window is the span of the polls the frame's rates cover."""
    monitor = services(cluster, rate_window=2)
    spans = []
    for _ in range(4):
        spans.append(diagnose_frame(monitor, await monitor.poll()).window_s)
        cluster.clock.advance(5)
    assert spans == [0.0, 5.0, 10.0, 10.0]
