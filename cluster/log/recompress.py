"""Recompression on append: a topic's ``compression.type`` other than ``producer``.

Kafka's ``LogValidator.validateMessagesAndAssignOffsetsCompressed`` with a ``targetCompression``:
a batch whose codec differs from the topic's is rebuilt in the topic's codec at its
``compression.<codec>.level`` (KIP-390); ``uncompressed`` stores the records decompressed. The
records themselves (offset and timestamp deltas, keys, values, headers) and the batch header
(producer id, epoch and base sequence, the transactional flag, timestamps, record count) are kept;
only the codec bits, the batch length and the CRC change. A batch already in the topic's codec is
stored as sent, whatever level it was compressed at (Kafka compares codecs only, not levels).
Control batches (transaction markers) are never rebuilt. Followers copy the leader's batches, so
only the leader recompresses (``PartitionLog.append_as_leader``).
"""

from __future__ import annotations

from cluster.log.validator import RecordValidationError, ValidatedBatch
from pykafka_ops.errors import ErrorCode
from pykafka_ops.records.batch import COMPRESSION_CODEC_MASK, HEADER_SIZE, encode_batch, read_batch_header
from pykafka_ops.records.compression import Compression, compress, decompressed


def needs_recompression(batches: list[ValidatedBatch], target: Compression) -> bool:
    """Whether a batch of the set is not in ``target`` (and is not a control batch)."""
    return any(b.header.compression != target and not b.header.is_control for b in batches)


def recompress(records: memoryview, batches: list[ValidatedBatch], target: Compression, level: int | None,
               max_message_bytes: int, topic_partition: str) -> tuple[memoryview, list[ValidatedBatch]]:
    """The record set with every batch in ``target`` (see module docstring), and its batches.

    Raises RecordValidationError MESSAGE_TOO_LARGE when a rebuilt batch exceeds
    ``max_message_bytes`` (Kafka's ``UnifiedLog.append`` re-checks sizes that validation changed)."""
    out = bytearray()
    rebuilt: list[ValidatedBatch] = []
    for batch in batches:
        header, position = batch.header, batch.position
        if header.compression == target or header.is_control:
            data: bytes | memoryview = records[position : position + header.size]
        else:
            data = _rebuild(records, batch, target, level)
            if len(data) > max_message_bytes:
                raise RecordValidationError(
                    ErrorCode.message_too_large,
                    f"Message batch size is {len(data)} bytes in append to partition {topic_partition} which "
                    f"exceeds the maximum configured size of {max_message_bytes}.")
        rebuilt.append(ValidatedBatch(len(out), read_batch_header(data)))
        out += data
    return memoryview(out), rebuilt


def _rebuild(records: memoryview, batch: ValidatedBatch, target: Compression, level: int | None) -> bytes:
    """One batch re-encoded in ``target``; its records were checked by the validator."""
    header = batch.header
    section = records[batch.position + HEADER_SIZE : batch.position + header.size]
    if header.compression == Compression.NONE:
        body = compress(target, section, level)
    else:
        with decompressed(header.compression, section) as plain:
            body = compress(target, plain, level)
    attributes = (header.attributes & ~COMPRESSION_CODEC_MASK) | target
    return encode_batch(header._replace(attributes=attributes), body)
