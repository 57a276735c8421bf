"""LogSegment on real files: append, find_batch, read, iter_headers, load, recover, truncate_to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cluster.log.segment import LogSegment, segment_file_stem
from cluster.log.validator import assign_offsets, validate_record_set
from pykafka_ops.records import RecordBatch
from pykafka_ops.records.batch import CRC, iter_batches

from .helpers import T0, batch, batches_in, produced

BASE = 100


def _append(segment: LogSegment, *batches: bytes, leader_epoch: int = 0) -> list[int]:
    """Append as the log does (offsets assigned in place from the segment's next offset)."""
    records = produced(*batches)
    validated = validate_record_set(records, 1 << 20, 1 << 30)
    infos = assign_offsets(records, validated, segment.next_offset, leader_epoch, None)
    segment.append(records, infos)
    return [info.last_offset for info in infos]


def _filled(tmp_path: Path, count: int = 20, index_interval_bytes: int = 200) -> LogSegment:
    """A segment holding ``count`` batches of 1-3 records (offsets BASE …), timestamps rising."""
    segment = LogSegment(tmp_path, BASE, index_interval_bytes, created_ms=T0)
    for i in range(count):
        _append(segment, batch(1 + i % 3, ts=T0 + 10 * i, value_size=40))
    return segment


def test_segment_files_are_named_by_20_digit_base_offset(tmp_path: Path) -> None:
    segment = LogSegment(tmp_path, 42, 0)
    assert segment_file_stem(42) == "00000000000000000042"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000000000000000042.log"]  # indexes: with an entry
    assert segment.size == 0 and segment.next_offset == 42
    _append(segment, batch(42, ts=T0))
    _append(segment, batch(43, ts=T0))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "00000000000000000042.index", "00000000000000000042.log", "00000000000000000042.timeindex"]


def test_append_writes_batches_with_assigned_offsets(tmp_path: Path) -> None:
    segment = LogSegment(tmp_path, BASE, 4096)
    assert _append(segment, batch(3), batch(2)) == [102, 104]
    assert _append(segment, batch(1)) == [105]
    data = segment.path.read_bytes()
    assert len(data) == segment.size
    assert batches_in(data) == [(100, 102, 3), (103, 104, 2), (105, 105, 1)]
    assert segment.next_offset == 106
    for pos, _header in iter_batches(data):
        RecordBatch(data, pos).validate_crc()  # base offsets sit outside the CRC


def test_index_entries_follow_index_interval_bytes(tmp_path: Path) -> None:
    segment = _filled(tmp_path)
    sizes = [h.size for _p, h in segment.iter_headers()]
    # Kafka's rule: an entry for a batch when more than index.interval.bytes were appended
    # since the previous entry (the first batch never gets one).
    expected, since, pos = [], 0, 0
    for header_pos, header in segment.iter_headers():
        if since > 200:
            expected.append((header.last_offset, header_pos))
            since = 0
        since += header.size
        pos += header.size
    assert len(expected) >= 3 and sum(sizes) == segment.size
    assert [segment.offset_index.floor(k) for k, _ in expected] == expected
    assert len(segment.offset_index) == len(expected)
    assert len(segment.time_index) == len(expected)  # timestamps rise, so each gets a time entry


def test_iter_headers_yields_every_whole_batch(tmp_path: Path) -> None:
    segment = _filled(tmp_path, count=7)
    headers = list(segment.iter_headers())
    assert [h.base_offset for _p, h in headers] == [100, 101, 103, 106, 107, 109, 112]
    assert headers[0][0] == 0
    assert all(p2 == p1 + h1.size for (p1, h1), (p2, _h2) in zip(headers, headers[1:]))
    # From a later batch boundary, and stopping at an ``end`` inside a batch.
    third = headers[2][0]
    assert [h.base_offset for _p, h in segment.iter_headers(third, headers[4][0] + 10)] == [103, 106]


def test_iter_headers_handles_batches_larger_than_the_scan_chunk(tmp_path: Path) -> None:
    segment = LogSegment(tmp_path, 0, 4096)
    _append(segment, batch(1), batch(2, value_size=100_000), batch(1))
    assert [(h.base_offset, h.records_count) for _p, h in segment.iter_headers()] == [(0, 1), (1, 2), (3, 1)]


def test_find_batch_returns_the_batch_holding_every_offset(tmp_path: Path) -> None:
    segment = _filled(tmp_path, count=30)
    headers = list(segment.iter_headers())
    for position, header in headers:
        for offset in range(header.base_offset, header.last_offset + 1):
            assert segment.find_batch(offset) == (position, header)
            assert segment.position_of(offset) == position
    assert segment.find_batch(segment.next_offset) is None
    assert segment.position_of(segment.next_offset) == segment.size
    assert segment.find_batch(0) == headers[0]  # below the base: the first batch


def test_read_returns_file_bytes(tmp_path: Path) -> None:
    segment = _filled(tmp_path, count=3)
    data = segment.path.read_bytes()
    assert segment.read(0, segment.size) == data
    assert segment.read(5, 10) == data[5:15]
    assert segment.read(segment.size - 3, 100) == data[-3:]


