"""The monitor's service layer with a fake cluster and a fake clock: status transitions (Burrow's
rules over a window of polls), rates, time lag and its methods, bounded history, and each
node's state (running / fenced / down), roles and part in the metadata quorum."""

from __future__ import annotations

import asyncio

import pytest
from monitor_fakes import FakeClock, FakeCluster, services

from pykafka_ops.models.groups import TopicPartition
from pykafka_ops.models.monitor import (
    BrokerState,
    GroupView,
    MetadataQuorum,
    MonitorFrame,
    NodeProcess,
    Status,
    TimeLagMethod,
)
from pykafka_ops.models.topics import BrokerInfo
from pykafka_ops.services.history import LogEndTrack, Ring
from pykafka_ops.services.monitor import MonitorServices


def group(frame: MonitorFrame, group_id: str) -> GroupView:
    return next(g for g in frame.groups if g.group_id == group_id)


def step(cluster: FakeCluster, produce: int, consume: int | None) -> None:
    """2 s pass; every orders partition gets ``produce`` records; orders-app commits ``consume`` more."""
    cluster.clock.advance(2)
    for p in range(4):
        tp = TopicPartition("orders", p)
        cluster.produce("orders", p, produce)
        if consume is not None:
            current = cluster.groups["orders-app"].committed.get(tp, 0)
            cluster.commit("orders-app", "orders", p, min(current + consume, cluster.log_end[tp]))


def run(monitor: MonitorServices, cluster: FakeCluster, polls: int, produce: int, consume: int | None) -> MonitorFrame:
    frame = None
    for _ in range(polls):
        step(cluster, produce, consume)
        frame = asyncio.run(monitor.poll())
    assert frame is not None
    return frame


def test_a_consumer_that_keeps_up_is_ok_with_rates(cluster: FakeCluster) -> None:
    monitor = services(cluster)
    frame = run(monitor, cluster, 4, produce=10, consume=10)
    g = group(frame, "orders-app")
    assert (g.status, g.total_lag) == (Status.OK, 0)
    assert g.consume_rate == pytest.approx(20.0)  # 4 partitions × 10 records / 2 s
    assert frame.overview.produce_rate == pytest.approx(20.0)


def test_lag_that_never_decreases_is_warn(cluster: FakeCluster) -> None:
    monitor = services(cluster)
    frame = run(monitor, cluster, 3, produce=10, consume=4)
    g = group(frame, "orders-app")
    assert g.status is Status.WARN
    assert "lag never decreased in 3 polls" in g.reason
    assert frame.changes and frame.changes[0].status is Status.WARN


def test_committed_offset_unchanged_with_an_owner_is_stall(cluster: FakeCluster) -> None:
    monitor = services(cluster)
    run(monitor, cluster, 1, produce=10, consume=2)
    frame = run(monitor, cluster, 3, produce=0, consume=0)
    g = group(frame, "orders-app")
    assert g.status is Status.STALL
    assert "client-m1 made no progress in 3 polls, lag 8" in g.reason


def test_a_consumer_that_stops_is_stop(cluster: FakeCluster) -> None:
    monitor = services(cluster)
    run(monitor, cluster, 3, produce=10, consume=10)
    cluster.leave("orders-app")
    frame = run(monitor, cluster, 2, produce=5, consume=None)
    assert group(frame, "orders-app").status is Status.OK  # not yet a whole window without progress
    frame = run(monitor, cluster, 1, produce=5, consume=None)
    g = group(frame, "orders-app")
    assert (g.state, g.status) == ("Empty", Status.STOP)
    assert "no owner (group Empty)" in g.reason and "(+3 more)" in g.reason


def test_a_committed_offset_going_back_is_rewind_for_the_window(cluster: FakeCluster) -> None:
    monitor = services(cluster)
    run(monitor, cluster, 3, produce=10, consume=10)
    cluster.commit("orders-app", "orders", 1, 5)
    frame = run(monitor, cluster, 1, produce=0, consume=0)
    assert group(frame, "orders-app").status is Status.REWIND
    frame = run(monitor, cluster, 2, produce=0, consume=30)
    assert group(frame, "orders-app").status is Status.OK


def test_unreadable_offsets_are_err(cluster: FakeCluster) -> None:
    cluster.groups["orders-app"].error = "GROUP_AUTHORIZATION_FAILED: Group authorization failed."
    frame = asyncio.run(services(cluster).poll())
    g = group(frame, "orders-app")
    assert (g.status, g.reason) == (Status.ERR, "GROUP_AUTHORIZATION_FAILED: Group authorization failed.")


def test_time_lag_reads_the_record_at_the_committed_offset_once(cluster: FakeCluster) -> None:
    monitor = services(cluster)
    run(monitor, cluster, 1, produce=10, consume=0)   # records at t0 + 2
    frame = run(monitor, cluster, 2, produce=10, consume=0)
    p0 = group(frame, "orders-app").partitions[0]
    assert (p0.lag_seconds, p0.lag_method) == (pytest.approx(4.0), TimeLagMethod.RECORD)
    assert len(cluster.reads) == 1  # the committed offsets did not move: cached


