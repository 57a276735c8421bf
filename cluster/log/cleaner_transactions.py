"""The transactional side of the log cleaner (KIP-98, KIP-534): aborted data, markers, horizons.

Kafka's ``CleanedTransactionMetadata`` and the batch-retention part of ``Cleaner.filterInto``,
for one cleaning pass over the segments below the last stable offset, read in offset order:

* **aborted data** — a transactional data batch inside an aborted transaction (the ``.txnindex``
  entries) is removed.
* **markers** — a COMMIT/ABORT control batch is *empty* when no transactional batch of its
  producer was written to the cleaned output since that producer's previous marker: its
  transaction's data is gone (compacted away, or aborted and removed by this very pass). An empty
  marker is not removed at once (KIP-534): the first pass that finds it empty rewrites its batch
  with the delete-horizon flag (attributes bit 6) and ``deleteHorizonMs`` = now +
  delete.retention.ms in the base-timestamp field, as Kafka's ``MemoryRecords.filterTo`` does; a
  pass after that horizon removes it. A consumer that read the transaction's data therefore still
  meets its marker for delete.retention.ms.
* **aborted-transaction index** — an entry stays in the cleaned segment's ``.txnindex`` only while
  its ABORT marker is not empty (Kafka appends it to the cleaned index then): with the data gone a
  read_committed consumer has nothing to filter.
* **producer state** (Kafka's ``isBatchLastRecordOfProducer``) — the batch holding an active
  producer's last data offset, or, if the producer has no data left in its state, its last marker
  of the current epoch, is kept even when everything in it goes (as an empty batch with the
  producer fields, Kafka's ``BatchRetention.RETAIN_EMPTY``), so the log still carries that
  producer's last sequence and epoch. Such a kept transactional batch counts as data of its
  transaction: its marker stays, so a replay of the log never opens a transaction without its end.

Kafka keeps a marker (and its index entry) through the pass that removes its transaction's data
and stamps it one pass later; here that pass stamps it already, since the cleaner knows what it
removed (the cleaned range is the whole log below the LSO, from its first segment, so no
transaction's data lies outside it).

Concurrency: built on the event loop (from the partition's producer state and indexes), then used
by the cleaner's worker thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from crc32c import crc32c

from cluster.log.transaction_index import AbortedTxn
from cluster.log.transactions import end_txn_marker
from pykafka_ops.records.batch import (
    ATTRIBUTES,
    CRC,
    DELETE_HORIZON_FLAG_MASK,
    HEADER_SIZE,
    HEADER_STRUCT,
    MIN_BATCH_LENGTH,
    BatchHeader,
    Compression,
)
from pykafka_ops.records.builder import RecordBatchBuilder
from pykafka_ops.records.compression import compress, decompress
from pykafka_ops.records.record import ControlRecordType, read_record, write_record

if TYPE_CHECKING:
    from cluster.log.producer_state import ProducerStateManager


class LastRecord(NamedTuple):
    """An active producer's last entry in the log (Kafka's ``LastRecord``)."""

    last_data_offset: int | None
    """Last offset of its newest data batch; None when its state holds no batch (its newest entry
    is then a marker of ``epoch``)."""
    epoch: int


def last_records_of_active_producers(state: ProducerStateManager) -> dict[int, LastRecord]:
    """Producer id → its last entry, for every producer the partition's state remembers."""
    return {pid: LastRecord(e.batches[-1].last_offset if e.batches else None, e.epoch)
            for pid, e in state.producers.items()}


def delete_horizon_ms(header: BatchHeader) -> int | None:
    """The batch's KIP-534 delete horizon (its base timestamp when attributes bit 6 is set)."""
    return header.base_timestamp if header.attributes & DELETE_HORIZON_FLAG_MASK else None


def with_delete_horizon(header: BatchHeader, data: bytes, horizon_ms: int) -> bytes:
    """The batch ``data`` with the delete-horizon flag and ``horizon_ms`` as its base timestamp;
    the records' timestamp deltas are re-based so each keeps its timestamp (Kafka's
    ``MemoryRecordsBuilder`` with a deleteHorizonMs), and the CRC is recomputed."""
    section = memoryview(data)[HEADER_SIZE:header.size]
    plain = section if header.compression == Compression.NONE else decompress(header.compression, section)
    records = bytearray()
    pos = 0
    for _ in range(header.records_count):
        record, pos = read_record(plain, pos, header.base_offset, header.base_timestamp)
        write_record(records, record.offset - header.base_offset, record.timestamp - horizon_ms,
                     record.key, record.value, record.headers)
    body = compress(header.compression, records)
    batch = bytearray(HEADER_STRUCT.pack(*header._replace(
        batch_length=MIN_BATCH_LENGTH + len(body), crc=0, attributes=header.attributes | DELETE_HORIZON_FLAG_MASK,
        base_timestamp=horizon_ms)))
    batch += body
    batch[CRC:ATTRIBUTES] = crc32c(memoryview(batch)[ATTRIBUTES:]).to_bytes(4, "big")
    return bytes(batch)


