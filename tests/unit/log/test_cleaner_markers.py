"""LogCleaner and transaction markers on real files (KIP-98, KIP-534): aborted data goes at once,
an empty marker is stamped with a delete horizon by the first pass and removed by a pass after it,
the ``.txnindex`` follows, nothing at or above the LSO is touched, and the log reopens with the
same LSO and producer state."""

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
from cluster.log.cleaner_transactions import (
    CleanedTransactionMetadata,
    delete_horizon_ms,
    last_records_of_active_producers,
)
from cluster.log.manager import LogManager
from cluster.log.partition_log import PartitionLog
from cluster.log.transaction_index import TXN_INDEX_SUFFIX
from cluster.log.transactions import Origin, build_end_txn_marker, end_txn_marker
from pykafka_ops.records import RecordBatch, RecordBatchBuilder
from pykafka_ops.records.batch import BatchHeader, iter_batches
from pykafka_ops.records.record import ControlRecordType
from pykafka_ops.services.dump_log import iter_log

from .helpers import DAY_MS, T0, produced

NOW = T0 + 10 * DAY_MS
HORIZON = NOW + DAY_MS
CONFIG = {"cleanup.policy": "compact", "segment.bytes": 400, "delete.retention.ms": DAY_MS}


@pytest.fixture
def manager(tmp_path: Path):
    log_manager = LogManager(tmp_path, 30 * DAY_MS)
    log_manager.startup()
    yield log_manager
    log_manager.shutdown()


@pytest.fixture
def log(manager: LogManager) -> PartitionLog:
    from pykafka_ops.config.settings import broker_defaults, topic_defaults

    return manager.get_or_create("txn-table", 0, topic_defaults(broker_defaults()) | CONFIG)


class Producer:
    """A transactional producer writing straight to the log (the Produce and WriteTxnMarkers paths)."""

    def __init__(self, log: PartitionLog, pid: int, epoch: int = 0) -> None:
        self.log, self.pid, self.epoch, self.seq = log, pid, epoch, 0

    def send(self, key: bytes, value: bytes | None) -> int:
        builder = RecordBatchBuilder(producer_id=self.pid, producer_epoch=self.epoch, base_sequence=self.seq,
                                     is_transactional=True)
        builder.append(key, value, timestamp_ms=NOW)
        self.seq += 1
        offset = self.log.append_as_leader(produced(builder.build()), 0, NOW).first_offset
        self.log.high_watermark = self.log.log_end_offset
        return offset

    def end(self, commit: bool) -> int:
        marker = build_end_txn_marker(self.pid, self.epoch, 0, commit, NOW)
        offset = self.log.append_as_leader(produced(marker), 0, NOW, origin=Origin.COORDINATOR).first_offset
        self.log.high_watermark = self.log.log_end_offset
        return offset


def _put(log: PartitionLog, key: bytes, value: bytes | None) -> int:
    builder = RecordBatchBuilder()
    builder.append(key, value, timestamp_ms=NOW)
    offset = log.append_as_leader(produced(builder.build()), 0, NOW).first_offset
    log.high_watermark = log.log_end_offset
    return offset


def _fill(log: PartitionLog, rounds: int = 4) -> None:
    """Unrelated keys, enough to roll what came before out of the active segment."""
    for r in range(rounds):
        for k in range(3):
            _put(log, b"filler-%d" % k, b"round-%d" % r)


def _batches(log: PartitionLog) -> list[tuple[BatchHeader, bytes]]:
    out = []
    for segment in log.segments:
        data = segment.read(0, segment.size)
        out.extend((h, bytes(data[p:p + h.size])) for p, h in iter_batches(data))
    return out


def _marker_at(log: PartitionLog, offset: int) -> BatchHeader | None:
    """The header of the control batch holding ``offset`` (None once the marker is gone)."""
    return next((h for h, data in _batches(log)
                 if h.is_control and h.base_offset == offset and end_txn_marker(h, data) is not None), None)


def _aborted_entries(log: PartitionLog) -> list:
    return [e for s in log.segments for e in s.txn_index.entries]


def _read_committed(log: PartitionLog) -> dict[bytes, bytes | None]:
    """The table a read_committed consumer builds from the log start to the LSO: it drops the
    records of the aborted transactions the broker lists (as a client does) and control records."""
    stable = log.last_stable_offset
    aborted = log.collect_aborted_transactions(log.log_start_offset, stable)
    table: dict[bytes, bytes | None] = {}
    for header, data in _batches(log):
        if header.is_control or header.base_offset >= stable:
            continue
        if any(e.producer_id == header.producer_id and e.first_offset <= header.base_offset <= e.last_offset
               for e in aborted):
            continue
        for record in RecordBatch(data).records():
            table[record.key] = record.value
    return table


def _clean(manager: LogManager, cleaner: LogCleaner, now_ms: int) -> int:
    return asyncio.run(cleaner.clean_logs(now_ms))


