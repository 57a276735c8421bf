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


def test_a_state_file_from_before_per_node_hosts_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    path.write_text('{"cluster": "dev", "config": "c.yaml", "data_dir": "/tmp/pko", "host": "127.0.0.1", '
                    '"format_version": 1, "storage_format_version": 1, "nodes": {"1": {"id": 1, "pid": 7, '
                    '"port": 9092, "roles": ["broker", "controller"], "started_at": 0.0, "log_file": "l"}}}')
    state = read_state(path)
    assert state is not None
    assert (state.nodes[1].host, state.nodes[1].controller_port) == (None, None)
    assert state.bootstrap_servers == "127.0.0.1:9092"


def test_bootstrap_servers_use_each_node_s_own_host() -> None:
    from pykafka_ops.state import NodeState

    state = _state()
    for node_id, host in ((1, "127.0.0.2"), (2, None)):
        state.nodes[node_id] = NodeState(node_id, 10 + node_id, 9092, ["broker"], 0.0, "l", host, None)
    state.nodes[3] = NodeState(3, 13, 9192, ["controller"], 0.0, "l")
    assert state.bootstrap_servers == "127.0.0.2:9092,127.0.0.1:9092"
