"""The durability checks of `pko doctor` (pure functions, as ``doctor_checks``): replication
alerts of every topic, and for the topics named by ``--critical-topics`` the settings that let
acknowledged writes be lost — replication factor, ``min.insync.replicas``, unclean leader
election, partitions under min ISR — and producers writing to them with acks=0/1 or without
idempotence (that evidence comes from our nodes' admin endpoints, ``doctor_producers``: on any
other cluster ``DoctorInput.produce_clients`` is None and the check reports itself skipped).
"""

from __future__ import annotations

from pykafka_ops.models.doctor import CheckSkipped, DoctorInput, DoctorOptions, Finding, Severity, Subject
from pykafka_ops.models.replication import OFFLINE, UNDER_REPLICATED

#: Kafka's caveat on any fix that needs fewer partitions.
SHRINK_CAVEAT = "partitions never shrink: fewer partitions means a new topic and moving producers and consumers to it"
#: The safe values for a critical topic.
MIN_REPLICATION_FACTOR, MIN_INSYNC = 3, 2


def check_replication(data: DoctorInput, options: DoctorOptions) -> list[Finding]:
    """Offline (error) and under-replicated (warn) partitions of every topic, from the monitor's alerts."""
    found = []
    for alert in data.frame.alerts:
        if alert.kind not in (OFFLINE, UNDER_REPLICATED) or not options.wants_topic(alert.topic):
            continue
        offline = alert.kind == OFFLINE
        found.append(Finding(
            alert.kind.replace("_", "-"), Severity.ERROR if offline else Severity.WARN, Subject("topic", alert.topic),
            {"partitions": ",".join(map(str, alert.partitions)), "count": len(alert.partitions)},
            "no leader: nothing can be written to or read from these partitions" if offline else
            "one more broker failure from losing acknowledged writes, or from refusing acks=all",
            f"pko topics -b {data.bootstrap_servers} --describe --topic {alert.topic} "
            f"{'--unavailable-partitions' if offline else '--under-replicated-partitions'}",
            ("bring the brokers named in REPLICAS but missing from ISR back up (pko cluster status)",)))
    return found


def check_durability(data: DoctorInput, options: DoctorOptions) -> list[Finding]:
    """RF < 3, min.insync.replicas < 2, unclean.leader.election.enable=true and partitions under
    min ISR, for every topic that matches ``--critical-topics``."""
    if options.critical_topics is None:
        raise CheckSkipped("no --critical-topics given")
    b = data.bootstrap_servers
    found = []
    for t in data.frame.topics:
        if not options.is_critical(t.name) or not options.wants_topic(t.name):
            continue
        subject = Subject("topic", t.name)
        if t.replication_factor < MIN_REPLICATION_FACTOR:
            found.append(Finding(
                "replication-factor", Severity.ERROR if t.replication_factor < 2 else Severity.WARN, subject,
                {"replication_factor": t.replication_factor, "wanted": MIN_REPLICATION_FACTOR,
                 "partitions": len(t.partitions)},
                "with fewer than 3 replicas one broker failure loses or blocks acknowledged writes",
                f"pko topics -b {b} --create --topic {t.name}-v2 --partitions {len(t.partitions)} "
                f"--replication-factor {MIN_REPLICATION_FACTOR}",
                ("the replication factor of an existing topic does not change with --alter: reassign its replicas "
                 "(kafka-reassign-partitions) or move producers and consumers to the new topic",)))
        configs = data.topic_configs.get(t.name)
        if configs is None:
            continue
        min_isr = _int(configs.get("min.insync.replicas"))
        if min_isr is not None and min_isr < MIN_INSYNC:
            found.append(Finding(
                "min-insync-replicas", Severity.WARN, subject,
                {"min.insync.replicas": min_isr, "replication_factor": t.replication_factor, "wanted": MIN_INSYNC},
                "acks=all is acknowledged by a single replica: losing it loses the write",
                f"pko configs -b {b} --alter --topic {t.name} --add-config min.insync.replicas={MIN_INSYNC}",
                ("with replication factor below 3, min.insync.replicas=2 refuses acks=all writes while one replica "
                 "is down: raise the replication factor first",)))
        if (configs.get("unclean.leader.election.enable") or "").lower() == "true":
            found.append(Finding(
                "unclean-leader-election", Severity.ERROR, subject, {"unclean.leader.election.enable": "true"},
                "an out-of-sync replica may become leader and silently drop acknowledged writes",
                f"pko configs -b {b} --alter --topic {t.name} --add-config unclean.leader.election.enable=false",
                ("a partition whose in-sync replicas are all down then stays offline until one returns",)))
        under = [p.partition for p in t.partitions if p.leader is not None and min_isr is not None
                 and len(p.isr) < min_isr]
        if under:
            found.append(Finding(
                "under-min-isr", Severity.ERROR, subject,
                {"partitions": ",".join(map(str, under)), "min.insync.replicas": min_isr},
                "producers with acks=all are refused (NOT_ENOUGH_REPLICAS) on these partitions",
                f"pko topics -b {b} --describe --topic {t.name} --under-min-isr-partitions",
                ("bring the missing replicas back in sync; lowering min.insync.replicas trades durability away",)))
    return found


def check_producer_acks(data: DoctorInput, options: DoctorOptions) -> list[Finding]:
    """Producers seen writing to critical topics with acks=0/1 (error) or without idempotence (warn)."""
    if data.produce_clients is None:
        raise CheckSkipped("needs -c cluster.yaml of a cluster of ours with admin_port (GET /v1/produce-clients)")
    if options.critical_topics is None:
        raise CheckSkipped("no --critical-topics given")
    found = []
    for c in sorted(data.produce_clients, key=lambda c: (c.topic, c.client_id)):
        if not options.is_critical(c.topic) or not options.wants_topic(c.topic):
            continue
        evidence = {"client_id": c.client_id, "acks": c.acks, "idempotent": str(c.idempotent).lower()}
        if c.acks != -1:
            found.append(Finding(
                "producer-acks", Severity.ERROR, Subject("topic", c.topic), evidence,
                f"acks={c.acks} returns before the write is replicated: a leader failure loses it",
                f"set acks=all and enable.idempotence=true in producer {c.client_id}", ()))
        elif not c.idempotent:
            found.append(Finding(
                "producer-idempotence", Severity.WARN, Subject("topic", c.topic), evidence,
                "retries of a non-idempotent producer can duplicate or reorder records",
                f"set enable.idempotence=true in producer {c.client_id}", ()))
    return found


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