def test_time_lag_reads_are_capped_and_the_rest_interpolated(clock: FakeClock) -> None:
    cluster = FakeCluster(clock)
    cluster.create("t", 6)
    monitor = services(cluster, max_record_reads=2)
    for _ in range(3):
        clock.advance(10)
        for p in range(6):
            cluster.produce("t", p, 100 if p else 1000)
        asyncio.run(monitor.poll())
    for p in range(6):
        cluster.commit("g", "t", p, 150)  # appended between the 1st and 2nd polls
    clock.advance(10)
    frame = asyncio.run(monitor.poll())
    rows = {p.partition: p for p in group(frame, "g").partitions}
    assert [len(r) for r in cluster.reads] == [2]
    assert rows[0].lag_method == TimeLagMethod.RECORD  # the largest lag is read first
    interpolated = [r for r in rows.values() if r.lag_method == TimeLagMethod.INTERPOLATED]
    assert len(interpolated) == 4
    # t=1: end 100, t=2: end 200 → offset 150 appended at t ≈ 1.51 → 2.49 polls (10 s each) ago
    assert interpolated[0].lag_seconds == pytest.approx(24.9)
    assert (group(frame, "g").max_lag_seconds, group(frame, "g").lag_method) == (30.0, TimeLagMethod.RECORD)


def test_log_end_history_extrapolates_offsets_older_than_it() -> None:
    track, times = LogEndTrack(rate_window=2, points=3), Ring(3)
    for t, end in ((10.0, 100), (20.0, 200), (30.0, 300), (40.0, 400)):
        times.append(t)
        track.record(times, end)
    assert track.appended_at(250) == (pytest.approx(25.1), TimeLagMethod.INTERPOLATED)
    assert track.appended_at(99) == (pytest.approx(10.0), TimeLagMethod.EXTRAPOLATED)
    assert track.appended_at(400) is None


def test_history_is_bounded_and_forgets_what_disappeared(cluster: FakeCluster) -> None:
    monitor = services(cluster, trend_length=8, interpolation_points=10)
    run(monitor, cluster, 20, produce=1, consume=1)
    history = monitor._history
    assert all(len(t.lag_history()) == monitor.options.trend_length for t in history.partitions.values())
    assert max(len(t.point_ends) for t in history.log_ends.values()) == monitor.options.interpolation_points
    del cluster.groups["orders-app"]
    frame = asyncio.run(monitor.poll())
    assert not frame.groups and not history.partitions and not history.group_lags


def test_ring_keeps_the_newest_values_in_order() -> None:
    ring = Ring(3)
    for v in range(5):
        ring.append(float(v))
    assert ring.values() == (2.0, 3.0, 4.0) and ring.ago(0) == 4.0
    ring.replace_newest(9.0)
    assert ring.values() == (2.0, 3.0, 9.0)


def test_topics_show_skew_hot_partitions_and_retention_risk(clock: FakeClock) -> None:
    cluster = FakeCluster(clock)
    cluster.create("t", 8, retention_ms=60_000)
    cluster.create("__consumer_offsets", 8)  # one group commits to one partition: skewed, never "hot"
    cluster.commit("g", "t", 7, 0)
    monitor = services(cluster)
    for _ in range(3):
        clock.advance(10)
        for p in range(8):
            cluster.produce("t", p, 1000 if p == 7 else 10)
            cluster.produce("__consumer_offsets", p, 1000 if p == 3 else 1)
        frame = asyncio.run(monitor.poll())
    internal, topic = frame.topics
    assert internal.skew is not None and internal.skew > 5
    assert topic.skew == pytest.approx(100 / ((7 * 1 + 100) / 8))
    assert [h.partition for h in frame.hot_partitions] == [7]
    assert frame.hot_partitions[0].max_lag == 3000
    assert topic.lag_share == 1.0
    assert topic.loss_in_s == pytest.approx(60 - 20)  # the oldest unconsumed record is 20 s old


@pytest.mark.parametrize("appends", [2, 5, 6, 7, 9])
def test_ring_finds_the_first_value_at_least_a_bound_wrapped_or_not(appends: int) -> None:
    ring = Ring(5)
    for v in range(appends):
        ring.append(float(v * 10))
    values = ring.values()
    for bound in range(-5, appends * 10 + 5):
        expected = next((i for i, v in enumerate(values) if v >= bound), len(values))
        assert ring.first_at_least(bound) == expected
        if expected < len(values):
            assert ring.at(expected) == values[expected]


# -- brokers: state, roles, quorum ---------------------------------------------------------------


def _brokers(frame: MonitorFrame) -> dict[int, tuple[BrokerState | None, tuple[str, ...], str | None]]:
    return {b.id: (b.state, b.roles, b.quorum_role) for b in frame.brokers}


