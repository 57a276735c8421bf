"""`pko doctor`'s sampling: poll the cluster across one window, then run the checks.

``diagnose`` polls through ``MonitorServices`` (``KafkaClusterSource``: metadata, offsets, groups,
retention, hanging transactions) ``polls`` times spread evenly over ``window_s`` seconds, so
the last frame's produce rates, z-scores and Burrow-style statuses cover exactly the window.
While the window runs it also reads, at once: a `pko skew` sample of the newest records of the
largest user topics (the keys behind hot partitions, and the what-if that salts them), the
configs of the ``--critical-topics`` (DescribeConfigs) and, for a cluster of ours (a state file),
each node's open files against its limit (psutil); after it, the producers our nodes' admin
endpoints saw (``doctor_producers``; only when ``admin_endpoints`` are given). The checks
themselves are pure (``services.doctor_checks``).

A cluster that does not answer the first poll raises ``ClusterUnreachableError`` (its message
names the bootstrap servers); what cannot be read later is reported in ``DoctorReport.errors``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.librdkafka import admin_client, in_thread
from pykafka_ops.models.doctor import (
    DoctorInput,
    DoctorOptions,
    DoctorReport,
    NodeFiles,
    ReplicationThrottles,
)
from pykafka_ops.models.monitor import MonitorFrame, MonitorOptions, NodeProcess
from pykafka_ops.models.skew import SkewOptions, SkewReport
from pykafka_ops.services.configs import resource_configs
from pykafka_ops.services.doctor_checks import CHECKS, SALTED_KEY, run_checks
from pykafka_ops.services.doctor_producers import read_produce_clients
from pykafka_ops.services.doctor_throttles import read_throttles
from pykafka_ops.services.monitor import MonitorServices
from pykafka_ops.services.skew import analyse_topic
from pykafka_ops.services.snapshot import KafkaClusterSource


@dataclass(frozen=True)
class Sampling:
    """How `pko doctor` samples the cluster."""

    window_s: float = 15.0
    """Seconds from the first poll to the last."""
    polls: int = 4
    """Polls in the window (at least 2; the status rules look at all of them)."""
    key_topics: int = 10
    """User topics whose keys are sampled, the largest first."""
    key_sample: int = 5000
    """Records read per sampled topic (the newest)."""


async def diagnose(settings: ClientSettings, options: DoctorOptions, sampling: Sampling = Sampling(),
                   state_file: Path | None = None,
                   admin_endpoints: Sequence[str] = ()) -> tuple[DoctorReport, DoctorInput]:
    """Sample the cluster over the window and run every check (see the module docstring);
    ``admin_endpoints`` (``host:port``) are our nodes' admin endpoints, for the acks evidence.
    Returns the report and what its checks read (`pko doctor --report` charts its last frame)."""
    services = MonitorServices(KafkaClusterSource(settings, state_file=state_file),
                               MonitorOptions(window=sampling.polls, rate_window=sampling.polls - 1,
                                              hot_k=options.hot_z))
    try:
        first = await services.poll()
        errors = list(first.errors)
        reads = asyncio.gather(_key_samples(settings, first, options, sampling),
                               _critical_configs(settings, first, options), _throttles(settings, first))
        last = first
        started = time.monotonic()
        for i in range(1, sampling.polls):
            await asyncio.sleep(max(0.0, started + i * sampling.window_s / (sampling.polls - 1) - time.monotonic()))
            last = await services.poll()
            errors += [e for e in last.errors if e not in errors]
        (samples, sample_errors), (configs, config_error), (throttles, throttle_error) = await reads
    finally:
        services.close()
    errors += sample_errors + [e for e in (config_error, throttle_error) if e]
    producers, producer_errors = (await in_thread(read_produce_clients, admin_endpoints, settings.timeout_s)
                                  if admin_endpoints else (None, []))
    errors += producer_errors
    data = DoctorInput(last, last.taken_at - first.taken_at, settings.bootstrap_servers, samples, configs,
                       await in_thread(node_files, last.overview.nodes), producers, throttles)
    findings, skipped = run_checks(data, options)
    return DoctorReport(settings.bootstrap_servers, last.taken_at, round(data.window_s, 3), last.poll, findings,
                        tuple(CHECKS), skipped, tuple(errors)), data


def key_sample_topics(frame: MonitorFrame, options: DoctorOptions, limit: int) -> list[str]:
    """The user topics worth a key sample: at least 2 partitions and some records, largest first."""
    candidates = [t for t in frame.topics if not t.internal and options.wants_topic(t.name)
                  and len(t.partitions) >= 2 and t.records]
    return [t.name for t in sorted(candidates, key=lambda t: (-(t.records or 0), t.name))[:limit]]


async def _key_samples(settings: ClientSettings, frame: MonitorFrame, options: DoctorOptions,
                       sampling: Sampling) -> tuple[dict[str, SkewReport], list[str]]:
    """A `pko skew` sample of each topic of ``key_sample_topics``, and what could not be read."""
    topics = key_sample_topics(frame, options, sampling.key_topics)
    skew_options = SkewOptions(sample=sampling.key_sample, top=5, hot_k=options.hot_z, what_if_keys=(SALTED_KEY,))
    answers = await asyncio.gather(*(analyse_topic(settings, t, skew_options) for t in topics),
                                   return_exceptions=True)
    samples = {t: a for t, a in zip(topics, answers) if isinstance(a, SkewReport)}
    errors = [f"key sample of {t}: {a}" for t, a in zip(topics, answers) if isinstance(a, BaseException)]
    return samples, errors


async def _critical_configs(settings: ClientSettings, frame: MonitorFrame,
                            options: DoctorOptions) -> tuple[dict[str, dict[str, str | None]], str | None]:
    """The configs of the critical topics, and why they could not be read (or None)."""
    names = [t.name for t in frame.topics if options.is_critical(t.name) and options.wants_topic(t.name)]
    if not names:
        return {}, None
    try:
        described = await in_thread(resource_configs, admin_client(settings), settings, "topics", names)
    except Exception as exc:  # a refused DescribeConfigs leaves the config checks out, not the run
        return {}, f"configs of the critical topics: {exc}"
    return {r.entity_name: {e.name: e.value for e in r.entries} for r in described}, None


async def _throttles(settings: ClientSettings, frame: MonitorFrame) -> tuple[ReplicationThrottles | None, str | None]:
    """The replication throttles and reassignments (``doctor_throttles``), and why they could not be
    read (or None)."""
    brokers = [b.id for b in frame.brokers if b.up and "broker" in b.roles]
    try:
        return await in_thread(read_throttles, settings, brokers, [t.name for t in frame.topics]), None
    except Exception as exc:  # a refused DescribeConfigs or ListPartitionReassignments skips the check only
        return None, f"replication throttles: {exc}"


def node_files(nodes: tuple[NodeProcess, ...]) -> tuple[NodeFiles, ...]:
    """Open files and the RLIMIT_NOFILE soft limit of each running node process (psutil)."""
    found = []
    for n in nodes:
        if not n.running:
            continue
        try:
            process = psutil.Process(n.pid)
            soft, _hard = process.rlimit(psutil.RLIMIT_NOFILE)
            found.append(NodeFiles(n.node_id, n.pid, process.num_fds(), soft if soft > 0 else None))
        except (psutil.Error, AttributeError):  # gone, not ours, or a platform without rlimit
            continue
    return tuple(found)
