"""Time lag for the monitor: how old the oldest record a group has not consumed yet is, in seconds.

Two of the recipes of monitor-anchors §3.6, combined:

- **record** (B, klag-exporter / topicctl): now − the timestamp of the record at the committed
  offset. One read per lagging partition, cached by (partition, offset), so a partition whose
  committed offset does not move is read once; at most ``max_reads`` reads per poll, largest
  lag first, so a poll's cost is bounded however many partitions lag.
- **interpolated** (A, kafka-lag-exporter): now − the moment the log end passed the committed
  offset, interpolated over the monitor's own log-end history (``LogEndTrack.appended_at``);
  no read at all. Used when the record was not read (cap reached, read failed, record deleted).

Unlike ``pko consumer-groups --time-lag`` (newest record − committed record), this is measured
against now: a group behind a producer that went quiet keeps getting older, as its data does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping

from pykafka_ops.models.groups import TopicPartition
from pykafka_ops.models.monitor import TimeLagMethod
from pykafka_ops.services.history import LogEndTrack

#: Reads the timestamp (ms) of the record at each offset, or why it could not.
RecordReader = Callable[[Mapping[TopicPartition, int]], Awaitable[dict[TopicPartition, int | str]]]


class TimeLagEstimator:
    """The record-timestamp cache and the estimate for each lagging partition.

    Concurrency: ``prefetch`` awaits the reads and only then stores them; ``estimate`` and
    ``end_poll`` never await. The cache keeps only the positions asked for in the last poll.
    """

    def __init__(self, read: RecordReader, max_reads: int) -> None:
        self._read = read
        self.max_reads = max_reads
        self._cache: dict[tuple[str, int, int], int | str] = {}
        self._used: set[tuple[str, int, int]] = set()
        self.reads = 0
        """Records read since the start (for the status line and tests)."""

    async def prefetch(self, lagging: Iterable[tuple[str, int, int, int]]) -> str | None:
        """Read the timestamps at the (topic, partition, committed offset, lag) positions not cached
        yet: largest lag first, one offset per partition, at most ``max_reads``. Returns why the
        reads failed, if they did (the estimates then fall back to interpolation)."""
        wanted: dict[TopicPartition, int] = {}
        for topic, partition, offset, _lag in sorted(lagging, key=lambda item: -item[3]):
            if len(wanted) >= self.max_reads:
                break
            if (topic, partition, offset) not in self._cache:
                wanted.setdefault(TopicPartition(topic, partition), offset)
        if not wanted:
            return None
        try:
            answers = await self._read(wanted)
        except Exception as exc:  # an unreachable cluster must not stop the poll: interpolate instead
            return f"reading record timestamps: {exc}"
        self.reads += len(wanted)
        for tp, stamp in answers.items():
            self._cache[(tp.topic, tp.partition, wanted[tp])] = stamp
        return None

    def estimate(self, topic: str, partition: int, offset: int | None, lag: int | None, now: float,
                 log_end: LogEndTrack | None) -> tuple[float | None, str | None]:
        """(seconds, method) for a group's partition; (0, None) without lag, (None, None) unknown."""
        if lag is None or offset is None:
            return None, None
        if lag <= 0:
            return 0.0, None
        key = (topic, partition, offset)
        self._used.add(key)
        stamp = self._cache.get(key)
        if isinstance(stamp, int):
            return max(0.0, now - stamp / 1000), TimeLagMethod.RECORD
        found = log_end.appended_at(offset) if log_end is not None else None
        if found is None:
            return None, None
        appended, method = found
        return max(0.0, now - appended), method

    def end_poll(self) -> None:
        """Forget the cached positions no partition asked for in this poll (bounded memory)."""
        self._cache = {k: v for k, v in self._cache.items() if k in self._used}
        self._used = set()
