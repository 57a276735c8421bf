"""A fake service layer for the monitor's tests: a programmable cluster and a fake clock.

``FakeCluster`` is a ``ClusterSource``: tests append records (``produce``), commit offsets
(``commit``), add and remove members (``join`` / ``leave``), and every ``collect()`` returns a
``ClusterSnapshot`` of that state, built from the same models the real source returns. Record
timestamps follow the fake clock, so time lag is exact and deterministic. ``ReplaySource``
returns recorded snapshots (real data objects) one per poll, for the snapshot tests. ``poll``
drives an app's polls from a Pilot test and waits for each frame (no sleeping).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from textual.pilot import Pilot

from pykafka_ops.models.groups import (
    GroupDescription,
    GroupLag,
    MemberDescription,
    PartitionLag,
    TopicPartition,
)
from pykafka_ops.models.monitor import (
    ClusterSnapshot,
    MetadataQuorum,
    MonitorOptions,
    NodeProcess,
    PartitionOffsets,
)
from pykafka_ops.models.records import ConsumedRecord, ConsumeReport
from pykafka_ops.models.skew import SkewReport
from pykafka_ops.models.topics import BrokerInfo, PartitionDescription, TopicDescription
from pykafka_ops.models.transactions import HangingTransaction
from pykafka_ops.services.consume import RecordSink
from pykafka_ops.services.monitor import MonitorServices
from pykafka_ops.services.skew_scan import Progress
from tui.app import MonitorApp

BROKER = BrokerInfo(1, "127.0.0.1", 9092)


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@dataclass
class FakeGroup:
    """A group: committed offsets and members (consumer id → assigned partitions)."""

    committed: dict[TopicPartition, int] = field(default_factory=dict)
    members: dict[str, tuple[TopicPartition, ...]] = field(default_factory=dict)
    error: str | None = None


class FakeCluster:
    """A one-broker cluster held in memory (tests may add brokers, fenced brokers and a quorum);
    ``clock`` stamps the records produced."""

    bootstrap_servers = "fake:9092"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.topics: dict[str, int] = {}
        self.appends: dict[TopicPartition, list[tuple[int, int]]] = {}
        """Per partition: (first offset, timestamp ms) of each append."""
        self.log_end: dict[TopicPartition, int] = {}
        self.log_start: dict[TopicPartition, int] = {}
        self.groups: dict[str, FakeGroup] = {}
        self.retention_ms: dict[str, int | None] = {}
        self.nodes: tuple[NodeProcess, ...] = ()
        self.brokers: tuple[BrokerInfo, ...] = (BROKER,)
        """Metadata's brokers (registered, unfenced)."""
        self.fenced_brokers: tuple[BrokerInfo, ...] | None = None
        """DescribeCluster v2's fenced brokers; None: a cluster that cannot say."""
        self.quorum: MetadataQuorum | None = None
        self.tail_records: list[ConsumedRecord] = []
        self.skew_report: SkewReport | None = None
        self.reads: list[dict[TopicPartition, int]] = []
        self.fail_next_collect: Exception | None = None
        self.partition_states: dict[TopicPartition, tuple[int | None, tuple[int, ...], tuple[int, ...]]] = {}
        """(leader, replicas, ISR) of a partition; any other is led by broker 1, its only replica."""
        self.last_stable: dict[TopicPartition, int] = {}
        """A partition's last stable offset when a transaction holds it (else the log end)."""
        self.hanging: tuple[HangingTransaction, ...] = ()

    def create(self, topic: str, partitions: int, retention_ms: int | None = 604_800_000) -> None:
        """A new, empty topic."""
        self.topics[topic] = partitions
        self.retention_ms[topic] = retention_ms
        for p in range(partitions):
            tp = TopicPartition(topic, p)
            self.log_end[tp] = self.log_start[tp] = 0
            self.appends[tp] = []

    def produce(self, topic: str, partition: int, count: int) -> None:
        """Append ``count`` records now."""
        tp = TopicPartition(topic, partition)
        self.appends[tp].append((self.log_end[tp], int(self.clock() * 1000)))
        self.log_end[tp] += count

    def commit(self, group: str, topic: str, partition: int, offset: int) -> None:
        """Commit ``offset`` for ``group``."""
        self.groups.setdefault(group, FakeGroup()).committed[TopicPartition(topic, partition)] = offset

    def join(self, group: str, member: str, partitions: Sequence[tuple[str, int]]) -> None:
        """Make ``member`` own ``partitions`` in ``group``."""
        self.groups.setdefault(group, FakeGroup()).members[member] = tuple(TopicPartition(t, p) for t, p in partitions)

    def leave(self, group: str, member: str | None = None) -> None:
        """``member`` (default: every member) leaves the group."""
        members = self.groups[group].members
        for name in [member] if member else list(members):
            members.pop(name, None)

    def _group(self, group_id: str, group: FakeGroup) -> GroupLag:
        members = tuple(MemberDescription(name, f"client-{name}", "/10.0.0.1", None, tps)
                        for name, tps in group.members.items())
        state = "Stable" if members else "Empty"
        description = GroupDescription(group_id, state, BROKER, "range" if members else "", members)
        if group.error is not None:
            return GroupLag(description, error=group.error)
        owners = {tp: m for m in members for tp in m.assignment}
        partitions = sorted(set(group.committed) | set(owners))
        rows = tuple(PartitionLag(tp.topic, tp.partition, group.committed.get(tp), self.log_end.get(tp),
                                  owners[tp].consumer_id if tp in owners else None,
                                  owners[tp].host if tp in owners else None,
                                  owners[tp].client_id if tp in owners else None) for tp in partitions)
        return GroupLag(description, rows)

    async def collect(self) -> ClusterSnapshot:
        if self.fail_next_collect is not None:
            error, self.fail_next_collect = self.fail_next_collect, None
            raise error
        states = self.partition_states
        topics = tuple(TopicDescription(name, f"id-{name}", name.startswith("__"),
                                        tuple(PartitionDescription(name, p, *states.get(TopicPartition(name, p),
                                                                                        (1, (1,), (1,))))
                                              for p in range(n)))
                       for name, n in sorted(self.topics.items()))
        offsets = tuple(PartitionOffsets(tp.topic, tp.partition, self.log_start[tp], self.log_end[tp],
                                         self.last_stable.get(tp, self.log_end[tp]))
                        for tp in sorted(self.log_end))
        groups = tuple(self._group(g, fg) for g, fg in sorted(self.groups.items()))
        return ClusterSnapshot("fake-cluster", 1, self.brokers, topics, offsets, groups, dict(self.retention_ms),
                               self.nodes, fenced_brokers=self.fenced_brokers, quorum=self.quorum,
                               hanging_transactions=self.hanging)

    async def record_timestamps(self, positions: Mapping[TopicPartition, int]) -> dict[TopicPartition, int | str]:
        self.reads.append(dict(positions))
        found: dict[TopicPartition, int | str] = {}
        for tp, offset in positions.items():
            stamps = [ts for first, ts in self.appends.get(tp, []) if first <= offset]
            found[tp] = stamps[-1] if stamps and offset < self.log_end[tp] else "no record at or after the offset"
        return found

    async def tail(self, topic: str, sink: RecordSink) -> ConsumeReport:
        sink.write([r for r in self.tail_records if r.topic == topic])
        await asyncio.Event().wait()  # a tail runs until cancelled
        raise AssertionError("unreachable")

    async def skew(self, topic: str, progress: Progress | None = None) -> SkewReport:
        if progress is not None:
            progress(50, 100)
        if self.skew_report is None:
            await asyncio.Event().wait()  # a scan that never ends: tests cancel it
        assert self.skew_report is not None
        return dataclasses.replace(self.skew_report, source=topic)

    def close(self) -> None:
        """Nothing to release."""


