"""The measurements behind `pko plan partitions`: the cluster's layout, a topic's current load,
and short produce / consume probes of what one partition sustains on this cluster.

* ``cluster_layout``: brokers and the partition replicas each holds (Metadata), and the topic's
  partition count and replication factor when it exists.
* ``topic_load``: the topic's produce rate from its log-end offsets sampled ``window_s`` apart,
  and, from a sample of its newest records read meanwhile (the skew service's), the mean record
  size (key + value bytes) and whether its records are keyed.
* ``measure``: creates a one-partition scratch topic, produces to it for at most ``seconds`` at no
  more than ``rate_cap_mb_s`` (the perf service's producer, acks=all unless the properties say
  otherwise), reads it back for at most ``seconds`` (the perf service's consumer), and deletes
  the topic whatever happens (an error, Ctrl-C).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from pykafka_ops.client.admin import AdminError, KafkaAdmin
from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.models.groups import TopicPartition
from pykafka_ops.models.perf import MB, ProducerPerfWindow
from pykafka_ops.models.skew import SkewOptions
from pykafka_ops.services.perf import consumer_perf, producer_perf, random_payload
from pykafka_ops.services.skew import analyse_topic
from pykafka_ops.services.topics import cluster_info, create_topic, delete_topics

T = TypeVar("T")
Progress = Callable[[str], None]
#: Scratch topics are named ``pko-plan-probe-<random>``.
PROBE_PREFIX = "pko-plan-probe-"
#: Records read from the topic to learn its record size and whether it is keyed.
LOAD_SAMPLE = 1000
#: A producer figure at or above this share of the rate cap only says "at least this much".
CAPPED_SHARE = 0.9


@dataclass(frozen=True)
class ClusterLayout:
    """Brokers, their partition replicas, and the planned topic (when it exists)."""

    brokers: int
    replicas_per_broker: dict[int, int]
    topic_partitions: int | None
    topic_replication_factor: int | None


@dataclass(frozen=True)
class TopicLoad:
    """A topic's current produce rate and what its records look like."""

    records_per_s: float | None
    """Records appended per second over the window (None: not sampled)."""
    window_s: float | None
    record_bytes: float | None
    """Mean key + value bytes of the sampled records (None: nothing to read)."""
    sampled: int
    keyed: int
    """Sampled records with a key (not NULL)."""


@dataclass(frozen=True)
class ProbeResult:
    """What one partition sustained on this cluster; MB/s are 1024 × 1024 bytes per second."""

    topic: str
    record_size: int
    replication_factor: int
    rate_cap_mb_s: float
    seconds: float
    produced_records: int
    producer_elapsed_s: float
    producer_mb_s: float
    producer_p99_ms: float
    consumed_records: int
    consumer_elapsed_s: float
    consumer_mb_s: float

    @property
    def capped(self) -> bool:
        """The producer ran into the rate cap: its figure is a lower bound."""
        return self.producer_mb_s >= CAPPED_SHARE * self.rate_cap_mb_s


def probe_topic_name() -> str:
    """A fresh scratch topic name, ``pko-plan-probe-<8 hex digits>``."""
    return f"{PROBE_PREFIX}{uuid.uuid4().hex[:8]}"


async def cluster_layout(settings: ClientSettings, topic: str | None) -> ClusterLayout:
    """Brokers and replicas per broker from Metadata, with ``topic``'s partitions and replication factor."""
    info = await cluster_info(settings)
    replicas = Counter({b.id: 0 for b in info.brokers})
    replicas.update(r for t in info.topics for p in t.partitions for r in p.replicas)
    described = next((t for t in info.topics if t.name == topic and t.error is None and t.partitions), None)
    return ClusterLayout(len(info.brokers), dict(replicas),
                         len(described.partitions) if described else None,
                         len(described.partitions[0].replicas) if described else None)


async def _log_ends(admin: KafkaAdmin, tps: list[TopicPartition]) -> int:
    answers = await admin.list_offsets(tps, "latest")
    failed = next((f"{tp}: {a}" for tp, a in answers.items() if isinstance(a, AdminError)), None)
    if failed is not None:
        raise RuntimeError(f"cannot list offsets of {failed}")
    return sum(a.offset for a in answers.values())  # type: ignore[union-attr]


