"""The cluster state file (cluster.json): written atomically, and a write that fails names the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykafka_ops.state import ClusterState, StateFileError, read_state, write_state


def _state() -> ClusterState:
    return ClusterState(cluster="dev", config="<built-in default>", data_dir="/tmp/pko", host="127.0.0.1")


def test_a_written_state_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    write_state(path, _state())
    assert read_state(path) == _state()


def test_a_full_disk_is_one_message_naming_the_state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cluster.json"
    write_state(path, _state())

    def full(*_args: object, **_kwargs: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(StateFileError, match=f"{path}: cannot write the cluster state file: No space left on device"):
        write_state(path, _state())
    monkeypatch.undo()
    assert read_state(path) == _state()  # the old content is intact
