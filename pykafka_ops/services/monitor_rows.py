"""The rows of the monitor's tables, shared by the TUI and `pko lag` so both print the same cells.

Each table is a tuple of column names (Kafka's where one exists, upper case with dashes, as
kafka-consumer-groups prints them) and a function from a view to its cells. Cells are text or
integers; ``None`` is unknown (``-``). Rates are records/s, times human durations.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from pykafka_ops.models.groups import MemberDescription, TopicPartition
from pykafka_ops.models.monitor import (
    BrokerState,
    BrokerView,
    GroupView,
    HotPartition,
    MetadataQuorum,
    NodeProcess,
    Overview,
    PartitionView,
    TimeLagMethod,
    TopicPartitionView,
    TopicView,
)
from pykafka_ops.models.records import ConsumedRecord
from pykafka_ops.models.replication import ReplicationAlert
from pykafka_ops.services.replication import (
    is_not_preferred,
    is_offline,
    is_under_replicated,
)

Cell = str | int | None

_BLOCKS = "▁▂▃▄▅▆▇█"
_METHODS = {TimeLagMethod.RECORD: "record", TimeLagMethod.INTERPOLATED: "interp",
            TimeLagMethod.EXTRAPOLATED: "extrap"}
#: Points of history a TREND cell shows.
TREND_WIDTH = 16


def sparkline(values: Sequence[float], width: int = TREND_WIDTH) -> str:
    """The last ``width`` values as block characters scaled to their maximum (blank = unknown)."""
    shown = values[-width:]
    top = max((v for v in shown if v == v), default=0.0)
    if top <= 0:
        return "".join(_BLOCKS[0] if v == v else " " for v in shown)
    return "".join(_BLOCKS[min(7, int(v / top * 7.999))] if v == v else " " for v in shown)


def rate_text(value: float | None) -> str | None:
    """12.3, 4.5k, 6.7M records/s."""
    if value is None:
        return None
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.1f}"


def duration_text(seconds: float | None) -> str | None:
    """4.2s, 1m05s, 2h03m, 3d04h; a negative duration gets a minus sign."""
    if seconds is None:
        return None
    sign, s = ("-" if seconds < 0 else ""), abs(seconds)
    if s < 60:
        return f"{sign}{s:.1f}s"
    if s < 3600:
        return f"{sign}{int(s // 60)}m{int(s % 60):02d}s"
    if s < 86400:
        return f"{sign}{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
    return f"{sign}{int(s // 86400)}d{int(s % 86400 // 3600):02d}h"


def bytes_text(value: int | None) -> str | None:
    """RSS in MiB or GiB."""
    if value is None:
        return None
    mib = value / (1 << 20)
    return f"{mib / 1024:.1f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def percent_text(share: float | None) -> str | None:
    """A share in [0, 1] as a percentage."""
    return None if share is None else f"{share * 100:.0f}%"


def method_text(method: str | None) -> str | None:
    """The short name of a time-lag method."""
    return None if method is None else _METHODS.get(method, method)


GROUP_COLUMNS = ("GROUP", "STATE", "MEMBERS", "LAG", "TIME-LAG", "METHOD", "TREND", "CONSUME/S", "STATUS", "REASON")


def group_cells(g: GroupView) -> tuple[Cell, ...]:
    """A group's row."""
    return (g.group_id, g.state, g.members, g.total_lag, duration_text(g.max_lag_seconds), method_text(g.lag_method),
            sparkline(g.lag_history), rate_text(g.consume_rate), g.status.name, g.reason)


PARTITION_COLUMNS = ("TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "TIME-LAG", "METHOD",
                     "STATUS", "TREND", "PRODUCE/S", "CONSUME/S", "CONSUMER-ID", "HOST", "REASON")


def partition_cells(p: PartitionView, trend: Sequence[float] = ()) -> tuple[Cell, ...]:
    """A group's partition row; ``trend`` is its lag history."""
    return (p.topic, p.partition, p.current_offset, p.log_end_offset, p.lag, duration_text(p.lag_seconds),
            method_text(p.lag_method), p.status.name, sparkline(trend), rate_text(p.produce_rate),
            rate_text(p.consume_rate), p.consumer_id, p.host, p.reason)


