"""Record-batch compression codecs (attribute bits 0-2), all through cramjam.

The codecs and their wire formats follow Kafka's ``CompressionType`` and the classes in
``org.apache.kafka.common.compress``:

* GZIP: a gzip stream (``GzipCompression``; level 6, Java's ``Deflater.DEFAULT_COMPRESSION``).
* SNAPPY: Java and the Python clients write xerial framing (``SnappyCompression`` wraps
  xerial's ``SnappyOutputStream``); librdkafka writes one raw snappy block. xerial's
  ``SnappyInputStream`` reads both, so we write the raw block and read both.
* LZ4: the LZ4 *frame* format with independent blocks (``Lz4BlockOutputStream``; the Java
  reader rejects linked blocks with "Dependent block stream is unsupported"). Magic 0/1
  used a broken header checksum (KAFKA-3160); magic 2, the only one we read, does not.
* ZSTD: a zstd frame (``ZstdCompression``; level 3 is Kafka's default).

Decompression is bounded: a batch's records may decompress to at most ``MAX_DECOMPRESSED_BYTES``
(a zstd frame of a few KiB can claim gigabytes). The output goes into a private anonymous map of
that size, whose pages the kernel commits only as output lands in them, so the bound costs no
memory up front; a stream that does not fit is refused as malformed.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable
from typing import Any
from enum import IntEnum

import cramjam

__all__ = ["BytesLike", "Compression", "compress", "decompress"]

BytesLike = bytes | bytearray | memoryview


class Compression(IntEnum):
    """Batch attribute bits 0-2, named as in Kafka's ``CompressionType``."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


# Kafka's default levels (KIP-390: GzipCompression, Lz4Compression, ZstdCompression).
_GZIP_LEVEL = 6
_LZ4_LEVEL = 9
_ZSTD_LEVEL = 3

# xerial snappy-java stream: 8-byte magic, int32 version, int32 min compatible version, then
# [int32 block length, raw snappy block]* (xerial ``SnappyCodec``/``SnappyInputStream``).
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER_SIZE = 16
_INT32 = struct.Struct(">i")
#: Most bytes one batch's records section may decompress to (a compression bomb is corrupt).
MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024


def _lz4_compress(data: BytesLike) -> bytes:
    compressor = cramjam.lz4.Compressor(level=_LZ4_LEVEL, block_linked=False)
    compressor.compress(bytes(data))  # the streaming Compressor takes only bytes
    return bytes(compressor.finish())


def _snappy_decompress(data: BytesLike, limit: int) -> bytes:
    view = memoryview(data)
    if view[: len(_XERIAL_MAGIC)] != _XERIAL_MAGIC:
        return _snappy_block(view, limit)
    out = bytearray()
    pos = _XERIAL_HEADER_SIZE
    while pos < len(view):
        if pos + _INT32.size > len(view):
            raise ValueError("xerial snappy stream ends inside a block length")
        (block_len,) = _INT32.unpack_from(view, pos)
        pos += _INT32.size
        if block_len < 0 or pos + block_len > len(view):
            raise ValueError(f"xerial snappy block of {block_len} bytes overruns the stream")
        out += _snappy_block(view[pos : pos + block_len], limit - len(out))
        pos += block_len
    return bytes(out)


def _snappy_block(block: memoryview, limit: int) -> bytes:
    """A raw snappy block, whose header states its decompressed length: checked before use."""
    size = cramjam.snappy.decompress_raw_len(block)
    if size > limit:
        raise ValueError(f"snappy block decompresses to {size} bytes, more than {limit}")
    return bytes(cramjam.snappy.decompress_raw(block))


def _bounded(decompress_into: Callable[[BytesLike, memoryview], int]) -> Callable[[BytesLike, int], bytes]:
    """A codec's ``decompress_into`` made to stop at ``limit`` bytes of output."""

    def decompress(data: BytesLike, limit: int) -> bytes:
        with mmap.mmap(-1, limit, flags=mmap.MAP_PRIVATE) as out:
            view = memoryview(out)
            try:
                size = decompress_into(data, view)
                return bytes(view[:size])
            except cramjam.DecompressionError as exc:
                if "failed to write whole buffer" in str(exc):
                    raise ValueError(f"decompresses to more than {limit} bytes") from None
                raise
            finally:
                view.release()

    return decompress


# Each codec returns a bytes-like object (cramjam returns its own ``Buffer``).
_Codec = Callable[[BytesLike], BytesLike]

_COMPRESS: dict[Compression, _Codec] = {
    Compression.NONE: bytes,
    Compression.GZIP: lambda data: cramjam.gzip.compress(data, level=_GZIP_LEVEL),
    Compression.SNAPPY: cramjam.snappy.compress_raw,
    Compression.LZ4: _lz4_compress,
    Compression.ZSTD: lambda data: cramjam.zstd.compress(data, level=_ZSTD_LEVEL),
}

_Decoder = Callable[[BytesLike, int], bytes]
_DECOMPRESS: dict[Compression, _Decoder] = {
    Compression.NONE: lambda data, _limit: bytes(data),
    Compression.GZIP: _bounded(cramjam.gzip.decompress_into),
    Compression.SNAPPY: _snappy_decompress,
    Compression.LZ4: _bounded(cramjam.lz4.decompress_into),
    Compression.ZSTD: _bounded(cramjam.zstd.decompress_into),
}


def _codec_table(table: dict[Compression, Any], codec: int) -> Any:
    try:
        return table[Compression(codec)]
    except ValueError:
        raise ValueError(f"unknown compression codec {codec}") from None


def compress(codec: int, data: BytesLike) -> bytes:
    """Compress a batch's records section with ``codec`` (NONE returns the bytes unchanged).

    Raises ValueError for a codec id outside ``Compression``.
    """
    return bytes(_codec_table(_COMPRESS, codec)(data))


def decompress(codec: int, data: BytesLike, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Decompress a batch's records section as written by any Kafka client.

    Raises ValueError for a codec id outside ``Compression``, a malformed stream, or one that
    decompresses to more than ``limit`` bytes.
    """
    decoder = _codec_table(_DECOMPRESS, codec)
    try:
        return decoder(data, limit)
    except cramjam.DecompressionError as exc:
        raise ValueError(f"cannot decompress {Compression(codec).name} data: {exc}") from exc
