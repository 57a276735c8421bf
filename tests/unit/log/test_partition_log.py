"""PartitionLog (≈ Kafka's UnifiedLog) on real files: rolls, reads, restarts, crash recovery,
timestamp lookups, retention, DeleteRecords and truncation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cluster.log.partition_log import OffsetOutOfRangeError, PartitionLog
from pykafka_ops.records import RecordBatch
from pykafka_ops.records.batch import iter_batches

from .helpers import DAY_MS, T0, batch, batches_in, log_config, offsets_in, produced

SMALL = {"segment.bytes": 1000, "index.interval.bytes": 150}


def _open(directory: Path, clean: bool = True, recovery_point: int = 0, log_start_offset: int = 0,
          **config) -> PartitionLog:
    return PartitionLog.open(directory, log_config(**(SMALL | config)), DAY_MS, clean_shutdown=clean,
                             recovery_point=recovery_point, log_start_offset=log_start_offset)


def _fill(log: PartitionLog, count: int = 60, ts_step: int = 1000) -> list[tuple[int, int]]:
    """Append ``count`` requests of 1-4 records (timestamps rising by ``ts_step`` per request);
    returns each batch's (first, last) offset. The high watermark follows the log end."""
    spans = []
    for i in range(count):
        info = log.append_as_leader(produced(batch(1 + i % 4, ts=T0 + i * ts_step, value_size=30)), 0,
                                    T0 + i * ts_step)
        spans.append((info.first_offset, info.last_offset))
    log.high_watermark = log.log_end_offset
    return spans


@pytest.fixture
def log(tmp_path: Path) -> PartitionLog:
    partition_log = _open(tmp_path / "orders-0")
    yield partition_log
    partition_log.close(clean=False)


# --- append and roll --------------------------------------------------------------------------


def test_appends_roll_segments_at_segment_bytes(log: PartitionLog) -> None:
    spans = _fill(log)
    assert log.log_end_offset == spans[-1][1] + 1 == sum(1 + i % 4 for i in range(60))
    assert len(log.segments) > 5
    for current, following in zip(log.segments, list(log.segments)[1:]):
        assert current.size <= 1000
        assert following.base_offset == current.next_offset  # no gaps between segments
    files = sorted(p.name for p in log.directory.glob("*.log"))
    assert files == [f"{s.base_offset:020d}.log" for s in log.segments]
    assert [s.base_offset for s in log.unflushed_segments] == [s.base_offset for s in log.segments][:-1]


def test_append_returns_offsets_and_timestamps(log: PartitionLog) -> None:
    info = log.append_as_leader(produced(batch(3, timestamps=[T0 + 5, T0 + 9, T0 + 1]), batch(2)), 4, T0 + 50)
    assert (info.first_offset, info.last_offset, info.max_timestamp, info.records) == (0, 4, T0 + 9, 5)
    assert info.log_append_time_ms == -1 and not info.duplicate
    data = log.read(0, 1 << 20, log.log_end_offset, True)
    assert [h.partition_leader_epoch for _p, h in iter_batches(data)] == [4, 4]