TOPIC_COLUMNS = ("TOPIC", "PARTITIONS", "RF", "ISR", "IMBALANCE", "RECORDS", "PRODUCE/S", "TREND", "SKEW",
                 "RETENTION", "LAG-SHARE", "LOSS-IN")


def isr_text(under_replicated: int, offline: int) -> str:
    """ok, or how many partitions are under-replicated / offline."""
    problems = [f"{n} {what}" for n, what in ((offline, "offline"), (under_replicated, "URP")) if n]
    return ", ".join(problems) or "ok"


def topic_cells(t: TopicView) -> tuple[Cell, ...]:
    """A topic's row: IMBALANCE counts the partitions not led by their preferred leader, SKEW is
    max/mean of the partition produce rates, LAG-SHARE the largest lag as a share of the retained
    range, LOSS-IN the time until unconsumed records hit retention."""
    return (t.name, len(t.partitions), t.replication_factor, isr_text(t.under_replicated, t.offline), t.not_preferred,
            t.records,
            rate_text(t.produce_rate), sparkline(t.rate_history), None if t.skew is None else f"{t.skew:.2f}",
            duration_text(None if t.retention_ms is None else t.retention_ms / 1000), percent_text(t.lag_share),
            duration_text(t.loss_in_s))


TOPIC_PARTITION_COLUMNS = ("PARTITION", "LEADER", "REPLICAS", "ISR", "REPLICATION", "LOG-START-OFFSET",
                           "LOG-END-OFFSET", "RECORDS", "PRODUCE/S", "Z-SCORE", "HOT", "TXN")


def replication_text(p: TopicPartitionView) -> str:
    """``OFFLINE`` (no leader), ``URP`` (ISR short of the replicas), ``not preferred`` (led by
    another replica than the first), or ``ok``; trouble in capitals, as ``DOWN`` is."""
    if is_offline(p):
        return "OFFLINE"
    if is_under_replicated(p):
        return "URP"
    return "not preferred" if is_not_preferred(p) else "ok"


def transactions_text(p: TopicPartitionView) -> str:
    """``HANGING pid 1001`` when a transaction (of producer id 1001) has held the last stable offset
    for longer than transaction.max.timeout.ms, ``open`` while one holds it, else empty."""
    if p.hanging is not None:
        return f"HANGING pid {p.hanging.producer_id if p.hanging.producer_id is not None else '?'}"
    if p.last_stable_offset is not None and p.log_end_offset is not None and p.last_stable_offset < p.log_end_offset:
        return "open"
    return ""


def topic_partition_cells(p: TopicPartitionView) -> tuple[Cell, ...]:
    """A topic's partition row."""
    return (p.partition, p.leader, ",".join(map(str, p.replicas)), ",".join(map(str, p.isr)), replication_text(p),
            p.log_start_offset, p.log_end_offset, p.records, rate_text(p.produce_rate), f"{p.z_score:.2f}",
            "HOT" if p.hot else "", transactions_text(p))


BROKER_COLUMNS = ("ID", "HOST:PORT", "STATE", "ROLES", "QUORUM", "LEADERS", "PREF", "REPLICAS", "URP", "OFFLINE",
                  "OSR", "PID", "CPU%", "RSS")
#: How a node's state is shown: trouble in capitals, as ``DOWN`` always was.
_STATES = {BrokerState.RUNNING: "running", BrokerState.FENCED: "FENCED", BrokerState.DOWN: "DOWN"}


