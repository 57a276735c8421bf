"""Metadata snapshots (KIP-630): the MetadataImage at a committed offset, as the records that
rebuild it, in record batches — what ``<end offset>-<epoch>.checkpoint`` holds beside
``__cluster_metadata-0`` and what FetchSnapshot ships to a replica too far behind.

Concurrency: plain functions.
"""

from __future__ import annotations

import json

from cluster.controller.metadata_image import MetadataImage, image_records
from cluster.raft.batches import decode_entries, encode_entries
from cluster.raft.log import Entry


def encode_snapshot(image: MetadataImage, timestamp_ms: int = 0) -> bytes:
    """The snapshot bytes of ``image`` (its records, in order, one record per entry)."""
    records = image_records(image)
    entries = [Entry(i, 0, json.dumps(record, sort_keys=True).encode()) for i, record in enumerate(records)]
    return encode_entries(entries, timestamp_ms) if entries else b""


def decode_snapshot(data: bytes, end_offset: int) -> MetadataImage:
    """The image a snapshot holds; its offset is the snapshot's last offset (``end_offset`` - 1).
    Raises MetadataReplayError for a record of a type or version this code does not know."""
    records = [json.loads(entry.payload) for entry in decode_entries(data)]
    if not records:
        return MetadataImage(offset=end_offset - 1)
    return MetadataImage().apply_all((end_offset - 1, record) for record in records)
