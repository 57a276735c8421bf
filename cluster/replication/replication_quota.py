"""Replication throttles (KIP-73): Kafka's ``ReplicationQuotaManager``, one for each side.

A broker has a leader quota and a follower quota. Each is a byte rate, the broker's dynamic config
``leader.replication.throttled.rate`` / ``follower.replication.throttled.rate`` (INT64_MAX, Kafka's
``Long.MAX_VALUE``, = unthrottled; read from the live broker config on every check, so a change
takes effect without a restart), measured as Kafka's ``SimpleRate`` over
``replication.quota.window.num`` samples of ``replication.quota.window.size.seconds``.

It applies to the replicas a topic lists in ``leader.replication.throttled.replicas`` /
``follower.replication.throttled.replicas`` for THIS broker (``partitionId:brokerId,...``, or ``*``
for all; Kafka's ``TopicConfigHandler.parseThrottledPartitions``), read from the topic's current
overrides. Its users (Kafka's ``ReplicaManager.shouldLeaderThrottle`` and
``RemoteLeaderEndPoint.shouldFollowerThrottle``): a throttled partition of a replica that is not in
sync gets no records while ``is_quota_exceeded``; the bytes of every throttled partition, in sync
or not, are ``record``-ed (Kafka counts both, so that all replication traffic stays under the rate).
``limited`` is checked first, once per request: an unthrottled broker computes nothing per partition.

Concurrency: used from the node's event loop only. No clock is read here: the caller passes
``now`` (monotonic seconds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pykafka_ops.config.settings import INT64_MAX

Side = Literal["leader", "follower"]
#: Parsed throttled-replica lists kept per distinct config value before the cache is cleared.
_PARSED_CACHE_MAX = 1024


class _AllPartitions:
    """Every partition of a topic (the ``*`` list; Kafka's ``Constants.AllReplicas``)."""

    def __contains__(self, partition: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "ALL_PARTITIONS"


ALL_PARTITIONS = _AllPartitions()
ThrottledPartitions = frozenset[int] | _AllPartitions


def throttled_partitions(value: str, broker_id: int) -> ThrottledPartitions:
    """The partitions a throttled-replica list names for ``broker_id`` (a value already checked
    by Kafka's ``ThrottledReplicaListValidator``, ``settings``): ``ALL_PARTITIONS`` for ``*``, else
    the partition ids of its ``partition:broker`` elements whose broker is ``broker_id``."""
    elements = [element.strip() for element in value.split(",")]
    if "".join(elements) == "*":
        return ALL_PARTITIONS
    pairs = (element.partition(":") for element in elements if element)
    return frozenset(int(partition) for partition, _, broker in pairs if int(broker) == broker_id)


class Rate:
    """Kafka's ``SimpleRate`` over a ``SampledStat`` of ``WindowedSum`` samples: the sum of the
    samples seen in the last ``samples × window_s`` seconds, divided by the time since the oldest
    of them began (at least one window)."""

    __slots__ = ("_current", "_samples", "samples", "window_s")

    def __init__(self, samples: int, window_s: float) -> None:
        self.samples = samples
        self.window_s = window_s
        self._samples: list[list[float]] = []
        """[start, last event, value] each; one more than ``samples`` (Kafka's overlapping one)."""
        self._current = 0

    def record(self, value: float, now: float) -> None:
        """Add ``value`` to the sample of ``now`` (a new one once the current is a window old)."""
        sample = self._current_sample(now)
        if now - sample[0] >= self.window_s:
            self._current = (self._current + 1) % (self.samples + 1)
            if self._current >= len(self._samples):
                self._samples.append([now, now, 0.0])
            else:
                self._samples[self._current][:] = [now, now, 0.0]
            sample = self._samples[self._current]
        sample[1] = now
        sample[2] += value

    def measure(self, now: float) -> float:
        """The rate now, per second."""
        return sum(sample[2] for sample in self._purged(now)) / self.window_size(now)

    def time_to_fall_to(self, rate: float, now: float) -> float:
        """Seconds until the measured rate is at most ``rate`` (> 0) if nothing more is recorded:
        the samples' sum over ``rate`` is the time it must be spread over."""
        samples = self._purged(now)
        total = sum(sample[2] for sample in samples)
        return max(total / rate - (now - min(sample[0] for sample in samples)), 0.0)

    def window_size(self, now: float) -> float:
        """Seconds the rate is measured over (Kafka's ``SimpleRate.windowSize``)."""
        oldest = min(sample[0] for sample in self._purged(now))
        return max(now - oldest, self.window_s)

    def _current_sample(self, now: float) -> list[float]:
        if not self._samples:
            self._samples.append([now, now, 0.0])
        return self._samples[self._current]

    def _purged(self, now: float) -> list[list[float]]:
        """The samples, those without an event in the last ``samples × window_s`` reset to ``now``
        (Kafka's ``purgeObsoleteSamples``)."""
        self._current_sample(now)
        expire_s = self.samples * self.window_s
        for sample in self._samples:
            if now - sample[1] >= expire_s:
                sample[:] = [now, now, 0.0]
        return self._samples


class ReplicationQuotaManager:
    """The leader or follower replication quota of one broker (see module docstring)."""

    def __init__(self, side: Side, broker_id: int, config: Mapping[str, Any],
                 topic_config: Callable[[str], Mapping[str, Any] | None]) -> None:
        """``config``: the broker's live settings; ``topic_config``: a topic's overrides now (None
        for an unknown topic)."""
        self.side = side
        self.broker_id = broker_id
        self.config = config
        self.topic_config = topic_config
        self.rate_name = f"{side}.replication.throttled.rate"
        self.replicas_name = f"{side}.replication.throttled.replicas"
        self.rate = Rate(config["replication.quota.window.num"], config["replication.quota.window.size.seconds"])
        self._parsed: dict[str, ThrottledPartitions] = {}

    @property
    def upper_bound(self) -> int:
        """The configured rate in bytes/s (INT64_MAX: unthrottled)."""
        return int(self.config[self.rate_name])

    def limited(self) -> bool:
        """A rate is configured: only then is anything checked or recorded per partition."""
        return self.upper_bound < INT64_MAX

    def is_quota_exceeded(self, now: float) -> bool:
        """The measured rate is above the configured one (Kafka's ``Sensor.checkQuotas``)."""
        return self.rate.measure(now) > self.upper_bound

    def record(self, size: int, now: float) -> None:
        """Count ``size`` bytes of throttled replication traffic, even above the quota."""
        self.rate.record(size, now)

    def throttle_time(self, now: float) -> float:
        """Seconds until the measured rate falls to the configured one if nothing more is recorded
        (as Kafka's ``QuotaUtils.throttleTime``, without its shortfall while less than a window has
        passed); 0 when it is not above it, one window for a zero rate."""
        bound = self.upper_bound
        if bound <= 0:
            return self.rate.window_s if self.is_quota_exceeded(now) else 0.0
        return self.rate.time_to_fall_to(bound, now)

    def is_throttled(self, topic: str, partition: int) -> bool:
        """The topic's throttled-replica list of this side names ``partition`` on this broker."""
        overrides = self.topic_config(topic)
        value = overrides.get(self.replicas_name) if overrides is not None else None
        if not value:
            return False
        parsed = self._parsed.get(value)
        if parsed is None:
            if len(self._parsed) >= _PARSED_CACHE_MAX:
                self._parsed.clear()
            parsed = self._parsed[value] = throttled_partitions(value, self.broker_id)
        return partition in parsed


class ReplicationQuotas:
    """The two quotas of a broker (Kafka's ``QuotaFactory.QuotaManagers.leader`` / ``.follower``)."""

    def __init__(self, broker_id: int, config: Mapping[str, Any],
                 topic_config: Callable[[str], Mapping[str, Any] | None]) -> None:
        self.leader = ReplicationQuotaManager("leader", broker_id, config, topic_config)
        self.follower = ReplicationQuotaManager("follower", broker_id, config, topic_config)
