"""Replication health as operators read it: per broker (Kafka's UnderReplicatedPartitions,
OfflinePartitionsCount and leader imbalance, per node) and the alerts `pko lag` and `pko monitor`
raise for under-replicated and offline partitions, and for hanging transactions
(``models.transactions``).

Kafka's words: a partition is **under-replicated** when its ISR is smaller than its replica list,
**offline** when it has no leader, and its **preferred leader** is the first replica of its
assignment (what preferred-leader election and ``auto.leader.rebalance.enable`` restore).
"""

from __future__ import annotations

from dataclasses import dataclass

from pykafka_ops.models.transactions import HangingTransaction

#: The kinds of alert.
UNDER_REPLICATED, OFFLINE, HANGING_TRANSACTION = "under_replicated", "offline", "hanging_transaction"


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
    """A topic with under-replicated or offline partitions, or hanging transactions. ``level`` is
    a ``Status`` name, so it orders with the group statuses: ``WARN`` for under-replicated (one
    more failure from losing acknowledged writes, or from refusing acks=all), ``ERR`` for offline
    (nothing can be produced to or fetched from those partitions) and for a hanging transaction
    (read_committed consumers of the partition are stuck until it is aborted).

    Two alerts are equal when they name the same partitions (and, for hanging transactions, the
    same transactions: a transaction's high watermark, which moves from poll to poll, is not
    compared), so an alert that stays the same rings once."""

    topic: str
    kind: str
    """``UNDER_REPLICATED``, ``OFFLINE`` or ``HANGING_TRANSACTION``."""
    partitions: tuple[int, ...]
    level: str
    transactions: tuple[HangingTransaction, ...] = ()
    """The hanging transactions, by partition (``HANGING_TRANSACTION`` only)."""

    @property
    def message(self) -> str:
        """``topic 'orders': 2 under-replicated partitions (0, 2)``; for hanging transactions the
        producer of each, and the command that ends it."""
        plural = "s" if len(self.partitions) != 1 else ""
        listed = f"({', '.join(map(str, self.partitions))})"
        if self.kind != HANGING_TRANSACTION:
            what = "offline" if self.kind == OFFLINE else "under-replicated"
            return f"topic '{self.topic}': {len(self.partitions)} {what} partition{plural} {listed}"
        text = f"topic '{self.topic}': hanging transaction{plural} on {len(self.partitions)} partition{plural} {listed}"
        if self.transactions:
            text += ": " + "; ".join(_hanging_text(t) for t in self.transactions)
            text += ("; abort it with " + self.transactions[0].abort_command if len(self.transactions) == 1 else
                     f"; see pko transactions find-hanging --topic {self.topic}")
        return text


def _hanging_text(t: HangingTransaction) -> str:
    producer = f"producer id {t.producer_id}" if t.producer_id is not None else "producer unknown"
    return (f"partition {t.partition} {producer}, last stable offset {t.last_stable_offset} behind the "
            f"high watermark {t.high_watermark} for longer than transaction.max.timeout.ms")
