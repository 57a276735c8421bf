"""Kafka's v2 record batch (magic 2): read, check, patch in place and build.

``batch`` holds the layout, the header reader, the batch reader and the broker's in-place
patches, ``builder`` the batch writer, ``record`` the per-record encoding and transaction
markers, ``compression`` the codecs.
"""

from pykafka_ops.records.batch import (
    BatchHeader,
    RecordBatch,
    TimestampType,
    UnsupportedMagicError,
    crc_ok,
    increment_sequence,
    iter_batches,
    read_batch_header,
    set_base_offset,
    set_log_append_time,
    set_partition_leader_epoch,
)
from pykafka_ops.records.builder import RecordBatchBuilder
from pykafka_ops.records.compression import Compression
from pykafka_ops.records.record import (
    ControlRecord,
    ControlRecordType,
    CorruptRecordError,
    Header,
    Record,
)

__all__ = [
    "BatchHeader",
    "Compression",
    "ControlRecord",
    "ControlRecordType",
    "CorruptRecordError",
    "Header",
    "Record",
    "RecordBatch",
    "RecordBatchBuilder",
    "TimestampType",
    "UnsupportedMagicError",
    "crc_ok",
    "increment_sequence",
    "iter_batches",
    "read_batch_header",
    "set_base_offset",
    "set_log_append_time",
    "set_partition_leader_epoch",
]
