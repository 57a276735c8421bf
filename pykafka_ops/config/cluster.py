"""The YAML cluster file (configs/*.yaml): schema, validation with clear errors, and loading.

A bad file raises ``ConfigError`` whose message names the file, the key, its line and the
reason, e.g. ``configs/x.yaml: broker.num.partitions (line 9): expected an integer, got 'three'``.
Beyond the schema, the file must be UTF-8 and strict YAML (``strict_yaml``: not empty, no
duplicate keys, no alias bomb). A Kafka setting that says who a node is or where it listens
(``node.id``, ``listeners``, ``process.roles``, ``controller.quorum.voters`` …) is refused in
``broker:`` with where this file says it: each entry of ``nodes:`` is one node, as one Kafka
``server.properties``.
``data_dir`` is resolved relative to the YAML file; the built-in default config keeps its data
under ``$XDG_STATE_HOME/pko/<name>``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from pykafka_ops.config import strict_yaml
from pykafka_ops.config.log_dirs import LogDirProblem, node_dir_name, resolve_log_dirs
from pykafka_ops.config.settings import (
    BROKER_SETTINGS,
    MAX_PARTITIONS_PER_TOPIC,
    NOT_SUPPORTED_YET,
    SettingError,
    broker_defaults,
    check_topic_overrides,
    coerce,
)

ROLES = ("broker", "controller")
DEFAULT_CONFIG_NAME = "single.yaml"
_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
_CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,64}$")
#: Addresses a node can listen on but nobody can connect to (Kafka refuses them as advertised listeners).
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]"})

#: Kafka settings of one node's identity, roles and listeners, and where this file says them
#: (``broker:`` holds what every node shares).
SET_PER_NODE: dict[str, str] = {
    "node.id": "nodes[].id",
    "broker.id": "nodes[].id",
    "process.roles": "nodes[].roles",
    "listeners": "nodes[].host and nodes[].port (and nodes[].controller_port)",
    "advertised.listeners": "nodes[].host and nodes[].port (a node listens where it is reached)",
    "controller.quorum.voters": "the nodes with the controller role and their controller_port",
    "controller.quorum.bootstrap.servers": "the nodes with the controller role and their controller_port",
    "controller.listener.names": "nodes[].controller_port (a controller-only node's port)",
    "inter.broker.listener.name": "nodes[].host and nodes[].port (brokers reach each other there)",
    "listener.security.protocol.map": "nodes[].host and nodes[].port (every listener is PLAINTEXT)",
    "log.dirs": "nodes[].log_dirs",
    "log.dir": "nodes[].log_dirs",
}


class ConfigError(ValueError):
    """A cluster file that cannot be used; the message is one line meant for the user."""


@dataclass(frozen=True)
class NodeSpec:
    """One node (an OS process): its id, listener port and KRaft-style roles."""

    id: int
    port: int
    roles: tuple[str, ...] = ROLES
    controller_port: int | None = None
    """The controller listener of a combined node in a quorum of several controllers."""
    host: str | None = None
    """The address this node listens on and is reached at (``None``: the cluster's ``host``)."""
    admin_port: int | None = None
    """The HTTP admin endpoint's port (on the broker setting ``admin.bind.address``); None: no endpoint."""
    log_dirs: tuple[Path, ...] = ()
    """Absolute log dirs (``nodes[].log_dirs``, see ``log_dirs``); empty: the node dir alone."""

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles

    @property
    def is_controller(self) -> bool:
        return "controller" in self.roles

    @property
    def quorum_port(self) -> int:
        """Where quorum members reach this controller: its own listener (``port``) on a
        controller-only node, ``controller_port`` on a combined one."""
        return self.port if not self.is_broker or self.controller_port is None else self.controller_port


@dataclass(frozen=True)
class TopicSpec:
    """A topic the cluster creates at start-up (idempotently)."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterConfig:
    """A validated cluster file. ``broker`` holds every broker setting, defaults filled in."""

    name: str
    data_dir: Path
    host: str
    nodes: tuple[NodeSpec, ...]
    broker: Mapping[str, Any]
    topics: tuple[TopicSpec, ...]
    source: Path
    lines: Mapping[tuple[Any, ...], int] = field(default_factory=dict, compare=False, repr=False)
    """Line of each key path in the file, for messages about a setting (``where``)."""

    def where(self, path: tuple[Any, ...]) -> str:
        """``<file>: <key> (line N)`` for a key path such as ``("nodes", 0, "port")``."""
        return strict_yaml.where(self.source, self.lines, path)

    def node(self, node_id: int) -> NodeSpec:
        """The node with ``node_id``; KeyError if there is none."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(f"no node {node_id} in {self.source}")

    def host_of(self, node_id: int) -> str:
        """The address node ``node_id`` listens on (its own ``host``, else the cluster's)."""
        return self.node(node_id).host or self.host

    @property
    def bootstrap_servers(self) -> str:
        """host:port of every broker node, comma-separated (a client's bootstrap.servers)."""
        return ",".join(f"{n.host or self.host}:{n.port}" for n in self.nodes if n.is_broker)

    @property
    def voters(self) -> dict[int, tuple[str, int]]:
        """The metadata quorum's voters: node id → controller listener address."""
        return {n.id: (n.host or self.host, n.quorum_port) for n in self.nodes if n.is_controller}

    def node_dir(self, node_id: int) -> Path:
        """Where node ``node_id`` keeps meta.properties and its metadata log (and its partition
        logs, unless ``nodes[].log_dirs`` says otherwise)."""
        return self.data_dir / node_dir_name(node_id)

    def log_dirs(self, node_id: int) -> tuple[Path, ...]:
        """Node ``node_id``'s log dirs (Kafka's ``log.dirs``): ``nodes[].log_dirs``, else its node dir."""
        return self.node(node_id).log_dirs or (self.node_dir(node_id),)

    @property
    def state_file(self) -> Path:
        """The launcher's state file (pids, ports, roles)."""
        return self.data_dir / "cluster.json"


def default_config_text() -> str:
    """The built-in default cluster file (identical to configs/single.yaml)."""
    return resources.files("pykafka_ops.config").joinpath(DEFAULT_CONFIG_NAME).read_text()


def state_home() -> Path:
    """``$XDG_STATE_HOME/pko`` (``~/.local/state/pko`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "pko"


def load_default() -> ClusterConfig:
    """The built-in default cluster; its data lives under ``$XDG_STATE_HOME/pko/<name>``."""
    config = parse(default_config_text(), Path("<built-in default>"), base_dir=Path.cwd())
    return replace(config, data_dir=state_home() / config.name)


def load(path: str | os.PathLike[str] | None) -> ClusterConfig:
    """Load and validate a cluster file; ``None`` means the built-in default."""
    if path is None:
        return load_default()
    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{source} (line {line}): not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None
    return parse(text, source, base_dir=source.resolve().parent)


def parse(text: str, source: Path, base_dir: Path) -> ClusterConfig:
    """Validate YAML text; ``source`` names the file in error messages."""
    try:
        data, lines = strict_yaml.read(text)
    except strict_yaml.YamlProblem as exc:
        raise ConfigError(f"{source}{exc}") from None
    return _Validator(source, base_dir, lines).validate(data)


class _Validator:
    """Walks the parsed YAML once, raising the first problem as a ConfigError."""

    def __init__(self, source: Path, base_dir: Path, lines: dict[tuple[Any, ...], int]) -> None:
        self.source = source
        self.base_dir = base_dir
        self.lines = lines

    def fail(self, path: tuple[Any, ...], reason: str) -> ConfigError:
        return ConfigError(f"{strict_yaml.where(self.source, self.lines, path)}: {reason}")

    def mapping(self, value: Any, path: tuple[Any, ...], allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.fail((*path, key), _unknown_key_reason(str(key), allowed))
        return value

    def validate(self, data: Any) -> ClusterConfig:
        top = self.mapping(data, (), ("cluster", "nodes", "broker", "topics"))
        cluster = self.mapping(top.get("cluster"), ("cluster",), ("name", "data_dir", "host"))
        name = cluster.get("name", "dev")
        if not isinstance(name, str) or not _CLUSTER_NAME.match(name):
            raise self.fail(("cluster", "name"), "expected letters, digits, '.', '_' or '-' (at most 64)")
        data_dir = cluster.get("data_dir", f".pko/{name}")
        if not isinstance(data_dir, str) or not data_dir:
            raise self.fail(("cluster", "data_dir"), "expected a path")
        host = self.host(cluster.get("host", "127.0.0.1"), ("cluster", "host"))
        resolved_data_dir = (self.base_dir / os.path.expanduser(data_dir)).resolve()
        nodes = self.nodes(top.get("nodes"), host, resolved_data_dir)
        broker = self.broker(top.get("broker"))
        broker_count = sum(1 for n in nodes if n.is_broker)
        queued = broker["queued.max.request.bytes"]
        if 0 < queued < broker["socket.request.max.bytes"]:  # KafkaConfig's own check
            raise self.fail(("broker", "queued.max.request.bytes"),
                            f"{queued} is less than socket.request.max.bytes ({broker['socket.request.max.bytes']})")
        wait_ms, lag_ms = broker["replica.fetch.wait.max.ms"], broker["replica.lag.time.max.ms"]
        if wait_ms > lag_ms:  # KafkaConfig's own check: quiet partitions would leave the ISR
            raise self.fail(("broker", "replica.fetch.wait.max.ms"),
                            f"{wait_ms} is more than replica.lag.time.max.ms ({lag_ms}): followers of quiet "
                            "partitions would keep leaving the ISR")
        if broker["replica.socket.timeout.ms"] < wait_ms:  # KafkaConfig's own check
            raise self.fail(("broker", "replica.socket.timeout.ms"),
                            f"{broker['replica.socket.timeout.ms']} is less than replica.fetch.wait.max.ms ({wait_ms}): "
                            "followers' fetches would time out while the leader waits for records")
        self.replication_factor(broker["default.replication.factor"], ("broker", "default.replication.factor"),
                                broker_count)
        topics = self.topics(top.get("topics"), broker, broker_count)
        return ClusterConfig(
            name=name,
            data_dir=resolved_data_dir,
            host=host,
            nodes=nodes,
            broker=broker,
            topics=topics,
            source=self.source,
            lines=self.lines,
        )

    def host(self, value: Any, path: tuple[Any, ...]) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, "expected a host name or address")
        if value in _WILDCARD_HOSTS:
            raise self.fail(path, f"{value} listens everywhere but cannot be connected to: name the address "
                                  "clients and the other nodes reach this node at")
        return value

    def port(self, item: dict[str, Any], path: tuple[Any, ...], key: str) -> int | None:
        number = item.get(key)
        if number is not None and (not isinstance(number, int) or isinstance(number, bool)
                                   or not 1 <= number <= 65535):
            raise self.fail((*path, key), "expected a TCP port (1-65535)")
        return number

    def nodes(self, value: Any, cluster_host: str, data_dir: Path) -> tuple[NodeSpec, ...]:
        if value is None:
            return (NodeSpec(1, 9092),)
        if not isinstance(value, list) or not value:
            raise self.fail(("nodes",), "expected a non-empty list of nodes")
        result: list[NodeSpec] = []
        for i, item in enumerate(value):
            path = ("nodes", i)
            item = self.mapping(item, path, ("id", "port", "roles", "controller_port", "host", "admin_port",
                                             "log_dirs"))
            node_id = item.get("id")
            if not isinstance(node_id, int) or isinstance(node_id, bool) or node_id < 0:
                raise self.fail((*path, "id"), "expected a node id (an integer ≥ 0)")
            port, controller_port = self.port(item, path, "port"), self.port(item, path, "controller_port")
            admin_port = self.port(item, path, "admin_port")
            if port is None:
                raise self.fail((*path, "port"), "expected a TCP port (1-65535)")
            roles = item.get("roles", list(ROLES))
            if isinstance(roles, str):
                roles = [roles]
            if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles):
                raise self.fail((*path, "roles"), "expected a list of: broker, controller")
            if any(n.id == node_id for n in result):
                raise self.fail((*path, "id"), f"duplicate node id {node_id}")
            host = self.host(item["host"], (*path, "host")) if "host" in item else None
            node = NodeSpec(node_id, port, tuple(r for r in ROLES if r in roles), controller_port, host, admin_port)
            if controller_port is not None and not (node.is_broker and node.is_controller):
                raise self.fail((*path, "controller_port"), "only a node with both roles has a controller_port "
                                                            "(a controller-only node's port is its controller listener)")
            self.check_address_free(node, path, result, cluster_host)
            result.append(node)
        log_dirs = self.log_dirs(value, data_dir)
        result = [replace(node, log_dirs=log_dirs[node.id]) for node in result]
        controllers = [n for n in result if n.is_controller]
        if not controllers:
            raise self.fail(("nodes",), "no node has the controller role")
        if len(controllers) not in (1, 3, 5):
            raise self.fail(("nodes",), f"{len(controllers)} controllers: a quorum has 1, 3 or 5 voters")
        for i, node in enumerate(result):
            if len(controllers) > 1 and node.is_controller and node.is_broker and node.controller_port is None:
                raise self.fail(("nodes", i),
                                "a combined node in a quorum of several controllers needs a controller_port")
        return tuple(result)

    def log_dirs(self, nodes: list[dict[str, Any]], data_dir: Path) -> dict[int, tuple[Path, ...]]:
        """Each node's ``log_dirs`` resolved against ``data_dir`` (absent: none), checked apart."""
        try:
            return resolve_log_dirs([(item["id"], item.get("log_dirs")) for item in nodes], data_dir)
        except LogDirProblem as exc:
            raise self.fail(("nodes", exc.node, "log_dirs", *exc.index), exc.reason) from None

    def check_address_free(self, node: NodeSpec, path: tuple[Any, ...], earlier: list[NodeSpec],
                           cluster_host: str) -> None:
        """Refuse a port that ``node`` or an earlier node already listens on, on the same host."""
        host = node.host or cluster_host
        taken = {(n.host or cluster_host, p) for n in earlier for p in (n.port, n.controller_port, n.admin_port)
                 if p is not None}
        own: set[int] = set()
        for key, number in (("port", node.port), ("controller_port", node.controller_port),
                            ("admin_port", node.admin_port)):
            if number is not None and ((host, number) in taken or number in own):
                raise self.fail((*path, key), f"duplicate port {number}" + (f" on {host}" if node.host else ""))
            if number is not None:
                own.add(number)

    def replication_factor(self, rf: int, path: tuple[Any, ...], broker_count: int) -> None:
        if broker_count and rf > broker_count:  # a quorum alone: brokers register later
            raise self.fail(path, f"{rf} is more than the {broker_count} broker node(s)")

    def broker(self, value: Any) -> dict[str, Any]:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.fail(("broker",), f"expected a mapping, got {type(value).__name__}")
        result = broker_defaults()
        for key, raw in value.items():
            path = ("broker", key)
            setting = BROKER_SETTINGS.get(key)
            if key in SET_PER_NODE:
                raise self.fail(path, f"{key} is set per node: {SET_PER_NODE[key]}")
            if setting is None:
                raise self.fail(path, _unknown_key_reason(str(key), tuple(BROKER_SETTINGS)))
            try:
                result[key] = coerce(setting, raw)
            except SettingError as exc:
                raise self.fail(path, str(exc)) from None
        return result

    def topics(self, value: Any, broker: Mapping[str, Any], broker_count: int) -> tuple[TopicSpec, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(("topics",), "expected a list of topics")
        result: list[TopicSpec] = []
        for i, item in enumerate(value):
            path = ("topics", i)
            item = self.mapping(item, path, ("name", "partitions", "replication.factor", "config"))
            name = item.get("name")
            if not isinstance(name, str) or not _TOPIC_NAME.match(name) or name in (".", ".."):
                raise self.fail((*path, "name"), "expected a topic name (letters, digits, '.', '_', '-')")
            if any(t.name == name for t in result):
                raise self.fail((*path, "name"), f"duplicate topic {name!r}")
            partitions = item.get("partitions", broker["num.partitions"])
            if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
                raise self.fail((*path, "partitions"), "expected a partition count ≥ 1")
            if partitions > MAX_PARTITIONS_PER_TOPIC:
                raise self.fail((*path, "partitions"),
                                f"at most {MAX_PARTITIONS_PER_TOPIC} partitions, got {partitions}")
            rf = item.get("replication.factor", broker["default.replication.factor"])
            if not isinstance(rf, int) or isinstance(rf, bool) or rf < 1:
                raise self.fail((*path, "replication.factor"), "expected a replication factor ≥ 1")
            self.replication_factor(rf, (*path, "replication.factor"), broker_count)
            overrides = self.mapping(item.get("config"), (*path, "config"), tuple(item.get("config") or ()))
            try:
                config = check_topic_overrides(overrides)
            except SettingError as exc:
                key = str(exc).split(":", 1)[0]
                raise self.fail((*path, "config", key), str(exc).split(": ", 1)[1]) from None
            result.append(TopicSpec(name, partitions, rf, config))
        return tuple(result)


def _unknown_key_reason(key: str, allowed: tuple[str, ...]) -> str:
    if key in NOT_SUPPORTED_YET:
        return "a Kafka setting that pko does not support yet"
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}"
