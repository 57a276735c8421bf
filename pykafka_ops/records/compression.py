"""Record-batch compression codecs (attribute bits 0-2), through cramjam (zstd decompression
through ``zstandard``, faster on the produce path, where every batch is decompressed).

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
memory up front; a stream that does not fit is refused as malformed. The map is kept per thread
and reused (``decompressed`` lends it out as a view, which the produce path walks in place), so
a decompression costs no new map, no page faults on its first ``SCRATCH_KEEP_BYTES`` and no
copy; pages beyond those are given back to the kernel after each use.

Concurrency: any thread may call these functions; each thread has its own scratch map.
"""

from __future__ import annotations

import mmap
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum

import cramjam
import zstandard

__all__ = ["DEFAULT_LEVELS", "BytesLike", "Compression", "compress", "decompress", "decompressed"]

BytesLike = bytes | bytearray | memoryview


class Compression(IntEnum):
    """Batch attribute bits 0-2, named as in Kafka's ``CompressionType``."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


#: Kafka's default levels (KIP-390 ``compression.<codec>.level``: GzipCompression, Lz4Compression,
#: ZstdCompression); gzip's -1 is zlib's default, level 6 (Java's ``Deflater.DEFAULT_COMPRESSION``).
DEFAULT_LEVELS = {Compression.GZIP: -1, Compression.LZ4: 9, Compression.ZSTD: 3}
_ZLIB_DEFAULT = 6

# xerial snappy-java stream: 8-byte magic, int32 version, int32 min compatible version, then
# [int32 block length, raw snappy block]* (xerial ``SnappyCodec``/``SnappyInputStream``).
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER_SIZE = 16
_INT32 = struct.Struct(">i")
#: Most bytes one batch's records section may decompress to (a compression bomb is corrupt).
MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024


def _lz4_compress(data: BytesLike, level: int) -> bytes:
    compressor = cramjam.lz4.Compressor(level=level, block_linked=False)
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


#: Scratch bytes a thread keeps resident between decompressions (what a usual batch needs).
SCRATCH_KEEP_BYTES = 16 * 1024 * 1024


class _Scratch(threading.local):
    """This thread's output map, whether it is lent out right now, and its zstd decompressor
    (a ``ZstdDecompressor`` is not to be shared between threads)."""

    mapping: mmap.mmap | None = None
    busy: bool = False
    zstd: zstandard.ZstdDecompressor | None = None


class _OutputFull(Exception):
    """A stream that would decompress past the output's end."""


def _zstd_decompress_into(data: BytesLike, out: memoryview) -> int:
    """Every zstd frame of ``data`` into ``out``: the ``zstandard`` package, about 3× faster than
    cramjam's here (59 µs against 160 µs per MB). Raises _OutputFull past ``out``'s end."""
    if _SCRATCH.zstd is None:
        _SCRATCH.zstd = zstandard.ZstdDecompressor()
    reader = _SCRATCH.zstd.stream_reader(data, read_across_frames=True)
    size = 0
    while size < len(out):
        read = reader.readinto(out[size:])
        if read == 0:
            return size
        size += read
    if reader.read(1):
        raise _OutputFull
    return size


_SCRATCH = _Scratch()


@contextmanager
def _output_map(limit: int) -> Iterator[mmap.mmap]:
    """A map of at least ``limit`` bytes: this thread's scratch map, or (when that is lent out
    already, or too small) a new one for this use only."""
    scratch = _SCRATCH
    if scratch.busy or limit > MAX_DECOMPRESSED_BYTES:
        with mmap.mmap(-1, limit, flags=mmap.MAP_PRIVATE) as own:
            yield own
        return
    if scratch.mapping is None:
        scratch.mapping = mmap.mmap(-1, MAX_DECOMPRESSED_BYTES, flags=mmap.MAP_PRIVATE)
    scratch.busy = True
    try:
        yield scratch.mapping
    finally:
        scratch.busy = False