def address_text(host: str | None, port: int | None) -> str | None:
    """``host:port`` (IPv6 hosts in brackets), None when unknown."""
    if host is None or port is None:
        return None
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def broker_cells(b: BrokerView) -> tuple[Cell, ...]:
    """A node's row: QUORUM is its part in the metadata quorum (Leader = the active controller);
    LEADERS the partitions it leads and PREF those it should lead (it is their preferred leader,
    the first replica: leader imbalance when they differ); URP the under-replicated partitions it
    leads, OFFLINE the partitions it hosts that have no leader, OSR its replicas out of the ISR
    (Kafka's out-of-sync replicas); PID, CPU% and RSS only for a `pko cluster up` cluster."""
    node = b.node
    return (b.id, address_text(b.host, b.port), None if b.state is None else _STATES[b.state],
            ",".join(b.roles) or None, b.quorum_role, b.leaders, b.preferred_leaders, b.replicas, b.under_replicated,
            b.offline, b.out_of_sync,
            node.pid if node else None, None if node is None or node.cpu_percent is None else f"{node.cpu_percent:.1f}",
            bytes_text(node.rss_bytes) if node else None)


def alert_text(a: ReplicationAlert) -> str:
    """An alert on one line: ``WARN topic 'orders': 2 under-replicated partitions (0, 2)``."""
    return f"{a.level} {a.message}"


def quorum_text(quorum: MetadataQuorum | None) -> str:
    """``leader 2, epoch 7``; ``no leader, epoch 7`` during an election; ``-`` when unknown."""
    if quorum is None:
        return "-"
    leader = "no leader" if quorum.leader_id is None else f"leader {quorum.leader_id}"
    return f"{leader}, epoch {quorum.leader_epoch}"


def brokers_text(o: Overview) -> str:
    """``2 running, 1 fenced, 1 down`` (no fenced count when the cluster cannot say)."""
    fenced = f"{o.brokers_fenced} fenced, " if o.brokers_fenced is not None else ""
    return f"{o.brokers_running} running, {fenced}{o.brokers_down} down"


NODE_COLUMNS = ("NODE", "ROLES", "PID", "RUNNING", "CPU%", "RSS")


def node_cells(n: NodeProcess) -> tuple[Cell, ...]:
    """A node process's row."""
    return (n.node_id, ",".join(n.roles), n.pid, "yes" if n.running else "NO",
            None if n.cpu_percent is None else f"{n.cpu_percent:.1f}", bytes_text(n.rss_bytes))


HOT_COLUMNS = ("TOPIC", "PARTITION", "PRODUCE/S", "Z-SCORE", "MAX-LAG")


def hot_cells(h: HotPartition) -> tuple[Cell, ...]:
    """A hot partition's row."""
    return (h.topic, h.partition, rate_text(h.produce_rate), f"{h.z_score:.2f}", h.max_lag)


MEMBER_COLUMNS = ("CONSUMER-ID", "CLIENT-ID", "HOST", "#PARTITIONS", "ASSIGNMENT")


def assignment_text(assignment: Sequence[TopicPartition]) -> str:
    """``orders:0,1,2 payments:3`` (topics in order, partitions grouped)."""
    by_topic: dict[str, list[str]] = {}
    for tp in assignment:
        by_topic.setdefault(tp.topic, []).append(str(tp.partition))
    return " ".join(f"{topic}:{','.join(parts)}" for topic, parts in by_topic.items())


def member_cells(m: MemberDescription) -> tuple[Cell, ...]:
    """A group member's row."""
    return (m.consumer_id, m.client_id, m.host, len(m.assignment), assignment_text(m.assignment))


RECORD_COLUMNS = ("PARTITION", "OFFSET", "TIMESTAMP", "KEY", "VALUE")
#: Characters of a value a tail row shows.
VALUE_PREVIEW = 80


def _preview(data: bytes | None) -> str:
    if data is None:
        return "(null)"
    text = data[:VALUE_PREVIEW * 4].decode("utf-8", errors="replace")
    text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return text if len(text) <= VALUE_PREVIEW else text[:VALUE_PREVIEW - 1] + "…"


def timestamp_text(ms: int | None) -> str | None:
    """Local time with milliseconds."""
    if ms is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) + f".{ms % 1000:03d}"


def record_cells(r: ConsumedRecord) -> tuple[Cell, ...]:
    """A tailed record's row: key and value previews (UTF-8, control characters escaped)."""
    return (r.partition, r.offset, timestamp_text(r.timestamp), _preview(r.key), _preview(r.value))
