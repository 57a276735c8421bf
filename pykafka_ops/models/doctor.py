"""`pko doctor`: the design document's pitfalls found on a live cluster, each with evidence and a fix.

A ``Finding`` names the check that raised it, its severity, what it is about (a topic, partition,
group or broker), the figures behind it, why it matters in one line, the fix as a command (or a
setting when no command applies) and the caveats Kafka imposes on that fix. ``DoctorOptions``
holds every threshold (each a `pko doctor` flag); ``DoctorInput`` is what the checks read, built
from polls of the cluster (``services.doctor``) or by hand in tests (``services.doctor_checks``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum

from pykafka_ops.models.monitor import MonitorFrame
from pykafka_ops.models.skew import SkewReport


class Severity(IntEnum):
    """How bad a finding is, least to most (``--fail-on`` compares with this order)."""

    INFO = 0
    WARN = 1
    ERROR = 2

    @property
    def label(self) -> str:
        """The lower-case name (``info``, ``warn``, ``error``), as the flags spell it."""
        return self.name.lower()


class CheckSkipped(Exception):
    """A check that cannot run on this input; the message says why."""


@dataclass(frozen=True)
class Subject:
    """What a finding is about: ``kind`` is topic, partition, group or broker."""

    kind: str
    name: str
    """Topic name, group id, or broker id as text."""
    partition: int | None = None

    def __str__(self) -> str:
        return f"{self.kind} {self.name}" + (f"-{self.partition}" if self.partition is not None else "")


Figure = int | float | str | None


@dataclass(frozen=True)
class Finding:
    """One problem found: see the module docstring."""

    check: str
    severity: Severity
    subject: Subject
    evidence: dict[str, Figure]
    """Named figures (rates in records/s, times in seconds, shares in [0, 1])."""
    why: str
    fix: str
    caveats: tuple[str, ...] = ()


@dataclass(frozen=True)
class DoctorOptions:
    """Thresholds and filters of the checks (each one a `pko doctor` flag)."""

    topics: re.Pattern[str] | None = None
    """Only topics whose name matches (``--topic``); None: every topic."""
    groups: re.Pattern[str] | None = None
    """Only groups whose id matches (``--group``)."""
    critical_topics: re.Pattern[str] | None = None
    """Topics whose durability is checked (``--critical-topics``); None: none."""
    hot_z: float = 2.0
    """A partition is hot when its produce-rate z-score within its topic exceeds this (and its rate is
    1.5 × the topic's mean)."""
    min_partition_writes: int = 50
    """Topics that wrote fewer records per partition in the window are not judged for hot partitions."""
    size_skew: float = 2.0
    """A partition writing this many times its topic's mean rate is hot; a topic whose largest partition
    holds this many times the mean records is skewed."""
    min_topic_records: int = 1000
    """Topics with fewer records are not judged for size skew."""
    key_share: float = 0.25
    """A key carrying at least this share of a topic's sampled writes is a hot key."""
    min_key_sample: int = 100
    """Sampled records a topic needs before its keys are judged."""
    retention_margin_s: float = 3600.0
    """Warn when a group's oldest unconsumed record is deleted by retention within this time …"""
    retention_share: float = 0.5
    """… and the group lags by at least this share of retention.ms."""
    max_assignment_ratio: float = 2.0
    """Most over fewest partitions per assigned member of a group, at or above which it is unbalanced."""
    max_partitions_per_broker: int = 4000
    """Partition replicas a broker may host before it is overloaded (Kafka's usual guidance)."""
    max_open_files_share: float = 0.8
    """Open files over the process limit, at or above which a node of ours is reported."""

    def wants_topic(self, name: str) -> bool:
        """The topic passes ``--topic``."""
        return self.topics is None or self.topics.search(name) is not None

    def wants_group(self, group_id: str) -> bool:
        """The group passes ``--group``."""
        return self.groups is None or self.groups.search(group_id) is not None

    def is_critical(self, name: str) -> bool:
        """The topic matches ``--critical-topics``."""
        return self.critical_topics is not None and self.critical_topics.search(name) is not None


@dataclass(frozen=True)
class NodeFiles:
    """Open files of a node process of ours (psutil), against its RLIMIT_NOFILE soft limit."""

    node_id: int
    pid: int
    open_files: int
    limit: int | None
    """None when unlimited or unknown."""


@dataclass(frozen=True)
class ProduceClient:
    """The acks and idempotence a producer used on a topic, as our nodes' admin endpoints saw them
    (``GET /v1/produce-clients``)."""

    client_id: str
    topic: str
    acks: int
    """The weakest acks seen: 0, 1 or -1 (all)."""
    idempotent: bool


@dataclass(frozen=True)
class ReplicationThrottles:
    """The replication throttles set (KIP-73) and the partitions being reassigned (KIP-455)."""

    broker_rates: dict[int, dict[str, int]]
    """Per broker, ``leader/follower.replication.throttled.rate`` when set (bytes/s)."""
    topic_replicas: dict[str, dict[str, str]]
    """Per topic, ``leader/follower.replication.throttled.replicas`` when not empty."""
    reassigning: tuple[tuple[str, int], ...]
    """(topic, partition) of every reassignment in progress."""


@dataclass(frozen=True)
class DoctorInput:
    """What the checks read: the monitor's frame at the end of the window (rates, z-scores,
    statuses, time lags, alerts), the sampled keys of some topics, topic configs and more."""

    frame: MonitorFrame
    window_s: float
    """Seconds between the first and the last poll (the rate window)."""
    bootstrap_servers: str
    key_samples: dict[str, SkewReport] = field(default_factory=dict)
    """Per topic, a `pko skew` sample of its newest records."""
    topic_configs: dict[str, dict[str, str | None]] = field(default_factory=dict)
    """Per (critical) topic, its configs by name (DescribeConfigs)."""
    node_files: tuple[NodeFiles, ...] = ()
    produce_clients: tuple[ProduceClient, ...] | None = None
    """None: not collected (not a cluster of ours, or no admin endpoint answered)."""
    throttles: ReplicationThrottles | None = None
    """None: not read (the configs or the reassignments could not be listed)."""


@dataclass(frozen=True)
class DoctorReport:
    """A `pko doctor` run: the findings, worst first, and what limited it."""

    bootstrap_servers: str
    taken_at: float
    window_s: float
    polls: int
    findings: tuple[Finding, ...]
    checks: tuple[str, ...]
    """The checks that ran."""
    skipped: tuple[tuple[str, str], ...] = ()
    """(check, why) of the checks that could not run."""
    errors: tuple[str, ...] = ()
    """What could not be read (the findings are from the rest)."""

    @property
    def worst(self) -> Severity | None:
        """The severity of the worst finding, None when there is none."""
        return max((f.severity for f in self.findings), default=None)