def test_log_append_time_topic_stamps_the_broker_time(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0", **{"message.timestamp.type": "LogAppendTime"})
    info = log.append_as_leader(produced(batch(2)), 0, T0 + 777)
    assert (info.log_append_time_ms, info.max_timestamp) == (T0 + 777, T0 + 777)
    rb = RecordBatch(log.read(0, 1 << 20, 2, True))
    rb.validate_crc()
    assert [r.timestamp for r in rb.records()] == [T0 + 777] * 2


def test_segment_ms_rolls_on_record_timestamps_not_wall_clock(log: PartitionLog, tmp_path: Path) -> None:
    """Kafka's LogSegment.shouldRoll: time waited = the incoming batches' max timestamp minus the
    segment's first batch timestamp. Records with old timestamps (a mirror, a replay) must not
    roll a segment per request just because the wall clock is later."""
    now = T0 + 400 * DAY_MS
    for i in range(5):
        log.append_as_leader(produced(batch(1, ts=T0 + i)), 0, now + i)
    assert len(log.segments) == 1
    # An incoming batch more than segment.ms (7 days) after the segment's first batch rolls.
    log.append_as_leader(produced(batch(1, ts=T0 + 8 * DAY_MS)), 0, now + 10)
    assert [s.base_offset for s in log.segments] == [0, 5]


def test_segment_ms_rolls_on_age_for_records_without_timestamps(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0", **{"segment.ms": 1000})
    log.append_as_leader(produced(batch(1, ts=-1)), 0, T0)
    log.segments.active.created_ms = T0
    log.append_as_leader(produced(batch(1, ts=-1)), 0, T0 + 500)
    assert len(log.segments) == 1
    log.append_as_leader(produced(batch(1, ts=-1)), 0, T0 + 1001)
    assert len(log.segments) == 2


def test_roll_of_an_empty_segment_is_a_no_op(log: PartitionLog) -> None:
    assert log.roll(T0) is log.segments.active and len(log.segments) == 1


# --- read -------------------------------------------------------------------------------------


def test_read_from_every_offset_starts_with_the_batch_holding_it(log: PartitionLog) -> None:
    spans = _fill(log)
    end = log.log_end_offset
    for first, last in spans:
        for offset in range(first, last + 1):
            data = log.read(offset, 1 << 20, end, min_one_batch=True)
            got = batches_in(data)
            assert got[0][:2] == (first, last), offset
            segment = log.segments[log.segments.floor(offset)]
            # Whole batches up to the end of that segment (a read never spans segments).
            assert got[-1][1] == segment.next_offset - 1
            assert len(data) == segment.size - segment.position_of(offset)


def test_read_at_the_segment_boundary_moves_to_the_next_segment(log: PartitionLog) -> None:
    _fill(log)
    second = log.segments[1]
    data = log.read(second.base_offset, 1 << 20, log.log_end_offset, True)
    assert batches_in(data)[0][0] == second.base_offset


def test_read_stops_before_max_offset(log: PartitionLog) -> None:
    spans = _fill(log)
    for first, last in spans[:12]:
        stop = last + 1  # a batch boundary, like a high watermark
        data = log.read(0, 1 << 20, stop, True)
        got = batches_in(data)
        assert got[-1][1] == min(last, log.segments[0].next_offset - 1)
        assert all(batch_last < stop for _b, batch_last, _n in got)
    assert log.read(spans[5][0], 1 << 20, spans[5][0], True) == b""
    assert log.read(spans[5][0], 1 << 20, 0, True) == b""


def test_read_is_bounded_by_max_bytes(log: PartitionLog) -> None:
    _fill(log)
    whole = log.read(0, 1 << 20, log.log_end_offset, True)
    sizes = [h.size for _p, h in iter_batches(whole)]
    limit = sizes[0] + sizes[1] + sizes[2] // 2
    data = log.read(0, limit, log.log_end_offset, True)
    # Kafka would also send the cut-off part of the third batch (clients skip it); we do not
    assert bytes(data) == whole[: sizes[0] + sizes[1]]
    assert batches_in(data) == batches_in(whole)[:2]


def test_min_one_batch_returns_a_whole_oversize_first_batch(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0", **{"segment.bytes": 1 << 20})
    log.append_as_leader(produced(batch(2, value_size=5000)), 0, T0)
    first_size = log.segments[0].size
    log.append_as_leader(produced(batch(1)), 0, T0)
    end = log.log_end_offset
    data = log.read(0, 100, end, min_one_batch=True)
    assert len(data) == first_size and batches_in(data) == [(0, 1, 2)]
    assert log.read(1, 100, end, min_one_batch=True) == data
    assert len(log.read(0, 100, end, min_one_batch=False)) == 0  # no whole batch fits: nothing


def test_read_outside_the_log_raises_offset_out_of_range(log: PartitionLog) -> None:
    _fill(log, count=10)
    end = log.log_end_offset
    assert log.read(end, 1 << 20, end, True) == b""  # the log end itself is a valid (empty) read
    with pytest.raises(OffsetOutOfRangeError):
        log.read(end + 1, 1 << 20, end + 10, True)
    log.delete_records_before(5)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(4, 1 << 20, end, True)
    assert offsets_in(log.read(5, 1 << 20, end, True))[0] <= 5
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1, 1 << 20, end, True)


# --- restart and recovery ---------------------------------------------------------------------


def _snapshot(log: PartitionLog) -> tuple:
    return (log.log_end_offset, log.log_start_offset, [s.base_offset for s in log.segments],
            {pid: (e.epoch, list(e.batches)) for pid, e in log.producer_state.producers.items()},
            [(s.base_offset, s.next_offset, s.size, s.max_timestamp, s.offset_of_max_timestamp) for s in log.segments])


def _fill_idempotent(log: PartitionLog, count: int = 40) -> None:
    for i in range(count):
        pid = 1 + i % 3
        log.append_as_leader(produced(batch(2, ts=T0 + i, producer_id=pid, epoch=0, seq=(i // 3) * 2)), 0, T0 + i)
    log.high_watermark = log.log_end_offset


def test_clean_close_and_open_restore_the_log(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _fill_idempotent(log)
    log.delete_records_before(30)
    before = _snapshot(log)
    everything = log.read(30, 1 << 20, log.log_end_offset, True)
    log.close(clean=True)
    reopened = _open(tmp_path / "t-0", clean=True, log_start_offset=30)
    assert _snapshot(reopened) == before
    assert reopened.high_watermark == reopened.log_end_offset
    assert reopened.read(30, 1 << 20, reopened.log_end_offset, True) == everything
    assert reopened.append_as_leader(produced(batch(1)), 0, T0).first_offset == before[0]
    reopened.close(clean=True)


def test_open_after_a_crash_recovers_every_segment(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _fill_idempotent(log)
    before = _snapshot(log)
    reopened = _open(tmp_path / "t-0", clean=False)  # no close: a kill -9
    assert _snapshot(reopened) == before


def test_open_after_a_crash_cuts_a_torn_tail(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _fill_idempotent(log)
    active = log.segments.active
    headers = list(active.iter_headers())
    assert len(headers) >= 3
    last_pos, last = headers[-1]
    os.truncate(active.path, last_pos + last.size - 7)
    reopened = _open(tmp_path / "t-0", clean=False)
    assert reopened.log_end_offset == last.base_offset
    assert reopened.segments.active.size == last_pos
    assert reopened.producer_state.producers[last.producer_id].last_seq == last.base_sequence - 1
    # The lost batch can be sent again (the producer retries it) and lands at the same offset.
    info = reopened.append_as_leader(
        produced(batch(2, producer_id=last.producer_id, epoch=0, seq=last.base_sequence)), 0, T0)
    assert info.first_offset == last.base_offset and not info.duplicate


def test_corrupt_middle_segment_cuts_it_and_drops_the_segments_after_it(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _fill(log)
    victim = log.segments[2]
    pos, header = list(victim.iter_headers())[1]
    data = bytearray(victim.path.read_bytes())
    data[pos + header.size - 1] ^= 0xFF
    victim.path.write_bytes(data)
    reopened = _open(tmp_path / "t-0", clean=False)
    assert len(reopened.segments) == 3
    assert reopened.log_end_offset == header.base_offset
    assert sorted(p.name for p in (tmp_path / "t-0").glob("*.log")) == [
        f"{s.base_offset:020d}.log" for s in reopened.segments]
    assert not list((tmp_path / "t-0").glob(f"{log.segments[3].base_offset:020d}.*"))


def test_segments_below_the_recovery_point_are_trusted(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _fill(log)
    # Damage an early segment's data *and* its index: below the recovery point it is loaded
    # (not checked), as Kafka does; the active segment above it is recovered.
    first = log.segments[0]
    data = bytearray(first.path.read_bytes())
    data[-1] ^= 0xFF
    first.path.write_bytes(data)
    active = log.segments.active
    pos, header = list(active.iter_headers())[-1]
    os.truncate(active.path, pos + 10)
    reopened = _open(tmp_path / "t-0", clean=False, recovery_point=active.base_offset)
    assert len(reopened.segments) == len(log.segments)
    assert reopened.segments[0].size == first.size
    assert reopened.log_end_offset == header.base_offset


def test_a_broken_index_is_rebuilt_even_for_a_clean_shutdown(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _fill(log)
    before = _snapshot(log)
    log.close(clean=True)
    index = tmp_path / "t-0" / f"{log.segments[1].base_offset:020d}.index"
    index.write_bytes((0).to_bytes(4, "big") + (10**6).to_bytes(4, "big"))  # points past the end
    reopened = _open(tmp_path / "t-0", clean=True)
    assert _snapshot(reopened)[:3] == before[:3]


def test_stray_files_are_cleaned_at_open(tmp_path: Path) -> None:
    directory = tmp_path / "t-0"
    log = _open(directory)
    _fill(log, count=5)
    log.close(clean=True)
    (directory / "00000000000000000999.index").write_bytes(b"")
    (directory / "00000000000000000000.snapshot.tmp").write_text("{}")
    (directory / "x.tmp").write_text("")
    _open(directory)
    assert not (directory / "00000000000000000999.index").exists()
    assert not list(directory.glob("*.tmp"))


def test_empty_log_opens_at_its_log_start_offset(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0", log_start_offset=500)
    assert (log.log_start_offset, log.log_end_offset, log.segments.first.base_offset) == (500, 500, 500)
    assert log.append_as_leader(produced(batch(2)), 0, T0).first_offset == 500


# --- timestamps -------------------------------------------------------------------------------


def test_offset_for_timestamp_finds_the_first_record_at_or_after(log: PartitionLog) -> None:
    _fill(log, ts_step=1000)
    records = [(r.offset, r.timestamp) for s in log.segments
               for pos, _h in iter_batches(s.read(0, s.size)) for r in RecordBatch(s.read(0, s.size), pos).records()]
    for target in [T0 - 5, T0, T0 + 1, T0 + 999, T0 + 1000, T0 + 17_002, T0 + 30_500, T0 + 59_000]:
        expected = next(((o, ts) for o, ts in records if ts >= target), None)
        found = log.offset_for_timestamp(target)
        assert (found.offset, found.timestamp) == expected, target
    assert log.offset_for_timestamp(T0 + 10**9) is None


def test_offset_for_timestamp_with_timestamps_out_of_order(log: PartitionLog) -> None:
    log.append_as_leader(produced(batch(3, timestamps=[T0 + 50, T0 + 10, T0 + 30])), 0, T0)
    log.append_as_leader(produced(batch(2, timestamps=[T0 + 20, T0 + 60])), 0, T0)
    log.high_watermark = log.log_end_offset
    assert log.offset_for_timestamp(T0 + 25).offset == 0
    assert log.offset_for_timestamp(T0 + 55).offset == 4
    assert log.offset_for_timestamp(T0 + 5).offset == 0


def test_offset_for_timestamp_ignores_records_above_the_high_watermark(log: PartitionLog) -> None:
    _fill(log, count=10)
    log.high_watermark = 5
    assert log.offset_for_timestamp(T0 + 9000) is None
    assert log.offset_for_timestamp(T0).offset == 0


def test_offset_for_timestamp_respects_the_log_start_offset(log: PartitionLog) -> None:
    _fill(log, count=10)
    log.delete_records_before(2)
    found = log.offset_for_timestamp(T0)
    assert found.offset == 2


def test_max_timestamp_offset(log: PartitionLog) -> None:
    assert log.max_timestamp_offset() is None
    log.append_as_leader(produced(batch(3, timestamps=[T0 + 1, T0 + 90, T0 + 2])), 0, T0)
    log.append_as_leader(produced(batch(2, timestamps=[T0 + 5, T0 + 90])), 0, T0)
    log.append_as_leader(produced(batch(1, timestamps=[T0 + 7])), 0, T0)
    log.high_watermark = log.log_end_offset
    found = log.max_timestamp_offset()
    assert (found.timestamp, found.offset) == (T0 + 90, 1)  # the first record with the max
    log.high_watermark = 0
    assert log.max_timestamp_offset() is None


# --- retention and deletion -------------------------------------------------------------------


def test_time_retention_deletes_expired_segments_and_moves_the_log_start(log: PartitionLog) -> None:
    _fill(log, ts_step=1000)
    segments = list(log.segments)
    # Segments whose newest record is older than retention.ms go (Kafka: now - largestTimestamp > retention.ms).
    cut = segments[3].max_timestamp
    log.config = log_config(**(SMALL | {"retention.ms": 10_000}))
    assert log.apply_retention(cut + 10_001) == 4
    assert log.log_start_offset == segments[4].base_offset == log.segments.first.base_offset
    assert not segments[0].path.exists()
    with pytest.raises(OffsetOutOfRangeError):
        log.read(0, 100, log.log_end_offset, True)


def test_time_retention_of_everything_rolls_the_active_segment(log: PartitionLog) -> None:
    _fill(log, count=10)
    end = log.log_end_offset
    log.config = log_config(**(SMALL | {"retention.ms": 1}))
    log.apply_retention(T0 + 10**7)
    assert (log.log_start_offset, log.log_end_offset, len(log.segments)) == (end, end, 1)
    assert log.segments.active.size == 0
    assert log.append_as_leader(produced(batch(1)), 0, T0).first_offset == end


def test_size_retention_keeps_at_most_retention_bytes(log: PartitionLog) -> None:
    _fill(log)
    total = log.size_bytes
    log.config = log_config(**(SMALL | {"retention.bytes": 2500}))
    deleted = log.apply_retention(T0)
    assert deleted > 0
    # As Kafka: delete oldest segments while what remains is still at least retention.bytes.
    assert 2500 <= log.size_bytes < 2500 + 1000
    assert log.size_bytes - log.segments.first.size < 2500
    assert total > log.size_bytes
    assert log.log_start_offset == log.segments.first.base_offset


@pytest.mark.parametrize("rule", [{"retention.ms": 1}, {"retention.bytes": 0}])
def test_retention_never_deletes_segments_above_the_high_watermark(log: PartitionLog, rule: dict) -> None:
    _fill(log)
    hw_segment = 3
    log.high_watermark = log.segments[hw_segment].base_offset + 1  # inside segment 3
    kept = [s.base_offset for s in log.segments][hw_segment:]
    log.config = log_config(**(SMALL | rule))
    assert log.apply_retention(T0 + 10**9) == hw_segment
    assert [s.base_offset for s in log.segments] == kept
    assert log.log_start_offset == kept[0]
    assert log.apply_retention(T0 + 10**9) == 0  # and nothing more on the next run


def test_delete_records_before_moves_the_log_start_and_drops_whole_segments(log: PartitionLog) -> None:
    _fill(log)
    third = log.segments[2]
    target = third.base_offset + 2
    assert log.delete_records_before(target) == target
    assert log.segments.first is third and log.log_start_offset == target
    assert log.delete_records_before(3) == target  # never moves backwards
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(log.high_watermark + 1)
    assert log.delete_records_before(log.high_watermark) == log.log_end_offset
    assert len(log.segments) == 1


def test_truncate_to_removes_records_segments_and_producer_state(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _fill_idempotent(log)
    target = log.segments[1].base_offset + 2  # a batch boundary: every batch has 2 records
    assert target % 2 == 0
    log.truncate_to(target)
    assert log.log_end_offset == target and len(log.segments) == 2
    assert log.high_watermark == target
    assert max(b.last_offset for e in log.producer_state.producers.values() for b in e.batches) == target - 1
    assert not any(s.base_offset > target for s in log.unflushed_segments)
    assert log.append_as_leader(produced(batch(1)), 0, T0).first_offset == target


def test_truncated_segments_are_not_flushed_later(tmp_path: Path) -> None:
    log = _open(tmp_path / "t-0")
    _fill(log)
    log.truncate_to(1)
    for segment in log.unflushed_segments:  # what LogManager.flush does with them
        segment.flush()