def test_load_restores_next_offset_and_timestamps(tmp_path: Path) -> None:
    segment = _filled(tmp_path, count=25)
    state = (segment.next_offset, segment.max_timestamp, segment.offset_of_max_timestamp, segment.size,
             segment.first_batch_timestamp)
    entries = list(zip(segment.offset_index._keys, segment.offset_index._values))
    segment.close()
    reopened = LogSegment(tmp_path, BASE, 200)
    reopened.load()
    assert (reopened.next_offset, reopened.max_timestamp, reopened.offset_of_max_timestamp, reopened.size,
            reopened.first_batch_timestamp) == state
    assert list(zip(reopened.offset_index._keys, reopened.offset_index._values)) == entries


def test_load_with_an_index_entry_past_the_log_end_raises(tmp_path: Path) -> None:
    segment = _filled(tmp_path, count=25)
    segment.close()
    os.truncate(segment.path, 50)
    reopened = LogSegment(tmp_path, BASE, 200)
    with pytest.raises(Exception):
        reopened.load()


# --- recovery ---------------------------------------------------------------------------------


def _damage_and_recover(tmp_path: Path, damage) -> tuple[LogSegment, list, int]:
    """Fill a segment, note its batches, apply ``damage(path, headers)``, reopen and recover."""
    segment = _filled(tmp_path, count=12)
    headers = list(segment.iter_headers())
    index_entries = list(zip(segment.offset_index._keys, segment.offset_index._values))
    time_entries = list(zip(segment.time_index._keys, segment.time_index._values))
    segment.close()
    keep = damage(segment.path, headers)
    reopened = LogSegment(tmp_path, BASE, 200)
    seen = []
    result = reopened.recover(1 << 20, seen.append)
    valid = sum(h.size for _p, h in headers[:keep])
    assert result.valid_bytes == valid == reopened.size == segment.path.stat().st_size
    assert result.batches == keep == len(seen)
    assert [h.base_offset for h in seen] == [h.base_offset for _p, h in headers[:keep]]
    last_offset = headers[keep - 1][1].last_offset
    assert reopened.next_offset == last_offset + 1
    # The indexes are rebuilt exactly as the appends had built them, up to the cut.
    assert list(zip(reopened.offset_index._keys, reopened.offset_index._values)) == [
        e for e in index_entries if e[1] < valid]
    assert list(zip(reopened.time_index._keys, reopened.time_index._values)) == [
        e for e in time_entries if e[1] <= last_offset]
    return reopened, headers, result


