"""IncrementalAlterConfigs (key 44), versions 0-1.

v0: per config an operation — SET (0), DELETE (1), APPEND (2), SUBTRACT (3). v1: flexible.
TOPIC resources and BROKER resources (dynamic broker configs of one broker id, or of the
cluster-wide default for the empty name); each resource's changes are validated together and
committed by the controller, all or none; validate_only is supported. APPEND/SUBTRACT apply to
LIST configs only (of ours: ``cleanup.policy``, ``log.cleanup.policy``), on the current value —
the override, else the effective value — as Kafka's `ConfigAdminManager` does; on another
config they are INVALID_CONFIG, as in Kafka.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cluster.handlers import BROKER, CONTROLLER, handles
from cluster.handlers.alter_configs import BROKER as BROKER_RESOURCE
from cluster.handlers.alter_configs import Refused, alter_resources, current_overrides, error_response
from cluster.handlers.forwarding import forwarded
from cluster.network.request import RequestContext
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
#: Configs of type LIST in Kafka's `LogConfig` / `KafkaConfig` that we implement.
LIST_CONFIGS = frozenset({"cleanup.policy", "log.cleanup.policy"})


def _list_operation(operation: int, current: Any, value: str | None, name: str) -> str:
    if name not in LIST_CONFIGS:
        verb = "append" if operation == APPEND else "subtract"
        raise Refused(ErrorCode.invalid_config, f"config value {verb} is not allowed for {name!r}: it is not a list")
    items = [v for v in str(current).split(",") if v] if current is not None else []
    given = [v for v in (value or "").split(",") if v]
    if operation == APPEND:
        items += [v for v in given if v not in items]
    else:
        items = [v for v in items if v not in given]
    return ",".join(items)


def _effective(ctx: RequestContext, resource: Any) -> Mapping[str, Any]:
    """What APPEND/SUBTRACT start from: the resource's overrides over this broker's values."""
    if resource.resource_type == BROKER_RESOURCE:
        return {**ctx.broker.cluster.broker, **ctx.broker.image.broker_configs, **current_overrides(ctx, resource)}
    topic = ctx.broker.image.topics.get(resource.resource_name)
    return ctx.broker.replica_manager.effective_topic_config(topic) if topic is not None else {}


def _changes(ctx: RequestContext, resource: Any) -> dict[str, Any]:
    effective = _effective(ctx, resource)
    changes: dict[str, Any] = {}
    for config in resource.configs:
        if config.config_operation == SET:
            changes[config.name] = config.value
        elif config.config_operation == DELETE:
            changes[config.name] = None
        elif config.config_operation in (APPEND, SUBTRACT):
            changes[config.name] = _list_operation(config.config_operation, effective.get(config.name),
                                                   config.value, config.name)
        else:
            raise Refused(ErrorCode.invalid_request, f"unknown config operation {config.config_operation}")
    return changes


@handles(ApiKey.INCREMENTAL_ALTER_CONFIGS, versions=(0, 1), listeners=(BROKER, CONTROLLER))
@forwarded(error_response)
async def handle_incremental_alter_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Apply each topic or broker resource's config operations."""
    return await alter_resources(ctx, request, _changes)
