"""Replication health from partition states (leader, replicas, ISR): pure functions, no I/O.

Used by `pko cluster status` (per node), the monitor's brokers and topics views and the alerts of
`pko lag` and `pko monitor`, so that they all count the same way:

* **under-replicated**: ISR smaller than the replica list, replicas a reassignment is adding left
  out (kafka-topics' ``--under-replicated-partitions``), counted per broker on the leader as
  Kafka's UnderReplicatedPartitions metric is;
* **offline**: no leader (Kafka's OfflinePartitionsCount), counted per broker on every broker
  hosting a replica;
* **not on its preferred leader**: the leader is not the first replica of the assignment
  (Kafka's PreferredReplicaImbalanceCount, which counts offline partitions too); per broker, the
  partitions it should lead against those it leads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pykafka_ops.models.replication import (
    HANGING_TRANSACTION,
    OFFLINE,
    UNDER_REPLICATED,
    BrokerReplication,
    ReplicationAlert,
)
from pykafka_ops.models.transactions import HangingTransaction

#: Alert level of each kind (``Status`` names: they order with group statuses).
ALERT_LEVELS = {UNDER_REPLICATED: "WARN", OFFLINE: "ERR", HANGING_TRANSACTION: "ERR"}


class PartitionState(Protocol):
    """What these functions read of a partition (``PartitionDescription``, ``TopicPartitionView``)."""

    @property
    def partition(self) -> int: ...

    @property
    def leader(self) -> int | None: ...

    @property
    def replicas(self) -> tuple[int, ...]: ...

    @property
    def isr(self) -> tuple[int, ...]: ...

    @property
    def adding_replicas(self) -> tuple[int, ...]: ...


def is_under_replicated(p: PartitionState) -> bool:
    """ISR smaller than the replica list without the replicas a reassignment is adding (Kafka's
    ``Partition.isUnderReplicated``: an ongoing reassignment's replication factor leaves them out)."""
    return len(p.isr) < len(p.replicas) - len(p.adding_replicas)


def is_offline(p: PartitionState) -> bool:
    """No leader."""
    return p.leader is None


def is_not_preferred(p: PartitionState) -> bool:
    """Led by another broker than its first replica, or by none."""
    return bool(p.replicas) and p.leader != p.replicas[0]


@dataclass
class _Tally:
    replicas: int = 0
    leaders: int = 0
    preferred_leaders: int = 0
    preferred_led: int = 0
    under_replicated: int = 0
    offline: int = 0
    out_of_sync: int = 0


def broker_replication(partitions: Iterable[PartitionState],
                       brokers: Iterable[int] = ()) -> dict[int, BrokerReplication]:
    """Per broker id (every broker named by a partition, and every id of ``brokers``), its counts."""
    tallies: dict[int, _Tally] = {b: _Tally() for b in brokers}

    def tally(broker: int) -> _Tally:
        return tallies.setdefault(broker, _Tally())

    for p in partitions:
        leader, replicas, isr = p.leader, p.replicas, p.isr
        for broker in replicas:
            t = tally(broker)
            t.replicas += 1
            t.offline += leader is None
            t.out_of_sync += broker not in isr
        if replicas:
            preferred = tally(replicas[0])
            preferred.preferred_leaders += 1
            preferred.preferred_led += leader == replicas[0]
        if leader is not None:
            t = tally(leader)
            t.leaders += 1
            t.under_replicated += is_under_replicated(p)
    return {b: BrokerReplication(b, **vars(t)) for b, t in sorted(tallies.items())}


def replication_alerts(topics: Iterable[tuple[str, Sequence[PartitionState]]]) -> tuple[ReplicationAlert, ...]:
    """One alert per (topic, kind) with partitions of that kind, by topic, offline first. A
    partition that is offline is not also reported under-replicated: offline is the worse news."""
    alerts = []
    for name, partitions in sorted(topics, key=lambda t: t[0]):
        offline = tuple(p.partition for p in partitions if is_offline(p))
        under = tuple(p.partition for p in partitions if not is_offline(p) and is_under_replicated(p))
        alerts += [ReplicationAlert(name, kind, parts, ALERT_LEVELS[kind])
                   for kind, parts in ((OFFLINE, offline), (UNDER_REPLICATED, under)) if parts]
    return tuple(alerts)


def hanging_alerts(hanging: Iterable[HangingTransaction]) -> tuple[ReplicationAlert, ...]:
    """One alert per topic with hanging transactions, by topic, partitions in order."""
    by_topic: dict[str, list[HangingTransaction]] = {}
    for h in sorted(hanging, key=lambda h: (h.topic, h.partition)):
        by_topic.setdefault(h.topic, []).append(h)
    return tuple(ReplicationAlert(topic, HANGING_TRANSACTION, tuple(h.partition for h in found),
                                  ALERT_LEVELS[HANGING_TRANSACTION], tuple(found))
                 for topic, found in by_topic.items())


def new_alerts(alerts: Sequence[ReplicationAlert],
               previous: Mapping[tuple[str, str], ReplicationAlert]) -> tuple[ReplicationAlert, ...]:
    """The alerts that were not raised at the previous poll, or now name other partitions
    (what the bell rings for; an alert that stays the same rings once)."""
    return tuple(a for a in alerts if previous.get((a.topic, a.kind)) != a)


def alerts_of_topics(alerts: Iterable[ReplicationAlert], topics: Iterable[str]) -> tuple[ReplicationAlert, ...]:
    """The ``alerts`` of the ``topics`` a view shows (`pko lag`: the topics its groups consume)."""
    shown = set(topics)
    return tuple(a for a in alerts if a.topic in shown)
