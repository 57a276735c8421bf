"""The YAML cluster file: every shipped config loads, and each kind of mistake is one clear line
naming the file, the key and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykafka_ops.config.cluster import ConfigError, default_config_text, load

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path) -> None:
    config = load(path)
    assert config.nodes
    assert config.data_dir.is_absolute()


def test_configs_single_yaml_is_the_built_in_default_byte_for_byte() -> None:
    assert (CONFIGS / "single.yaml").read_bytes() == default_config_text().encode()


def test_data_dir_is_relative_to_the_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.yaml"
    path.parent.mkdir()
    path.write_text("cluster: {name: rel, data_dir: state/rel}\n")
    assert load(path).data_dir == tmp_path / "sub" / "state" / "rel"


def test_built_in_default_keeps_its_data_under_xdg_state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    config = load(None)
    assert config.data_dir == tmp_path / "pko" / "dev"
    assert config.state_file == tmp_path / "pko" / "dev" / "cluster.json"
    assert config.bootstrap_servers == "127.0.0.1:9092"


EMPTY = "the file is empty (a cluster file has at least `nodes:` or `cluster:`)"
BAD_FILES = {
    "unknown key with a did-you-mean": (
        "cluster: {name: dev}\nbroker:\n  num.partitons: 3\n",
        "broker.num.partitons (line 3): unknown key (did you mean 'num.partitions'?)",
    ),
    "unknown top-level key": (
        "clustr: {name: dev}\n",
        "clustr (line 1): unknown key (did you mean 'cluster'?)",
    ),
    "wrong type": (
        "broker:\n  num.partitions: three\n",
        "broker.num.partitions (line 2): expected an integer, got 'three'",
    ),
    "wrong type of port": (
        "nodes:\n  - {id: 1, port: x}\n",
        "nodes[0].port (line 2): expected a TCP port (1-65535)",
    ),
    "duplicate node id": (
        "nodes:\n  - {id: 1, port: 9092}\n  - {id: 1, port: 9093}\n",
        "nodes[1].id (line 3): duplicate node id 1",
    ),
    "duplicate port": (
        "nodes:\n  - {id: 1, port: 9092}\n  - {id: 2, port: 9092}\n",
        "nodes[1].port (line 3): duplicate port 9092",
    ),
    "the same port on the same host, one of them named per node": (
        "cluster: {host: 127.0.0.2}\nnodes:\n  - {id: 1, port: 9092}\n  - {id: 2, port: 9092, host: 127.0.0.2}\n",
        "nodes[1].port (line 4): duplicate port 9092 on 127.0.0.2",
    ),
    "a node host that is not a string": (
        "nodes:\n  - {id: 1, port: 9092, host: 7}\n",
        "nodes[0].host (line 2): expected a host name or address",
    ),
    "a wildcard node host": (
        "nodes:\n  - {id: 1, port: 9092, host: 0.0.0.0}\n",
        ("nodes[0].host (line 2): 0.0.0.0 listens everywhere but cannot be connected to: name the address clients "
        "and the other nodes reach this node at"),
    ),
    "a wildcard cluster host": (
        "cluster: {host: '::'}\n",
        ("cluster.host (line 1): :: listens everywhere but cannot be connected to: name the address clients and the "
        "other nodes reach this node at"),
    ),
    "a controller port on a controller-only node": (
        "nodes:\n  - {id: 1, port: 9092, controller_port: 9093, roles: [controller]}\n",
        ("nodes[0].controller_port (line 2): only a node with both roles has a controller_port (a controller-only "
        "node's port is its controller listener)"),
    ),
    "a replica fetch wait above the replica lag time": (
        "broker:\n  replica.lag.time.max.ms: 400\n  replica.fetch.wait.max.ms: 500\n",
        ("broker.replica.fetch.wait.max.ms (line 3): 500 is more than replica.lag.time.max.ms (400): followers of "
        "quiet partitions would keep leaving the ISR"),
    ),
    "a replica socket timeout below the replica fetch wait": (
        "broker:\n  replica.fetch.wait.max.ms: 500\n  replica.socket.timeout.ms: 400\n",
        ("broker.replica.socket.timeout.ms (line 3): 400 is less than replica.fetch.wait.max.ms (500): followers' "
         "fetches would time out while the leader waits for records"),
    ),
    "a replica fetch max bytes over Kafka's INT": (
        "broker:\n  replica.fetch.max.bytes: 2147483648\n",
        "broker.replica.fetch.max.bytes (line 2): must be at most 2147483647 (an INT (int32) in Kafka), got 2147483648",
    ),
    "no replica fetchers": (
        "broker:\n  num.replica.fetchers: 0\n",
        "broker.num.replica.fetchers (line 2): must be at least 1, got 0",
    ),
    "an unclean election flag that is not a boolean": (
        "topics:\n  - {name: t, config: {unclean.leader.election.enable: maybe}}\n",
        "topics[0].config.unclean.leader.election.enable (line 2): expected true or false, got 'maybe'",
    ),
    "num.io.threads (still not supported)": (
        "broker:\n  num.io.threads: 3\n",
        "broker.num.io.threads (line 2): a Kafka setting that pko does not support yet",
    ),
    "node.id in the broker section": (
        "broker:\n  node.id: 1\n",
        "broker.node.id (line 2): node.id is set per node: nodes[].id",
    ),
    "listeners in the broker section": (
        "broker:\n  listeners: PLAINTEXT://:9092\n",
        ("broker.listeners (line 2): listeners is set per node: nodes[].host and nodes[].port "
        "(and nodes[].controller_port)"),
    ),
    "process.roles in the broker section": (
        "broker:\n  process.roles: broker,controller\n",
        "broker.process.roles (line 2): process.roles is set per node: nodes[].roles",
    ),
    "controller.quorum.voters in the broker section": (
        "broker:\n  controller.quorum.voters: 1@localhost:9093\n",
        ("broker.controller.quorum.voters (line 2): controller.quorum.voters is set per node: the nodes with the "
        "controller role and their controller_port"),
    ),
    "replication factor above the broker count": (
        "nodes:\n  - {id: 1, port: 9092}\nbroker:\n  default.replication.factor: 3\n",
        "broker.default.replication.factor (line 4): 3 is more than the 1 broker node(s)",
    ),
    "topic replication factor above the broker count": (
        "topics:\n  - {name: t, partitions: 1, replication.factor: 2}\n",
        "topics[0].replication.factor (line 2): 2 is more than the 1 broker node(s)",
    ),
    "request memory pool smaller than the largest request": (
        "broker:\n  socket.request.max.bytes: 1000\n  queued.max.request.bytes: 999\n",
        "broker.queued.max.request.bytes (line 3): 999 is less than socket.request.max.bytes (1000)",
    ),
    "an infinite integer": (
        "broker:\n  num.partitions: .inf\n",
        "broker.num.partitions (line 2): expected an integer, got inf",
    ),
    "an INT setting beyond int32": (
        "broker:\n  log.segment.bytes: 99999999999999999999999\n",
        ("broker.log.segment.bytes (line 2): must be at most 2147483647 (an INT (int32) in Kafka), "
        "got 99999999999999999999999"),
    ),
    "a LONG setting beyond int64": (
        "broker:\n  log.retention.bytes: 9223372036854775808\n",
        ("broker.log.retention.bytes (line 2): must be at most 9223372036854775807 (a LONG (int64) in Kafka), "
        "got 9223372036854775808"),
    ),
    "a key given twice in a flow mapping": (
        "nodes:\n  - {id: 1, port: 31401, port: 31402}\n",
        "port (line 2): duplicate key (first at line 2)",
    ),
    "a key given twice in a block mapping": (
        "broker:\n  num.partitions: 3\n  num.partitions: 7\n",
        "num.partitions (line 3): duplicate key (first at line 2)",
    ),
    "a topic with more partitions than a topic may have": (
        "topics:\n  - {name: big, partitions: 1000000}\n",
        "topics[0].partitions (line 2): at most 10000 partitions, got 1000000",
    ),
    "an even number of controllers": (
        "nodes:\n  - {id: 1, port: 9092}\n  - {id: 2, port: 9093, roles: [controller]}\n",
        "nodes (line 1): 2 controllers: a quorum has 1, 3 or 5 voters",
    ),
    "a combined node of a larger quorum without a controller port": (
        ("nodes:\n  - {id: 1, port: 9092}\n  - {id: 2, port: 9093, roles: [controller]}\n"
        "  - {id: 3, port: 9094, roles: [controller]}\n"),
        "nodes[0] (line 2): a combined node in a quorum of several controllers needs a controller_port",
    ),
    "a controller port taken by another node": (
        ("nodes:\n  - {id: 1, port: 9092, controller_port: 9093}\n  - {id: 2, port: 9093, roles: [controller]}\n"
        "  - {id: 3, port: 9094, roles: [controller]}\n"),
        "nodes[1].port (line 3): duplicate port 9093",
    ),
    "a quorum timeout below 1 ms": (
        "broker:\n  controller.quorum.fetch.timeout.ms: 0\n",
        "broker.controller.quorum.fetch.timeout.ms (line 2): must be at least 1, got 0",
    ),
    "an empty file": ("", EMPTY),
    "a file of comments only": ("# nothing here\n", EMPTY),
    "Kafka setting not supported yet": (
        "broker:\n  sasl.enabled.mechanisms: PLAIN\n",
        "broker.sasl.enabled.mechanisms (line 2): a Kafka setting that pko does not support yet",
    ),
    "topic setting not supported yet": (
        "topics:\n  - name: t\n    config: {remote.storage.enable: true}\n",
        "topics[0].config.remote.storage.enable (line 3): not supported yet",
    ),
}


@pytest.mark.parametrize(("text", "expected"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_file_is_one_line_naming_file_key_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert str(raised.value) == f"{path}: {expected}"


@pytest.mark.parametrize(
    ("text", "line"),
    [("cluster: {name: dev\nnodes: [\n", 2), ("cluster:\n  name: dev\n   data_dir: x\n", 3)],
    ids=["unclosed flow mapping", "bad indentation"],
)
def test_invalid_yaml_names_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert str(raised.value).startswith(f"{path} (line {line}): not valid YAML: ")


def test_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read: No such file or directory$"):
        load(tmp_path / "missing.yaml")


def test_a_byte_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"cluster: {name: dev}\nbroker:\n  num.partitions: \xff\n")
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert str(raised.value) == f"{path} (line 3): not UTF-8 text (byte 0xff)"


def test_an_alias_bomb_is_refused_before_it_is_walked(tmp_path: Path) -> None:
    """9^8 nodes once expanded ("billion laughs"): refused in well under a second (the walk of
    the expanded aliases once took 10 s)."""
    import time

    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 8)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\ntopics: *a7\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="aliases expand to more than 100000 YAML nodes"):
        load(path)
    assert time.monotonic() - started < 2


def test_aliases_that_stay_small_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text("cluster: {name: dev}\ntopics:\n  - {name: a, config: &cfg {retention.ms: 1000}}\n"
                    "  - {name: b, config: *cfg}\n")
    assert [t.config for t in load(path).topics] == [{"retention.ms": 1000}, {"retention.ms": 1000}]


def test_nodes_may_name_their_own_host_and_share_a_port(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(
        "cluster: {name: spread, host: 127.0.0.1}\n"
        "nodes:\n"
        "  - {id: 1, port: 9092, controller_port: 9093, host: 127.0.0.2}\n"
        "  - {id: 2, port: 9092, controller_port: 9093, host: 127.0.0.3}\n"
        "  - {id: 3, port: 9092, controller_port: 9093}\n"
    )
    config = load(path)
    assert [n.host for n in config.nodes] == ["127.0.0.2", "127.0.0.3", None]
    assert [config.host_of(n) for n in (1, 2, 3)] == ["127.0.0.2", "127.0.0.3", "127.0.0.1"]
    assert config.bootstrap_servers == "127.0.0.2:9092,127.0.0.3:9092,127.0.0.1:9092"
    assert config.voters == {1: ("127.0.0.2", 9093), 2: ("127.0.0.3", 9093), 3: ("127.0.0.1", 9093)}


@pytest.mark.parametrize("name", ["listeners", "advertised.listeners", "node.id", "broker.id", "process.roles",
                                  "controller.quorum.voters", "controller.quorum.bootstrap.servers",
                                  "controller.listener.names", "inter.broker.listener.name",
                                  "listener.security.protocol.map"])
def test_node_settings_are_no_longer_not_supported_yet_but_set_per_node(tmp_path: Path, name: str) -> None:
    from pykafka_ops.config.settings import NOT_SUPPORTED_YET

    assert name not in NOT_SUPPORTED_YET
    path = tmp_path / "node-setting.yaml"
    path.write_text(f"broker:\n  {name}: x\n")
    with pytest.raises(ConfigError, match=rf"^{path}: broker\.{name} \(line 2\): {name} is set per node: nodes|the nodes"):
        load(path)


REPLICATION_SETTINGS = {"replica.lag.time.max.ms": 30_000, "replica.fetch.max.bytes": 1_048_576,
                        "replica.fetch.min.bytes": 1, "replica.fetch.wait.max.ms": 500,
                        "replica.fetch.response.max.bytes": 10_485_760, "replica.fetch.backoff.ms": 1_000,
                        "replica.socket.timeout.ms": 30_000, "num.replica.fetchers": 1,
                        "unclean.leader.election.enable": False}


def test_replication_settings_have_kafkas_names_and_defaults(tmp_path: Path) -> None:
    from pykafka_ops.config.settings import (
        NOT_SUPPORTED_YET,
        TOPIC_DEFAULT_FROM_BROKER,
        topic_defaults,
    )

    path = tmp_path / "defaults.yaml"
    path.write_text("cluster: {name: dev}\n")
    broker = load(path).broker
    assert {name: broker[name] for name in REPLICATION_SETTINGS} == REPLICATION_SETTINGS
    assert not set(REPLICATION_SETTINGS) & NOT_SUPPORTED_YET
    assert "num.io.threads" in NOT_SUPPORTED_YET
    assert TOPIC_DEFAULT_FROM_BROKER["unclean.leader.election.enable"] == "unclean.leader.election.enable"
    topic = topic_defaults({**broker, "unclean.leader.election.enable": True, "min.insync.replicas": 2})
    assert (topic["unclean.leader.election.enable"], topic["min.insync.replicas"]) == (True, 2)


def test_replication_factor_and_replication_settings_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "replicated.yaml"
    path.write_text(
        "nodes:\n  - {id: 1, port: 9092, controller_port: 9192}\n  - {id: 2, port: 9093, controller_port: 9193}\n"
        "  - {id: 3, port: 9094, controller_port: 9194}\n"
        "broker:\n  default.replication.factor: 3\n  min.insync.replicas: 2\n  replica.lag.time.max.ms: 2000\n"
        "  replica.fetch.wait.max.ms: 200\n  replica.fetch.backoff.ms: 100\n  num.replica.fetchers: 2\n"
        "  unclean.leader.election.enable: 'true'\n"
        "topics:\n  - {name: t, replication.factor: 2, config: {min.insync.replicas: 2, "
        "unclean.leader.election.enable: false}}\n")
    config = load(path)
    assert config.broker["default.replication.factor"] == 3 and config.broker["unclean.leader.election.enable"] is True
    assert (config.broker["replica.lag.time.max.ms"], config.broker["replica.fetch.wait.max.ms"]) == (2000, 200)
    (topic,) = config.topics
    assert topic.replication_factor == 2
    assert topic.config == {"min.insync.replicas": 2, "unclean.leader.election.enable": False}


def test_three_brokers_yaml_replicates_every_partition_three_times() -> None:
    config = load(CONFIGS / "three-brokers.yaml")
    assert (config.broker["default.replication.factor"], config.broker["offsets.topic.replication.factor"],
            config.broker["min.insync.replicas"]) == (3, 3, 2)
    assert (config.broker["transaction.state.log.replication.factor"],
            config.broker["transaction.state.log.min.isr"]) == (3, 2)
    assert [(t.name, t.replication_factor, t.config.get("min.insync.replicas")) for t in config.topics] == [
        ("orders", 3, 2)]


TRANSACTION_SETTINGS = {"transaction.state.log.num.partitions": 50, "transaction.state.log.replication.factor": 3,
                        "transaction.state.log.min.isr": 2, "transaction.max.timeout.ms": 900_000,
                        "transactional.id.expiration.ms": 604_800_000,
                        "transaction.abort.timed.out.transaction.cleanup.interval.ms": 10_000,
                        "transaction.remove.expired.transaction.cleanup.interval.ms": 3_600_000}


def test_transaction_settings_have_kafkas_names_and_defaults_and_reach_the_coordinator(tmp_path: Path) -> None:
    from cluster.txn.state_manager import TransactionConfig
    from pykafka_ops.config.settings import NOT_SUPPORTED_YET

    path = tmp_path / "defaults.yaml"
    path.write_text("cluster: {name: dev}\nbroker:\n  transaction.max.timeout.ms: 60000\n")
    broker = load(path).broker
    assert {name: broker[name] for name in TRANSACTION_SETTINGS} == {**TRANSACTION_SETTINGS,
                                                                     "transaction.max.timeout.ms": 60_000}
    assert not set(TRANSACTION_SETTINGS) & NOT_SUPPORTED_YET
    config = TransactionConfig.from_broker_config(broker)
    assert (config.num_partitions, config.replication_factor, config.min_isr, config.max_timeout_ms,
            config.id_expiration_ms, config.abort_timed_out_interval_ms, config.remove_expired_interval_ms) == (
        50, 3, 2, 60_000, 604_800_000, 10_000, 3_600_000)
