"""Bounded history the monitor keeps between polls: fixed-size rings and per-partition tracks.

Every ring is a preallocated ``array('d')`` (NaN = unknown), so memory per partition is fixed
whatever the uptime: a monitor running for days holds as much as one running for a minute.
Series appended at every poll (offsets, lags, log ends) are bare arrays indexed by the track's
poll count and lined up with ``MonitorHistory.times``, the one ring of poll times. Tracks of
partitions and groups that disappear from the cluster are dropped at the next poll, so every
track has been recorded at every poll since it began.

Concurrency: a ``MonitorHistory`` is owned by one ``MonitorServices`` and only changed by its
``record`` call, which never awaits; readers (view builders) run right after it, on the same loop.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from pykafka_ops.models.monitor import ClusterSnapshot, MonitorOptions, Status, TimeLagMethod
from pykafka_ops.models.topics import BrokerInfo

NAN = math.nan


def known(value: float) -> bool:
    """Not NaN."""
    return value == value  # NaN is the only float unequal to itself


class Ring:
    """The last ``capacity`` floats appended; O(1) append, newest replaceable."""

    __slots__ = ("_data", "_start", "_size")

    def __init__(self, capacity: int) -> None:
        self._data = array("d", bytes(8 * capacity))
        self._start = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, value: float) -> None:
        """Add ``value``; the oldest is dropped when full."""
        capacity = len(self._data)
        if self._size < capacity:
            self._data[(self._start + self._size) % capacity] = value
            self._size += 1
        else:
            self._data[self._start] = value
            self._start = (self._start + 1) % capacity

    def replace_newest(self, value: float) -> None:
        """Overwrite the newest value (the ring must not be empty)."""
        self._data[(self._start + self._size - 1) % len(self._data)] = value

    def ago(self, polls: int) -> float:
        """The value appended ``polls`` appends ago (0 = newest)."""
        return self._data[(self._start + self._size - 1 - polls) % len(self._data)]

    def at(self, index: int) -> float:
        """The value ``index`` appends after the oldest (0 = oldest)."""
        return self._data[(self._start + index) % len(self._data)]

    def first_at_least(self, value: float) -> int:
        """The index (as in ``at``) of the oldest value ≥ ``value``, for a ring whose values never
        decrease; ``len(self)`` when there is none. A binary search of the array in place."""
        data, start, size = self._data, self._start, self._size
        capacity = len(data)
        if not size or data[(start + size - 1) % capacity] < value:
            return size
        if start == 0:  # not wrapped: one sorted run (a ring that is not full always starts at 0)
            return bisect_left(data, value, 0, size)
        if data[capacity - 1] >= value:  # in the older run, data[start:]
            return bisect_left(data, value, start, capacity) - start
        return bisect_left(data, value, 0, start) + capacity - start

    def values(self) -> tuple[float, ...]:
        """Oldest first."""
        data, start = self._data, self._start
        if self._size < len(data):  # not full yet: nothing has wrapped, the start is 0
            return tuple(data[:self._size])
        return tuple(data[start:]) + tuple(data[:start])

    def clear(self) -> None:
        """Forget everything."""
        self._start = self._size = 0


def rate(times: Ring, values: array, count: int) -> float | None:
    """(newest − oldest known value) / Δt over an aligned series, records/s; None without two
    known points.

    ``values`` is a track's series: a ring appended at every poll since the track began, the
    ``count``-th append at index ``(count - 1) % len(values)``, so its k-th newest value belongs to
    the k-th newest of the history's poll ``times`` (which holds at least as many polls)."""
    capacity = len(values)
    n = count if count < capacity else capacity
    if n < 2:
        return None
    last = values[(count - 1) % capacity]
    if last != last:
        return None
    for ago in range(n - 1, 0, -1):  # the oldest known value first
        first = values[(count - 1 - ago) % capacity]
        if first == first:
            elapsed = times.ago(0) - times.ago(ago)
            return max(0.0, (last - first) / elapsed) if elapsed > 0 else None
    return None


def series(capacity: int) -> array:
    """An empty aligned series of ``capacity`` values (see ``rate``)."""
    return array("d", bytes(8 * capacity))


def series_values(values: array, count: int) -> tuple[float, ...]:
    """An aligned series after ``count`` appends, oldest first."""
    capacity = len(values)
    if count <= capacity:
        return tuple(values[:count])
    at = count % capacity
    return tuple(values[at:]) + tuple(values[:at])


