"""Pilot tests of every screen of `pko monitor` with the fake service layer and the fake clock:
key bindings, sort, filter, status transitions, alerts, workers (tail, skew) and dialogs."""

from __future__ import annotations

from typing import Any

import pytest
from monitor_fakes import FakeCluster, poll, services
from rich.text import Text
from textual.widgets import Input, Static

from pykafka_ops.client.connection import ClusterUnreachableError
from pykafka_ops.models.monitor import MetadataQuorum, NodeProcess
from pykafka_ops.models.records import ConsumedRecord
from pykafka_ops.models.topics import BrokerInfo
from tui.app import MonitorApp
from tui.screens.brokers import BrokersScreen
from tui.screens.group_detail import GroupDetailScreen
from tui.screens.groups import GroupsScreen
from tui.screens.help import HelpScreen
from tui.screens.modals import IntervalModal, TopicPicker
from tui.screens.overview import OverviewScreen
from tui.screens.skew import SkewScreen
from tui.screens.tail import TailScreen
from tui.screens.topic_detail import TopicDetailScreen
from tui.screens.topics import TopicsScreen
from tui.widgets.lag_table import LagTable

SIZE = (120, 40)


def app_for(cluster: FakeCluster, **options: Any) -> MonitorApp:
    """The app over the fake cluster, polling only when told (refresh 0)."""
    return MonitorApp(services(cluster, **options), refresh_s=0)


def keys(app: MonitorApp, selector: str) -> list[str]:
    return [key for key, _cells in app.screen.query_one(selector, LagTable).entries]


def column(app: MonitorApp, selector: str, name: str) -> list[Any]:
    table = app.screen.query_one(selector, LagTable)
    at = table._column_names.index(name)
    return [cells[at] for _key, cells in table.entries]


def text_of(app: MonitorApp, selector: str) -> str:
    rendered = app.screen.query_one(selector, Static).render()
    return rendered.plain if isinstance(rendered, Text) else str(rendered)


def consume(cluster: FakeCluster, group: str, topic: str, behind: int) -> None:
    """Commit ``behind`` records short of the log end on every partition of ``topic``."""
    for tp, end in cluster.log_end.items():
        if tp.topic == topic:
            cluster.commit(group, topic, tp.partition, max(0, end - behind))


def step(cluster: FakeCluster, produce: int = 10) -> None:
    cluster.clock.advance(2)
    for p in range(4):
        cluster.produce("orders", p, produce)


@pytest.fixture
def groups(cluster: FakeCluster) -> FakeCluster:
    """Besides orders-app: ``audit-idle`` (caught up) and ``audit-slow`` (behind, no member)."""
    for p in range(2):
        cluster.produce("audit", p, 50)
    consume(cluster, "audit-idle", "audit", 0)
    consume(cluster, "audit-slow", "audit", 30)
    return cluster


