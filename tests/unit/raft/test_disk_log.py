"""DiskRaftLog on real segment files: reopening, crash recovery, truncation inside a batch, the
follower append it writes with, the upgrade of a single-voter metadata log, where the quorum-state
file lives, what ``flush`` fsyncs, the open-time header scan, and the Raft simulation run on it.
(The ``RaftLog`` semantics shared with ``MemoryRaftLog`` are tested in ``test_log.py``.)"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from cluster.controller.quorum import METADATA_LOG_CONFIG, METADATA_TOPIC
from cluster.log.manager import LogManager
from cluster.log.partition_log import UnexpectedAppendOffsetError
from cluster.log.validator import RecordValidationError
from cluster.raft import (
    Entry,
    FileQuorumStateStore,
    LogError,
    OffsetAndEpoch,
    QuorumStateData,
    RaftNode,
)
from cluster.raft.batches import encode_entries
from cluster.raft.disk_log import DiskRaftLog, open_metadata_raft_log
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.records.batch import iter_batches
from pykafka_ops.records.builder import RecordBatchBuilder

from .test_log import open_disk_log

T0 = 1_700_000_000_000
SMALL_SEGMENTS = {"segment.bytes": 300, "index.interval.bytes": 100}
#: The simulation's fetches carry up to 1000 entries: a batch must fit in a segment.
SIM_SEGMENTS = {"segment.bytes": 64 * 1024, "index.interval.bytes": 512}


def _entries(start: int, epochs: Sequence[int], tag: bytes = b"e") -> list[Entry]:
    return [Entry(start + i, epoch, b"%s%d" % (tag, start + i)) for i, epoch in enumerate(epochs)]


def _reopen(log: DiskRaftLog, clean: bool, **config: Any) -> DiskRaftLog:
    log.partition_log.close(clean=clean)
    return open_disk_log(log.directory, clean=clean, **config)


def _batches_on_disk(log: DiskRaftLog) -> list[tuple[int, int, int]]:
    """(base offset, last offset, epoch) of every batch in the segment files."""
    out = []
    for segment in log.partition_log.segments:
        data = segment.read(0, segment.size)
        out += [(h.base_offset, h.last_offset, h.partition_leader_epoch) for _p, h in iter_batches(data)]
    return out


@pytest.mark.parametrize("clean", [True, False])
def test_entries_and_epochs_survive_a_reopen_across_segments(tmp_path: Path, clean: bool) -> None:
    log = open_disk_log(tmp_path / "m-0", **SMALL_SEGMENTS)
    epochs = [1] * 7 + [2] * 5 + [5] * 20
    for i in range(0, len(epochs), 3):
        log.append(_entries(i, epochs[i:i + 3]))
    log.flush()
    assert len(log.partition_log.segments) > 2
    before = (log.read(0, 100), log.epoch_entries())
    reopened = _reopen(log, clean, **SMALL_SEGMENTS)
    assert (reopened.read(0, 100), reopened.epoch_entries()) == before
    assert before[1] == [(1, 0), (2, 7), (5, 12)]
    assert reopened.read(10, 6) == tuple(_entries(10, epochs[10:16]))  # across batches and segments


def test_an_unflushed_append_cut_by_a_crash_keeps_every_whole_batch(tmp_path: Path) -> None:
    log = open_disk_log(tmp_path / "m-0")
    log.append(_entries(0, [1, 1, 1]))
    log.flush()
    log.append(_entries(3, [2, 2]))          # not flushed: in the page cache only
    log.append(_entries(5, [3, 3, 3, 3]))    # a new epoch, then the crash tears its batch
    segment = log.partition_log.segments.active
    log.partition_log.close(clean=False)
    os.truncate(segment.path, segment.size - 7)
    recovered = open_disk_log(log.directory, clean=False)
    assert recovered.read(0, 100) == tuple(_entries(0, [1, 1, 1, 2, 2]))
    assert (recovered.end_offset, recovered.last_epoch, recovered.epoch_entries()) == (5, 2, [(1, 0), (2, 3)])
    assert recovered.end_offset_for_epoch(3) == OffsetAndEpoch(5, 2)
    recovered.append(_entries(5, [4]))  # the log goes on where the last whole batch ended
    assert _reopen(recovered, clean=False).read(4, 10) == (Entry(4, 2, b"e4"), Entry(5, 4, b"e5"))


def test_a_truncation_inside_a_batch_rewrites_its_head_and_survives_a_crash(tmp_path: Path) -> None:
    log = open_disk_log(tmp_path / "m-0")
    log.append(_entries(0, [1, 1]))
    log.append(_entries(2, [3, 3, 3, 3, 3]))  # one batch, offsets 2..6
    log.truncate_to(4)
    assert _batches_on_disk(log) == [(0, 1, 1), (2, 3, 3)]
    assert (log.end_offset, log.epoch_entries()) == (4, [(1, 0), (3, 2)])
    recovered = _reopen(log, clean=False)
    assert recovered.read(0, 10) == tuple(_entries(0, [1, 1, 3, 3]))
    recovered.truncate_to(2)  # at a batch boundary: nothing is rewritten
    assert _batches_on_disk(recovered) == [(0, 1, 1)]
    assert recovered.epoch_entries() == [(1, 0)]


def test_a_truncation_that_deletes_segments_reopens_without_them(tmp_path: Path) -> None:
    log = open_disk_log(tmp_path / "m-0", **SMALL_SEGMENTS)
    for i in range(40):
        log.append(_entries(i, [1 + i // 10]))
    segments = len(log.partition_log.segments)
    log.truncate_to(15)
    log.flush()
    assert len(log.partition_log.segments) < segments
    log.append(_entries(15, [7, 7]))
    recovered = _reopen(log, clean=False, **SMALL_SEGMENTS)
    assert recovered.read(0, 100) == tuple(_entries(0, [1] * 10 + [2] * 5 + [7, 7]))
    assert recovered.epoch_entries() == [(1, 0), (2, 10), (7, 15)]


def test_append_as_follower_keeps_offsets_epochs_and_control_batches(tmp_path: Path) -> None:
    plog = open_disk_log(tmp_path / "m-0").partition_log
    data = encode_entries([Entry(0, 4, b"x"), Entry(1, 4, b"c", control=True), Entry(2, 6, b"y")], T0)
    info = plog.append_as_follower(memoryview(bytearray(data)), T0)
    assert (info.first_offset, info.last_offset, info.records) == (0, 2, 3)
    stored = plog.read(0, 10_000, 3, min_one_batch=True)
    assert bytes(stored) == data  # written as given: offsets, epochs, control flag, CRCs
    with pytest.raises(UnexpectedAppendOffsetError):
        plog.append_as_follower(memoryview(bytearray(encode_entries([Entry(2, 6, b"again")], T0))), T0)
    corrupt = bytearray(encode_entries([Entry(3, 6, b"z")], T0))
    corrupt[-1] ^= 0xFF
    with pytest.raises(RecordValidationError):
        plog.append_as_follower(memoryview(corrupt), T0)
    assert plog.log_end_offset == 3


def test_open_refuses_a_log_that_is_not_a_raft_log(tmp_path: Path) -> None:
    log = open_disk_log(tmp_path / "back")
    log.partition_log.append_as_follower(memoryview(bytearray(encode_entries(_entries(0, [3]), T0))), T0)
    log.partition_log.append_as_follower(memoryview(bytearray(encode_entries(_entries(1, [2]), T0))), T0)
    with pytest.raises(LogError, match="epoch 2 after epoch 3"):
        _reopen(log, clean=True)
    gap = open_disk_log(tmp_path / "gap")
    gap.partition_log.append_as_follower(memoryview(bytearray(encode_entries(_entries(5, [1]), T0))), T0)
    with pytest.raises(LogError, match="no gaps"):
        _reopen(gap, clean=True)


# -- upgrade: a metadata log written by today's single-voter quorum ------------------------------------


#: Three commits as today's controller writes them (bootstrap, CreateTopics, IncrementalAlterConfigs).
_COMMITS: list[list[dict[str, Any]]] = [
    [{"type": "ClusterRecord", "cluster_id": "q1P2mNkVTfOAbCdEfGhIjA"},
     {"type": "RegisterBrokerRecord", "broker_id": 1, "host": "127.0.0.1", "port": 9092}],
    [{"type": "TopicRecord", "name": "orders", "topic_id": "6f1c1b5e-0d4b-4a55-9d3e-2f0c7c3b9a10"}]
    + [{"type": "PartitionRecord", "topic_id": "6f1c1b5e-0d4b-4a55-9d3e-2f0c7c3b9a10", "partition": p,
        "replicas": [1], "isr": [1], "leader": 1, "leader_epoch": 0, "partition_epoch": 0} for p in range(3)],
    [{"type": "ConfigRecord", "resource": "orders", "name": "retention.ms", "value": "1000"}],
]


def _single_voter_data_dir(directory: Path) -> list[tuple[int, Any]]:
    """A metadata log as the single-voter quorum of commit 624da2b wrote it (one batch per commit,
    key = record type, value = sorted JSON, partition leader epoch 1), shut down cleanly; returns
    the (offset, record) pairs it holds."""
    manager = LogManager(directory, 86_400_000)
    manager.startup()
    metadata_log = manager.get_or_create(METADATA_TOPIC, 0, topic_defaults(broker_defaults()) | METADATA_LOG_CONFIG)
    written: list[tuple[int, Any]] = []
    for records in _COMMITS:
        builder = RecordBatchBuilder()
        for record in records:
            builder.append(record["type"].encode(), json.dumps(record, sort_keys=True).encode())
        first = metadata_log.log_end_offset
        metadata_log.append_as_leader(memoryview(bytearray(builder.build())), 1, 0)
        written.extend((first + i, record) for i, record in enumerate(records))
    manager.shutdown()
    return written


@pytest.mark.parametrize("clean", [True, False])
def test_a_single_voter_metadata_log_opens_as_entries_of_epoch_1(tmp_path: Path, clean: bool) -> None:
    replayed = _single_voter_data_dir(tmp_path)
    if not clean:
        (tmp_path / ".kafka_cleanshutdown").unlink()
    manager = LogManager(tmp_path, 86_400_000)
    manager.startup()
    raft_log = open_metadata_raft_log(manager, broker_defaults())
    assert raft_log.directory == tmp_path / "__cluster_metadata-0"
    entries = raft_log.read(0, 10_000)
    assert len(entries) == len(replayed) == 7
    assert [(e.offset, json.loads(e.payload)) for e in entries] == replayed
    assert all(e.payload == json.dumps(r, sort_keys=True).encode() for e, (_o, r) in zip(entries, replayed))
    assert {(e.epoch, e.control) for e in entries} == {(1, False)}
    assert raft_log.epoch_entries() == [(1, 0)]
    assert raft_log.end_offset_for_epoch(1) == OffsetAndEpoch(len(replayed), 1)

    # the only voter resumes on it: a new epoch above 1, every old record committed and applied
    store = FileQuorumStateStore(raft_log.directory)
    node = RaftNode(1, [1], raft_log, store, random.Random(0), 0)
    applied = _drive(node, store, raft_log)
    node.propose([b'{"type": "NewRecord"}'], 1)
    applied += _drive(node, store, raft_log)
    assert node.is_leader and node.epoch == 2
    assert [e.offset for e in applied] == list(range(len(replayed) + 2))
    assert applied[len(replayed)].control and applied[len(replayed)].epoch == 2
    assert raft_log.epoch_entries() == [(1, 0), (2, len(replayed))]
    manager.shutdown()
    manager = LogManager(tmp_path, 86_400_000)
    manager.startup()
    reopened = open_metadata_raft_log(manager, broker_defaults())
    assert reopened.read(0, 10_000) == tuple(applied)
    assert store.read() == QuorumStateData(leader_epoch=2, leader_id=1, voted_id=1)
    manager.shutdown()


def _drive(node: RaftNode, store: FileQuorumStateStore, log: DiskRaftLog) -> list[Entry]:
    ready = node.ready()
    if ready.quorum_state is not None:
        store.write(ready.quorum_state)
    if ready.flush_log:
        log.flush()
    return ready.committed


def test_the_quorum_state_file_lives_beside_the_segments_and_survives_a_crash(tmp_path: Path) -> None:
    log = open_disk_log(tmp_path / "__cluster_metadata-0")
    log.append(_entries(0, [1, 1]))
    store = FileQuorumStateStore(log.directory)
    store.write(QuorumStateData(leader_epoch=3, leader_id=-1, voted_id=2))
    (log.directory / "quorum-state.tmp").write_text("{half a wri")  # a write the crash cut short
    assert store.path == tmp_path / "__cluster_metadata-0" / "quorum-state"
    recovered = _reopen(log, clean=False)
    assert recovered.read(0, 10) == tuple(_entries(0, [1, 1]))
    assert FileQuorumStateStore(recovered.directory).read() == QuorumStateData(3, -1, 2)
    assert not (recovered.directory / "quorum-state.tmp").exists()  # PartitionLog.open tidies *.tmp


def test_flush_fsyncs_written_segments_and_the_directory_when_segments_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    log = open_disk_log(tmp_path / "m-0", **SMALL_SEGMENTS)
    monkeypatch.setattr(os, "fsync", fsync)
    log.append(_entries(0, [1]))
    # the first entry of an epoch writes the leader-epoch checkpoint (Kafka's, once per epoch)
    assert synced == ["leader-epoch-checkpoint.tmp", "m-0"]
    synced.clear()
    log.flush()
    assert synced == ["00000000000000000000.log", tmp_path.name, "m-0"]
    synced.clear()
    log.flush()
    assert synced == []  # nothing written since: no fsync at all
    for i in range(1, 12):
        log.append(_entries(i, [1]))
    log.flush()  # the segment active at the last flush, those rolled since, and the directory
    segments = log.partition_log.segments
    assert [n for n in synced if n.endswith(".log")] == [s.path.name for s in segments]
    assert len(segments) > 2 and synced[-1] == "m-0"
    synced.clear()
    for i in range(12, 20):
        before = segments.active
        log.append(_entries(i, [1]))
        log.flush()  # the active segment, and the new one and the directory if it rolled
        expected = [s.path.name for s in segments if s.base_offset >= before.base_offset]
        assert [n for n in synced if not n.endswith("index")] == expected + (["m-0"] if len(expected) > 1 else [])
        synced.clear()
    synced.clear()
    log.truncate_to(1)  # back into the first segment: the later ones are deleted
    log.flush()
    assert [n for n in synced if not n.endswith("index")] == ["00000000000000000000.log", "m-0"]


def test_opening_reads_only_batch_headers(tmp_path: Path) -> None:
    """The epoch cache is rebuilt by a header scan (no leader-epoch-checkpoint file): 20 000
    single-entry batches, the worst case, take ~20 ms here (100 000: ~100 ms)."""
    log = open_disk_log(tmp_path / "m-0")
    payload = b"x" * 120
    for start in range(0, 20_000, 500):
        data = b"".join(encode_entries([Entry(start + i, 1 + start // 5000, payload)], T0) for i in range(500))
        log.partition_log.append_as_follower(memoryview(bytearray(data)), T0)
    log.partition_log.close(clean=True)
    started = time.perf_counter()
    reopened = open_disk_log(log.directory)
    elapsed = time.perf_counter() - started
    assert reopened.end_offset == 20_000 and len(reopened.epoch_entries()) == 4
    assert elapsed < 1.0, f"opening took {elapsed:.2f} s"


# -- the Raft simulation on DiskRaftLog ---------------------------------------------------------------

def test_the_raft_simulation_keeps_every_invariant_on_disk_logs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``PKO_RAFT_SIM_DISK_SCHEDULES`` seeds (default 150) with every node's log a DiskRaftLog,
    reopened after an unclean shutdown whenever the node restarts; every answer the node gets
    from the disk log is checked against the simulation's in-memory log."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[3]))  # the repo: tests.raft_sim
    from tests.raft_sim import sim as sim_module
    from tests.raft_sim.invariants import Invariants, SimLog

    fsyncs = [0]
    monkeypatch.setattr(os, "fsync", lambda _fd: fsyncs.__setitem__(0, fsyncs[0] + 1))  # speed, not safety
    root = tmp_path / "sim"

    class DiskSimLog(SimLog):
        """The simulation's log (hash chain, invariants) mirrored onto a DiskRaftLog, which answers."""

        def __init__(self, node_id: int, invariants: Invariants) -> None:
            super().__init__(node_id, invariants)
            self.disk = open_disk_log(root / f"node{node_id}-0", **SIM_SEGMENTS)
            self._changing = False  # the memory log reads itself while it changes: the disk has not yet

        def _same(self, disk: Any, memory: Any) -> Any:
            if self._changing:
                return memory
            assert disk == memory, (self.node_id, disk, memory)
            return disk

        end_offset = property(lambda self: self._same(self.disk.end_offset, SimLog.end_offset.fget(self)))
        last_epoch = property(lambda self: self._same(self.disk.last_epoch, SimLog.last_epoch.fget(self)))

        def epoch_of(self, offset: int) -> int:
            return self._same(self.disk.epoch_of(offset), super().epoch_of(offset))

        def read(self, start: int, max_entries: int) -> tuple[Entry, ...]:
            return self._same(self.disk.read(start, max_entries), super().read(start, max_entries))

        def end_offset_for_epoch(self, epoch: int) -> OffsetAndEpoch:
            return self._same(self.disk.end_offset_for_epoch(epoch), super().end_offset_for_epoch(epoch))

        def append(self, entries: Sequence[Entry]) -> None:
            self._changing = True
            try:
                super().append(entries)
            finally:
                self._changing = False
            self.disk.append(entries)

        def truncate_to(self, offset: int) -> None:
            self._changing = True
            try:
                super().truncate_to(offset)
            finally:
                self._changing = False
            self.disk.truncate_to(offset)

        def flush(self) -> None:
            self.disk.flush()

        def crash_and_reopen(self) -> None:
            self.disk = _reopen(self.disk, clean=False, **SIM_SEGMENTS)
            self._same(self.disk.read(0, 1 << 30), self.entries())

    class DiskSimulation(sim_module.Simulation):
        take_snapshots = False  # DiskSimLog mirrors entries, not snapshots (tests/unit/raft/test_log.py covers those)

        def _start(self, node_id: int) -> None:
            if self.incarnation[node_id]:
                self.logs[node_id].crash_and_reopen()
            super()._start(node_id)

    monkeypatch.setattr(sim_module, "SimLog", DiskSimLog)
    restarts = 0
    for seed in range(int(os.environ.get("PKO_RAFT_SIM_DISK_SCHEDULES", "150"))):
        simulation = DiskSimulation(seed)
        report = simulation.run()
        restarts += report.faults["crash"]
        for log in simulation.logs.values():
            log.disk.partition_log.close(clean=True)
        shutil.rmtree(root)
    assert restarts > 0 and fsyncs[0] > 0


