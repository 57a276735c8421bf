"""LogCleaner on real files: compaction keeps the newest record per key, drops old tombstones,
keeps offsets, and its segment swap survives a crash at any point."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from cluster.log.cleaner import (
    CLEANED_SUFFIX,
    SWAP_SUFFIX,
    LogCleaner,
    SegmentFile,
    clean_segments,
    group_by_size,
)
from cluster.log.manager import LogManager
from cluster.log.partition_log import PartitionLog
from cluster.log.validator import RecordValidationError
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.errors import ErrorCode
from pykafka_ops.records import Compression, RecordBatch, RecordBatchBuilder
from pykafka_ops.records.batch import iter_batches

from .helpers import DAY_MS, T0, produced

COMPACTED = {"cleanup.policy": "compact", "segment.bytes": 400, "delete.retention.ms": DAY_MS}
NOW = T0 + 10 * DAY_MS


def _config(**overrides: object) -> dict[str, object]:
    return topic_defaults(broker_defaults()) | COMPACTED | overrides


def _append(log: PartitionLog, key: bytes | None, value: bytes | None, ts: int = NOW,
            compression: Compression = Compression.NONE) -> int:
    builder = RecordBatchBuilder(compression=compression)
    builder.append(key, value, timestamp_ms=ts)
    info = log.append_as_leader(produced(builder.build()), 0, ts)
    log.high_watermark = log.log_end_offset
    return info.first_offset


def _records(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every record, from the log start to the end."""
    out = []
    for segment in log.segments:
        data = segment.read(0, segment.size)
        for position, _header in iter_batches(data):
            out.extend((r.offset, r.key, r.value) for r in RecordBatch(data, position).records())
    return out


def _latest_per_key(records: list[tuple[int, bytes | None, bytes | None]]) -> dict[bytes | None, bytes | None]:
    return {key: value for _offset, key, value in records}


@pytest.fixture
def manager(tmp_path: Path):
    log_manager = LogManager(tmp_path, DAY_MS)
    log_manager.startup()
    yield log_manager
    log_manager.shutdown()


def _fill(log: PartitionLog, rounds: int = 12, keys: int = 5) -> None:
    for r in range(rounds):
        for k in range(keys):
            _append(log, b"key-%d" % k, b"value-%d-%d" % (k, r), compression=Compression.GZIP if r % 3 else
                    Compression.NONE)


def test_compaction_keeps_the_newest_value_per_key_and_every_offset_in_order(manager: LogManager) -> None:
    log = manager.get_or_create("table", 0, _config())
    _fill(log)
    before = _records(log)
    end, segments = log.log_end_offset, len(log.segments)
    assert segments > 3

    removed = asyncio.run(LogCleaner(manager).clean_logs(NOW))

    after = _records(log)
    assert removed == len(before) - len(after) > 0
    assert _latest_per_key(after) == _latest_per_key(before)
    assert [o for o, _k, _v in after] == sorted(o for o, _k, _v in after)  # offsets kept, in order
    assert log.log_end_offset == end and len(log.segments) == segments  # grouped by original size
    # One record per key below the active segment (which, as in Kafka, is never cleaned nor read
    # for the offset map: its keys keep one older value below it until it rolls).
    cleaned = [k for o, k, _v in after if o < log.segments.active.base_offset]
    assert len(cleaned) == len(set(cleaned))
    assert not list(log.directory.glob(f"*{CLEANED_SUFFIX}")) and not list(log.directory.glob(f"*{SWAP_SUFFIX}"))


def test_a_later_pass_merges_segments_that_compaction_shrank(manager: LogManager) -> None:
    log = manager.get_or_create("table", 0, _config())
    _fill(log)
    cleaner = LogCleaner(manager)
    asyncio.run(cleaner.clean_logs(NOW))
    segments = len(log.segments)
    _fill(log, rounds=2)  # rolls again, so the next pass has work
    asyncio.run(cleaner.clean_logs(NOW))
    assert len(log.segments) < segments
    assert all(s.size <= 400 for s in log.segments)