@contextmanager
def _decompressed_into(codec: Compression, data: BytesLike, limit: int) -> Iterator[memoryview]:
    """A codec's ``decompress_into`` made to stop at ``limit`` bytes; the output as a view."""
    decompress_into = _DECOMPRESS_INTO[codec]
    with _output_map(limit) as out:
        view = memoryview(out)
        size = 0
        try:
            try:
                size = decompress_into(data, view[:limit])
            except _OutputFull:
                size = limit
                raise ValueError(f"{codec.name} data decompresses to more than {limit} bytes") from None
            except cramjam.DecompressionError as exc:
                if "failed to write whole buffer" in str(exc):
                    size = limit
                    raise ValueError(f"{codec.name} data decompresses to more than {limit} bytes") from None
                raise ValueError(f"cannot decompress {codec.name} data: {exc}") from exc
            except zstandard.ZstdError as exc:
                raise ValueError(f"cannot decompress {codec.name} data: {exc}") from exc
            result = view[:size]
            try:
                yield result
            finally:
                result.release()
        finally:
            view.release()
            if size > SCRATCH_KEEP_BYTES and out is _SCRATCH.mapping:  # give a big output's pages back
                out.madvise(mmap.MADV_DONTNEED, SCRATCH_KEEP_BYTES, MAX_DECOMPRESSED_BYTES - SCRATCH_KEEP_BYTES)


# Each codec takes (data, level) and returns a bytes-like object (cramjam returns its own ``Buffer``).
_Codec = Callable[[BytesLike, int], BytesLike]

_COMPRESS: dict[Compression, _Codec] = {
    Compression.NONE: lambda data, _level: bytes(data),
    Compression.GZIP: lambda data, level: cramjam.gzip.compress(data, level=level if level > 0 else _ZLIB_DEFAULT),
    Compression.SNAPPY: lambda data, _level: cramjam.snappy.compress_raw(data),
    Compression.LZ4: _lz4_compress,
    Compression.ZSTD: lambda data, level: cramjam.zstd.compress(data, level=level),
}

_Decoder = Callable[[BytesLike, int], bytes]
#: Codecs that return their output (snappy states its size up front; NONE is a copy).
_DECOMPRESS: dict[Compression, _Decoder] = {
    Compression.NONE: lambda data, _limit: bytes(data),
    Compression.SNAPPY: _snappy_decompress,
}
#: Codecs that write into a buffer we give them (and that we stop at the limit).
_DECOMPRESS_INTO: dict[Compression, Callable[[BytesLike, memoryview], int]] = {
    Compression.GZIP: cramjam.gzip.decompress_into,
    Compression.LZ4: cramjam.lz4.decompress_into,
    Compression.ZSTD: _zstd_decompress_into,
}


def compress(codec: int, data: BytesLike, level: int | None = None) -> bytes:
    """Compress a batch's records section with ``codec`` (NONE returns the bytes unchanged) at
    ``level`` (a KIP-390 ``compression.<codec>.level``; None: Kafka's default for the codec).

    Raises ValueError for a codec id outside ``Compression``.
    """
    known = _known(codec)
    return bytes(_COMPRESS[known](data, DEFAULT_LEVELS.get(known, 0) if level is None else level))


def decompress(codec: int, data: BytesLike, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Decompress a batch's records section as written by any Kafka client.

    Raises ValueError for a codec id outside ``Compression``, a malformed stream, or one that
    decompresses to more than ``limit`` bytes.
    """
    with decompressed(codec, data, limit) as view:
        return bytes(view)


@contextmanager
def decompressed(codec: int, data: BytesLike, limit: int = MAX_DECOMPRESSED_BYTES) -> Iterator[memoryview]:
    """``decompress`` without a copy: the output as a view that is valid inside the ``with``
    block only (for gzip, lz4 and zstd it is this thread's scratch map, reused by the next call).

    Raises ValueError as ``decompress`` does.
    """
    known = _known(codec)
    if known in _DECOMPRESS_INTO:
        with _decompressed_into(known, data, limit) as view:
            yield view
        return
    try:
        output = _DECOMPRESS[known](data, limit)
    except cramjam.DecompressionError as exc:
        raise ValueError(f"cannot decompress {known.name} data: {exc}") from exc
    yield memoryview(output)


def _known(codec: int) -> Compression:
    try:
        return Compression(codec)
    except ValueError:
        raise ValueError(f"unknown compression codec {codec}") from None
