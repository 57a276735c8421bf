"""Dynamic broker configs (Kafka's ``DynamicBrokerConfig``): what a broker's settings are now.

A broker's settings come, by precedence, from its own dynamic configs (ConfigRecords of broker
``"<id>"``), the cluster-wide dynamic default (broker ``""``, ``--entity-default``), the cluster
file (static) and Kafka's defaults. Only ``DYNAMIC_BROKER_CONFIGS`` may be changed at runtime:
the topic defaults of Kafka's ``DynamicLogConfig`` that pko reads from the broker's settings on
every metadata change (``ReplicaManager.effective_topic_config``), so a topic without its own
override picks a new value up at once, and the replication throttle rates (KIP-73). Other names
are refused as Kafka refuses a non-dynamic one ("Cannot update these configs dynamically").

``DynamicBrokerConfig`` is the live view a broker reads its settings through: a Mapping over the
static settings with the current image's dynamic values on top.

Concurrency: read on the node's event loop; the image it reads is immutable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from cluster.controller.metadata_image import MetadataImage
from pykafka_ops.config.cluster import ClusterConfig
from pykafka_ops.config.settings import (
    BROKER_SETTINGS,
    NOT_SUPPORTED_YET,
    TOPIC_DEFAULT_FROM_BROKER,
    SettingError,
    coerce,
)

#: Kafka's dynamically updatable broker configs (``DynamicLogConfig.ReconfigurableConfigs``) that
#: pko honours at runtime: every broker setting a topic setting defaults from, and the replication
#: throttle rates (``QuotaConfig.brokerQuotaConfigs``, KIP-73; read by
#: ``cluster.replication.replication_quota`` on every check).
DYNAMIC_BROKER_CONFIGS: frozenset[str] = frozenset(TOPIC_DEFAULT_FROM_BROKER.values()) | {
    "log.retention.ms", "log.retention.minutes", "log.retention.hours", "log.roll.ms", "log.roll.hours",
    "log.flush.interval.ms", "leader.replication.throttled.rate", "follower.replication.throttled.rate",
    "replica.alter.log.dirs.io.max.bytes.per.second",  # read by cluster.replication.alter_log_dirs each step
}

#: Kafka's ``DynamicBrokerConfig.brokerConfigSynonyms``: names that set the same thing, first wins.
_SYNONYM_GROUPS = (
    ("log.retention.ms", "log.retention.minutes", "log.retention.hours"),
    ("log.roll.ms", "log.roll.hours"),
)
SYNONYMS: dict[str, tuple[str, ...]] = {name: group for group in _SYNONYM_GROUPS for name in group}

# ConfigSource values of DescribeConfigsResponse.json
DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 2, 3, 4, 5


def check_broker_changes(changes: Mapping[str, Any | None]) -> dict[str, Any | None]:
    """Validate dynamic broker config changes (``None`` deletes); SettingError naming the key.

    As Kafka's ``DynamicBrokerConfig.validateConfigs``: a name that is not dynamic is refused with
    "Cannot update these configs dynamically", an unknown one as unknown."""
    static = sorted(name for name in changes if name not in DYNAMIC_BROKER_CONFIGS and name in BROKER_SETTINGS)
    if static:
        raise SettingError(f"Cannot update these configs dynamically: {static}")
    result: dict[str, Any | None] = {}
    for name, value in changes.items():
        if name in NOT_SUPPORTED_YET:
            raise SettingError(f"{name}: not supported yet")
        if name not in BROKER_SETTINGS:
            raise SettingError(f"{name}: unknown broker config")
        try:
            result[name] = None if value is None else coerce(BROKER_SETTINGS[name], value)
        except SettingError as exc:
            raise SettingError(f"{name}: {exc}") from None
    return result


def identity_configs(cluster: ClusterConfig, node_id: int) -> dict[str, str | None]:
    """The read-only settings of a node's identity, roles and listeners, as Kafka names them
    (what the cluster file says per node, ``SET_PER_NODE``)."""
    node = cluster.node(node_id)
    host = cluster.host_of(node_id)
    listeners = [f"PLAINTEXT://{host}:{node.port}"] if node.is_broker else []
    controller_listener = "CONTROLLER" if node.is_controller and (len(cluster.voters) > 1 or not node.is_broker) \
        else None
    if controller_listener is not None:
        listeners.append(f"CONTROLLER://{host}:{node.quorum_port}")
    voters = ",".join(f"{i}@{h}:{p}" for i, (h, p) in sorted(cluster.voters.items()))
    return {
        "node.id": str(node_id),
        "broker.id": str(node_id),
        "process.roles": ",".join(node.roles),
        "listeners": ",".join(listeners),
        "advertised.listeners": f"PLAINTEXT://{host}:{node.port}" if node.is_broker else None,
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "controller.quorum.voters": voters,
        "log.dirs": ",".join(str(path.resolve()) for path in cluster.log_dirs(node_id)),
    }


class DynamicBrokerConfig(Mapping[str, Any]):
    """A broker's settings now: dynamic values of the current image over the static ones."""

    def __init__(self, static: Mapping[str, Any], broker_id: int,
                 image: Callable[[], MetadataImage | None]) -> None:
        self.static = static
        self.broker_id = broker_id
        self._image = image

    def __getitem__(self, name: str) -> Any:
        if name in DYNAMIC_BROKER_CONFIGS:
            image = self._image()
            if image is not None:
                for layer in (image.broker_node_configs.get(self.broker_id, {}), image.broker_configs):
                    if name in layer:
                        return layer[name]
        return self.static[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.static)

    def __len__(self) -> int:
        return len(self.static)

    def sources(self, name: str, per_broker: bool = True) -> list[tuple[str, Any, int]]:
        """Kafka's ``configSynonyms``: (name, value, source) of every place ``name`` or a synonym
        is set, highest precedence first; ``per_broker=False`` leaves this broker's own dynamic
        configs out (the cluster-default resource)."""
        image = self._image()
        layers: list[tuple[Mapping[str, Any], int]] = []
        if image is not None:
            if per_broker:
                layers.append((image.broker_node_configs.get(self.broker_id, {}), DYNAMIC_BROKER_CONFIG))
            layers.append((image.broker_configs, DYNAMIC_DEFAULT_BROKER_CONFIG))
        result = []
        for synonym in SYNONYMS.get(name, (name,)):
            setting = BROKER_SETTINGS[synonym]
            for layer, source in layers:
                if synonym in layer:
                    result.append((synonym, layer[synonym], source))
            value = self.static[synonym]
            if value is not None and value != setting.default:
                result.append((synonym, value, STATIC_BROKER_CONFIG))
            if setting.default is not None:
                result.append((synonym, setting.default, DEFAULT_CONFIG))
        return result
