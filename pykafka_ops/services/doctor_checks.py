"""The checks of `pko doctor`: pure functions from a ``DoctorInput`` to findings, no I/O.

Each check reads what the monitor already computed for the window (``MonitorFrame``: produce
rates and z-scores from log-end offsets, Burrow-style statuses, time lags, replication and
hanging-transaction alerts) plus the key samples and configs ``services.doctor`` gathers, and
returns one ``Finding`` per problem with the command that fixes it. ``run_checks`` runs them
all, worst finding first. Thresholds come from ``DoctorOptions``; the durability checks
(``doctor_durability``) look at ``--critical-topics`` only.
"""

from __future__ import annotations

from collections.abc import Callable

from pykafka_ops.models.doctor import (
    CheckSkipped,
    DoctorInput,
    DoctorOptions,
    Finding,
    Severity,
    Subject,
)
from pykafka_ops.models.monitor import GroupView, PartitionView, Status, TopicView
from pykafka_ops.models.replication import HANGING_TRANSACTION
from pykafka_ops.models.skew import KEY_NULL
from pykafka_ops.services.doctor_durability import (
    SHRINK_CAVEAT,
    check_durability,
    check_producer_acks,
    check_replication,
)
from pykafka_ops.services.doctor_throttles import check_replication_throttles

Check = Callable[[DoctorInput, DoctorOptions], list[Finding]]

#: Kafka's caveats on a fix that adds partitions.
REMAP_CAVEAT = ("adding partitions remaps keys: records of a key written before and after the change can land in "
                "different partitions, so per-key ordering breaks across it")
#: What-if template a hot key is tried with: the key salted over 8 sub-keys.
SALTED_KEY = "{key}:{offset%8}"
#: A z-score alone is not enough: the partition must also take this many times the mean rate.
HOT_Z_MIN_RATIO = 1.5
COMPOSITE_CAVEAT = ("a composite key splits one key's records over several partitions: ordering then holds per "
                    "sub-key only; prefer a field that keeps the order you need, e.g. '{key}:{value.region}'")


def _user_topics(data: DoctorInput, options: DoctorOptions) -> list[TopicView]:
    """Non-internal topics that pass ``--topic``."""
    return [t for t in data.frame.topics if not t.internal and options.wants_topic(t.name)]


def _groups(data: DoctorInput, options: DoctorOptions) -> list[GroupView]:
    return [g for g in data.frame.groups if options.wants_group(g.group_id)]


def check_hot_partitions(data: DoctorInput, options: DoctorOptions) -> list[Finding]:
    """Partitions written much faster than their siblings over the window, and topics whose partitions
    hold very different record counts. A partition is hot when its rate is ``size_skew`` × the topic's
    mean, or its z-score exceeds ``hot_z`` while its rate is ``HOT_Z_MIN_RATIO`` × the mean (on many
    partitions noise alone gives z > 2). Topics with fewer than ``min_partition_writes`` records per
    partition in the window (idle or slow ones) are not judged: too few writes to tell."""
    found = []
    b = data.bootstrap_servers
    for t in _user_topics(data, options):
        parts = t.partitions
        if len(parts) < 2:
            continue
        rates = [p.produce_rate or 0.0 for p in parts]
        total = sum(rates)
        if total > 0 and total * data.window_s / len(parts) >= options.min_partition_writes:
            mean = total / len(parts)
            for p, rate in zip(parts, rates):
                if rate / mean >= options.size_skew or (p.z_score > options.hot_z and rate / mean >= HOT_Z_MIN_RATIO):
                    found.append(Finding(
                        "hot-partition", Severity.WARN, Subject("partition", t.name, p.partition),
                        {"produce_rate": round(rate, 2), "topic_mean_rate": round(mean, 2),
                         "z_score": round(p.z_score, 2), "share_of_writes": round(rate / total, 3)},
                        "one partition takes most writes, so one consumer does most of the work and lags first",
                        f"pko skew {t.name} -b {b} --what-if-key '{SALTED_KEY}'", (COMPOSITE_CAVEAT,)))
        sizes = [p.records for p in parts if p.records is not None]
        if len(sizes) == len(parts) and sum(sizes) >= options.min_topic_records:
            mean_size = sum(sizes) / len(sizes)
            largest = max(range(len(sizes)), key=lambda i: sizes[i])
            if sizes[largest] / mean_size >= options.size_skew:
                found.append(Finding(
                    "partition-size-skew", Severity.INFO, Subject("topic", t.name),
                    {"largest_partition": parts[largest].partition, "records": sizes[largest],
                     "mean_records": round(mean_size, 1), "max_over_mean": round(sizes[largest] / mean_size, 2)},
                    "uneven partitions mean uneven disks, retention and catch-up times",
                    f"pko skew {t.name} -b {b}", (COMPOSITE_CAVEAT,)))
    return found


