"""DescribeConfigs (key 32), versions 1-4.

Resources: TOPIC (2) — every topic setting we implement with its effective value and source
(DYNAMIC_TOPIC_CONFIG for an override, STATIC_BROKER_CONFIG when the cluster YAML changed the
broker default, else DEFAULT_CONFIG), synonyms when asked; BROKER (4) — this node's settings,
read-only (no dynamic broker configs yet). v3: config types and documentation. v4: flexible.
"""

from __future__ import annotations

from typing import Any

from cluster.controller.metadata_image import TopicImage
from cluster.handlers import handles
from cluster.network.request import RequestContext
from pykafka_ops.config.settings import (
    BROKER_SETTINGS,
    TOPIC_DEFAULT_FROM_BROKER,
    TOPIC_SETTINGS,
    Setting,
)
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

TOPIC, BROKER = 2, 4
# ConfigSource values of DescribeConfigsResponse.json
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5
# ConfigType values (v3+)
_CONFIG_TYPE = {bool: 1, str: 2, int: 5}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _entry(setting: Setting, value: Any, source: int, read_only: bool,
           synonyms: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": setting.name, "value": _text(value), "read_only": read_only, "config_source": source,
            "is_sensitive": False, "synonyms": synonyms, "config_type": _CONFIG_TYPE.get(setting.type, 0),
            "documentation": setting.doc}


def _broker_source(name: str, value: Any) -> int:
    return DEFAULT_CONFIG if BROKER_SETTINGS[name].default == value else STATIC_BROKER_CONFIG


def topic_config_entries(ctx: RequestContext, topic: TopicImage) -> list[dict[str, Any]]:
    """Every topic setting of ``topic`` with value, source and synonyms (override, then broker)."""
    effective = ctx.broker.replica_manager.effective_topic_config(topic)
    entries = []
    for name, setting in TOPIC_SETTINGS.items():
        synonyms = []
        if name in topic.config:
            synonyms.append({"name": name, "value": _text(topic.config[name]), "source": DYNAMIC_TOPIC_CONFIG})
        broker_name = TOPIC_DEFAULT_FROM_BROKER.get(name)
        if broker_name is not None:
            broker_value = ctx.broker.config[broker_name]
            synonyms.append({"name": broker_name, "value": _text(broker_value),
                             "source": _broker_source(broker_name, broker_value)})
        source = synonyms[0]["source"] if synonyms else DEFAULT_CONFIG
        entries.append(_entry(setting, effective[name], source, False, synonyms))
    return entries


def _broker_entries(ctx: RequestContext) -> list[dict[str, Any]]:
    return [_entry(s, ctx.broker.config[name], _broker_source(name, ctx.broker.config[name]), True, [])
            for name, s in BROKER_SETTINGS.items()]


@handles(ApiKey.DESCRIBE_CONFIGS, versions=(1, 4))
def handle_describe_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Describe topic and broker configs."""
    results = []
    for resource in request.resources:
        error, message, entries = ErrorCode.none, None, []
        if resource.resource_type == TOPIC:
            topic = ctx.broker.image.topics.get(resource.resource_name)
            if topic is None:
                error, message = ErrorCode.unknown_topic_or_partition, f"topic {resource.resource_name!r} does not exist"
            else:
                entries = topic_config_entries(ctx, topic)
        elif resource.resource_type == BROKER:
            if resource.resource_name not in ("", str(ctx.broker.node_id)):
                error, message = ErrorCode.invalid_request, f"this is broker {ctx.broker.node_id}"
            else:
                entries = _broker_entries(ctx)
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