def test_an_aborted_transaction_loses_its_data_then_its_marker_after_delete_retention(
        manager: LogManager, log: PartitionLog) -> None:
    _put(log, b"k", b"committed")
    producer = Producer(log, 9)
    producer.send(b"k", b"aborted")
    abort = producer.end(commit=False)
    producer.send(b"p9", b"later")  # the producer goes on: its last data is elsewhere
    producer.end(commit=True)
    _fill(log)
    assert len(_aborted_entries(log)) == 1
    cleaner = LogCleaner(manager)

    _clean(manager, cleaner, NOW)

    assert b"aborted" not in [v for h, d in _batches(log) if not h.is_control for r in RecordBatch(d).records()
                              for v in [r.value]]
    stamped = _marker_at(log, abort)
    assert stamped is not None and delete_horizon_ms(stamped) == HORIZON  # KIP-534: stamped, not removed
    data = next(d for h, d in _batches(log) if h.base_offset == abort)
    RecordBatch(data).validate_crc()
    marker_record = next(RecordBatch(data).records())
    assert marker_record.timestamp == NOW and end_txn_marker(stamped, data).type == ControlRecordType.ABORT
    assert _aborted_entries(log) == [] and not list(log.directory.glob(f"*{TXN_INDEX_SUFFIX}"))
    assert _read_committed(log)[b"k"] == b"committed"
    dumped = [b for s in log.segments for b in iter_log(s.path, deep=True) if getattr(b, "base_offset", -1) == abort]
    assert [(b.delete_horizon_ms, b.crc_valid, b.records_error) for b in dumped] == [(HORIZON, True, None)]

    assert _clean(manager, cleaner, HORIZON - 1) == 0  # not due yet: the pass is not even run
    assert _marker_at(log, abort) is not None

    assert _clean(manager, cleaner, HORIZON) == 1
    assert _marker_at(log, abort) is None
    assert _read_committed(log) == {b"k": b"committed", b"p9": b"later", **{b"filler-%d" % k: b"round-3"
                                                                            for k in range(3)}}


def test_a_committed_transaction_overwritten_later_loses_its_marker_after_the_horizon(
        manager: LogManager, log: PartitionLog) -> None:
    producer = Producer(log, 7)
    producer.send(b"a", b"txn-a")
    producer.send(b"b", b"txn-b")
    overwritten = producer.end(commit=True)
    producer.send(b"c", b"txn-c")  # survives compaction: its transaction keeps its marker
    surviving = producer.end(commit=True)
    _put(log, b"a", b"new-a")
    _put(log, b"b", b"new-b")
    _fill(log)
    cleaner = LogCleaner(manager)

    _clean(manager, cleaner, NOW)

    assert delete_horizon_ms(_marker_at(log, overwritten)) == HORIZON
    kept = _marker_at(log, surviving)
    assert kept is not None and delete_horizon_ms(kept) is None
    _clean(manager, cleaner, HORIZON)
    assert _marker_at(log, overwritten) is None
    assert _marker_at(log, surviving) is not None
    table = _read_committed(log)
    assert (table[b"a"], table[b"b"], table[b"c"]) == (b"new-a", b"new-b", b"txn-c")

    _fill(log)  # rolls: a later pass keeps the surviving marker still
    _clean(manager, cleaner, HORIZON + 10 * DAY_MS)
    assert delete_horizon_ms(_marker_at(log, surviving)) is None


@pytest.mark.parametrize("commit", [False, True], ids=["abort", "commit"])
def test_an_active_producers_last_batch_stays_empty_and_keeps_its_marker_until_the_producer_expires(
        manager: LogManager, log: PartitionLog, commit: bool) -> None:
    producer = Producer(log, 5)
    last = producer.send(b"x", b"transactional")
    marker = producer.end(commit=commit)
    _put(log, b"x", b"new")  # a committed record is overwritten
    _fill(log)
    cleaner = LogCleaner(manager)

    _clean(manager, cleaner, NOW)  # Kafka's RETAIN_EMPTY: the producer's last sequence stays in the log

    header = next(h for h, _d in _batches(log) if h.base_offset == last)
    assert header.records_count == 0 and header.producer_id == 5 and header.is_transactional
    assert delete_horizon_ms(_marker_at(log, marker)) is None  # its transaction still has a batch
    assert len(_aborted_entries(log)) == (0 if commit else 1)
    assert _read_committed(log)[b"x"] == b"new"

    log.producer_state.remove_expired(NOW + 31 * DAY_MS)
    _fill(log)
    _clean(manager, cleaner, NOW + 31 * DAY_MS)
    assert [h for h, _d in _batches(log) if h.base_offset == last and h.producer_id == 5] == []
    assert delete_horizon_ms(_marker_at(log, marker)) == NOW + 32 * DAY_MS and _aborted_entries(log) == []
    _clean(manager, cleaner, NOW + 32 * DAY_MS)
    assert _marker_at(log, marker) is None
    assert _read_committed(log)[b"x"] == b"new"


