"""Describe and alter topic and broker configs (kafka-configs' operations).

Alterations use IncrementalAlterConfigs (SET / DELETE per name), as kafka-configs does since
Kafka 2.3, so configs that are not named stay as they are. ``entity_type`` uses kafka-configs'
words: ``topics`` or ``brokers`` (a broker's name is its id). The cluster-wide broker default
(kafka-configs' ``--entity-default``, the name ``BROKER_DEFAULT``) goes through our own wire
client (``client.config_requests``): librdkafka refuses a resource without a name. Describing
every broker describes the default too, as kafka-configs does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.librdkafka import admin_client, in_thread, metadata, result
from pykafka_ops.models.topics import ConfigEntry, ConfigSynonym, ResourceConfigs

ENTITY_TYPES = ("topics", "brokers")
#: The name of the cluster-wide broker default (Kafka's ``ConfigEntityName.DEFAULT`` on the wire).
BROKER_DEFAULT = ""


class EntityNotFoundError(LookupError):
    """The topic or broker named does not exist."""


def _resource_type(entity_type: str) -> Any:
    from confluent_kafka.admin import ResourceType

    if entity_type not in ENTITY_TYPES:
        raise ValueError(f"entity type {entity_type!r} is not supported (supported: {', '.join(ENTITY_TYPES)})")
    return ResourceType.TOPIC if entity_type == "topics" else ResourceType.BROKER


def _source_name(value: int) -> str:
    """Kafka's ``ConfigSource`` name of a source code."""
    from confluent_kafka.admin import ConfigSource

    try:
        return ConfigSource(value).name
    except ValueError:
        return "UNKNOWN_CONFIG"


def config_entry(entry: Any) -> ConfigEntry:
    """Our ``ConfigEntry`` from confluent-kafka's."""
    synonyms = tuple(ConfigSynonym(s.name, s.value, _source_name(s.source)) for s in entry.synonyms.values())
    return ConfigEntry(entry.name, entry.value, _source_name(entry.source), bool(entry.is_default),
                       bool(entry.is_read_only), bool(entry.is_sensitive), synonyms)


def wire_config_entry(entry: Any) -> ConfigEntry:
    """Our ``ConfigEntry`` from a DescribeConfigs response entry decoded by our codec."""
    from confluent_kafka.admin import ConfigSource

    synonyms = tuple(ConfigSynonym(s.name, s.value, _source_name(s.source)) for s in entry.synonyms)
    return ConfigEntry(entry.name, entry.value, _source_name(entry.config_source),
                       entry.config_source == ConfigSource.DEFAULT_CONFIG.value, entry.read_only,
                       entry.is_sensitive, synonyms)


def resource_configs(admin: Any, settings: ClientSettings, entity_type: str,
                     names: Sequence[str]) -> list[ResourceConfigs]:
    """Every config (with synonyms) of each named topic or broker, in the order of ``names``."""
    from confluent_kafka.admin import ConfigResource

    if entity_type == "brokers" and BROKER_DEFAULT in names:
        from pykafka_ops.client.config_requests import describe_broker_default

        others = iter(resource_configs(admin, settings, entity_type, [n for n in names if n != BROKER_DEFAULT]))
        entries = tuple(wire_config_entry(e) for e in describe_broker_default(settings))
        default = ResourceConfigs(entity_type, BROKER_DEFAULT, entries)
        return [default if n == BROKER_DEFAULT else next(others) for n in names]
    if not names:
        return []
    resource_type = _resource_type(entity_type)
    # librdkafka sends broker resources to the broker they name: at most one per call.
    batches = [[n] for n in names] if entity_type == "brokers" else [list(names)]
    by_name = {resource.name: future for batch in batches
               for resource, future in admin.describe_configs([ConfigResource(resource_type, n) for n in batch],
                                                              request_timeout=settings.timeout_s).items()}
    described = []
    for name in names:
        entries = result(by_name[name], settings, f"describe configs of {entity_type[:-1]} {name}")
        described.append(ResourceConfigs(entity_type, name, tuple(config_entry(e) for e in entries.values())))
    return described


def _entity_names(admin: Any, settings: ClientSettings, entity_type: str, name: str | None) -> list[str]:
    if entity_type == "brokers" and name == BROKER_DEFAULT:
        return [name]
    cluster = metadata(admin, settings)
    known = sorted(cluster.topics) if entity_type == "topics" else [str(b) for b in sorted(cluster.brokers)]
    if name is None:
        return known + [BROKER_DEFAULT] if entity_type == "brokers" else known
    if name not in known:
        raise EntityNotFoundError(f"{entity_type[:-1].capitalize()} '{name}' does not exist")
    return [name]


def _describe(settings: ClientSettings, entity_type: str, name: str | None) -> list[ResourceConfigs]:
    admin = admin_client(settings)
    return resource_configs(admin, settings, entity_type, _entity_names(admin, settings, entity_type, name))


async def describe_configs(settings: ClientSettings, entity_type: str,
                           name: str | None = None) -> list[ResourceConfigs]:
    """Configs of one topic or broker (``BROKER_DEFAULT``: the cluster-wide broker default), or of
    all of them (``None``; for brokers, the default too)."""
    return await in_thread(_describe, settings, entity_type, name)


def _alter(settings: ClientSettings, entity_type: str, name: str, to_set: Mapping[str, str],
           to_delete: Sequence[str]) -> None:
    from confluent_kafka.admin import AlterConfigOpType, ConfigResource
    from confluent_kafka.admin import ConfigEntry as KafkaConfigEntry

    if entity_type == "brokers" and name == BROKER_DEFAULT:
        from pykafka_ops.client.config_requests import alter_broker_default

        alter_broker_default(settings, to_set, to_delete)
        return
    admin = admin_client(settings)
    _entity_names(admin, settings, entity_type, name)
    ops = [KafkaConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in to_set.items()]
    ops += [KafkaConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in to_delete]
    resource = ConfigResource(_resource_type(entity_type), name, incremental_configs=ops)
    future = admin.incremental_alter_configs([resource], request_timeout=settings.timeout_s)[resource]
    result(future, settings, f"alter configs of {entity_type[:-1]} {name}")


async def alter_configs(settings: ClientSettings, entity_type: str, name: str, to_set: Mapping[str, str],
                        to_delete: Sequence[str] = ()) -> None:
    """Set ``to_set`` and remove the overrides in ``to_delete`` of one topic or broker (or of the
    cluster-wide broker default, ``BROKER_DEFAULT``)."""
    await in_thread(_alter, settings, entity_type, name, to_set, to_delete)
