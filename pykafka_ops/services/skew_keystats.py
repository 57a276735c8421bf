"""What `pko skew` accumulates while reading: per-partition counts and bytes, NULL/empty keys,
heavy hitters, distinct keys, and a bounded systematic sample for forensics, what-if and record
sizes (bytes per partition are estimated from the sampled sizes).

Records arrive in runs from one partition (a consumed batch grouped by partition, or a chunk of
a keys file). Per-record work is done by C code on whole runs; Python code runs per run and per
sampled record only. The sample takes every ``stride``-th record of each partition, so it is
spread evenly over the range read and its size stays near ``total / stride`` whatever the
topic's size; memory is bounded by the sample and the sketches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pykafka_ops.services.skew_whatif import KeyTemplate, RecordView, render_keys
from pykafka_ops.sketches import DistinctCounter, HeavyHitters

#: Records kept for forensics and what-if (the sample of a --full scan is at most about this).
SAMPLE_CAP = 20_000
#: Distinct (partition, key) placements forensics examines: three hashes each, in Python.
FORENSICS_CAP = 5_000


class KeyStats:
    """Accumulates the statistics of the records read (one instance per report)."""

    def __init__(self, expected_records: int, templates: Sequence[KeyTemplate] = (),
                 sample_cap: int = SAMPLE_CAP) -> None:
        self.templates = tuple(templates)
        self.stride = max(1, -(-expected_records // sample_cap))
        self.heavy = HeavyHitters()
        self.distinct = DistinctCounter()
        self.scanned: dict[int, int] = defaultdict(int)
        self.null_keys: dict[int, int] = defaultdict(int)
        self.empty_keys = 0
        self.sampled: dict[int, int] = defaultdict(int)
        self.sampled_bytes: dict[int, int] = defaultdict(int)
        self.sample: list[tuple[int, bytes | None, tuple[bytes | None, ...]]] = []
        """(partition, key, the key under each what-if template) for each sampled record."""

    def sample_slice(self, partition: int, run_length: int) -> slice:
        """Which records of the next run of ``partition`` (``run_length`` long) to sample."""
        first = -self.scanned[partition] % self.stride
        return slice(first, run_length, self.stride)

    def add(self, partition: int, keys: Sequence[bytes | None], sampled: Sequence[RecordView]) -> None:
        """A run of ``partition``: every key, and the records picked by ``sample_slice`` (call it
        first: it depends on the records counted so far)."""
        for record in sampled:
            self.sample.append((partition, record.key, render_keys(self.templates, record)))
            self.sampled_bytes[partition] += record.size
        self.sampled[partition] += len(sampled)
        self.scanned[partition] += len(keys)
        nulls, empties = self.heavy.update(partition, keys, (None, b""))
        self.null_keys[partition] += nulls
        self.empty_keys += empties
        distinct = set(keys)
        distinct.discard(None)
        self.distinct.update(distinct)  # type: ignore[arg-type]  # None was discarded

    def estimated_bytes(self, partition: int, records: int) -> int | None:
        """Key + value bytes of ``records`` records of ``partition``, from the sampled sizes."""
        sampled = self.sampled[partition]
        return round(records * self.sampled_bytes[partition] / sampled) if sampled else None

    @property
    def total_scanned(self) -> int:
        """Records read so far."""
        return self.heavy.total

    def placements(self, limit: int = FORENSICS_CAP) -> list[tuple[int, bytes | None]]:
        """Up to ``limit`` distinct (partition, key) pairs for forensics: the heavy hitters', then
        those of the sampled records in the order read."""
        found = dict.fromkeys((p, k) for p, k, _c in self.heavy.top(limit) if k)
        for p, k, _new in self.sample:
            if len(found) >= limit:
                break
            if k:
                found[(p, k)] = None
        return list(found)
