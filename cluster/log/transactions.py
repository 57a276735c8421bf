"""Transactions on the log side (KIP-98): append origins, markers, completed transactions.

* ``Origin`` — who appends (Kafka's ``AppendOrigin``): a client's Produce (every check), the
  transaction coordinator's markers (control batches allowed, no sequence checks) or a replica
  copying its leader (no producer-state checks at all: the leader made them).
* ``end_txn_marker`` reads the one record of a control batch as a COMMIT / ABORT marker (Kafka's
  ``EndTransactionMarker.deserialize``); other control types (KRaft's) are not markers.
* ``build_end_txn_marker`` writes the control batch the WriteTxnMarkers handler appends (Kafka's
  ``MemoryRecords.withEndTransactionMarker``).
* ``CompletedTxn`` — a transaction closed by a marker (Kafka's ``CompletedTxn``); an aborted one
  becomes an ``AbortedTxn`` of the segment's ``.txnindex``.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from pykafka_ops.records.batch import (
    NO_SEQUENCE,
    BatchHeader,
    CorruptRecordError,
    RecordBatch,
)
from pykafka_ops.records.builder import RecordBatchBuilder
from pykafka_ops.records.record import ControlRecord, ControlRecordType


class Origin(Enum):
    """Kafka's ``AppendOrigin``."""

    CLIENT = "client"
    COORDINATOR = "coordinator"
    REPLICATION = "replication"


class CompletedTxn(NamedTuple):
    """A transaction ended by the marker at ``last_offset`` (Kafka's ``CompletedTxn``)."""

    producer_id: int
    first_offset: int
    last_offset: int
    is_aborted: bool


def end_txn_marker(header: BatchHeader, data: bytes | memoryview, position: int = 0) -> ControlRecord | None:
    """The COMMIT/ABORT marker of the control batch at ``position`` of ``data``, or None (not a
    control batch, another control type, or a malformed record)."""
    if not header.is_control:
        return None
    try:
        record = next(iter(RecordBatch(data, position).records()), None)
        return None if record is None else ControlRecord.decode(record.key, record.value)
    except CorruptRecordError:
        return None


def build_end_txn_marker(producer_id: int, producer_epoch: int, coordinator_epoch: int, commit: bool,
                         timestamp_ms: int) -> bytes:
    """One transactional control batch holding an end-transaction marker."""
    marker = ControlRecord(ControlRecordType.COMMIT if commit else ControlRecordType.ABORT, coordinator_epoch)
    builder = RecordBatchBuilder(producer_id=producer_id, producer_epoch=producer_epoch, base_sequence=NO_SEQUENCE,
                                 is_transactional=True, is_control=True)
    builder.append(marker.encode_key(), marker.encode_value(), timestamp_ms=timestamp_ms)
    return builder.build()
