"""The admin endpoint's settings in the cluster file: nodes[].admin_port, admin.bind.address and
admin.produce.clients.window.ms."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.pytest_plugin import _assign_free_admin_ports
from pykafka_ops.config.cluster import ClusterConfig, ConfigError, load


def _load(tmp_path: Path, text: str) -> ClusterConfig:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return load(path)


def test_admin_port_and_defaults(tmp_path: Path) -> None:
    config = _load(tmp_path, "nodes:\n  - {id: 1, port: 9092, admin_port: 9644}\n")
    assert config.node(1).admin_port == 9644
    assert config.broker["admin.bind.address"] == "127.0.0.1"
    assert config.broker["admin.produce.clients.window.ms"] == 300_000
    assert _load(tmp_path, "nodes:\n  - {id: 1, port: 9092}\n").node(1).admin_port is None


def test_shipped_configs_give_every_node_its_own_admin_port() -> None:
    root = Path(__file__).resolve().parents[3] / "configs"
    for path in sorted(root.glob("*.yaml")):
        nodes = load(path).nodes
        ports = [n.admin_port for n in nodes]
        assert None not in ports and len(set(ports)) == len(ports), path
        assert not set(ports) & {p for n in nodes for p in (n.port, n.controller_port)}, path


@pytest.mark.parametrize(("text", "expected"), [
    ("nodes:\n  - {id: 1, port: 9092, admin_port: 9092}\n", "nodes[0].admin_port (line 2): duplicate port 9092"),
    ("nodes:\n  - {id: 1, port: 9092, admin_port: 9644}\n  - {id: 2, port: 9644, roles: [broker]}\n",
     "nodes[1].port (line 3): duplicate port 9644"),
    ("nodes:\n  - {id: 1, port: 9092, admin_port: 0}\n", "nodes[0].admin_port (line 2): expected a TCP port"),
    ("nodes:\n  - {id: 1, port: 9092, admin_port: http}\n", "nodes[0].admin_port (line 2): expected a TCP port"),
    ("nodes:\n  - {id: 1, port: 9092}\nbroker:\n  admin.bind.address: ''\n",
     "broker.admin.bind.address (line 4): Invalid value"),
    ("nodes:\n  - {id: 1, port: 9092}\nbroker:\n  admin.produce.clients.window.ms: 10\n",
     "broker.admin.produce.clients.window.ms (line 4): must be at least 1000"),
])
def test_bad_admin_settings(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert expected in str(caught.value)


def test_plugin_gives_free_admin_ports_apart_from_the_node_ports() -> None:
    nodes = [{"id": 1, "port": 40001, "controller_port": 40002}, {"id": 2, "port": 40003}]
    _assign_free_admin_ports(nodes, "127.0.0.1")
    ports = [node["admin_port"] for node in nodes]
    assert len(set(ports)) == 2 and not set(ports) & {40001, 40002, 40003}
