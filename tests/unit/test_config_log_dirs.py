"""``nodes[].log_dirs`` of the cluster file (Kafka's ``log.dirs``): resolved against the data dir,
the node dir alone when absent, overlaps and duplicates refused with one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykafka_ops.config.cluster import ConfigError, load


def _load(tmp_path: Path, nodes: str, broker: str = "") -> object:
    path = tmp_path / "c.yaml"
    path.write_text(f"cluster: {{name: jbod, data_dir: data}}\nnodes:\n{nodes}{broker}")
    return load(path)


def test_log_dirs_resolve_against_the_data_dir_and_default_to_the_node_dir(tmp_path: Path) -> None:
    config = _load(tmp_path, "  - {id: 1, port: 9092, log_dirs: [disk-a, /mnt/disk-b]}\n"
                             "  - {id: 2, port: 9093, roles: [broker]}\n")
    data = tmp_path / "data"
    assert config.log_dirs(1) == (data / "disk-a", Path("/mnt/disk-b"))
    assert config.log_dirs(2) == (data / "node-2",) and config.node_dir(1) == data / "node-1"
    assert _load(tmp_path, "  - {id: 1, port: 9092, log_dirs: [node-1, more]}\n").log_dirs(1) == (
        data / "node-1", data / "more")  # a node may keep partitions in its own node dir too


@pytest.mark.parametrize(("nodes", "broker", "expected"), [
    ("  - {id: 1, port: 9092, log_dirs: []}\n", "",
     "nodes[0].log_dirs (line 3): expected a non-empty list of directories"),
    ("  - {id: 1, port: 9092, log_dirs: [a, '']}\n", "", "nodes[0].log_dirs[1] (line 3): expected a directory path"),
    ("  - {id: 1, port: 9092, log_dirs: [a, a]}\n", "",
     "nodes[0].log_dirs[1] (line 3): {data}/a is its log_dirs[0] ({data}/a)"),
    ("  - {id: 1, port: 9092, log_dirs: [a, a/b]}\n", "",
     "nodes[0].log_dirs[1] (line 3): {data}/a/b is inside its log_dirs[0] ({data}/a)"),
    ("  - {id: 1, port: 9092, log_dirs: [a]}\n  - {id: 2, port: 9093, roles: broker, log_dirs: [a/x]}\n", "",
     "nodes[1].log_dirs[0] (line 4): {data}/a/x is inside node 1's log_dirs[0] ({data}/a)"),
    ("  - {id: 1, port: 9092, log_dirs: [node-2]}\n  - {id: 2, port: 9093, roles: broker}\n", "",
     "nodes[0].log_dirs[0] (line 3): {data}/node-2 is node 2's node dir ({data}/node-2)"),
    ("  - {id: 1, port: 9092, log_dirs: ['.']}\n", "",
     "nodes[0].log_dirs[0] (line 3): {data} contains its node dir ({data}/node-1)"),
    ("  - {id: 1, port: 9092}\n", "broker:\n  log.dirs: /var/kafka\n",
     "broker.log.dirs (line 5): log.dirs is set per node: nodes[].log_dirs"),
    ("  - {id: 1, port: 9092}\n", "broker:\n  log.dir: /var/kafka\n",
     "broker.log.dir (line 5): log.dir is set per node: nodes[].log_dirs"),
], ids=["empty", "not a path", "twice", "nested", "another node's", "another node dir", "holds the node dir",
        "log.dirs in broker", "log.dir in broker"])
def test_bad_log_dirs_are_one_line(tmp_path: Path, nodes: str, broker: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, nodes, broker)
    assert str(raised.value) == f"{tmp_path / 'c.yaml'}: " + expected.format(data=tmp_path / "data")