async def test_number_keys_switch_between_the_four_modes(cluster: FakeCluster) -> None:
    app = app_for(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await poll(app, pilot)
        shown = []
        for key in "2341":
            await pilot.press(key)
            shown.append(type(app.screen))
        assert shown == [GroupsScreen, TopicsScreen, BrokersScreen, OverviewScreen]


async def test_overview_counts_brokers_topics_groups_and_rates(groups: FakeCluster) -> None:
    groups.nodes = (NodeProcess(1, "127.0.0.1", 9092, 4242, ("broker", "controller"), True, 12.5, 300 << 20),)
    app = app_for(groups)
    async with app.run_test(size=SIZE) as pilot:
        step(groups)
        await poll(app, pilot)
        step(groups)
        await poll(app, pilot)
        cluster_text = text_of(app, "#cluster")
        assert "brokers     1 running, 0 down" in cluster_text  # no fenced count: the fake cannot say
        assert "quorum      -" in cluster_text  # no DescribeQuorum answer
        assert "topics      3 (8 partitions)" in cluster_text
        assert "produce     20.0 records/s" in cluster_text
        assert "Stable              1" in text_of(app, "#states")
        assert column(app, "#nodes", "RSS") == ["300 MiB"]
        assert column(app, "#nodes", "CPU%") == ["12.5"]


async def test_groups_sort_reverse_filter_and_only_lagging(groups: FakeCluster) -> None:
    app = app_for(groups)
    async with app.run_test(size=SIZE) as pilot:
        step(groups)
        consume(groups, "orders-app", "orders", 5)
        await poll(app, pilot)
        await pilot.press("2")
        assert keys(app, "#groups") == ["audit-slow", "orders-app", "audit-idle"]  # by status, then lag
        await pilot.press("s")  # lag
        assert keys(app, "#groups") == ["audit-slow", "orders-app", "audit-idle"]
        await pilot.press("s", "s", "s")  # time-lag, consume-rate, group
        assert keys(app, "#groups") == ["audit-idle", "audit-slow", "orders-app"]
        await pilot.press("S")
        assert keys(app, "#groups") == ["orders-app", "audit-slow", "audit-idle"]
        assert "sort: group (reversed)" in str(app.screen.query_one("#groups", LagTable).border_title)
        await pilot.press("l")
        assert keys(app, "#groups") == ["orders-app", "audit-slow"]
        await pilot.press("l", "slash", "a", "u", "d")
        assert app.screen.query_one("#filter", Input).display
        assert keys(app, "#groups") == ["audit-slow", "audit-idle"]
        await pilot.press("enter")
        assert app.focused is app.screen.query_one("#groups", LagTable)
        await pilot.press("escape")
        assert len(keys(app, "#groups")) == 3


async def test_the_highlighted_group_shows_its_reason(groups: FakeCluster) -> None:
    app = app_for(groups)
    async with app.run_test(size=SIZE) as pilot:
        await poll(app, pilot, times=3)
        await pilot.press("2")
        assert text_of(app, "#reason").startswith("audit-slow: STOP · audit-0: no progress in 3 polls, lag 30")
        await pilot.press("down")
        assert text_of(app, "#reason").startswith("audit-idle: OK")


async def test_status_transitions_warn_stall_stop_rewind_ring_the_bell(cluster: FakeCluster) -> None:
    app = app_for(cluster)
    rung: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.bell = lambda: rung.append("bell")  # type: ignore[method-assign]
        await pilot.press("2")
        seen = []
        for behind in (5, 10, 15):  # lag never decreases: WARN
            step(cluster)
            consume(cluster, "orders-app", "orders", behind)
            await poll(app, pilot)
        seen.append(column(app, "#groups", "STATUS"))
        await poll(app, pilot, times=2)  # nothing moves, members own the partitions: STALL
        seen.append(column(app, "#groups", "STATUS"))
        cluster.leave("orders-app")
        await poll(app, pilot)  # nobody owns them any more, still no progress: STOP
        seen.append(column(app, "#groups", "STATUS"))
        for p in range(4):  # offsets go back: REWIND
            cluster.commit("orders-app", "orders", p, 1)
        await poll(app, pilot)
        seen.append(column(app, "#groups", "STATUS"))
        assert seen == [["WARN"], ["STALL"], ["STOP"], ["REWIND"]]
        assert len(rung) == 4
        await pilot.press("a")
        assert not app.alerts and "alerts off" in app.sub_title
        consume(cluster, "orders-app", "orders", 0)
        await poll(app, pilot, times=4)
        await pilot.press("s", "s")
        cluster.leave("orders-app")
        step(cluster)
        await poll(app, pilot, times=3)
        assert column(app, "#groups", "STATUS") == ["STOP"] and len(rung) == 4


async def test_group_detail_shows_partitions_members_and_trend(cluster: FakeCluster) -> None:
    app = app_for(cluster)
    async with app.run_test(size=SIZE) as pilot:
        for behind in (2, 4):
            step(cluster)
            consume(cluster, "orders-app", "orders", behind)
            cluster.clock.advance(2)  # the oldest unconsumed records are now 2 s old
            await poll(app, pilot)
        await pilot.press("2", "enter")
        assert isinstance(app.screen, GroupDetailScreen) and app.screen.group_id == "orders-app"
        assert keys(app, "#partitions") == ["orders:0", "orders:1", "orders:2", "orders:3"]
        assert column(app, "#partitions", "LAG") == [4, 4, 4, 4]
        assert column(app, "#partitions", "TIME-LAG") == ["2.0s"] * 4
        assert column(app, "#partitions", "METHOD") == ["record"] * 4
        assert column(app, "#members", "ASSIGNMENT") == ["orders:0,1", "orders:2,3"]
        assert "orders-app · Stable · 2 members" in text_of(app, "#group-info")
        assert app.screen.query_one("#trend").values == (0.0, 8.0, 16.0)  # the poll at start, then two
        await pilot.press("down")
        assert text_of(app, "#reason").startswith("orders-1: OK")
        await pilot.press("t")
        assert isinstance(app.screen, TailScreen) and app.screen.topic == "orders"
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, GroupsScreen)


