"""The codecs: round trips, and reading every framing Kafka clients write."""

from __future__ import annotations

import gzip

import lz4.frame
import pytest
import snappy
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.codec import snappy_encode

from pykafka_ops.records import Compression, CorruptRecordError, RecordBatch
from pykafka_ops.records import batch as batch_mod
from pykafka_ops.records.compression import compress, decompress

from .helpers import CODECS, build

PAYLOAD = b"".join(b"record %d with some repeated text; " % i for i in range(5000))


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=5000))
def test_compress_then_decompress_round_trips(codec: Compression, data: bytes) -> None:
    assert decompress(codec, compress(codec, data)) == data
    assert decompress(codec, memoryview(bytearray(compress(codec, data)))) == data


@pytest.mark.parametrize("codec", CODECS[1:], ids=lambda c: c.name)
def test_large_payloads_actually_compress(codec: Compression) -> None:
    compressed = compress(codec, PAYLOAD)
    assert len(compressed) < len(PAYLOAD) // 4
    assert decompress(codec, compressed) == PAYLOAD


def test_snappy_reads_xerial_framing_with_many_blocks() -> None:
    framed = snappy_encode(PAYLOAD, xerial_compatible=True, xerial_blocksize=4096)
    assert framed.startswith(b"\x82SNAPPY\x00") and len(PAYLOAD) // 4096 > 10
    assert decompress(Compression.SNAPPY, framed) == PAYLOAD


def test_snappy_reads_raw_blocks_and_writes_them() -> None:
    assert decompress(Compression.SNAPPY, snappy.compress(PAYLOAD)) == PAYLOAD
    assert snappy.decompress(compress(Compression.SNAPPY, PAYLOAD)) == PAYLOAD


@pytest.mark.parametrize(
    "framed",
    [
        "\x82SNAPPY\x00" + "\x00" * 8 + "\x00\x00",
        "\x82SNAPPY\x00" + "\x00" * 8 + "\x00\x00\x00\x09ab",
    ],
)
def test_truncated_xerial_snappy_is_an_error(framed: str) -> None:
    with pytest.raises(ValueError):
        decompress(Compression.SNAPPY, framed.encode("latin-1"))


def test_lz4_writes_independent_blocks_as_kafkas_java_reader_requires() -> None:
    compressed = compress(Compression.LZ4, PAYLOAD)
    assert compressed[:4] == b"\x04\x22\x4d\x18"  # LZ4 frame magic
    flg = compressed[4]
    assert flg >> 6 == 1 and flg & 0x20  # version 01, block independence
    assert lz4.frame.decompress(compressed) == PAYLOAD


@pytest.mark.parametrize("block_linked", [False, True])
@pytest.mark.parametrize("content_checksum", [False, True])
def test_lz4_reads_frames_with_any_flags(block_linked: bool, content_checksum: bool) -> None:
    frame = lz4.frame.compress(
        PAYLOAD, block_linked=block_linked, content_checksum=content_checksum, store_size=False
    )
    assert decompress(Compression.LZ4, frame) == PAYLOAD


def test_gzip_reads_multi_member_streams() -> None:
    assert decompress(Compression.GZIP, gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"


def test_zstd_reads_frames_without_a_content_size() -> None:
    compressor = zstandard.ZstdCompressor().compressobj()
    frame = compressor.compress(PAYLOAD) + compressor.flush()
    assert decompress(Compression.ZSTD, frame) == PAYLOAD


@pytest.mark.parametrize("codec", [5, 7])
def test_unknown_codecs_are_refused(codec: int) -> None:
    with pytest.raises(ValueError):
        compress(codec, b"x")
    with pytest.raises(ValueError):
        decompress(codec, b"x")


@pytest.mark.parametrize("codec", CODECS[1:], ids=lambda c: c.name)
def test_garbage_instead_of_a_compressed_stream_is_corrupt(codec: Compression) -> None:
    batch = bytearray(build([(b"k", PAYLOAD[:1000], [], 1)], compression=codec))
    batch[batch_mod.HEADER_SIZE :] = bytes(len(batch) - batch_mod.HEADER_SIZE)
    with pytest.raises(CorruptRecordError):
        list(RecordBatch(batch).records())


@pytest.mark.parametrize("codec", CODECS[1:], ids=lambda c: c.name)
def test_a_stream_that_decompresses_past_the_limit_is_refused(codec: Compression) -> None:
    bomb = compress(codec, bytes(1 << 20))
    with pytest.raises(ValueError, match="more than 65536"):
        decompress(codec, bomb, limit=1 << 16)
    assert decompress(codec, bomb, limit=1 << 20) == bytes(1 << 20)


def test_xerial_snappy_blocks_count_against_one_limit() -> None:
    framed = snappy_encode(bytes(1 << 20), xerial_compatible=True, xerial_blocksize=1 << 16)
    with pytest.raises(ValueError, match="more than"):
        decompress(Compression.SNAPPY, framed, limit=(1 << 20) - 1)


def test_a_zstd_bomb_of_a_gibibyte_is_refused_at_the_default_limit() -> None:
    bomb = compress(Compression.ZSTD, bytes(1 << 30))
    assert len(bomb) < 64 * 1024
    with pytest.raises(ValueError, match="more than 268435456 bytes"):
        decompress(Compression.ZSTD, bomb)