def test_nothing_at_or_above_the_last_stable_offset_is_touched(manager: LogManager, log: PartitionLog) -> None:
    done = Producer(log, 3)
    done.send(b"a", b"old")
    marker = done.end(commit=False)
    done.send(b"d", b"kept")
    done.end(commit=True)
    _fill(log, rounds=2)
    stable = Producer(log, 4).send(b"open", b"pending")  # an open transaction: the LSO stays here
    _put(log, b"a", b"above-lso")
    _fill(log, rounds=4)
    assert log.last_stable_offset == stable
    above = [(h, d) for h, d in _batches(log) if h.last_offset >= stable]

    _clean(manager, LogCleaner(manager), HORIZON)

    assert delete_horizon_ms(_marker_at(log, marker)) == HORIZON + DAY_MS
    assert [(h, d) for h, d in _batches(log) if h.last_offset >= stable] == above
    assert log.last_stable_offset == stable


@pytest.mark.parametrize("snapshots", [True, False], ids=["from-snapshot", "replayed-from-the-log"])
def test_a_cleaned_log_reopens_with_the_same_lso_offsets_and_producer_state(
        manager: LogManager, log: PartitionLog, snapshots: bool) -> None:
    committed, aborted, idle = Producer(log, 21), Producer(log, 22), Producer(log, 23)
    committed.send(b"a", b"1")
    committed.end(commit=True)
    aborted.send(b"a", b"never")
    aborted.end(commit=False)
    idle.send(b"i", b"1")
    idle.end(commit=True)
    committed.send(b"b", b"2")
    committed.end(commit=True)
    aborted.send(b"c", b"3")
    aborted.end(commit=True)
    _put(log, b"a", b"2")
    _put(log, b"i", b"2")
    _fill(log)
    Producer(log, 24).send(b"open", b"pending")
    _fill(log, rounds=2)
    cleaner = LogCleaner(manager)
    _clean(manager, cleaner, NOW)
    _clean(manager, cleaner, HORIZON)
    assert len([h for h, _d in _batches(log) if h.is_control]) < 6  # markers went
    expected = (log.last_stable_offset, log.log_end_offset, _read_committed(log), _batches(log),
                dict(log.producer_state.ongoing_txns),
                {pid: e.epoch for pid, e in log.producer_state.producers.items()})
    log.close(clean=False)
    if not snapshots:
        for snapshot in log.directory.glob("*.snapshot"):
            snapshot.unlink()

    reopened = PartitionLog.open(log.directory, log.config, 30 * DAY_MS, clean_shutdown=False)
    reopened.high_watermark = reopened.log_end_offset
    assert (reopened.last_stable_offset, reopened.log_end_offset, _read_committed(reopened), _batches(reopened),
            dict(reopened.producer_state.ongoing_txns),
            {pid: e.epoch for pid, e in reopened.producer_state.producers.items()}) == expected
    assert reopened.producer_state.ongoing_txns == {24: reopened.last_stable_offset}
    reopened.close(clean=True)
    manager.logs.clear()


@pytest.mark.parametrize("step", ["index-renamed", "log-renamed", "old-deleted"])
def test_a_crash_during_the_swap_never_brings_back_stale_index_entries(
        manager: LogManager, log: PartitionLog, step: str) -> None:
    producer = Producer(log, 9)
    producer.send(b"k", b"aborted")
    producer.end(commit=False)
    producer.send(b"k", b"committed")
    producer.end(commit=True)
    _fill(log, rounds=6)
    files = [SegmentFile(s, s.path, s.size, tuple(s.txn_index.entries)) for s in list(log.segments)[:-1]]
    txn = CleanedTransactionMetadata(_aborted_entries(log), last_records_of_active_producers(log.producer_state),
                                     NOW, DAY_MS)
    group = clean_segments(group_by_size(files, 10_000), NOW, DAY_MS, txn)[0]
    assert len(_aborted_entries(log)) == 1
    first = files[0].path
    txn_cleaned = first.with_name(first.stem + TXN_INDEX_SUFFIX + CLEANED_SUFFIX)
    assert txn_cleaned.exists() and txn_cleaned.stat().st_size == 0  # the aborted data is gone
    os.replace(txn_cleaned, first.with_name(first.stem + TXN_INDEX_SUFFIX + SWAP_SUFFIX))
    if step != "index-renamed":
        os.replace(group.cleaned_path, first.with_name(first.name + SWAP_SUFFIX))
    if step == "old-deleted":
        for f in files:
            f.segment.delete()
    log.close(clean=False)

    reopened = PartitionLog.open(log.directory, log.config, 30 * DAY_MS, clean_shutdown=False)
    reopened.high_watermark = reopened.log_end_offset
    if step == "index-renamed":  # the pass never happened
        assert len(_aborted_entries(reopened)) == 1
    else:
        assert _aborted_entries(reopened) == []
        assert b"aborted" not in [r.value for h, d in _batches(reopened) if not h.is_control
                                  for r in RecordBatch(d).records()]
    assert _read_committed(reopened)[b"k"] == b"committed"
    assert not [p for p in log.directory.iterdir() if p.name.endswith((CLEANED_SUFFIX, SWAP_SUFFIX))]
    reopened.close(clean=True)
    manager.logs.clear()