def _next_record_offset(log: PartitionLog, offset: int) -> int | None:
    """What a consumer fetching from ``offset`` reads first: it skips records below its offset
    and moves past batches (also empty ones) to their last offset + 1."""
    while offset < log.high_watermark:
        data = log.read(offset, 10_000, log.high_watermark, min_one_batch=True)
        for position, header in iter_batches(data):
            assert header.last_offset >= offset  # never a batch that ends before the fetch offset
            found = [r.offset for r in RecordBatch(data, position).records() if r.offset >= offset]
            if found:
                return found[0]
            offset = header.last_offset + 1
    return None


def test_reads_from_any_offset_after_compaction_resume_at_the_next_kept_record(manager: LogManager) -> None:
    log = manager.get_or_create("table", 0, _config())
    _fill(log)
    asyncio.run(LogCleaner(manager).clean_logs(NOW))
    kept = [o for o, _k, _v in _records(log)]
    for offset in range(log.log_end_offset):
        assert _next_record_offset(log, offset) == min(o for o in kept if o >= offset)


def test_tombstones_are_dropped_after_delete_retention_ms_and_kept_before(manager: LogManager) -> None:
    log = manager.get_or_create("table", 0, _config())
    _append(log, b"gone", b"v1", ts=NOW - 3 * DAY_MS)
    _append(log, b"gone", None, ts=NOW - 2 * DAY_MS)  # older than delete.retention.ms
    _append(log, b"recent", b"v1")
    _append(log, b"recent", None)  # a fresh tombstone
    _fill(log, rounds=6)
    cleaner = LogCleaner(manager)

    asyncio.run(cleaner.clean_logs(NOW))

    keys = {k: v for _o, k, v in _records(log)}
    assert b"gone" not in keys
    assert b"recent" in keys and keys[b"recent"] is None
    asyncio.run(cleaner.clean_logs(NOW + 2 * DAY_MS))  # due: the kept tombstone expired
    assert b"recent" not in {k for _o, k, _v in _records(log)}


def test_a_compacted_log_reopens_with_the_same_records(manager: LogManager, tmp_path: Path) -> None:
    log = manager.get_or_create("table", 0, _config())
    _fill(log)
    asyncio.run(LogCleaner(manager).clean_logs(NOW))
    expected, end = _records(log), log.log_end_offset
    log.close(clean=False)

    reopened = PartitionLog.open(log.directory, log.config, DAY_MS, clean_shutdown=False)
    assert _records(reopened) == expected and reopened.log_end_offset == end
    for segment in reopened.segments:  # indexes rebuilt (a file exists once it has an entry)
        index = segment.offset_index
        assert (index.path.stat().st_size if index.path.exists() else 0) == index.size_bytes
    reopened.close(clean=True)
    manager.logs.clear()


def test_a_crash_before_the_swap_leaves_the_old_segments(manager: LogManager) -> None:
    log = manager.get_or_create("table", 0, _config())
    _fill(log)
    expected = _records(log)
    files = [SegmentFile(s, s.path, s.size) for s in list(log.segments)[:-1]]
    cleaned = clean_segments(group_by_size(files, 400), NOW, DAY_MS)  # written, never swapped
    assert all(group.cleaned_path.exists() for group in cleaned)
    log.close(clean=False)

    reopened = PartitionLog.open(log.directory, log.config, DAY_MS, clean_shutdown=False)
    assert _records(reopened) == expected
    assert not list(log.directory.glob(f"*{CLEANED_SUFFIX}"))
    reopened.close(clean=True)
    manager.logs.clear()


