"""The persisted quorum state: Kafka's quorum-state file, written so that a crash cannot corrupt it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cluster.raft import (
    FileQuorumStateStore,
    MemoryQuorumStateStore,
    QuorumStateData,
    QuorumStateError,
)


def test_nothing_written_reads_as_none(tmp_path: Path) -> None:
    assert FileQuorumStateStore(tmp_path).read() is None
    assert MemoryQuorumStateStore().read() is None


def test_the_file_has_kafkas_name_and_fields(tmp_path: Path) -> None:
    store = FileQuorumStateStore(tmp_path)
    store.write(QuorumStateData(leader_epoch=7, leader_id=-1, voted_id=2))
    assert store.path == tmp_path / "quorum-state"
    assert json.loads(store.path.read_text()) == {"leaderId": -1, "leaderEpoch": 7, "votedId": 2, "data_version": 1}
    assert store.read() == QuorumStateData(7, -1, 2)
    assert not store.temp_path.exists()


def test_reads_a_kafka_version_0_file(tmp_path: Path) -> None:
    (tmp_path / "quorum-state").write_text(json.dumps({
        "clusterId": "", "leaderId": 1, "leaderEpoch": 2, "votedId": -1, "appliedOffset": 0,
        "currentVoters": [], "data_version": 0}))
    assert FileQuorumStateStore(tmp_path).read() == QuorumStateData(leader_epoch=2, leader_id=1, voted_id=-1)


def test_a_torn_temporary_file_is_ignored(tmp_path: Path) -> None:
    store = FileQuorumStateStore(tmp_path)
    store.write(QuorumStateData(3, 1, 1))
    store.temp_path.write_text('{"leaderId": 2, "leaderEp')  # a crash in the middle of the next write
    assert store.read() == QuorumStateData(3, 1, 1)
    store.write(QuorumStateData(4, -1, 2))  # and the next write replaces it
    assert store.read() == QuorumStateData(4, -1, 2)


def test_a_crash_before_the_rename_leaves_the_old_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileQuorumStateStore(tmp_path)
    store.write(QuorumStateData(3, 1, 1))

    def crash(*_args: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        store.write(QuorumStateData(4, -1, 2))
    monkeypatch.undo()
    assert store.read() == QuorumStateData(3, 1, 1)


def test_the_file_and_its_directory_are_fsynced_before_the_write_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileQuorumStateStore(tmp_path)
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync " + os.readlink(f"/proc/self/fd/{fd}")),
                                                real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("rename"), real_replace(a, b))[1])
    store.write(QuorumStateData(1, -1, 1))
    assert events == [f"fsync {store.temp_path}", "rename", f"fsync {tmp_path}"]


@pytest.mark.parametrize("content", ["not json", "[]", '{"leaderId": 1, "leaderEpoch": 2, "votedId": -1}',
                                     '{"leaderId": 1, "leaderEpoch": 2, "votedId": -1, "data_version": 7}',
                                     '{"leaderId": "1", "leaderEpoch": 2, "votedId": -1, "data_version": 1}'])
def test_an_unreadable_file_is_an_error_naming_it(tmp_path: Path, content: str) -> None:
    (tmp_path / "quorum-state").write_text(content)
    with pytest.raises(QuorumStateError, match="quorum-state"):
        FileQuorumStateStore(tmp_path).read()