async def test_topics_list_detail_and_skew_report_on_demand(cluster: FakeCluster) -> None:
    from recorded import SKEW_REPORT

    cluster.skew_report = SKEW_REPORT
    app = app_for(cluster)
    async with app.run_test(size=SIZE) as pilot:
        step(cluster)
        await poll(app, pilot, times=2)
        await pilot.press("3")
        assert keys(app, "#topics") == ["audit", "orders", "__consumer_offsets"]
        await pilot.press("s")  # produce rate
        assert keys(app, "#topics")[0] == "orders"
        await pilot.press(*"sssss")  # back to by name; the cursor stayed on audit
        await pilot.press("down", "enter")
        assert isinstance(app.screen, TopicDetailScreen)
        assert column(app, "#partitions", "PRODUCE/S") == ["5.0"] * 4
        await pilot.press("k")
        assert isinstance(app.screen, SkewScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert "max/mean 2.50" in text_of(app, "#skew-status")
        assert column(app, "#heavy", "KEY")[0] == "customer-7"
        await pilot.press("escape")
        assert isinstance(app.screen, TopicDetailScreen)


async def test_escape_cancels_a_running_skew_report(cluster: FakeCluster) -> None:
    app = app_for(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await poll(app, pilot)
        app.open_topic("orders")
        await pilot.pause()
        await pilot.press("k")
        screen = app.screen
        assert isinstance(screen, SkewScreen)
        (worker,) = [w for w in app.workers if w.group == "skew"]
        await pilot.pause(0.3)  # one progress tick
        assert screen.progress == (50, 100)
        await pilot.press("escape")
        await app.workers.wait_for_complete()
        assert worker.is_cancelled and isinstance(app.screen, TopicDetailScreen)


async def test_brokers_screen_lists_brokers_and_a_node_that_is_down(cluster: FakeCluster) -> None:
    cluster.nodes = (NodeProcess(1, "127.0.0.1", 9092, 11, ("broker",), True, 3.0, 100 << 20),
                     NodeProcess(2, "127.0.0.1", 9093, 12, ("broker",), False))
    app = app_for(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await poll(app, pilot)
        await pilot.press("4")
        assert column(app, "#brokers", "STATE") == ["running", "DOWN"]
        assert column(app, "#brokers", "QUORUM") == [None, None]  # the cluster did not answer DescribeQuorum
        assert column(app, "#brokers", "LEADERS") == [8, 0]
        assert "1 running, 1 down · quorum - · controller 1" in str(
            app.screen.query_one("#brokers", LagTable).border_title)


async def test_brokers_screen_shows_fenced_brokers_and_the_quorum_leader(cluster: FakeCluster) -> None:
    """Three combined nodes, the quorum led by node 2, node 3 fenced (DescribeCluster v2), and a
    dedicated controller known only from the quorum's answer."""
    cluster.brokers = (BrokerInfo(1, "10.0.0.1", 9092), BrokerInfo(2, "10.0.0.2", 9092))
    cluster.fenced_brokers = (BrokerInfo(3, "10.0.0.3", 9092),)
    cluster.quorum = MetadataQuorum(2, 7, (1, 2, 3, 9), (4,), (BrokerInfo(9, "10.0.0.9", 9093),))
    app = app_for(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await poll(app, pilot)
        assert "quorum      leader 2, epoch 7" in text_of(app, "#cluster")
        assert "brokers     2 running, 1 fenced, 0 down" in text_of(app, "#cluster")
        await pilot.press("4")
        assert keys(app, "#brokers") == ["1", "2", "3", "9"]
        assert column(app, "#brokers", "STATE") == ["running", "running", "FENCED", None]
        assert column(app, "#brokers", "ROLES") == ["broker,controller", "broker,controller", "broker,controller",
                                                    "controller"]
        assert column(app, "#brokers", "QUORUM") == ["Follower", "Leader", "Follower", "Follower"]
        assert column(app, "#brokers", "HOST:PORT") == ["10.0.0.1:9092", "10.0.0.2:9092", "10.0.0.3:9092",
                                                        "10.0.0.9:9093"]
        title = str(app.screen.query_one("#brokers", LagTable).border_title)
        assert "2 running, 1 fenced, 0 down · quorum leader 2, epoch 7" in title

        # node 3 leaves the metadata altogether (unregistered): still listed, as down; no quorum answer now
        cluster.fenced_brokers, cluster.quorum = (), None
        await poll(app, pilot)
        assert column(app, "#brokers", "STATE") == ["running", "running", "DOWN"]
        assert column(app, "#brokers", "QUORUM") == [None, None, None]
        assert "2 running, 0 fenced, 1 down · quorum -" in str(app.screen.query_one("#brokers", LagTable).border_title)


def record(partition: int, offset: int, value: str) -> ConsumedRecord:
    return ConsumedRecord("orders", partition, offset, 1_700_000_000_000 + offset, "create", b"k%d" % offset,
                          value.encode())


async def test_tail_pauses_and_filters(cluster: FakeCluster) -> None:
    cluster.tail_records = [record(0, 0, "apple"), record(1, 0, "banana")]
    app = app_for(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await poll(app, pilot)
        await pilot.press("3", "down", "t")
        screen = app.screen
        assert isinstance(screen, TailScreen) and screen.topic == "orders"
        await pilot.pause(0.3)
        assert keys(app, "#records") == ["0:0", "1:0"]
        await pilot.press("space")
        screen.buffer.write([record(0, 1, "cherry")])
        await pilot.pause(0.3)
        assert keys(app, "#records") == ["0:0", "1:0"] and "PAUSED" in text_of(app, "#tail-status")
        await pilot.press("space")
        assert keys(app, "#records") == ["0:0", "1:0", "0:1"]
        await pilot.press("slash", "a", "n")
        assert keys(app, "#records") == ["1:0"]
        assert "3 received" in text_of(app, "#tail-status")
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, TopicsScreen)
        await app.workers.wait_for_complete()
        assert not [w for w in app.workers if w.group == "tail"]


async def test_5_picks_a_topic_to_tail(cluster: FakeCluster) -> None:
    app = app_for(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await poll(app, pilot)
        await pilot.press("5")
        assert isinstance(app.screen, TopicPicker)
        await pilot.press("a", "u", "enter")
        assert isinstance(app.screen, TailScreen) and app.screen.topic == "audit"


async def test_help_lists_the_keys_of_the_screen_and_the_app(cluster: FakeCluster) -> None:
    app = app_for(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        described = dict(app.screen.keys)
        assert {"Only lagging", "Sort", "Filter", "Quit", "Refresh", "Pause"} <= set(described.values())
        await pilot.press("escape")
        assert isinstance(app.screen, GroupsScreen)


async def test_interval_pause_and_manual_refresh(cluster: FakeCluster) -> None:
    app = app_for(cluster)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        assert "manual (r)" in app.sub_title
        await pilot.press("i")
        assert isinstance(app.screen, IntervalModal)
        await pilot.press("backspace", "3", "0", "enter")
        assert app.refresh_s == 30.0 and "every 30s" in app.sub_title
        await pilot.press("p")
        assert app.paused and "PAUSED" in app.sub_title
        polls = app.frame.poll if app.frame else 0
        await pilot.press("r")
        await app.workers.wait_for_complete()
        assert app.frame is not None and app.frame.poll == polls + 1


async def test_the_timer_polls_by_itself(cluster: FakeCluster) -> None:
    app = MonitorApp(services(cluster), refresh_s=0.05)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(100):  # a deadline of 100 pauses, not a sleep
            if app.frame is not None and app.frame.poll >= 3:
                break
            await pilot.pause(0.05)
        assert app.frame is not None and app.frame.poll >= 3


async def test_a_failed_poll_is_a_notification_and_the_last_frame_stays(cluster: FakeCluster) -> None:
    app = app_for(cluster)
    notes: list[tuple[str, str]] = []
    async with app.run_test(size=SIZE) as pilot:
        await poll(app, pilot)
        app.notify = lambda message, **kw: notes.append((message, kw.get("severity", "")))  # type: ignore[method-assign]
        frame = app.frame
        cluster.fail_next_collect = ClusterUnreachableError("cannot reach the Kafka cluster at fake:9092")
        await poll(app, pilot)
        assert notes == [("cannot reach the Kafka cluster at fake:9092", "error")]
        assert app.frame is frame and isinstance(app.screen, OverviewScreen)
        await poll(app, pilot)
        assert app.frame is not frame