class PartitionTrack:
    """One group's committed offset and lag on one partition, over the polls.

    Besides short series (rate, trend) it keeps streak counters, so the status rules cost O(1)
    per poll: ``unmoved`` polls since the committed offset last changed, ``lagging`` consecutive
    polls with lag > 0, ``not_decreasing`` consecutive polls whose lag did not drop (while > 0),
    ``since_increase`` polls since the lag last grew, ``since_rewind`` since it last went back.
    The series are bare arrays indexed by ``polls`` (no ring objects): a monitor of 50 000
    partitions keeps 150 000 fewer objects for the garbage collector to walk.
    """

    __slots__ = ("offsets", "lags", "polls", "unmoved", "lagging", "not_decreasing", "since_increase",
                 "since_rewind", "last_offset", "last_lag", "consume_rate")

    def __init__(self, rate_window: int, trend_length: int) -> None:
        self.offsets = series(rate_window + 1)
        self.lags = series(trend_length)
        self.polls = self.unmoved = self.lagging = self.not_decreasing = 0
        self.since_increase = self.since_rewind = 1 << 30
        self.last_offset: int | None = None
        self.last_lag: int | None = None
        self.consume_rate: float | None = None
        """Committed records per second over the rate window, as of the last poll."""

    def record(self, times: Ring, offset: int | None, lag: int | None) -> None:
        """Add one poll's committed offset and lag (``times``: the poll times, this poll's included)."""
        previous, previous_lag = self.last_offset, self.last_lag
        self.since_rewind += 1
        if offset is not None and previous is not None:
            self.unmoved = self.unmoved + 1 if offset == previous else 0
            if offset < previous:
                self.since_rewind = 0
        else:
            self.unmoved = 0
        held = grew = False
        if lag is not None and lag > 0:
            self.lagging += 1
            held = previous_lag is not None and lag >= previous_lag
            grew = previous_lag is not None and lag > previous_lag
        else:
            self.lagging = 0
        self.not_decreasing = self.not_decreasing + 1 if held else 0
        self.since_increase = 0 if grew else self.since_increase + 1
        polls = self.polls
        offsets, lags = self.offsets, self.lags
        offsets[polls % len(offsets)] = NAN if offset is None else offset
        lags[polls % len(lags)] = NAN if lag is None else (lag if lag > 0 else 0)
        self.polls = polls = polls + 1
        self.last_offset, self.last_lag = offset, lag
        self.consume_rate = rate(times, offsets, polls)

    def lag_history(self) -> tuple[float, ...]:
        """The lag at each of the last polls (at most ``trend_length``), oldest first."""
        return series_values(self.lags, self.polls)


class LogEndTrack:
    """A partition's log-end offset over the polls: the produce rate and, for time lag, when the
    log end passed a given offset.

    ``points`` keep the log end as (time, offset) change points: in a run of polls with the same
    log end only the first and the last are kept, so the history covers idle periods cheaply.
    """

    __slots__ = ("ends", "polls", "point_times", "point_ends", "produce_rate")

    def __init__(self, rate_window: int, points: int) -> None:
        self.ends = series(rate_window + 1)
        self.polls = 0
        self.point_times = Ring(points)
        self.point_ends = Ring(points)
        self.produce_rate: float | None = None
        """Records appended per second over the rate window, as of the last poll."""

    def record(self, times: Ring, log_end: int | None) -> None:
        """Add one poll's log-end offset (``times``: the poll times, this poll's included)."""
        now, ends = times.ago(0), self.ends
        ends[self.polls % len(ends)] = NAN if log_end is None else log_end
        self.polls += 1
        self.produce_rate = rate(times, ends, self.polls)
        if log_end is None:
            return
        n = len(self.point_ends)
        if n and log_end < self.point_ends.ago(0):  # truncated or re-created: the history no longer applies
            self.point_times.clear()
            self.point_ends.clear()
            n = 0
        if n >= 2 and self.point_ends.ago(0) == log_end == self.point_ends.ago(1):
            self.point_times.replace_newest(now)
        else:
            self.point_times.append(now)
            self.point_ends.append(float(log_end))

    def appended_at(self, offset: int) -> tuple[float, str] | None:
        """When the record at ``offset`` was appended (the log end first exceeded it), and how
        that was found: interpolated between history points, or extrapolated back at the
        history's mean rate when the offset is older than the history. None when unknown."""
        ends, stamps = self.point_ends, self.point_times  # the log ends never decrease (cleared when they do)
        n = len(ends)
        target = offset + 1  # the log end right after the record was appended
        newer = ends.first_at_least(target)  # the first point whose log end includes the record
        if newer == n:
            return None
        if newer:
            end, t0 = ends.at(newer - 1), stamps.at(newer - 1)
            return t0 + (target - end) / (ends.at(newer) - end) * (stamps.at(newer) - t0), TimeLagMethod.INTERPOLATED
        oldest_t, oldest_end = stamps.at(0), ends.at(0)
        span_t, span_end = stamps.ago(0) - oldest_t, ends.ago(0) - oldest_end
        if span_t <= 0 or span_end <= 0:
            return None
        return oldest_t - (oldest_end - target) / (span_end / span_t), TimeLagMethod.EXTRAPOLATED


