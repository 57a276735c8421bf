"""Hanging transactions as the monitor and `pko lag` see them from outside the cluster.

A partition's **last stable offset** (LSO, KIP-98) is the first offset of its oldest open
transaction, or the high watermark when none is open; read_committed consumers read only below
it, and the log cleaner stops there. A coordinator aborts a transaction after its
``transaction.timeout.ms``, never above the broker's ``transaction.max.timeout.ms``; a transaction
that keeps the LSO behind the high watermark for longer than that is one no coordinator will end
— a **hanging transaction** (KIP-664): the partition's read_committed consumers are stuck until an
operator aborts it (`pko transactions abort`, Kafka's ``kafka-transactions.sh abort``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HangingTransaction:
    """A partition whose LSO has been stuck behind its high watermark for longer than
    ``transaction.max.timeout.ms``, and the producer whose open transaction holds it there."""

    topic: str
    partition: int
    last_stable_offset: int
    high_watermark: int = field(compare=False)
    """Moves while the transaction hangs: not part of what makes two of them the same."""
    started_ms: int
    """Timestamp of the record at the LSO, the transaction's first: since when the LSO is stuck."""
    producer_id: int | None = None
    """The producer whose open transaction starts at the LSO (DescribeProducers); None when the
    leader did not say (an older broker, an error)."""
    producer_epoch: int | None = None

    def stuck_s(self, now_ms: int) -> float:
        """Seconds since the transaction's first record."""
        return max(0, now_ms - self.started_ms) / 1000

    @property
    def abort_command(self) -> str:
        """The `pko transactions` command that ends it (KIP-664's abort by start offset)."""
        return (f"pko transactions abort --topic {self.topic} --partition {self.partition} "
                f"--start-offset {self.last_stable_offset}")