# -- snapshots (KIP-630) ------------------------------------------------------------------------------


def test_a_snapshot_lets_the_log_drop_what_it_covers_and_survives_a_restart(tmp_path: Path) -> None:
    log = open_disk_log(tmp_path / "__cluster_metadata-0", **{"segment.bytes": 200})
    for i in range(12):
        log.append(_entries(i, [1 if i < 5 else 2]))
    snapshot = OffsetAndEpoch(8, log.epoch_of(7))
    log.create_snapshot(snapshot, b"the image at 8")
    log.trim_to(8)
    assert 0 < log.start_offset <= 8 and len(log.partition_log.segments) < 12  # whole segments below 8 went
    assert [e.offset for e in log.read(8, 10)] == [8, 9, 10, 11]
    with pytest.raises(LogError):
        log.read(log.start_offset - 1, 1)
    reopened = _reopen(log, clean=False, **{"segment.bytes": 200})
    assert reopened.latest_snapshot() == snapshot
    assert reopened.read_snapshot(snapshot, 4, 100) == b"image at 8"
    assert reopened.snapshot_size(snapshot) == len(b"the image at 8")
    assert [e.offset for e in reopened.read(8, 10)] == [8, 9, 10, 11] and reopened.last_epoch == 2
    with pytest.raises(LogError):
        reopened.trim_to(9)  # never past the latest snapshot