def test_a_crash_in_the_middle_of_the_swap_is_finished_at_start_up(manager: LogManager) -> None:
    log = manager.get_or_create("table", 0, _config())
    _fill(log)
    latest = _latest_per_key(_records(log))
    files = [SegmentFile(s, s.path, s.size) for s in list(log.segments)[:-1]]
    group = clean_segments([files], NOW, DAY_MS)[0]
    swap = files[0].path.with_name(files[0].path.name + SWAP_SUFFIX)
    os.replace(group.cleaned_path, swap)
    files[1].path.unlink()  # the crash hit while the old segments were being deleted
    log.close(clean=False)

    reopened = PartitionLog.open(log.directory, log.config, DAY_MS, clean_shutdown=False)
    records = _records(reopened)
    assert _latest_per_key(records) == latest
    assert len(reopened.segments) == 2 and not list(log.directory.glob(f"*{SWAP_SUFFIX}"))
    assert [o for o, _k, _v in records] == sorted(o for o, _k, _v in records)
    reopened.close(clean=True)
    manager.logs.clear()


def test_a_compacted_topic_refuses_records_without_a_key(manager: LogManager) -> None:
    log = manager.get_or_create("table", 0, _config())
    with pytest.raises(RecordValidationError) as refused:
        _append(log, None, b"no key")
    assert refused.value.error_code == ErrorCode.invalid_record


def test_delete_only_and_metadata_style_logs_are_never_compacted(manager: LogManager) -> None:
    log = manager.get_or_create("events", 0, _config(**{"cleanup.policy": "delete"}))
    _fill(log)
    before = _records(log)
    assert asyncio.run(LogCleaner(manager).clean_logs(NOW)) == 0
    assert _records(log) == before


def test_compact_only_logs_ignore_time_retention(manager: LogManager) -> None:
    log = manager.get_or_create("table", 0, _config(**{"retention.ms": 1}))
    _fill(log, rounds=4)
    assert log.apply_retention(NOW + DAY_MS) == 0
    both = manager.get_or_create("both", 0, _config(**{"retention.ms": 1, "cleanup.policy": "compact,delete"}))
    _fill(both, rounds=4)
    assert both.apply_retention(NOW + DAY_MS) > 0


def _txn_append(log: PartitionLog, pid: int, seq: int, key: bytes, value: bytes) -> None:
    builder = RecordBatchBuilder(producer_id=pid, producer_epoch=0, base_sequence=seq, is_transactional=True)
    builder.append(key, value, timestamp_ms=NOW)
    log.append_as_leader(produced(builder.build()), 0, NOW)
    log.high_watermark = log.log_end_offset


def _end_txn(log: PartitionLog, pid: int, commit: bool) -> None:
    from cluster.log.transactions import Origin, build_end_txn_marker

    log.append_as_leader(produced(build_end_txn_marker(pid, 0, 0, commit, NOW)), 0, NOW, origin=Origin.COORDINATOR)
    log.high_watermark = log.log_end_offset


def test_aborted_records_are_removed_and_never_hide_committed_ones(manager: LogManager) -> None:
    log = manager.get_or_create("txn-table", 0, _config())
    _append(log, b"k", b"committed")
    _txn_append(log, 9, 0, b"k", b"aborted")
    _end_txn(log, 9, commit=False)
    _fill(log, rounds=4, keys=2)  # other keys; rolls segments
    entries = [e for s in log.segments for e in s.txn_index.entries]
    assert len(entries) == 1 and len(log.segments) > 2

    asyncio.run(LogCleaner(manager).clean_logs(NOW))

    after = _records(log)
    assert (0, b"k", b"committed") in after and not [r for r in after if r[2] == b"aborted"]
    assert [e for s in log.segments for e in s.txn_index.entries] == entries  # merged into the cleaned one
    assert log.collect_aborted_transactions(0, log.log_end_offset) == entries


def test_the_cleaner_stops_at_the_last_stable_offset(manager: LogManager) -> None:
    log = manager.get_or_create("txn-open", 0, _config())
    _txn_append(log, 11, 0, b"k", b"open")  # offset 0: the LSO stays here
    _fill(log, rounds=6, keys=2)
    before = _records(log)
    assert len(log.segments) > 2 and log.last_stable_offset == 0
    assert asyncio.run(LogCleaner(manager).clean_logs(NOW)) == 0
    assert _records(log) == before
