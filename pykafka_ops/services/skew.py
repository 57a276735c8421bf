"""Key skew (`pko skew`, the TUI's skew screen): hot partitions, the keys behind them, the
partitioners producers used, and what another key or partition count would do.

``analyse_topic`` reads a topic (a sample of the newest records, or everything); ``predict_keys``
places the keys of a file with a partitioner, with no cluster. Both return a ``SkewReport``.

Record counts per partition come from offsets (high watermark − start offset), so they are exact
for the whole range even when only a sample is read; bytes, keys, forensics and what-if come
from the records read. Heavy hitters and distinct keys use bounded-memory sketches
(``pykafka_ops.sketches``); forensics and what-if use a bounded systematic sample
(``skew_keystats.SAMPLE_CAP`` records).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pykafka_ops.client.admin import AdminError, KafkaAdmin
from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.models.groups import PartitionLag, TopicPartition
from pykafka_ops.models.skew import (
    Forensics,
    HeavyKey,
    PartitionBalance,
    SkewOptions,
    SkewReport,
)
from pykafka_ops.partitioner import Partitioner
from pykafka_ops.services.skew_forensics import analyse_placements
from pykafka_ops.services.skew_keysfile import read_keys_file
from pykafka_ops.services.skew_keystats import KeyStats
from pykafka_ops.services.skew_scan import PartitionRange, Progress, scan
from pykafka_ops.services.skew_stats import (
    allocate,
    hot_rule_note,
    imbalance,
    key_text,
    z_scores,
)
from pykafka_ops.services.skew_whatif import IDENTITY, KeyTemplate, what_if

#: What-if partitioner when none is given and forensics found no single one: the Java default.
DEFAULT_PARTITIONER = Partitioner.murmur2_random


class SkewError(RuntimeError):
    """The topic or group cannot be analysed (the message says why)."""


def what_if_templates(options: SkewOptions) -> list[KeyTemplate]:
    """The parsed ``--what-if-key`` templates (``{key}`` when only partition counts are asked);
    a ValueError names a template that does not parse."""
    texts = list(options.what_if_keys) or ([IDENTITY] if options.what_if_partitions else [])
    return [KeyTemplate.parse(t) for t in texts]


async def analyse_topic(settings: ClientSettings, topic: str, options: SkewOptions | None = None,
                        progress: Progress | None = None) -> SkewReport:
    """Analyse ``topic``'s key skew. ``progress(read, to_read)`` is called from a worker thread."""
    options = options or SkewOptions()
    templates = what_if_templates(options)
    started = time.monotonic()
    admin = KafkaAdmin(settings)
    try:  # the admin client is released before the records are read (pko doctor samples many topics)
        await admin.ensure_reachable()
        found = (await admin.topic_partitions([topic]))[topic]
        if isinstance(found, AdminError):
            raise SkewError(str(found))
        tps = [TopicPartition(topic, p) for p in found]
        first = "earliest" if options.since_ms is None else options.since_ms
        starts, ends = await asyncio.gather(_offsets(admin, tps, first), _offsets(admin, tps, "latest"))
        rates = await _rates(admin, tps, ends, options.rate_window_s)
        owners = await _group_rows(admin, topic, options.group)
    finally:
        admin.close()
    # a timestamp query answers -1 when no record is that recent: nothing in range
    in_range = [PartitionRange(tp.partition, ends[tp] if starts[tp] < 0 else min(starts[tp], ends[tp]), ends[tp])
                for tp in tps]
    to_read = in_range
    if options.sample is not None:
        takes = allocate(options.sample, [r.size for r in in_range])
        to_read = [PartitionRange(r.partition, r.end - take, r.end) for r, take in zip(in_range, takes)]

    stats = KeyStats(sum(r.size for r in to_read), templates)
    deadline = started + options.max_seconds if options.max_seconds is not None else None
    stop = threading.Event()
    try:
        complete = await asyncio.to_thread(scan, settings, topic, to_read, stats, deadline, stop, progress)
    except asyncio.CancelledError:
        stop.set()
        raise
    forensics = analyse_placements(stats.placements(), len(tps))
    warnings = [] if complete else [(
        f"stopped after {options.max_seconds:g} s (--max-seconds): read {stats.total_scanned} of "
        f"{sum(r.size for r in to_read)} records")]
    return _report(
        topic, "full" if options.sample is None else "sample", [r.size for r in in_range], stats, options,
        templates, _what_if_partitioner(options, forensics), forensics, complete, time.monotonic() - started,
        warnings, rates, owners)


async def predict_keys(path: Path, partitions: int, partitioner: Partitioner,
                       options: SkewOptions | None = None, progress: Progress | None = None) -> SkewReport:
    """Place every line of ``path`` (one key per line, bytes as they are) on ``partitions``
    partitions with ``partitioner`` and report the balance that would result; no cluster."""
    options = options or SkewOptions()
    templates = what_if_templates(options)
    started = time.monotonic()
    stats = await asyncio.to_thread(read_keys_file, path, partitions, partitioner, templates, progress)
    counts = [stats.scanned.get(p, 0) for p in range(partitions)]
    return _report(str(path), "keys-file", counts, stats, options, templates, partitioner, None, True,
                   time.monotonic() - started, [], {}, {}, partitioner.value)