def test_recover_cuts_a_log_truncated_mid_batch(tmp_path: Path) -> None:
    def cut(path: Path, headers: list) -> int:
        pos, header = headers[7]
        os.truncate(path, pos + header.size // 2)
        return 7

    _segment, _headers, result = _damage_and_recover(tmp_path, cut)
    assert result.truncated_bytes > 0 and result.reason


def test_recover_cuts_a_log_truncated_inside_a_batch_header(tmp_path: Path) -> None:
    def cut(path: Path, headers: list) -> int:
        os.truncate(path, headers[9][0] + 30)
        return 9

    _damage_and_recover(tmp_path, cut)


def test_recover_cuts_at_a_batch_with_a_bad_crc(tmp_path: Path) -> None:
    def flip(path: Path, headers: list) -> int:
        pos, header = headers[5]
        data = bytearray(path.read_bytes())
        data[pos + header.size - 3] ^= 0x40  # a byte inside the records
        path.write_bytes(data)
        return 5

    _segment, _headers, result = _damage_and_recover(tmp_path, flip)
    assert "CRC" in result.reason


def test_recover_cuts_trailing_zeros(tmp_path: Path) -> None:
    def zeros(path: Path, headers: list) -> int:
        with open(path, "ab") as f:
            f.write(bytes(4096))  # preallocated or torn pages after a crash
        return len(headers)

    _segment, _headers, result = _damage_and_recover(tmp_path, zeros)
    assert result.truncated_bytes == 4096


def test_recover_cuts_a_batch_whose_offsets_go_backwards(tmp_path: Path) -> None:
    def rewind(path: Path, headers: list) -> int:
        pos, _header = headers[4]
        data = bytearray(path.read_bytes())
        data[pos : pos + 8] = (BASE).to_bytes(8, "big")  # base offset outside the CRC
        path.write_bytes(data)
        return 4

    _damage_and_recover(tmp_path, rewind)


def test_recover_of_an_intact_segment_changes_nothing(tmp_path: Path) -> None:
    segment, headers, result = _damage_and_recover(tmp_path, lambda path, headers: len(headers))
    assert result.truncated_bytes == 0 and result.reason is None
    assert segment.max_timestamp == T0 + 10 * 11 + 2  # the last batch holds 3 records


def test_recover_then_append_continues_the_offsets(tmp_path: Path) -> None:
    def cut(path: Path, headers: list) -> int:
        os.truncate(path, headers[3][0] + 1)
        return 3

    segment, headers, _result = _damage_and_recover(tmp_path, cut)
    assert _append(segment, batch(2)) == [headers[2][1].last_offset + 2]
    assert [h.base_offset for _p, h in segment.iter_headers()][-1] == headers[2][1].last_offset + 1


# --- truncation -------------------------------------------------------------------------------


def test_truncate_to_removes_batches_from_an_offset(tmp_path: Path) -> None:
    segment = _filled(tmp_path, count=20)
    headers = list(segment.iter_headers())
    pos, header = headers[11]
    size = segment.size
    assert segment.truncate_to(header.base_offset) == size - pos
    assert segment.size == pos == segment.path.stat().st_size
    assert segment.next_offset == header.base_offset
    assert segment.max_timestamp == headers[10][1].max_timestamp
    assert all(k < header.base_offset for k in segment.offset_index._keys)
    assert all(v < header.base_offset for v in segment.time_index._values)
    assert _append(segment, batch(1)) == [header.base_offset]


def test_truncate_to_the_base_offset_empties_the_segment(tmp_path: Path) -> None:
    segment = _filled(tmp_path, count=5)
    size = segment.size
    assert segment.truncate_to(BASE) == size
    assert (segment.size, segment.next_offset, segment.max_timestamp) == (0, BASE, -1)
    assert len(segment.offset_index) == len(segment.time_index) == 0


def test_delete_removes_all_three_files(tmp_path: Path) -> None:
    segment = _filled(tmp_path, count=5)
    segment.delete()
    assert list(tmp_path.iterdir()) == []


def test_crc_offset_constant_matches_the_batch_layout() -> None:
    assert CRC == 17


def test_a_segment_emptied_by_truncation_restarts_its_roll_clock(tmp_path: Path) -> None:
    # Kafka's LogSegment.truncateTo: when nothing is left, the first-batch timestamp used by
    # time-based rolling is forgotten (and the creation time restarts).
    segment = LogSegment(tmp_path, BASE, 4096, created_ms=T0)
    _append(segment, batch(2, ts=T0))
    segment.truncate_to(BASE)
    assert segment.first_batch_timestamp is None
    assert segment.created_ms > T0
    _append(segment, batch(1, ts=T0 + 10 * 86_400_000))
    assert segment.first_batch_timestamp == T0 + 10 * 86_400_000


def test_truncation_keeps_the_first_batch_timestamp_of_what_remains(tmp_path: Path) -> None:
    segment = _filled(tmp_path, count=5)
    first = segment.first_batch_timestamp
    segment.truncate_to(BASE + 2)
    assert segment.first_batch_timestamp == first


class DiskFull:
    """``os.write`` that writes half of the first call's bytes, then fails with ENOSPC
    ``failures`` times (the probe's partial write followed by "No space left on device")."""

    def __init__(self, real_write: object, failures: int = 1) -> None:
        self.real_write = real_write
        self.failures = failures
        self.calls = 0

    def __call__(self, fd: int, data: object) -> int:
        self.calls += 1
        view = memoryview(data)  # type: ignore[arg-type]
        if self.calls == 1 and len(view) > 1:
            return self.real_write(fd, view[: len(view) // 2])  # type: ignore[operator]
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        return self.real_write(fd, view)  # type: ignore[operator]


def test_a_failed_append_leaves_no_bytes_behind_and_the_next_one_lands_at_the_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    segment = _filled(tmp_path, count=5, index_interval_bytes=0)
    size, entries, next_offset = segment.size, len(segment.offset_index), segment.next_offset
    monkeypatch.setattr(os, "write", DiskFull(os.write))
    with pytest.raises(OSError, match="No space left"):
        _append(segment, batch(3, ts=T0 + 1000, value_size=500))
    monkeypatch.undo()
    assert (segment.size, len(segment.offset_index), segment.next_offset) == (size, entries, next_offset)
    assert os.path.getsize(segment.path) == size

    _append(segment, batch(2, ts=T0 + 2000, value_size=40))  # space is back
    fresh = LogSegment(tmp_path, BASE, 0)
    result = fresh.recover(1 << 20, lambda _header: None)
    assert result.truncated_bytes == 0 and result.batches == 6
    assert fresh.next_offset == next_offset + 2


def test_an_index_entry_that_cannot_be_written_undoes_the_whole_append(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    segment = _filled(tmp_path, count=5, index_interval_bytes=0)
    size = segment.size
    real_write = os.write

    def index_fails(fd: int, data: object) -> int:
        if not os.path.samefile(f"/proc/self/fd/{fd}", segment.path):
            raise OSError(28, "No space left on device")
        return real_write(fd, data)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "write", index_fails)
    with pytest.raises(OSError):
        _append(segment, batch(1, ts=T0 + 1000, value_size=40))
    monkeypatch.undo()
    assert os.path.getsize(segment.path) == size == segment.size
    assert os.path.getsize(segment.offset_index.path) == segment.offset_index.size_bytes
