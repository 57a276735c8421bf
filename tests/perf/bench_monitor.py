"""Benchmark of `pko monitor` (not a test): one full poll + render, and memory over an hour of polls.

    python tests/perf/bench_monitor.py                  # all three figures
    python tests/perf/bench_monitor.py --skip-cluster   # fake service only

Figures (goals from issue 7):
- one poll + render of the groups screen, 1 000 groups × 50 partitions, fake service  (goal ≤ 1 s)
- the same against a real cluster (ours, started here) with 100 groups
- RSS of the app after an hour-equivalent of polls (1 800 polls at the 2 s default): bounded rings
  keep it flat

The fake service is ``SyntheticSource``: every poll every partition gets new records and every
group commits some, so rates, time lag (interpolated and read), statuses and sparklines all work.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pykafka_ops.client.connection import ClientSettings  # noqa: E402
from pykafka_ops.models.groups import (  # noqa: E402
    GroupDescription,
    GroupLag,
    MemberDescription,
    PartitionLag,
    TopicPartition,
)
from pykafka_ops.models.monitor import ClusterSnapshot, MonitorOptions, PartitionOffsets  # noqa: E402
from pykafka_ops.models.topics import BrokerInfo, PartitionDescription, TopicDescription  # noqa: E402
from pykafka_ops.services.monitor import MonitorServices  # noqa: E402
from tui.app import MonitorApp  # noqa: E402

BROKER = BrokerInfo(1, "127.0.0.1", 9092)
PARTITIONS = 50
GROUPS_PER_TOPIC = 5
STEP_S = 2.0


class SyntheticSource:
    """``groups`` groups of 50 partitions each (5 groups per topic), advancing every poll."""

    bootstrap_servers = "synthetic:9092"

    def __init__(self, groups: int, clock: list[float]) -> None:
        self.clock = clock
        self.topics = [f"topic-{t:04d}" for t in range(max(1, groups // GROUPS_PER_TOPIC))]
        self.group_ids = [f"group-{g:04d}" for g in range(groups)]
        self.polls = 0
        self.descriptions = tuple(TopicDescription(t, f"id-{t}", False, tuple(
            PartitionDescription(t, p, 1, (1,), (1,)) for p in range(PARTITIONS))) for t in self.topics)

        self.prepared: ClusterSnapshot | None = None

    def _end(self, p: int) -> int:
        return self.polls * (100 + 10 * p)

    def prepare(self) -> None:
        """Build the next snapshot now, so that building 50 000 rows is not timed as the monitor's work."""
        self.prepared = self._next()

    async def collect(self) -> ClusterSnapshot:
        snapshot, self.prepared = self.prepared or self._next(), None
        return snapshot

    def _next(self) -> ClusterSnapshot:
        self.polls += 1
        self.clock[0] += STEP_S
        offsets = tuple(PartitionOffsets(t, p, 0, self._end(p)) for t in self.topics for p in range(PARTITIONS))
        groups = []
        for g, group_id in enumerate(self.group_ids):
            topic = self.topics[g // GROUPS_PER_TOPIC]
            member = MemberDescription(f"{group_id}-m1", "bench", "/10.0.0.1", None,
                                       tuple(TopicPartition(topic, p) for p in range(PARTITIONS)))
            behind = (g % 4) * self.polls * 20  # some keep up, some fall behind
            rows = tuple(PartitionLag(topic, p, max(0, self._end(p) - behind), self._end(p), member.consumer_id,
                                      member.host, member.client_id) for p in range(PARTITIONS))
            groups.append(GroupLag(GroupDescription(group_id, "Stable", BROKER, "range", (member,)), rows))
        return ClusterSnapshot("bench", 1, (BROKER,), self.descriptions, offsets, tuple(groups),
                               {t: 604_800_000 for t in self.topics})

    async def record_timestamps(self, positions: dict[TopicPartition, int]) -> dict[TopicPartition, int | str]:
        return {tp: int((self.clock[0] - 30) * 1000) for tp in positions}

    async def tail(self, topic: str, sink: object) -> object:
        raise NotImplementedError

    async def skew(self, topic: str, progress: object = None) -> object:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to release."""


async def poll_and_render(app: MonitorApp, pilot: object) -> float:
    """Seconds from starting a poll to the groups screen drawn with its frame (a synthetic
    snapshot is built beforehand: the fake service answers at once, as a cluster would after
    its network round trips)."""
    source = app.services.source
    if isinstance(source, SyntheticSource):
        source.prepare()
    started = time.perf_counter()
    assert app.poll_now()
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]
    return time.perf_counter() - started


async def timed(services: MonitorServices, runs: int, warmup: int) -> tuple[float, float, float]:
    """(median, worst) poll + render of the groups screen, and the median poll alone (s)."""
    app = MonitorApp(services, refresh_s=0, alerts=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("2")
        for _ in range(warmup):
            await poll_and_render(app, pilot)
        totals = [await poll_and_render(app, pilot) for _ in range(runs)]
        polls = []
        for _ in range(runs):
            if isinstance(services.source, SyntheticSource):
                services.source.prepare()
            started = time.perf_counter()
            await services.poll()
            polls.append(time.perf_counter() - started)
    return statistics.median(totals), max(totals), statistics.median(polls)


def fake_figures(groups: int, runs: int) -> None:
    clock = [1_700_000_000.0]
    services = MonitorServices(SyntheticSource(groups, clock), MonitorOptions(), clock=lambda: clock[0])
    median, worst, poll_only = asyncio.run(timed(services, runs, warmup=6))
    print(f"fake service, {groups} groups × {PARTITIONS} partitions: poll + render median {median:.3f} s, "
          f"worst {worst:.3f} s (poll alone {poll_only:.3f} s)   goal ≤ 1 s")


def cluster_figures(groups: int, runs: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench_groups import commit_groups
    from group_clients import create_topic, produce

    from cluster.pytest_plugin import TEST_CLUSTER_YAML, start_cluster

    cluster = start_cluster(TEST_CLUSTER_YAML, tempfile.mkdtemp(), offsets_topic_num_partitions=3)
    try:
        bootstrap = cluster.bootstrap_servers
        topics = [f"bench-{t}" for t in range(10)]
        for topic in topics:
            create_topic(bootstrap, topic, 10)
            produce(bootstrap, topic, {p: 3 for p in range(10)})
        for t, topic in enumerate(topics):
            commit_groups(bootstrap, [f"bench-group-{t}-{g}" for g in range(groups // len(topics))],
                          {(topic, p): 1 for p in range(10)})
        from pykafka_ops.services.snapshot import KafkaClusterSource

        services = MonitorServices(KafkaClusterSource(ClientSettings(bootstrap)), MonitorOptions())
        median, worst, poll_only = asyncio.run(timed(services, runs, warmup=2))
        services.close()
        print(f"real cluster (ours, 1 node), {groups} groups × 10 partitions, {len(topics)} topics: poll + render "
              f"median {median:.3f} s, worst {worst:.3f} s (poll alone {poll_only:.3f} s)")
    finally:
        cluster.down()


async def rss_over(groups: int, polls: int) -> list[tuple[int, float]]:
    clock = [1_700_000_000.0]
    services = MonitorServices(SyntheticSource(groups, clock), MonitorOptions(), clock=lambda: clock[0])
    app = MonitorApp(services, refresh_s=0, alerts=False)
    me = psutil.Process()
    marks = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("2")
        for n in range(1, polls + 1):
            await poll_and_render(app, pilot)
            if n in (10, polls // 4, polls // 2, polls * 3 // 4, polls):
                marks.append((n, me.memory_info().rss / (1 << 20)))
                print(f"  RSS after poll {n}: {marks[-1][1]:.0f} MiB", flush=True)
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--cluster-groups", type=int, default=100)
    parser.add_argument("--rss-groups", type=int, default=200, help="groups (× 50 partitions) for the RSS run")
    parser.add_argument("--rss-polls", type=int, default=1800, help="polls (1 800 = one hour at 2 s)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-cluster", action="store_true")
    parser.add_argument("--rss-only", action="store_true", help="only the RSS run")
    args = parser.parse_args()
    if not args.rss_only:
        fake_figures(args.groups, args.runs)
    if not args.skip_cluster and not args.rss_only:
        cluster_figures(args.cluster_groups, args.runs)
    marks = asyncio.run(rss_over(args.rss_groups, args.rss_polls))
    print(f"RSS, {args.rss_groups} groups × {PARTITIONS} partitions, {args.rss_polls} polls (render each): "
          + ", ".join(f"poll {n}: {mib:.0f} MiB" for n, mib in marks))


if __name__ == "__main__":
    main()