def check_hot_keys(data: DoctorInput, options: DoctorOptions) -> list[Finding]:
    """Keys carrying at least ``key_share`` of a topic's sampled writes, with the what-if that
    salts them (from the same sample)."""
    found = []
    b = data.bootstrap_servers
    for topic, report in sorted(data.key_samples.items()):
        if not options.wants_topic(topic) or report.partition_count < 2 or report.scanned < options.min_key_sample:
            continue
        predicted = next((w for w in report.what_if if w.key_template == SALTED_KEY), None)
        for heavy in report.heavy_hitters:
            if heavy.key == KEY_NULL or heavy.share_of_topic < options.key_share:
                continue
            evidence: dict[str, int | float | str | None] = {
                "key": heavy.key, "partition": heavy.partition, "share_of_writes": round(heavy.share_of_topic, 3),
                "sampled_records": report.scanned, "max_over_mean": round(report.imbalance.max_over_mean, 2)}
            if predicted is not None:
                evidence["salted_max_over_mean"] = round(predicted.predicted.max_over_mean, 2)
            found.append(Finding(
                "hot-key", Severity.WARN, Subject("partition", topic, heavy.partition), evidence,
                "equal keys always hash to one partition: this key alone caps the topic's parallelism",
                f"pko skew {topic} -b {b} --what-if-key '{SALTED_KEY}'",
                (COMPOSITE_CAVEAT, "more partitions do not split a single key; " + REMAP_CAVEAT)))
    return found


#: Mixed partitioners are reported only when the partitioners seen explain this share of the sampled
#: placements: keyed records sent to explicit (random) partitions also make every candidate
#: "explain" some placements alone, but leave many that none explains.
MIXED_MAX_UNEXPLAINED = 0.05
#: The partitioner pko's own producers use (`pko produce` default), Java's murmur2 in librdkafka.
JAVA_PARTITIONER = "murmur2_random"


def check_mixed_partitioners(data: DoctorInput, options: DoctorOptions) -> list[Finding]:
    """Topics whose sampled keys were placed by more than one partitioner (the skew sample's
    forensics), e.g. librdkafka's default consistent_random (CRC-32) next to Java's murmur2: the
    same key then lands in two partitions, so per-key ordering breaks. Samples with more than
    ``MIXED_MAX_UNEXPLAINED`` of placements no candidate explains (explicit partitions) are not judged."""
    found = []
    for topic, report in sorted(data.key_samples.items()):
        forensics = report.forensics
        if (forensics is None or not forensics.mixed or not options.wants_topic(topic)
                or report.partition_count < 2 or report.scanned < options.min_key_sample
                or forensics.unexplained > MIXED_MAX_UNEXPLAINED * forensics.placements):
            continue
        fits = {f.partitioner: f for f in forensics.fits}
        seen = sorted(forensics.partitioners, key=lambda name: (-fits[name].share, name))
        evidence: dict[str, int | float | str | None] = {"partitioners": ",".join(seen)}
        evidence.update({f"{name}_share": round(fits[name].share, 3) for name in seen})
        evidence.update({"placements": forensics.placements, "split_keys": forensics.split_key_count,
                         "sampled_records": report.scanned})
        if forensics.split_keys:
            example = forensics.split_keys[0]
            evidence.update({"example_key": example.key,
                             "example_partitions": ",".join(map(str, example.partitions))})
        others = [name for name in seen if name != JAVA_PARTITIONER]
        found.append(Finding(
            "mixed-partitioners", Severity.WARN, Subject("topic", topic), evidence,
            "producers hash keys differently: the same key lands in two partitions, so its records lose their order",
            f"set partitioner={JAVA_PARTITIONER} in every librdkafka-based producer of {topic} "
            f"(pko produce's default; Java clients hash with murmur2 already)",
            ("records already written stay where they are: a key's older and newer records sit in different "
             "partitions until retention removes the old ones",
             f"the producers now using {', '.join(others)} move their keys; if no Java producer writes "
             f"{topic}, settling on the partitioner with the largest share moves fewer keys",
             "clients outside librdkafka must hash with murmur2 too (Sarama's default is FNV-1a)")))
    return found


def _partition_counts(data: DoctorInput) -> dict[str, int]:
    return {t.name: len(t.partitions) for t in data.frame.topics}


def _scale_fix(g: GroupView, data: DoctorInput) -> tuple[str, tuple[str, ...]]:
    """Add consumers while the group has fewer members than partitions, else partitions."""
    counts = _partition_counts(data)
    topics = sorted({p.topic for p in g.partitions})
    partitions = sum(counts.get(t, 0) for t in topics)
    if g.members < partitions:
        return (f"scale group {g.group_id} out to up to {partitions} consumers (one per partition), "
                "or make each record cheaper to process", ())
    topic = topics[0] if topics else "TOPIC"
    return (f"pko topics -b {data.bootstrap_servers} --alter --topic {topic} --partitions {2 * counts.get(topic, 1)}",
            (SHRINK_CAVEAT, REMAP_CAVEAT))


