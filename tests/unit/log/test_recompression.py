"""Recompression on append (Kafka's ``LogValidator`` with a target compression, issue 18).

A topic's ``compression.type`` other than ``producer`` makes the leader rebuild a batch sent in
another codec; the records, the producer fields, the transactional flag and the timestamps stay,
the CRC is new. A batch already in the topic's codec (whatever its level) and a follower's
batches are stored as sent.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from cluster.log.partition_log import PartitionLog
from cluster.log.validator import RecordValidationError
from pykafka_ops.errors import ErrorCode
from pykafka_ops.records import RecordBatch, RecordBatchBuilder, TimestampType
from pykafka_ops.records.batch import ATTRIBUTES, BASE_OFFSET, LENGTH, iter_batches
from pykafka_ops.records.compression import Compression

from .helpers import DAY_MS, T0, log_config, produced

TARGETS = {"uncompressed": Compression.NONE, "gzip": Compression.GZIP, "snappy": Compression.SNAPPY,
           "lz4": Compression.LZ4, "zstd": Compression.ZSTD}


def _open(directory: Path, **config: object) -> PartitionLog:
    return PartitionLog.open(directory, log_config(**config), DAY_MS, clean_shutdown=True, recovery_point=0,
                             log_start_offset=0)


def _batch(codec: Compression, n: int = 5, **builder: object) -> bytes:
    """A batch of ``n`` records with keys, headers and distinct timestamps."""
    b = RecordBatchBuilder(compression=codec, **builder)
    for i in range(n):
        b.append(b"key-%d" % i, b"value-%d " % i * 20, headers=[("h", b"%d" % i)], timestamp_ms=T0 + 7 * i)
    return b.build()


def _stored(log: PartitionLog) -> bytes:
    return bytes(log.read(0, 1 << 20, log.log_end_offset, True))


def _content(data: bytes) -> list[tuple]:
    return [(r.offset, r.timestamp, r.key, r.value, r.headers)
            for pos, _h in iter_batches(data) for r in RecordBatch(data, pos).records()]


@pytest.mark.parametrize(("source", "target"), itertools.product(Compression, TARGETS))
def test_the_leader_stores_every_batch_in_the_topic_codec(tmp_path: Path, source: Compression, target: str) -> None:
    log = _open(tmp_path, **{"compression.type": target})
    sent = _batch(source, producer_id=7, producer_epoch=2, base_sequence=0, is_transactional=True)
    log.append_as_leader(produced(sent), leader_epoch=3, now_ms=T0)
    stored = _stored(log)
    (pos, header), = iter_batches(stored)
    RecordBatch(stored, pos).validate_crc()
    original = RecordBatch(sent).header
    assert header.compression == TARGETS[target]
    assert (header.producer_id, header.producer_epoch, header.base_sequence, header.is_transactional) == (7, 2, 0, True)
    assert (header.base_timestamp, header.max_timestamp, header.records_count, header.last_offset_delta) == (
        original.base_timestamp, original.max_timestamp, original.records_count, original.last_offset_delta)
    assert (header.base_offset, header.partition_leader_epoch) == (0, 3)
    assert _content(stored) == _content(sent)
    if source == TARGETS[target]:  # stored as sent: only the offset and leader epoch were patched
        assert stored[ATTRIBUTES:] == sent[ATTRIBUTES:] and stored[LENGTH:LENGTH + 4] == sent[LENGTH:LENGTH + 4]


def test_producer_keeps_the_codec_of_each_batch(tmp_path: Path) -> None:
    log = _open(tmp_path)  # compression.type=producer, Kafka's default
    sent = [_batch(codec) for codec in Compression]
    for b in sent:
        log.append_as_leader(produced(b), leader_epoch=0, now_ms=T0)
    stored = _stored(log)
    assert [h.compression for _pos, h in iter_batches(stored)] == list(Compression)
    assert [stored_batch[ATTRIBUTES:] for stored_batch in _split(stored)] == [b[ATTRIBUTES:] for b in sent]


def _split(data: bytes) -> list[bytes]:
    return [data[pos:pos + h.size] for pos, h in iter_batches(data)]


def test_another_level_of_the_same_codec_is_not_recompressed(tmp_path: Path) -> None:
    """As Kafka, only codecs are compared: a zstd batch of level 3 (the builder's) in a topic of
    compression.zstd.level=19 is stored as sent."""
    log = _open(tmp_path, **{"compression.type": "zstd", "compression.zstd.level": 19})
    sent = _batch(Compression.ZSTD)
    log.append_as_leader(produced(sent), leader_epoch=0, now_ms=T0)
    assert _stored(log)[ATTRIBUTES:] == sent[ATTRIBUTES:]


def test_the_topic_level_is_used_when_recompressing(tmp_path: Path) -> None:
    values = [bytes(range(256)) * 40]
    sizes = []
    for level in (1, 9):
        log = _open(tmp_path / str(level), **{"compression.type": "gzip", "compression.gzip.level": level})
        b = RecordBatchBuilder()
        for v in values:
            b.append(b"k", v, timestamp_ms=T0)
        log.append_as_leader(produced(b.build()), leader_epoch=0, now_ms=T0)
        sizes.append(len(_stored(log)))
    assert sizes[0] >= sizes[1]


def test_log_append_time_topic_recompresses_and_stamps(tmp_path: Path) -> None:
    log = _open(tmp_path, **{"compression.type": "lz4", "message.timestamp.type": "LogAppendTime"})
    log.append_as_leader(produced(_batch(Compression.GZIP)), leader_epoch=0, now_ms=T0 + 999)
    stored = _stored(log)
    batch = RecordBatch(stored)
    batch.validate_crc()
    assert batch.header.compression == Compression.LZ4
    assert batch.header.timestamp_type == TimestampType.LOG_APPEND_TIME and batch.header.max_timestamp == T0 + 999


def test_a_batch_too_large_once_decompressed_is_message_too_large(tmp_path: Path) -> None:
    b = RecordBatchBuilder(compression=Compression.ZSTD)
    b.append(b"k", b"\0" * 100_000, timestamp_ms=T0)
    sent = b.build()
    log = _open(tmp_path, **{"compression.type": "uncompressed", "max.message.bytes": 50_000})
    with pytest.raises(RecordValidationError) as info:
        log.append_as_leader(produced(sent), leader_epoch=0, now_ms=T0)
    assert info.value.error_code == ErrorCode.message_too_large
    assert log.log_end_offset == 0


def test_followers_copy_the_leaders_batches_unchanged(tmp_path: Path) -> None:
    log = _open(tmp_path, **{"compression.type": "zstd"})
    sent = bytearray(_batch(Compression.GZIP))
    sent[BASE_OFFSET:BASE_OFFSET + 8] = (0).to_bytes(8, "big")
    log.append_as_follower(memoryview(sent), now_ms=T0)
    assert _stored(log) == bytes(sent)