async def _produce_rate(settings: ClientSettings, topic: str, partitions: int, window_s: float) -> float:
    """Records per second appended to ``topic`` between two log-end samples ``window_s`` apart."""
    admin = KafkaAdmin(settings)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        first, started = await _log_ends(admin, tps), time.monotonic()
        await asyncio.sleep(window_s)
        last = await _log_ends(admin, tps)
        return (last - first) / (time.monotonic() - started)
    finally:
        admin.close()


async def topic_load(settings: ClientSettings, topic: str, partitions: int, window_s: float | None) -> TopicLoad:
    """``topic``'s produce rate over ``window_s`` seconds (None: not sampled) and, from its newest
    records read meanwhile, the mean record size and how many are keyed."""
    async def no_rate() -> None:
        return None

    rate_task = _produce_rate(settings, topic, partitions, window_s) if window_s else no_rate()
    rate, report = await asyncio.gather(rate_task, analyse_topic(settings, topic, SkewOptions(sample=LOAD_SAMPLE,
                                                                                              top=1)))
    sized = [p for p in report.partitions if p.bytes is not None]
    in_range = sum(p.records for p in sized)
    record_bytes = sum(p.bytes or 0 for p in sized) / in_range if in_range else None
    return TopicLoad(rate, window_s, record_bytes, report.scanned, report.scanned - report.null_keys)


async def _bounded(work: Awaitable[T], seconds: float) -> T:
    """Await ``work`` (a perf run, which stops and reports when cancelled) for at most ``seconds``.
    When this task is cancelled (Ctrl-C), the run is stopped and awaited before the error goes on,
    so that the caller's clean-up finds the clients closed."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.wait({task})
        raise
    task.cancel()  # no-op when it finished in time; else it stops and returns what it measured
    return await task


async def measure(settings: ClientSettings, topic: str, replication_factor: int, record_size: int,
                  rate_cap_mb_s: float, seconds: float, producer_props: Mapping[str, str] | None = None,
                  progress: Progress | None = None) -> ProbeResult:
    """Probe one partition of scratch topic ``topic`` (created here, deleted here even on error or
    Ctrl-C): produce ``record_size``-byte records for at most ``seconds`` at no more than
    ``rate_cap_mb_s``, then read them back for at most ``seconds``. ``progress`` gets a line per step
    (from a worker thread too)."""
    say = progress or (lambda _line: None)
    records_per_s = rate_cap_mb_s * MB / record_size
    props = {"acks": "all", **(producer_props or {})}

    def window(w: ProducerPerfWindow) -> None:
        say(f"producing to {topic}: {w.mb_per_s:.1f} MB/s, {w.avg_latency_ms:.0f} ms avg latency")

    say(f"creating scratch topic {topic} (1 partition, replication factor {replication_factor})")
    await create_topic(settings, topic, 1, replication_factor)
    try:
        say(f"producing to {topic} for {seconds:g} s, at most {rate_cap_mb_s:g} MB/s")
        produced = await _bounded(producer_perf(
            settings, topic, math.ceil(records_per_s * seconds) + 1, [random_payload(record_size)], records_per_s,
            props, on_window=window, interval_s=1.0), seconds)
        if not produced.total.records:
            raise RuntimeError(f"the producer probe delivered no records to {topic}: "
                               f"{produced.first_error or 'nothing acknowledged in time'}")
        say(f"reading {produced.total.records} records back from {topic}")
        consumed = await _bounded(consumer_perf(settings, topic, produced.total.records,
                                                timeout_ms=int(settings.timeout_s * 1000)), seconds)
    finally:
        say(f"deleting scratch topic {topic}")
        await delete_topics(settings, re.escape(topic), if_exists=True)
    return ProbeResult(topic, record_size, replication_factor, rate_cap_mb_s, seconds, produced.total.records,
                       produced.total.elapsed_s, produced.total.mb_per_s, produced.p99_ms, consumed.messages,
                       consumed.elapsed_s, consumed.bytes / MB / consumed.elapsed_s)
