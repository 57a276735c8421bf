"""The transactional side of PartitionLog (KIP-98): last stable offset, aborted transactions.

* ``last_stable_offset`` — Kafka's ``UnifiedLog.lastStableOffset``: the first offset of a
  transaction still open (or completed by a marker the high watermark has not passed yet), else
  the high watermark. read_committed consumers read below it.
* ``collect_aborted_transactions`` — Kafka's ``UnifiedLog.collectAbortedTransactions``: the
  aborted transactions of the ``.txnindex`` files that overlap a fetched range, searched from
  the segment holding the fetch offset until an entry's LSO reaches the range's end.
* ``_complete_txns`` — after a marker is written (leader, follower or replay): an aborted
  transaction gets its ``.txnindex`` entry in the segment holding the marker (Kafka's
  ``LogSegment.updateTxnIndex``), then becomes unreplicated (``ProducerStateManager.completeTxn``).
* ``_replay_batch`` — the producer state rebuilt from a stored batch (load, truncation).

Concurrency: as PartitionLog (the node's event loop only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cluster.log.transaction_index import AbortedTxn
from cluster.log.transactions import CompletedTxn, end_txn_marker
from pykafka_ops.records.batch import (
    LENGTH,
    LOG_OVERHEAD,
    BatchHeader,
    read_batch_header,
)

if TYPE_CHECKING:
    from cluster.log.producer_state import ProducerStateManager
    from cluster.log.segment import LogSegment
    from cluster.log.segments import LogSegments


class LogTransactions:
    """Mixin of PartitionLog (which provides the attributes below)."""

    segments: LogSegments
    producer_state: ProducerStateManager
    high_watermark: int

    @property
    def last_stable_offset(self) -> int:
        """The LSO (see module docstring); never above the high watermark."""
        first_unstable = self.producer_state.first_unstable_offset(self.high_watermark)
        if first_unstable is None or first_unstable >= self.high_watermark:
            return self.high_watermark
        return first_unstable

    def collect_aborted_transactions(self, start_offset: int, upper_bound_offset: int) -> list[AbortedTxn]:
        """Aborted transactions with data in [start_offset, upper_bound_offset)."""
        found: list[AbortedTxn] = []
        for segment in self.segments.from_index(self.segments.floor(start_offset)):
            entries, complete = segment.txn_index.collect(start_offset, upper_bound_offset)
            found.extend(entries)
            if complete:
                break
        return found

    def _complete_txns(self, segment: LogSegment, completed: list[CompletedTxn]) -> None:
        state = self.producer_state
        for txn in completed:
            if txn.is_aborted and txn.last_offset > segment.txn_index.last_offset:  # a replay adds no twin
                segment.txn_index.append(AbortedTxn(txn.producer_id, txn.first_offset, txn.last_offset,
                                                    state.last_stable_offset_after(txn)))
            state.complete_txn(txn)

    def _replay_batch(self, segment: LogSegment, position: int, header: BatchHeader) -> None:
        """Update the producer state from a batch already in ``segment`` (no checks)."""
        if header.producer_id < 0:
            return
        marker = end_txn_marker(header, segment.read(position, header.size)) if header.is_control else None
        completed = self.producer_state.update(header, marker=marker)
        if completed is not None:
            self._complete_txns(segment, [completed])


def fetched_upper_bound(data: bytes | memoryview, default: int) -> int:
    """The offset after the last whole batch of fetched ``data`` (``default`` if none): the end
    of the range whose aborted transactions a read_committed answer lists."""
    pos, last = 0, None
    while pos + LOG_OVERHEAD <= len(data):
        size = int.from_bytes(data[pos + LENGTH: pos + LOG_OVERHEAD], "big", signed=True) + LOG_OVERHEAD
        if pos + size > len(data):
            break
        last = pos
        pos += size
    if last is None:
        return default
    return read_batch_header(data, last).last_offset + 1
