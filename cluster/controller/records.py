"""Metadata records ↔ record batches of the ``__cluster_metadata`` log.

Each metadata record is one Kafka record: key = the record type (e.g. ``TopicRecord``), value =
the record's fields as JSON. Kafka encodes these with binary schemas; JSON keeps our log
readable with `pko` tools and is versioned by the data dir's storage format version.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pykafka_ops.records.batch import RecordBatch, RecordBatchBuilder, iter_batches

MetadataRecord = Mapping[str, Any]


def encode_batch(records: Sequence[MetadataRecord], timestamp_ms: int) -> bytes:
    """One record batch holding ``records`` (written atomically by the quorum)."""
    builder = RecordBatchBuilder()
    for record in records:
        builder.append(record["type"].encode(), json.dumps(record, sort_keys=True).encode(),
                       timestamp_ms=timestamp_ms)
    return builder.build()


def decode_batches(data: bytes) -> Iterator[tuple[int, MetadataRecord]]:
    """(offset, record) for every record in whole batches of ``data``."""
    for position, header in iter_batches(data):
        for record in RecordBatch(data[position : position + header.size]).records():
            if record.value is not None:
                yield record.offset, json.loads(record.value)
