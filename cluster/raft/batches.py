"""Raft entries ⇄ Kafka record batches: how ``__cluster_metadata-0`` stores and ships them.

Each entry is one record; consecutive entries of one epoch (and one kind) share a batch whose
``partitionLeaderEpoch`` is that epoch — as KRaft writes its log — so the epoch of every offset
is read from the batch headers, and a log written by the single-voter quorum (JSON metadata
records with the record type as key, epoch 1) reads back as entries unchanged. A control entry
(the LeaderChangeMessage a new leader appends) is a control batch whose record key is Kafka's
control-record key: version 0 and type 2 (``ControlRecordType.LEADER_CHANGE``).

Concurrency: plain functions.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator, Sequence
from itertools import groupby

from cluster.raft.log import Entry
from pykafka_ops.records.batch import RecordBatch, iter_batches
from pykafka_ops.records.builder import RecordBatchBuilder

#: Kafka's control record key for KRaft's LeaderChangeMessage: version 0, type LEADER_CHANGE (2).
LEADER_CHANGE_KEY = struct.pack(">hh", 0, 2)


def encode_entries(entries: Sequence[Entry], timestamp_ms: int | None = None) -> bytes:
    """Record batches holding ``entries`` (consecutive offsets), one batch per run of entries of
    the same epoch and kind, base offsets set."""
    now_ms = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    out = bytearray()
    for (epoch, control), run in groupby(entries, key=lambda e: (e.epoch, e.control)):
        group = list(run)
        builder = RecordBatchBuilder(base_offset=group[0].offset, is_control=control, partition_leader_epoch=epoch)
        for entry in group:
            builder.append(LEADER_CHANGE_KEY if control else None, entry.payload, timestamp_ms=now_ms)
        out += builder.build()
    return bytes(out)


def decode_entries(data: bytes | memoryview) -> Iterator[Entry]:
    """The entries of the whole batches in ``data`` (a partial batch at the end is ignored)."""
    view = memoryview(data)
    for position, header in iter_batches(view):
        batch = RecordBatch(view[position : position + header.size])
        for record in batch.records():
            yield Entry(record.offset, header.partition_leader_epoch, bytes(record.value or b""),
                        header.is_control)