class ReplaySource(FakeCluster):
    """Recorded snapshots, one per ``collect()`` (the last one repeats), and the recorded record
    timestamps by (topic, partition, offset). Set the clock to each recorded time before a poll."""

    def __init__(self, clock: FakeClock, snapshots: Sequence[ClusterSnapshot],
                 timestamps: Mapping[tuple[str, int, int], int]) -> None:
        super().__init__(clock)
        self.snapshots = list(snapshots)
        self.timestamps = dict(timestamps)
        self.collected = 0

    async def collect(self) -> ClusterSnapshot:
        snapshot = self.snapshots[min(self.collected, len(self.snapshots) - 1)]
        self.collected += 1
        return snapshot

    async def record_timestamps(self, positions: Mapping[TopicPartition, int]) -> dict[TopicPartition, int | str]:
        return {tp: self.timestamps.get((tp.topic, tp.partition, offset), "not recorded")
                for tp, offset in positions.items()}


def services(source: FakeCluster, window: int = 3, **options: int) -> MonitorServices:
    """``MonitorServices`` over ``source`` with its clock and a short status window."""
    return MonitorServices(source, MonitorOptions(window=window, **options), clock=source.clock)


async def poll(app: MonitorApp, pilot: Pilot[None], times: int = 1) -> None:
    """Run ``times`` polls, each to completion, and let the screens redraw."""
    for _ in range(times):
        await app.workers.wait_for_complete()
        assert app.poll_now()
        await app.workers.wait_for_complete()
        await pilot.pause()
