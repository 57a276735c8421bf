"""The monitor's service layer: what `pko monitor` (the TUI) and `pko lag` (headless) call.

``MonitorServices`` wraps a ``ClusterSource`` (the real one reads a Kafka cluster,
``services.snapshot``; tests pass a fake) and a clock, keeps the bounded history, and answers
each ``poll()`` with a ``MonitorFrame``. The TUI and `pko lag` render the same frames, so their
rows and statuses cannot drift apart.

Concurrency: ``poll`` awaits the source (and the time-lag reads) first and only then updates the
history and builds the frame without awaiting, so a poll cancelled midway leaves the history as
it was. Polls must not overlap (the TUI runs them in one exclusive worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from pykafka_ops.models.groups import TopicPartition
from pykafka_ops.models.monitor import (
    ClusterSnapshot,
    GroupView,
    MonitorFrame,
    MonitorOptions,
    Status,
    StatusChange,
)
from pykafka_ops.models.records import ConsumeReport
from pykafka_ops.models.replication import ReplicationAlert
from pykafka_ops.models.skew import SkewReport
from pykafka_ops.services.consume import RecordSink
from pykafka_ops.services.history import MonitorHistory
from pykafka_ops.services.monitor_views import (
    broker_views,
    group_view,
    hot_partitions,
    overview,
    partition_lags,
    topic_views,
)
from pykafka_ops.services.replication import (
    hanging_alerts,
    new_alerts,
    replication_alerts,
)
from pykafka_ops.services.skew_scan import Progress
from pykafka_ops.services.time_lag import TimeLagEstimator

#: Wall-clock time in seconds (``time.time``); tests pass a fake one.
Clock = Callable[[], float]


class ClusterSource(Protocol):
    """Where the monitor's data comes from."""

    bootstrap_servers: str

    async def collect(self) -> ClusterSnapshot:
        """Read the cluster once (see ``ClusterSnapshot``)."""

    async def record_timestamps(self, positions: Mapping[TopicPartition, int]) -> dict[TopicPartition, int | str]:
        """The timestamp (ms) of the record at each offset, or why it could not be read."""

    async def tail(self, topic: str, sink: RecordSink) -> ConsumeReport:
        """Write the newest records of ``topic`` to ``sink``, then new ones as they come, until cancelled."""

    async def skew(self, topic: str, progress: Progress | None = None) -> SkewReport:
        """The `pko skew` report of ``topic`` (cancellable)."""

    def close(self) -> None:
        """Release the clients."""


class MonitorServices:
    """Polls a source and keeps the history that turns snapshots into frames."""

    def __init__(self, source: ClusterSource, options: MonitorOptions | None = None, clock: Clock = time.time) -> None:
        self.source = source
        self.options = options or MonitorOptions()
        self.clock = clock
        self._history = MonitorHistory(self.options)
        self._time_lag = TimeLagEstimator(source.record_timestamps, self.options.max_record_reads)
        self._alerts: dict[tuple[str, str], ReplicationAlert] = {}
        """The replication alerts of the previous poll, by (topic, kind)."""

    @property
    def bootstrap_servers(self) -> str:
        """Where the source connects."""
        return self.source.bootstrap_servers

    def rate_window_s(self) -> float:
        """Seconds between the newest poll and the oldest one the latest frame's rates span (0
        after the first poll)."""
        times = self._history.times
        span = min(self.options.rate_window, len(times) - 1)
        return max(0.0, times.ago(0) - times.ago(span)) if span > 0 else 0.0

    @property
    def record_reads(self) -> int:
        """Records read for time lag since the start."""
        return self._time_lag.reads

    async def poll(self) -> MonitorFrame:
        """Read the cluster once and return the frame built from this poll and the history."""
        started = self.clock()
        snapshot = await self.source.collect()
        lagging = [(r.topic, r.partition, r.current_offset, lag) for g in snapshot.groups for r in g.partitions
                   if r.current_offset is not None and (lag := r.lag) is not None and lag > 0]
        read_error = await self._time_lag.prefetch(lagging)
        # from here on nothing awaits: the history changes all at once
        now = self.clock()
        history = self._history
        history.record(now, snapshot)
        groups = tuple(group_view(now, g, history, self._time_lag)
                       for g in sorted(snapshot.groups, key=lambda g: g.group_id))
        self._time_lag.end_poll()
        lags = partition_lags(groups)
        topics = topic_views(snapshot, history, lags)
        brokers = broker_views(snapshot, history.brokers)
        changes = self._changes(groups)
        alerts = (replication_alerts((t.name, t.partitions) for t in topics)
                  + hanging_alerts(snapshot.hanging_transactions))
        fresh = new_alerts(alerts, self._alerts)
        self._alerts = {(a.topic, a.kind): a for a in alerts}
        errors = snapshot.errors + ((read_error,) if read_error else ())
        return MonitorFrame(now, history.polls, self.options.window, overview(snapshot, topics, groups, brokers),
                            groups, topics, brokers, hot_partitions(topics, lags), changes, errors,
                            now - started, alerts, fresh)

    def _changes(self, groups: Sequence[GroupView]) -> tuple[StatusChange, ...]:
        """Groups whose status changed to WARN or worse since the previous poll; remembers the new ones."""
        previous = self._history.group_status
        changes = tuple(StatusChange(g.group_id, previous.get(g.group_id), g.status, g.reason) for g in groups
                        if g.status >= Status.WARN and previous.get(g.group_id) != g.status)
        previous.update((g.group_id, g.status) for g in groups)
        return changes

    def partition_trends(self, group_id: str) -> dict[TopicPartition, tuple[float, ...]]:
        """The lag history (oldest first) of each partition of ``group_id``, for sparklines."""
        return {TopicPartition(topic, partition): track.lag_history()
                for (gid, topic, partition), track in self._history.partitions.items() if gid == group_id}

    async def tail(self, topic: str, sink: RecordSink) -> ConsumeReport:
        """Live records of ``topic`` into ``sink`` until cancelled."""
        return await self.source.tail(topic, sink)

    async def skew(self, topic: str, progress: Progress | None = None) -> SkewReport:
        """The `pko skew` report of ``topic``."""
        return await self.source.skew(topic, progress)

    def close(self) -> None:
        """Release the source's clients."""
        self.source.close()
