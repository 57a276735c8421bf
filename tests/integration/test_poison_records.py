"""Poison pills are refused at Produce (issue 12 item 2; reliability-probe §3.5).

A batch whose records do not parse, under a valid CRC, used to be stored with error 0; then a
librdkafka consumer stalled at its offset, kafka-python raised and ListOffsets by timestamp
failed. Now the node walks every batch's records (decompressed first) as Kafka's
``LogValidator`` does, on a real node process: each variant gets Kafka's error for its
partition only (INVALID_RECORD for records that do not parse; CORRUPT_MESSAGE for a stream that
does not decompress, see ``cluster.log.validator.DECOMPRESSION_ERROR``), the other
partition of the same request is written, and the partition stays readable from offset 0 by
confluent-kafka (librdkafka) and kafka-python: a good record before and one after the refused
batch are consumed.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import pytest
from crc32c import crc32c
from integration_helpers import (
    build_batch,
    create_topic,
    drain_confluent,
    drain_kafka_python,
    list_offset,
    node_log,
    produce_raw,
    unique_topic,
    wire,
)

from cluster.pytest_plugin import RunningCluster
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records.batch import (
    ATTRIBUTES,
    CRC,
    HEADER_SIZE,
    LAST_OFFSET_DELTA,
    LENGTH,
    LOG_OVERHEAD,
    RECORDS_COUNT,
)
from pykafka_ops.records.compression import Compression, compress
from pykafka_ops.records.record import encode_varint, encode_varlong, write_record

INVALID_RECORD = 87
CORRUPT_MESSAGE = 2
SEED = 20240512


def _recrc(raw: bytearray) -> bytes:
    struct.pack_into(">I", raw, CRC, crc32c(bytes(raw[ATTRIBUTES:])))
    return bytes(raw)


def garbage_records(codec: Compression) -> bytes:
    """The probe's reproduction: 3 records replaced by random bytes of the same length, the
    codec id set to ``codec`` (the bytes are no stream of it), CRC made valid."""
    raw = bytearray(build_batch([b"value-%d" % i for i in range(3)], key=b"k"))
    raw[HEADER_SIZE:] = random.Random(SEED).randbytes(len(raw) - HEADER_SIZE)
    struct.pack_into(">h", raw, ATTRIBUTES, codec)
    return _recrc(raw)


def batch_around(section: bytes, count: int, codec: Compression = Compression.NONE) -> bytes:
    """A batch whose records section is ``section`` (compressed with ``codec``), claiming
    ``count`` records (lastOffsetDelta = count - 1, as Kafka's validateBatch wants), CRC valid."""
    raw = bytearray(build_batch([b"x"], compression=codec)[:HEADER_SIZE]) + compress(codec, section)
    struct.pack_into(">i", raw, LENGTH, len(raw) - LOG_OVERHEAD)
    struct.pack_into(">i", raw, LAST_OFFSET_DELTA, count - 1)
    struct.pack_into(">i", raw, RECORDS_COUNT, count)
    return _recrc(raw)


def records(n: int) -> bytes:
    """``n`` well-formed records with offset deltas 0 .. n-1."""
    out = bytearray()
    for i in range(n):
        write_record(out, i, 0, b"k", b"value-%d" % i, [("h", b"v")])
    return bytes(out)


def raw_record(body: bytes) -> bytes:
    return encode_varint(len(body)) + body


_FIXED = b"\x00" + encode_varlong(0) + encode_varint(0)  # attributes, timestampDelta, offsetDelta 0

#: variant → (poison batch, Kafka's answer)
VARIANTS: dict[str, tuple[Callable[[], bytes], int]] = {
    "garbage-plain": (lambda: garbage_records(Compression.NONE), INVALID_RECORD),
    "garbage-claims-gzip": (lambda: garbage_records(Compression.GZIP), CORRUPT_MESSAGE),
    "garbage-claims-snappy": (lambda: garbage_records(Compression.SNAPPY), CORRUPT_MESSAGE),
    "garbage-claims-lz4": (lambda: garbage_records(Compression.LZ4), CORRUPT_MESSAGE),
    "garbage-claims-zstd": (lambda: garbage_records(Compression.ZSTD), CORRUPT_MESSAGE),
    "gzip-stream-of-garbage": (lambda: batch_around(random.Random(SEED).randbytes(60), 3, Compression.GZIP),
                               INVALID_RECORD),
    "zstd-stream-of-garbage": (lambda: batch_around(random.Random(SEED).randbytes(60), 3, Compression.ZSTD),
                               INVALID_RECORD),
    "count-above-records": (lambda: batch_around(records(2), 3), INVALID_RECORD),
    "count-below-records": (lambda: batch_around(records(3), 2), INVALID_RECORD),
    "trailing-bytes": (lambda: batch_around(records(2) + b"\x00\x00\x00", 2), INVALID_RECORD),
    "trailing-bytes-lz4": (lambda: batch_around(records(2) + b"\x00\x00\x00", 2, Compression.LZ4), INVALID_RECORD),
    "key-overruns-record": (lambda: batch_around(raw_record(_FIXED + encode_varint(40) + b"key"), 1),
                            INVALID_RECORD),
    "record-overruns-section": (lambda: batch_around(encode_varint(200) + _FIXED, 1), INVALID_RECORD),
    "negative-header-count": (
        lambda: batch_around(raw_record(_FIXED + encode_varint(-1) * 2 + encode_varint(-7)), 1), INVALID_RECORD),
    "header-count-beyond-record": (
        lambda: batch_around(raw_record(_FIXED + encode_varint(-1) * 2 + encode_varint(50) + b"\x02a"), 1),
        INVALID_RECORD),
    "header-count-beyond-record-snappy": (
        lambda: batch_around(raw_record(_FIXED + encode_varint(-1) * 2 + encode_varint(50) + b"\x02a"), 1,
                             Compression.SNAPPY), INVALID_RECORD),
    "offset-deltas-repeat": (lambda: batch_around(raw_record(_FIXED + b"\x01\x01\x00") * 2, 2), INVALID_RECORD),
}


def _produce_pair(cluster: RunningCluster, topic: str, poison: bytes, good: bytes) -> dict[int, int]:
    """One Produce v9: the poison batch to partition 0, a good one to partition 1."""
    with wire(cluster) as client:
        response = client.request(ApiKey.PRODUCE, 9, {
            "transactional_id": None, "acks": -1, "timeout": 5000, "topic_data": [{"name": topic, "partition_data": [
                {"index": 0, "records": poison}, {"index": 1, "records": good}]}]})
        assert client.request(ApiKey.API_VERSIONS, 0, {}).error_code == 0  # the connection stays open
    return {p.index: p.error_code for p in response.responses[0].partition_responses}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_poison_batch_is_refused_and_the_partition_stays_readable(cluster: RunningCluster, variant: str) -> None:
    make, expected = VARIANTS[variant]
    topic = unique_topic(f"poison-{variant}")
    create_topic(cluster, topic, partitions=2)
    with wire(cluster) as client:
        assert produce_raw(client, topic, 0, build_batch([b"before"])).error_code == 0

    answers = _produce_pair(cluster, topic, make(), build_batch([b"other-partition"]))
    assert answers == {0: expected, 1: 0}, f"{variant}: {answers}"

    with wire(cluster) as client:
        assert produce_raw(client, topic, 0, build_batch([b"after"])).error_code == 0
    assert list_offset(cluster, topic, 0, -1).offset == 2  # nothing of the poison batch was stored
    assert list_offset(cluster, topic, 0, 0).offset == 0  # by timestamp: the probe's failing lookup

    ends = {0: 2, 1: 1}
    for drain in (drain_confluent, drain_kafka_python):
        seen = drain(cluster, topic, ends, timeout_s=30)
        assert [(r.offset, r.value) for r in seen[0]] == [(0, b"before"), (1, b"after")], drain.__name__
        assert [(r.offset, r.value) for r in seen[1]] == [(0, b"other-partition")], drain.__name__
    assert f"error appending to {topic}" not in node_log(cluster)  # answered, not an unexpected failure
