"""OffsetIndex and TimeIndex on real files: append, lookup, truncate, reload with a torn tail."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.log.offset_index import OffsetIndex
from cluster.log.time_index import TimeIndex

BASE = 1000


def _offset_index(tmp_path: Path, entries: list[tuple[int, int]]) -> OffsetIndex:
    index = OffsetIndex(tmp_path / "00000000000000001000.index", BASE)
    for key, value in entries:
        index.append(key, value)
    return index


def test_offset_index_entries_are_relative_on_disk(tmp_path: Path) -> None:
    index = _offset_index(tmp_path, [(1004, 0), (1010, 4200)])
    raw = index.path.read_bytes()
    assert raw == bytes.fromhex("00000004 00000000 0000000a 00001068".replace(" ", ""))
    assert index.size_bytes == len(raw) == 16


def test_offset_index_lookup_returns_a_position_at_or_before_the_batch(tmp_path: Path) -> None:
    # Entries are (last offset of a batch, position of that batch).
    index = _offset_index(tmp_path, [(1004, 100), (1010, 300), (1020, 700)])
    assert index.lookup(BASE) == 0  # nothing below: scan from the start
    assert index.lookup(1004) == 0  # the batch at 100 ends at 1004 and must be scanned
    assert index.lookup(1005) == 100  # the batch ending at 1004 cannot hold 1005; scan from there
    assert index.lookup(1010) == 100
    assert index.lookup(1011) == 300
    assert index.lookup(5000) == 700


def test_offset_index_ignores_keys_that_do_not_increase(tmp_path: Path) -> None:
    index = _offset_index(tmp_path, [(1004, 100), (1004, 200), (1002, 300)])
    assert len(index) == 1
    assert index.last_entry() == (1004, 100)
    assert index.path.stat().st_size == 8


def test_offset_index_truncate_to_drops_batches_ending_at_or_after(tmp_path: Path) -> None:
    index = _offset_index(tmp_path, [(1004, 100), (1010, 300), (1020, 700)])
    index.truncate_to(1010)
    assert index.last_entry() == (1004, 100)
    assert index.path.stat().st_size == 8
    index.append(1008, 250)  # appends continue after the truncation point
    index.close()
    reloaded = OffsetIndex(index.path, BASE)
    reloaded.load()
    assert [reloaded.floor(k) for k in (1004, 1009)] == [(1004, 100), (1008, 250)]


@pytest.mark.parametrize("tail", [b"\x00", b"\x00\x00\x00\x09\x00\x00", b"\x00\x00\x00\x01\x00\x00\x00\x05"],
                         ids=["partial-1", "partial-6", "key-goes-backwards"])
def test_offset_index_load_drops_a_torn_tail(tmp_path: Path, tail: bytes) -> None:
    index = _offset_index(tmp_path, [(1004, 100), (1010, 300)])
    index.close()
    with open(index.path, "ab") as f:
        f.write(tail)
    reloaded = OffsetIndex(index.path, BASE)
    reloaded.load()
    assert len(reloaded) == 2
    assert reloaded.last_entry() == (1010, 300)
    assert reloaded.path.stat().st_size == 16  # the file is cut back to whole, ordered entries
    reloaded.append(1020, 900)
    assert reloaded.path.stat().st_size == 24


def test_empty_index_loads_empty(tmp_path: Path) -> None:
    index = OffsetIndex(tmp_path / "x.index", 0)
    index.load()
    assert len(index) == 0 and index.last_entry() is None and index.lookup(10) == 0


def _time_index(tmp_path: Path, entries: list[tuple[int, int]]) -> TimeIndex:
    index = TimeIndex(tmp_path / "00000000000000001000.timeindex", BASE)
    for ts, offset in entries:
        index.append(ts, offset)
    return index


def test_time_index_entries_on_disk(tmp_path: Path) -> None:
    index = _time_index(tmp_path, [(1_700_000_000_000, 1003)])
    assert index.path.read_bytes() == (1_700_000_000_000).to_bytes(8, "big") + (3).to_bytes(4, "big")


def test_time_index_floor_and_max_timestamp(tmp_path: Path) -> None:
    index = _time_index(tmp_path, [(100, 1001), (200, 1005), (200, 1009), (150, 1012), (300, 1020)])
    assert len(index) == 3  # timestamps must grow strictly
    assert index.max_timestamp() == 300
    assert index.floor(99) is None
    assert index.floor(199) == (100, 1001)
    assert index.floor(200) == (200, 1005)
    assert index.floor(10**15) == (300, 1020)


def test_time_index_truncate_to_offset(tmp_path: Path) -> None:
    index = _time_index(tmp_path, [(100, 1001), (200, 1005), (300, 1020)])
    index.truncate_to(1005)
    assert index.last_entry() == (100, 1001)
    index.truncate_to(1000)
    assert index.max_timestamp() == -1 and index.path.stat().st_size == 0


def test_time_index_load_drops_a_torn_tail(tmp_path: Path) -> None:
    index = _time_index(tmp_path, [(100, 1001), (200, 1005)])
    index.close()
    with open(index.path, "ab") as f:
        f.write((250).to_bytes(8, "big") + b"\x00")  # 9 of 12 bytes of a third entry
    reloaded = TimeIndex(index.path, BASE)
    reloaded.load()
    assert reloaded.last_entry() == (200, 1005)
    assert reloaded.path.stat().st_size == 24