def empty_batch(header: BatchHeader, keep_producer: bool) -> bytes:
    """A batch without records covering ``header``'s offsets (Kafka's ``writeEmptyHeader``):
    with its producer fields and flags (``keep_producer``: an active producer's last entry), or
    without (it only keeps a cleaned segment's last offset, and must not touch producer state)."""
    if not keep_producer:
        return RecordBatchBuilder(base_offset=header.base_offset, partition_leader_epoch=header.partition_leader_epoch,
                                  ).build(last_offset_delta=header.last_offset_delta)
    return RecordBatchBuilder(
        base_offset=header.base_offset, producer_id=header.producer_id, producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence, is_transactional=header.is_transactional, is_control=header.is_control,
        partition_leader_epoch=header.partition_leader_epoch, timestamp_type=header.timestamp_type,
    ).build(last_offset_delta=header.last_offset_delta)


class CleanedTransactionMetadata:
    """What one cleaning pass knows of transactions (see module docstring); fed every batch of
    the cleaned range in offset order, across all of the pass's groups."""

    def __init__(self, aborted: list[AbortedTxn], active_producers: dict[int, LastRecord], now_ms: int,
                 delete_retention_ms: int) -> None:
        self._aborted: dict[int, list[tuple[int, int]]] = {}
        for e in aborted:
            self._aborted.setdefault(e.producer_id, []).append((e.first_offset, e.last_offset))
        self._active = active_producers
        self.now_ms = now_ms
        self.horizon_ms = now_ms + delete_retention_ms
        self._with_data: set[int] = set()
        """Producers with a transactional batch written since their last marker (Kafka's
        ``ongoingCommittedTxns``, plus aborted transactions whose batch is kept empty)."""
        self._kept_aborts: set[tuple[int, int]] = set()
        """(producer id, marker offset) of the ABORT markers that still have data."""

    def is_aborted(self, header: BatchHeader) -> bool:
        """Whether a data batch belongs to an aborted transaction (it is removed)."""
        if not header.is_transactional or header.is_control:
            return False
        return any(first <= header.base_offset < last for first, last in self._aborted.get(header.producer_id, ()))

    def is_last_of_active_producer(self, header: BatchHeader) -> bool:
        """Kafka's ``isBatchLastRecordOfProducer``: the batch is kept, if need be empty."""
        last = self._active.get(header.producer_id) if header.producer_id >= 0 else None
        if last is None:
            return False
        if last.last_data_offset is not None:
            return header.last_offset == last.last_data_offset
        return header.is_control and header.producer_epoch == last.epoch

    def on_data_written(self, header: BatchHeader) -> None:
        """A data batch (with its producer fields) goes to the cleaned output."""
        if header.is_transactional and header.producer_id >= 0:
            self._with_data.add(header.producer_id)

    def clean_control_batch(self, header: BatchHeader, data: bytes) -> tuple[bytes | None, int | None]:
        """(the control batch to write — ``data`` itself when unchanged — or None; the delete
        horizon a later pass must wait for, if any). Kafka's ``onControlBatchRead`` and the
        control-batch branch of ``checkBatchRetention``."""
        keep_empty = self.is_last_of_active_producer(header)
        if header.records_count == 0:  # emptied by an earlier pass: nothing of it is needed
            return (data if keep_empty else None), None
        marker = end_txn_marker(header, data)
        if marker is None:  # not a transaction marker (KRaft control records): kept
            return data, None
        has_data = header.producer_id in self._with_data
        self._with_data.discard(header.producer_id)
        if has_data:
            if marker.type == ControlRecordType.ABORT:
                self._kept_aborts.add((header.producer_id, header.base_offset))
            return data, None
        horizon = delete_horizon_ms(header)
        if horizon is None:  # KIP-534: the first pass that finds it empty only stamps it
            return with_delete_horizon(header, data, self.horizon_ms), self.horizon_ms
        if horizon > self.now_ms:
            return data, horizon
        return (empty_batch(header, keep_producer=True) if keep_empty else None), None

    def kept_aborted_entries(self, entries: list[AbortedTxn]) -> list[AbortedTxn]:
        """The ``.txnindex`` entries (of the segments cleaned so far) whose data is still there."""
        return [e for e in entries if (e.producer_id, e.last_offset) in self._kept_aborts]
