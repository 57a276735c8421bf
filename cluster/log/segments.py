"""LogSegments (Kafka's `LogSegments`): a partition's segments ordered by base offset."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator

from cluster.log.segment import LogSegment


class LogSegments:
    """Ordered segments with floor lookup by offset; the last one is the active segment."""

    def __init__(self) -> None:
        self._bases: list[int] = []
        self._segments: list[LogSegment] = []

    def add(self, segment: LogSegment) -> None:
        """Append a segment whose base offset is above every existing one."""
        if self._bases and segment.base_offset <= self._bases[-1]:
            raise ValueError(f"segment {segment.base_offset} is not after {self._bases[-1]}")
        self._bases.append(segment.base_offset)
        self._segments.append(segment)

    def remove_first(self) -> LogSegment:
        """Detach and return the oldest segment."""
        self._bases.pop(0)
        return self._segments.pop(0)

    def remove_last(self) -> LogSegment:
        """Detach and return the newest segment."""
        self._bases.pop()
        return self._segments.pop()

    def replace(self, old: list[LogSegment], new: LogSegment) -> None:
        """Put ``new`` where the consecutive segments ``old`` were (a cleaned segment takes the
        place of the segments it was compacted from; it has the first one's base offset)."""
        start = self._segments.index(old[0])
        if self._segments[start : start + len(old)] != old or new.base_offset != old[0].base_offset:
            raise ValueError(f"segments {[s.base_offset for s in old]} are not consecutive here")
        self._segments[start : start + len(old)] = [new]
        self._bases[start : start + len(old)] = [new.base_offset]

    def floor(self, offset: int) -> int:
        """Index of the segment holding ``offset`` (the last base ≤ offset), or -1."""
        return bisect_right(self._bases, offset) - 1

    def __getitem__(self, i: int) -> LogSegment:
        return self._segments[i]

    def __len__(self) -> int:
        return len(self._segments)

    def __iter__(self) -> Iterator[LogSegment]:
        return iter(list(self._segments))

    @property
    def active(self) -> LogSegment:
        """The segment appends go to."""
        return self._segments[-1]

    @property
    def first(self) -> LogSegment:
        """The oldest segment."""
        return self._segments[0]

    def from_index(self, i: int) -> list[LogSegment]:
        """Segments from position ``i`` on."""
        return self._segments[max(i, 0):]