async def _offsets(admin: KafkaAdmin, tps: list[TopicPartition], spec: str | int) -> dict[TopicPartition, int]:
    """ListOffsets for every partition; any partition error fails the analysis."""
    answers = await admin.list_offsets(tps, spec)
    failed = {tp: a for tp, a in answers.items() if isinstance(a, AdminError)}
    if failed:
        tp, error = next(iter(failed.items()))
        raise SkewError(f"cannot list offsets of {tp}: {error}")
    return {tp: a.offset for tp, a in answers.items()}  # type: ignore[union-attr]


async def _rates(admin: KafkaAdmin, tps: list[TopicPartition], ends: Mapping[TopicPartition, int],
                 window_s: float | None) -> dict[int, float]:
    """Records per second appended to each partition over the last ``window_s`` seconds."""
    if window_s is None:
        return {}
    since = await _offsets(admin, tps, int((time.time() - window_s) * 1000))
    return {tp.partition: (ends[tp] - since[tp]) / window_s if since[tp] >= 0 else 0.0 for tp in tps}


async def _group_rows(admin: KafkaAdmin, topic: str, group: str | None) -> dict[int, PartitionLag]:
    """``group``'s lag row (lag, owner) for each partition of ``topic``."""
    if group is None:
        return {}
    from pykafka_ops.services.lag import describe_group_lag

    (lag,) = await describe_group_lag(admin, [group])
    if lag.description.error or lag.error:
        raise SkewError(f"consumer group '{group}': {lag.description.error or lag.error}")
    if not lag.description.exists:
        raise SkewError(f"consumer group '{group}' does not exist")
    return {row.partition: row for row in lag.partitions if row.topic == topic}


def _what_if_partitioner(options: SkewOptions, forensics: Forensics) -> Partitioner:
    if options.partitioner is not None:
        return Partitioner(options.partitioner)
    if len(forensics.partitioners) == 1:
        return Partitioner(forensics.partitioners[0])
    return DEFAULT_PARTITIONER


def _report(source: str, mode: str, counts: Sequence[int], stats: KeyStats, options: SkewOptions,
            templates: Sequence[KeyTemplate], partitioner: Partitioner, forensics: Forensics | None,
            complete: bool, elapsed_s: float, warnings: list[str], rates: Mapping[int, float],
            owners: Mapping[int, PartitionLag], keys_partitioner: str | None = None) -> SkewReport:
    total = sum(counts)
    scores = z_scores(counts)
    balance = imbalance(counts, options.hot_k)
    rows = []
    for p, (records, z) in enumerate(zip(counts, scores)):
        scanned, owner = stats.scanned.get(p, 0), owners.get(p)
        rows.append(PartitionBalance(
            p, records, records / total if total else 0.0,
            stats.estimated_bytes(p, records), scanned, stats.null_keys.get(p, 0), z,
            p in balance.hot_partitions, rates.get(p), owner.lag if owner else None,
            owner.consumer_id if owner else None, owner.host if owner else None,
            owner.client_id if owner else None))
    read = stats.total_scanned
    heavy = tuple(HeavyKey(key_text(k), p, c, stats.heavy.error_bound, c / read, c / stats.scanned[p])
                  for p, k, c in stats.heavy.top(options.top))
    partition_counts = list(options.what_if_partitions) or [len(counts)]
    sample = [(p, new_keys) for p, _k, new_keys in stats.sample]
    scenarios = what_if(sample, templates, partition_counts, len(counts), partitioner, options.hot_k)
    note = hot_rule_note(len(counts), options.hot_k)
    warnings = warnings + ([note] if note else []) + _forensics_warnings(forensics)
    return SkewReport(
        source, mode, len(counts), total, read, complete, round(elapsed_s, 3), tuple(rows), balance, heavy,
        stats.heavy.error_bound, stats.distinct.estimate(), stats.distinct.exact,
        round(stats.distinct.relative_error, 5), sum(stats.null_keys.values()), stats.empty_keys, forensics,
        scenarios, tuple(warnings), options.since_ms, options.group, keys_partitioner)


def _forensics_warnings(forensics: Forensics | None) -> list[str]:
    if forensics is None:
        return []
    found = []
    if forensics.mixed:
        found.append(f"mixed partitioners: keys were placed by {' and '.join(forensics.partitioners)} "
                     "(producers with different client libraries or settings)")
    if forensics.split_key_count:
        examples = ", ".join(f"{s.key!r} in {list(s.partitions)}" for s in forensics.split_keys[:3])
        found.append(f"{forensics.split_key_count} keys appear in more than one partition "
                     f"(per-key ordering is broken), e.g. {examples}")
    if forensics.unexplained:
        found.append(f"{forensics.unexplained} of {forensics.placements} key placements match no known partitioner "
                     "(custom partitioner, explicit partitions, or the partition count changed)")
    return found
