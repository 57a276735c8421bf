"""FrameReader: frames cut from a byte stream, memory that follows what arrives, sizes Kafka refuses."""

from __future__ import annotations

import struct

import pytest

from cluster.network.frame_reader import BIG_INITIAL_SIZE, INITIAL_BUFFER_SIZE, FrameError, FrameReader, MapCache
from cluster.network.memory_pool import RequestMemoryPool

MiB = 1 << 20


class User:
    peer = "test"

    def memory_available(self) -> None:
        pass

    def close(self, reason: str) -> None:
        pass


def _reader(max_frame: int = 100 * MiB, pool_bytes: int = 200 * MiB) -> tuple[FrameReader, RequestMemoryPool]:
    pool = RequestMemoryPool(pool_bytes)
    return FrameReader(max_frame, pool, MapCache(), User()), pool


def _feed(reader: FrameReader, data: bytes, chunk: int = 1 << 18) -> list[bytes]:
    frames, pos = [], 0
    while pos < len(data):
        buf = reader.get_buffer()
        n = min(len(buf), len(data) - pos, chunk)
        buf[:n] = data[pos : pos + n]
        del buf
        pos += n
        frames += [f.view.tobytes() for f in reader.frames(n)]
    return frames


def _framed(*payloads: bytes) -> bytes:
    return b"".join(struct.pack(">i", len(p)) + p for p in payloads)


def test_small_frames_split_anywhere_come_out_whole_and_in_order() -> None:
    reader, pool = _reader()
    payloads = [b"a" * n for n in (0, 1, 100, 5000, 60_000)]
    assert _feed(reader, _framed(*payloads), chunk=7) == payloads
    assert pool.used == sum(map(len, payloads)) and reader.buffered == 0


def test_a_frame_larger_than_the_read_buffer_is_read_into_a_buffer_that_grows() -> None:
    reader, pool = _reader()
    big = bytes(range(256)) * (12 * MiB // 256)
    assert _feed(reader, _framed(big, b"next")) == [big, b"next"]
    assert pool.used == len(big) + 4


def test_an_announced_size_costs_nothing_until_bytes_arrive() -> None:
    reader, pool = _reader()
    assert _feed(reader, struct.pack(">i", 100 * MiB) + bytes(70_000)) == []
    assert len(reader.get_buffer()) <= BIG_INITIAL_SIZE  # address space: 1 MiB, not 100
    assert pool.used == 70_000 and reader.buffered == 70_000


def test_an_idle_connection_holds_a_small_buffer() -> None:
    reader, _pool = _reader()
    assert len(reader.get_buffer()) == INITIAL_BUFFER_SIZE


@pytest.mark.parametrize("size", [-1, -(2**31), 100 * MiB + 1, 2**31 - 1])
def test_a_size_kafka_refuses_raises_before_anything_is_allocated(size: int) -> None:
    reader, pool = _reader()
    with pytest.raises(FrameError, match=f"invalid request size {size}"):
        _feed(reader, _framed(b"ok") + struct.pack(">i", size) + b"xx")
    assert pool.used == 2  # the good frame before it


def test_discard_lets_the_pool_forget_a_partial_frame() -> None:
    reader, pool = _reader()
    user = reader._user
    _feed(reader, struct.pack(">i", 5 * MiB) + bytes(3 * MiB))
    assert pool.used == 3 * MiB
    reader.discard()
    pool.drop(user)  # what the connection does when it closes
    assert pool.used == 0


def test_a_released_map_is_reused_for_the_next_large_frame_and_never_overfilled() -> None:
    maps = MapCache()
    pool = RequestMemoryPool(200 * MiB)
    reader = FrameReader(100 * MiB, pool, maps, User())
    first = bytes(range(256)) * (3 * MiB // 256)  # grows the map to 4 MiB, then shrunk when cached
    frames = []
    for payload in (first, b"x" * 100_000):
        buf = reader.get_buffer()
        data = _framed(payload) + _framed(b"next")  # the next frame comes in the same reads
        pos = 0
        while pos < len(data):
            buf = reader.get_buffer()
            n = min(len(buf), len(data) - pos)
            buf[:n] = data[pos : pos + n]
            del buf
            pos += n
            for frame in reader.frames(n):
                frames.append(frame.view.tobytes())
                if frame.mapping is not None:
                    mapping = frame.mapping
                    frame.view.release()
                    maps.give(mapping)
    assert frames == [first, b"next", b"x" * 100_000, b"next"]
    maps._retry_pending()  # what the next large frame's take() does
    assert maps._free and all(len(m) == BIG_INITIAL_SIZE for m in maps._free)


def test_a_map_is_reused_only_once_no_view_of_it_is_alive() -> None:
    maps = MapCache()
    mapping = maps.take(2 * MiB)
    view = memoryview(mapping)[:10]
    maps.give(mapping)
    assert maps.take(2 * MiB) is not mapping  # still viewed: pending, a new map is made
    view.release()
    assert maps.take(2 * MiB) is mapping  # the retry finds it free now
