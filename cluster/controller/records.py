"""Metadata records ↔ record batches of the ``__cluster_metadata`` log.

Each metadata record is one Kafka record whose value is the record's fields as JSON, its type
among them (``{"type": "TopicRecord", ...}``); records written before the Raft quorum also carry
the type as the record key. Kafka encodes these with binary schemas; JSON keeps our log readable
with `pko` tools and is versioned by the data dir's storage format version.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from pykafka_ops.records.batch import RecordBatch, iter_batches

MetadataRecord = Mapping[str, Any]


#: Metadata records applied or encoded between two turns of the event loop (a 10 000-partition
#: topic is 10 001 records: about 10 ms per turn instead of one stall of over 100 ms).
RECORDS_PER_TURN = 1000


def decode_batches(data: bytes) -> Iterator[tuple[int, MetadataRecord]]:
    """(offset, record) for every record in whole batches of ``data``."""
    for position, header in iter_batches(data):
        for record in RecordBatch(data[position : position + header.size]).records():
            if record.value is not None:
                yield record.offset, json.loads(record.value)
