"""DescribeConfigs (key 32), versions 1-4.

Resources: TOPIC (2) — every topic setting we implement with its effective value and source
(DYNAMIC_TOPIC_CONFIG for an override, the source of the broker setting it defaults from, else
DEFAULT_CONFIG), synonyms when asked; BROKER (4) named by this node's id — the node's identity and
listener settings (read-only, as the cluster file sets them) and every broker setting, with
Kafka's sources (DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG,
DEFAULT_CONFIG) and synonyms, read-only unless dynamic (``cluster.controller.broker_configs``);
BROKER with the empty name — the cluster-wide dynamic defaults only, as Kafka's ``ConfigHelper``;
another broker id is INVALID_REQUEST (clients ask each broker for itself). v3: config types and
documentation. v4: flexible.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cluster.controller.broker_configs import (
    DEFAULT_CONFIG,
    DYNAMIC_BROKER_CONFIGS,
    DYNAMIC_DEFAULT_BROKER_CONFIG,
    STATIC_BROKER_CONFIG,
    DynamicBrokerConfig,
    identity_configs,
)
from cluster.controller.metadata_image import TopicImage
from cluster.handlers import handles
from cluster.handlers.alter_configs import config_authorization_error
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation
from pykafka_ops.config.settings import (
    BROKER_SETTINGS,
    INT32_SETTINGS,
    TOPIC_DEFAULT_FROM_BROKER,
    TOPIC_SETTINGS,
    Setting,
)
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

TOPIC, BROKER = 2, 4
DYNAMIC_TOPIC_CONFIG = 1  # ConfigSource of DescribeConfigsResponse.json (the others: broker_configs)
# ConfigType values (v3+): BOOLEAN, STRING, INT, LONG, LIST
BOOLEAN, STRING, INT, LONG, LIST = 1, 2, 3, 5, 7
#: Topic setting → the broker setting (and its synonyms) it defaults from (Kafka's ``ServerTopicConfigSynonyms``).
_TOPIC_SYNONYMS = {**TOPIC_DEFAULT_FROM_BROKER, "retention.ms": "log.retention.ms", "segment.ms": "log.roll.ms",
                   "flush.ms": "log.flush.interval.ms"}
#: Settings of Kafka type LIST that we implement.
_LIST_SETTINGS = frozenset({"cleanup.policy", "log.cleanup.policy", "leader.replication.throttled.replicas",
                            "follower.replication.throttled.replicas"})


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _config_type(setting: Setting) -> int:
    if setting.name in _LIST_SETTINGS:
        return LIST
    if setting.type is int:
        return INT if setting.name in INT32_SETTINGS else LONG
    return BOOLEAN if setting.type is bool else STRING


def _entry(setting: Setting, value: Any, source: int, read_only: bool,
           synonyms: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": setting.name, "value": _text(value), "read_only": read_only, "config_source": source,
            "is_sensitive": False, "synonyms": synonyms, "config_type": _config_type(setting),
            "documentation": setting.doc}


def _synonyms(config: DynamicBrokerConfig, name: str, per_broker: bool = True) -> list[dict[str, Any]]:
    return [{"name": n, "value": _text(v), "source": source} for n, v, source in config.sources(name, per_broker)]


def topic_config_entries(ctx: RequestContext, topic: TopicImage) -> list[dict[str, Any]]:
    """Every topic setting of ``topic`` with value, source and synonyms (override, then broker)."""
    effective = ctx.broker.replica_manager.effective_topic_config(topic)
    entries = []
    for name, setting in TOPIC_SETTINGS.items():
        synonyms = []
        if name in topic.config:
            synonyms.append({"name": name, "value": _text(topic.config[name]), "source": DYNAMIC_TOPIC_CONFIG})
        broker_name = _TOPIC_SYNONYMS.get(name)
        if broker_name is not None:
            synonyms += _synonyms(ctx.broker.config, broker_name)
        source = synonyms[0]["source"] if synonyms else DEFAULT_CONFIG
        entries.append(_entry(setting, effective[name], source, False, synonyms))
    return entries


def _broker_entries(ctx: RequestContext) -> list[dict[str, Any]]:
    """This broker's settings (Kafka's ``createBrokerConfigEntry`` with ``perBrokerConfig``)."""
    identity = Setting("", str, None, "")
    entries = [_entry(replace(identity, name=name), value, STATIC_BROKER_CONFIG, True,
                      [{"name": name, "value": value, "source": STATIC_BROKER_CONFIG}])
               for name, value in identity_configs(ctx.broker.cluster, ctx.broker.node_id).items()]
    config = ctx.broker.config
    for name, setting in BROKER_SETTINGS.items():
        synonyms = _synonyms(config, name)
        entries.append(_entry(setting, config[name], synonyms[0]["source"] if synonyms else DEFAULT_CONFIG,
                              name not in DYNAMIC_BROKER_CONFIGS, synonyms))
    return entries


def _default_broker_entries(ctx: RequestContext) -> list[dict[str, Any]]:
    """The cluster-wide dynamic defaults (the empty broker name, ``--entity-default``)."""
    defaults = ctx.broker.image.broker_configs
    return [_entry(setting, defaults[name], DYNAMIC_DEFAULT_BROKER_CONFIG, False,
                   _synonyms(ctx.broker.config, name, per_broker=False))
            for name, setting in BROKER_SETTINGS.items() if name in defaults]


@handles(ApiKey.DESCRIBE_CONFIGS, versions=(1, 4))
def handle_describe_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Describe topic and broker configs."""
    results = []
    for resource in request.resources:
        error, message, entries = ErrorCode.none, None, []
        denied = config_authorization_error(ctx, resource, AclOperation.DESCRIBE_CONFIGS)
        if denied is not None:
            error = denied
        elif resource.resource_type == TOPIC:
            topic = ctx.broker.image.topics.get(resource.resource_name)
            if topic is None:
                error = ErrorCode.unknown_topic_or_partition
                message = f"topic {resource.resource_name!r} does not exist"
            else:
                entries = topic_config_entries(ctx, topic)
        elif resource.resource_type == BROKER:
            if resource.resource_name == "":
                entries = _default_broker_entries(ctx)
            elif resource.resource_name == str(ctx.broker.node_id):
                entries = _broker_entries(ctx)
            else:
                error, message = ErrorCode.invalid_request, (f"Unexpected broker id, expected {ctx.broker.node_id} or "
                                                             f"empty string, but received {resource.resource_name}")
        else:
            error, message = ErrorCode.invalid_request, f"resource type {resource.resource_type} is not supported"
        keys = resource.configuration_keys
        if keys is not None:
            entries = [e for e in entries if e["name"] in keys]
        if not getattr(request, "include_synonyms", False):
            for e in entries:
                e["synonyms"] = []
        results.append({"error_code": error, "error_message": message, "resource_type": resource.resource_type,
                        "resource_name": resource.resource_name, "configs": entries})
    return {"throttle_time": 0, "results": results}