def check_consumer_lag(data: DoctorInput, options: DoctorOptions) -> list[Finding]:
    """Groups with members whose lag grows (WARN), whose consumer made no progress (STALL), or
    with a partition nobody owns (STOP), judged by the monitor's status rules over the window."""
    severities = {Status.WARN: Severity.WARN, Status.STALL: Severity.ERROR, Status.STOP: Severity.WARN}
    found = []
    for g in _groups(data, options):
        severity = severities.get(g.status)
        if severity is None or g.members == 0:
            continue
        fix, caveats = _scale_fix(g, data)
        found.append(Finding(
            "consumer-lag", severity, Subject("group", g.group_id),
            {"status": g.status.name, "reason": g.reason, "lag": g.total_lag,
             "time_lag_s": None if g.max_lag_seconds is None else round(g.max_lag_seconds, 1),
             "consume_rate": None if g.consume_rate is None else round(g.consume_rate, 2), "members": g.members},
            "the group falls further behind its producers: downstream data gets later and later", fix, caveats))
    return found


def check_stalled_groups(data: DoctorInput, options: DoctorOptions) -> list[Finding]:
    """Groups with no members whose committed offsets are behind the log end."""
    found = []
    for g in _groups(data, options):
        behind = [p for p in g.partitions if p.lag is not None and p.lag > 0]
        if g.members or not behind or g.error:
            continue
        topics = sorted({p.topic for p in behind})
        found.append(Finding(
            "stalled-group", Severity.WARN, Subject("group", g.group_id),
            {"state": g.state, "lag": g.total_lag, "partitions_behind": len(behind), "topics": ",".join(topics),
             "time_lag_s": None if g.max_lag_seconds is None else round(g.max_lag_seconds, 1)},
            "nobody consumes for this group: its backlog only grows until retention deletes it",
            f"pko consumer-groups -b {data.bootstrap_servers} --group {g.group_id} --reset-offsets --to-latest "
            "--all-topics --execute",
            ("restart its consumers instead if the backlog must be processed; --to-latest skips every unconsumed "
             f"record; a group no one uses any more: pko consumer-groups -b {data.bootstrap_servers} --delete "
             f"--group {g.group_id}",)))
    return found


def check_retention_risk(data: DoctorInput, options: DoctorOptions) -> list[Finding]:
    """Committed offsets whose record retention is about to delete (or already deletes): loss in =
    retention.ms − the time lag (now − timestamp of the record at the committed offset)."""
    retention = {t.name: t.retention_ms for t in data.frame.topics}
    found = []
    for g in _groups(data, options):
        worst: dict[str, tuple[float, PartitionView]] = {}
        for p in g.partitions:
            retention_ms = retention.get(p.topic)
            if (not p.lag or p.lag <= 0 or p.lag_seconds is None or retention_ms is None
                    or not options.wants_topic(p.topic)):
                continue
            loss_in = retention_ms / 1000 - p.lag_seconds
            if loss_in <= 0 or (loss_in < options.retention_margin_s
                                and p.lag_seconds >= options.retention_share * retention_ms / 1000):
                if p.topic not in worst or loss_in < worst[p.topic][0]:
                    worst[p.topic] = (loss_in, p)
        for topic, (loss_in, p) in sorted(worst.items()):
            retention_ms = retention[topic] or 0
            found.append(Finding(
                "retention-risk", Severity.ERROR if loss_in <= 0 else Severity.WARN, Subject("group", g.group_id),
                {"topic": topic, "partition": p.partition, "lag": p.lag,
                 "time_lag_s": round(p.lag_seconds or 0.0, 1), "retention_s": retention_ms / 1000,
                 "loss_in_s": round(loss_in, 1)},
                "records the group has not read yet are deleted by retention: it will skip them without an error",
                f"pko configs -b {data.bootstrap_servers} --alter --topic {topic} --add-config "
                f"retention.ms={2 * retention_ms}",
                ("longer retention costs disk; the lasting fix is a group that keeps up",)))
    return found