def prune(tracks: MutableMapping[Any, Any], recorded: int, keep: Callable[[], Iterable[Any]]) -> None:
    """Drop the tracks whose key is not in ``keep()`` (a partition or group that went away).

    ``recorded`` is how many tracks this poll recorded: when that is all of them, nothing went
    away and the keys are not even listed (the common case, which a big cluster pays every poll)."""
    if len(tracks) == recorded:
        return
    wanted = set(keep())
    for key in [k for k in tracks if k not in wanted]:
        del tracks[key]


class MonitorHistory:
    """Every track of the monitor, keyed by (group, topic, partition), (topic, partition), group, topic."""

    def __init__(self, options: MonitorOptions) -> None:
        self.options = options
        self.polls = 0
        self.times = Ring(options.rate_window + 1)
        """The time of each of the last polls (every track's rings line up with it)."""
        self.partitions: dict[tuple[str, str, int], PartitionTrack] = {}
        self.log_ends: dict[tuple[str, int], LogEndTrack] = {}
        self.group_lags: dict[str, Ring] = {}
        self.topic_rates: dict[str, Ring] = {}
        self.group_status: dict[str, Status] = {}
        """Each group's status at the previous poll (to tell status changes)."""
        self.brokers: dict[int, BrokerInfo] = {}
        """Every broker a poll has listed (running or fenced), by id, at its latest address: a
        broker that leaves the metadata is still shown, as down. Never pruned (a cluster has a
        handful of broker ids; one decommissioned stays listed until the monitor restarts)."""

    def record(self, now: float, snapshot: ClusterSnapshot) -> None:
        """Add one poll; forget what the snapshot no longer has."""
        options = self.options
        self.polls += 1
        self.brokers.update((b.id, b) for b in snapshot.fenced_brokers or ())
        self.brokers.update((b.id, b) for b in snapshot.brokers)
        times = self.times
        times.append(now)
        log_ends = self.log_ends
        topic_rates: dict[str, float] = {}
        for o in snapshot.offsets:
            key = (o.topic, o.partition)
            track = log_ends.get(key)
            if track is None:
                track = log_ends[key] = LogEndTrack(options.rate_window, options.interpolation_points)
            track.record(times, o.log_end_offset)
            produced = track.produce_rate
            if produced is not None:
                topic_rates[o.topic] = topic_rates.get(o.topic, 0.0) + produced
        topics = {o.topic for o in snapshot.offsets}
        for topic in topics:
            ring = self.topic_rates.get(topic)
            if ring is None:
                ring = self.topic_rates[topic] = Ring(options.trend_length)
            ring.append(topic_rates.get(topic, NAN))
        partitions = self.partitions
        for group in snapshot.groups:
            gid, total = group.group_id, 0
            for row in group.partitions:
                key3 = (gid, row.topic, row.partition)
                ptrack = partitions.get(key3)
                if ptrack is None:
                    ptrack = partitions[key3] = PartitionTrack(options.rate_window, options.trend_length)
                lag = row.lag
                ptrack.record(times, row.current_offset, lag)
                total += lag if lag is not None and lag > 0 else 0
            ring = self.group_lags.get(gid)
            if ring is None:
                ring = self.group_lags[gid] = Ring(options.trend_length)
            ring.append(float(total))
        rows = sum(len(g.partitions) for g in snapshot.groups)
        prune(log_ends, len(snapshot.offsets), lambda: ((o.topic, o.partition) for o in snapshot.offsets))
        prune(self.topic_rates, len(topics), lambda: topics)
        prune(partitions, rows, lambda: ((g.group_id, r.topic, r.partition) for g in snapshot.groups for r in g.partitions))
        prune(self.group_lags, len(snapshot.groups), lambda: (g.group_id for g in snapshot.groups))
        prune(self.group_status, len(snapshot.groups), lambda: (g.group_id for g in snapshot.groups))