def test_a_dead_process_is_down_even_while_the_metadata_still_lists_it(cluster: FakeCluster) -> None:
    """kill -9 of a broker: Metadata lists it (unfenced) until its session times out, then
    DescribeCluster v2 lists it fenced; its process is gone all along, so it is down. A stopped
    (SIGSTOP) broker's process is still there: fenced once the controller fences it."""
    cluster.brokers = (BrokerInfo(1, "h", 1), BrokerInfo(2, "h", 2))
    cluster.fenced_brokers = ()
    cluster.nodes = (NodeProcess(1, "h", 1, 11, ("broker", "controller"), True),
                     NodeProcess(2, "h", 2, 12, ("broker",), False),
                     NodeProcess(3, "h", 3, 13, ("broker",), True),
                     NodeProcess(4, "h", 4, 14, ("controller",), True),
                     NodeProcess(5, "h", 5, 15, ("controller",), False))
    cluster.quorum = MetadataQuorum(4, 3, (1, 4, 5), (2, 3))
    monitor = services(cluster)
    frame = asyncio.run(monitor.poll())
    assert _brokers(frame) == {1: (BrokerState.RUNNING, ("broker", "controller"), "Follower"),
                               2: (BrokerState.DOWN, ("broker",), "Observer"),
                               3: (BrokerState.DOWN, ("broker",), "Observer"),  # not registered (yet)
                               4: (BrokerState.RUNNING, ("controller",), "Leader"),
                               5: (BrokerState.DOWN, ("controller",), "Follower")}
    assert (frame.overview.brokers_running, frame.overview.brokers_fenced, frame.overview.brokers_down) == (1, 0, 2)

    cluster.brokers = (BrokerInfo(1, "h", 1),)  # the session timed out: 2 and 3 are fenced
    cluster.fenced_brokers = (BrokerInfo(2, "h", 2), BrokerInfo(3, "h", 3))
    frame = asyncio.run(monitor.poll())
    assert [b.state for b in frame.brokers] == [BrokerState.RUNNING, BrokerState.DOWN, BrokerState.FENCED,
                                                BrokerState.RUNNING, BrokerState.DOWN]
    assert (frame.overview.brokers_running, frame.overview.brokers_fenced, frame.overview.brokers_down) == (1, 1, 1)
    assert frame.overview.quorum == cluster.quorum


def test_without_describe_cluster_v2_a_fenced_broker_is_down_and_not_forgotten(cluster: FakeCluster) -> None:
    """Apache Kafka before 4.0, no state file: a fenced broker just leaves Metadata. The monitor
    remembers it from the earlier poll and shows it down; no fenced count, no quorum roles."""
    cluster.brokers = (BrokerInfo(1, "a", 9092), BrokerInfo(2, "b", 9092))
    monitor = services(cluster)
    asyncio.run(monitor.poll())
    cluster.brokers = (BrokerInfo(1, "a", 9092),)
    frame = asyncio.run(monitor.poll())
    assert [(b.id, b.host, b.state, b.roles, b.quorum_role) for b in frame.brokers] == [
        (1, "a", BrokerState.RUNNING, ("broker",), None), (2, "b", BrokerState.DOWN, ("broker",), None)]
    assert (frame.overview.brokers_running, frame.overview.brokers_fenced, frame.overview.brokers_down) == (1, None, 1)
    assert frame.overview.quorum is None


def test_a_voter_known_only_from_the_quorum_is_a_controller_of_unknown_state(cluster: FakeCluster) -> None:
    """Dedicated controllers of a cluster we did not start: DescribeQuorum v2 gives their listener,
    nothing gives their state; they are not counted as brokers."""
    cluster.quorum = MetadataQuorum(None, 12, (7, 8), (1,), (BrokerInfo(7, "ctl-7", 9093),))
    frame = asyncio.run(services(cluster).poll())
    assert [(b.id, b.host, b.port, b.state, b.roles, b.quorum_role) for b in frame.brokers] == [
        (1, "127.0.0.1", 9092, BrokerState.RUNNING, ("broker",), "Observer"),
        (7, "ctl-7", 9093, None, ("controller",), "Follower"),  # no leader: an election is running
        (8, None, None, None, ("controller",), "Follower")]
    assert (frame.overview.brokers_running, frame.overview.brokers_down) == (1, 0)


def test_the_sources_clients_drop_a_broker_that_does_not_answer_within_the_poll_timeout() -> None:
    """librdkafka keeps asking the broker it used last while its connection is up; a stopped broker
    (SIGSTOP) keeps it up for ``socket.timeout.ms`` (60 s by default), and every poll would time out.
    The source's clients use the poll's timeout instead, unless the user's properties set one."""
    from pykafka_ops.client.connection import ClientSettings
    from pykafka_ops.services.snapshot import polling_settings

    settings = ClientSettings("a:9092", {"client.id": "me"}, timeout_s=3)
    assert polling_settings(settings).librdkafka()["socket.timeout.ms"] == "3000"
    assert polling_settings(settings).librdkafka()["client.id"] == "me"
    assert polling_settings(settings).timeout_s == 3 and settings.properties == {"client.id": "me"}
    assert polling_settings(ClientSettings("a:9092", timeout_s=0.001)).properties["socket.timeout.ms"] == "10"
    own = ClientSettings("a:9092", {"socket.timeout.ms": "9000"}, timeout_s=3)
    assert polling_settings(own) is own