def test_a_follower_installs_its_leaders_snapshot_and_goes_on_from_its_end(tmp_path: Path) -> None:
    log = open_disk_log(tmp_path / "__cluster_metadata-0")
    log.append(_entries(0, [1, 1, 1]))
    snapshot = OffsetAndEpoch(50, 4)
    log.install_snapshot(snapshot, b"leader image")
    assert (log.start_offset, log.end_offset, log.last_epoch) == (50, 50, 4)
    assert log.epoch_of(49) == 4 and log.read(50, 5) == ()
    assert log.end_offset_for_epoch(3) == OffsetAndEpoch(50, 4)
    log.append(_entries(50, [5, 5]))
    reopened = _reopen(log, clean=False)
    assert (reopened.start_offset, reopened.end_offset, reopened.last_epoch) == (50, 52, 5)
    assert reopened.latest_snapshot() == snapshot and reopened.read_snapshot(snapshot, 0, 99) == b"leader image"


def test_a_staged_batch_is_written_as_is_only_for_the_entries_it_was_made_for(tmp_path: Path) -> None:
    log = open_disk_log(tmp_path / "__cluster_metadata-0")
    entries = _entries(0, [2, 2, 2])
    staged = encode_entries(entries, 12345)  # another timestamp than append would stamp
    log.stage(0, 2, [e.payload for e in entries], staged)
    log.append(entries)
    assert bytes(log.partition_log.read(0, 1 << 20, 3, min_one_batch=True)) == staged
    other = _entries(3, [2, 2])
    log.stage(3, 2, [b"not", b"these"], encode_entries(other, 12345))  # payloads differ: encoded anew
    log.append(other)
    assert log.read(0, 10) == tuple(entries + other)
    assert bytes(log.partition_log.read(3, 1 << 20, 5, min_one_batch=True)) != encode_entries(other, 12345)