def check_assignments(data: DoctorInput, options: DoctorOptions) -> list[Finding]:
    """Stable groups with idle members (more members than partitions to assign) or unbalanced
    assignments (most / fewest partitions per assigned member at or above the ratio)."""
    found = []
    b = data.bootstrap_servers
    counts = _partition_counts(data)
    for g in _groups(data, options):
        members = g.description.members
        if g.state != "Stable" or not members:
            continue
        sizes = [len(m.assignment) for m in members]
        topics = sorted({tp.topic for m in members for tp in m.assignment})
        idle = sizes.count(0)
        if idle:
            topic = topics[0] if topics else "TOPIC"
            found.append(Finding(
                "idle-consumers", Severity.WARN, Subject("group", g.group_id),
                {"members": len(members), "idle_members": idle, "assigned_partitions": sum(sizes),
                 "topics": ",".join(topics)},
                "a partition is consumed by one member at most: members beyond the partition count only wait",
                f"pko topics -b {b} --alter --topic {topic} --partitions {max(len(members), counts.get(topic, 0))}",
                (f"or run {sum(sizes)} consumers", SHRINK_CAVEAT, REMAP_CAVEAT)))
        assigned = [s for s in sizes if s]
        if len(assigned) >= 2 and max(assigned) - min(assigned) >= 2 and \
                max(assigned) / min(assigned) >= options.max_assignment_ratio:
            found.append(Finding(
                "unbalanced-assignment", Severity.WARN, Subject("group", g.group_id),
                {"members": len(assigned), "most_partitions": max(assigned), "fewest_partitions": min(assigned),
                 "assignor": g.description.partition_assignor or None},
                "the member with the most partitions sets the group's pace",
                f"set partition.assignment.strategy=cooperative-sticky (or roundrobin) in the consumers of "
                f"{g.group_id}", ()))
    return found


def check_partition_budget(data: DoctorInput, options: DoctorOptions) -> list[Finding]:
    """Brokers hosting more partition replicas than the budget, and nodes of ours near their open-files limit."""
    found = []
    b = data.bootstrap_servers
    for broker in data.frame.brokers:
        if broker.is_broker and broker.replicas > options.max_partitions_per_broker:
            found.append(Finding(
                "partitions-per-broker", Severity.WARN, Subject("broker", str(broker.id)),
                {"replicas": broker.replicas, "leaders": broker.leaders, "budget": options.max_partitions_per_broker},
                "each partition costs files, memory and leader-election time: failover gets slow",
                f"pko topics -b {b} --describe  (size each topic's partitions from its measured throughput)",
                (SHRINK_CAVEAT, "or add brokers and move replicas to them")))
    for node in data.node_files:
        if node.limit and node.open_files / node.limit >= options.max_open_files_share:
            found.append(Finding(
                "open-files", Severity.WARN, Subject("broker", str(node.node_id)),
                {"pid": node.pid, "open_files": node.open_files, "limit": node.limit,
                 "share": round(node.open_files / node.limit, 3)},
                "a node that reaches its open-files limit cannot open segments or accept connections",
                f"raise the limit of node {node.node_id} (ulimit -n, LimitNOFILE) or host fewer partitions",
                (SHRINK_CAVEAT,)))
    return found


def check_hanging_transactions(data: DoctorInput, options: DoctorOptions) -> list[Finding]:
    """Transactions holding a partition's last stable offset past transaction.max.timeout.ms."""
    found = []
    for alert in data.frame.alerts:
        if alert.kind != HANGING_TRANSACTION or not options.wants_topic(alert.topic):
            continue
        for h in alert.transactions:
            found.append(Finding(
                "hanging-transaction", Severity.ERROR, Subject("partition", h.topic, h.partition),
                {"producer_id": h.producer_id, "last_stable_offset": h.last_stable_offset,
                 "high_watermark": h.high_watermark, "stuck_s": round(h.stuck_s(int(data.frame.taken_at * 1000)), 1)},
                "read_committed consumers of this partition cannot read past the open transaction",
                f"{h.abort_command} -b {data.bootstrap_servers}", ()))
    return found


#: Every check, by the name its findings carry (``--skip`` names these).
CHECKS: dict[str, Check] = {
    "hot-partitions": check_hot_partitions,
    "hot-keys": check_hot_keys,
    "mixed-partitioners": check_mixed_partitioners,
    "consumer-lag": check_consumer_lag,
    "stalled-groups": check_stalled_groups,
    "retention-risk": check_retention_risk,
    "assignments": check_assignments,
    "partition-budget": check_partition_budget,
    "replication": check_replication,
    "durability": check_durability,
    "producer-acks": check_producer_acks,
    "hanging-transactions": check_hanging_transactions,
    "replication-throttles": check_replication_throttles,
}


def run_checks(data: DoctorInput, options: DoctorOptions) -> tuple[tuple[Finding, ...], tuple[tuple[str, str], ...]]:
    """Every check's findings, worst first (then by check and subject), and (check, why) of the
    checks that could not run."""
    findings: list[Finding] = []
    skipped = []
    for name, check in CHECKS.items():
        try:
            findings += check(data, options)
        except CheckSkipped as exc:
            skipped.append((name, str(exc)))
    findings.sort(key=lambda f: (-f.severity, f.check, str(f.subject)))
    return tuple(findings), tuple(skipped)

