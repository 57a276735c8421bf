"""Replication health as operators read it: per broker (Kafka's UnderReplicatedPartitions,
OfflinePartitionsCount and leader imbalance, per node) and the alerts `pko lag` and `pko monitor`
raise for under-replicated and offline partitions.

Kafka's words: a partition is **under-replicated** when its ISR is smaller than its replica list,
**offline** when it has no leader, and its **preferred leader** is the first replica of its
assignment (what preferred-leader election and ``auto.leader.rebalance.enable`` restore).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The kinds of replication alert, worst last.
UNDER_REPLICATED, OFFLINE = "under_replicated", "offline"


@dataclass(frozen=True)
class BrokerReplication:
    """One broker's share of the partitions of a Metadata answer (every field a partition count)."""

    broker_id: int
    replicas: int = 0
    """Partitions it hosts a replica of."""
    leaders: int = 0
    """Partitions it leads (Kafka's LeaderCount)."""
    preferred_leaders: int = 0
    """Partitions whose preferred leader (first replica) it is: the ones it should lead."""
    preferred_led: int = 0
    """Partitions it should lead and does."""
    under_replicated: int = 0
    """Under-replicated partitions it leads (Kafka's UnderReplicatedPartitions, counted on the leader)."""
    offline: int = 0
    """Partitions it hosts that have no leader."""
    out_of_sync: int = 0
    """Partitions it hosts a replica of that is not in the ISR."""

    @property
    def leader_imbalance(self) -> int:
        """Partitions it should lead but does not (what a preferred-leader election would move to it)."""
        return self.preferred_leaders - self.preferred_led

    @property
    def imbalance_ratio(self) -> float | None:
        """``leader_imbalance`` / ``preferred_leaders`` (Kafka's leader.imbalance.per.broker.percentage
        compares this, as a percentage); None when it should lead nothing."""
        return self.leader_imbalance / self.preferred_leaders if self.preferred_leaders else None


@dataclass(frozen=True)
class IsrChangeCounts:
    """ISR changes of a node's partitions, counted from the metadata log (see ``services.isr_history``)."""

    shrinks: int = 0
    """ISR shrinks that removed this node from a partition's ISR."""
    expands: int = 0
    """ISR expansions that added it back."""


@dataclass(frozen=True)
class ReplicationAlert:
    """A topic with under-replicated or offline partitions. ``level`` is a ``Status`` name, so it
    orders with the group statuses: ``WARN`` for under-replicated (one more failure from losing
    acknowledged writes, or from refusing acks=all), ``ERR`` for offline (nothing can be produced
    to or fetched from those partitions)."""

    topic: str
    kind: str
    """``UNDER_REPLICATED`` or ``OFFLINE``."""
    partitions: tuple[int, ...]
    level: str

    @property
    def message(self) -> str:
        """``topic 'orders': 2 under-replicated partitions (0, 2)``."""
        what = "offline" if self.kind == OFFLINE else "under-replicated"
        plural = "s" if len(self.partitions) != 1 else ""
        return (f"topic '{self.topic}': {len(self.partitions)} {what} partition{plural} "
                f"({', '.join(map(str, self.partitions))})")
