"""AlterConfigs (key 33), versions 0-2: the legacy, non-incremental call.

v0: replace a resource's overrides. v1: same as v0. v2: flexible. As in Kafka, the given
configs become the topic's whole set of overrides: names not given lose their override. TOPIC
resources only; BROKER resources are refused (no dynamic broker configs yet). validate_only is
supported. ``alter_topic`` is shared with IncrementalAlterConfigs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

TOPIC, BROKER = 2, 4


def resource_result(resource: Any, error: ErrorCode = ErrorCode.none, message: str | None = None) -> dict[str, Any]:
    """One entry of the response's ``responses`` array."""
    return {"error_code": error, "error_message": message, "resource_type": resource.resource_type,
            "resource_name": resource.resource_name}


def duplicate_names(resource: Any) -> str | None:
    """The first config name given twice for ``resource`` (Kafka refuses such a request)."""
    seen: set[str] = set()
    for config in resource.configs:
        if config.name in seen:
            return config.name
        seen.add(config.name)
    return None


def unsupported(resource: Any) -> dict[str, Any] | None:
    """The answer for a resource we cannot alter, or None for a topic with distinct names."""
    if resource.resource_type == BROKER:
        return resource_result(resource, ErrorCode.invalid_request, "dynamic broker configs are not supported yet")
    if resource.resource_type != TOPIC:
        return resource_result(resource, ErrorCode.invalid_request,
                               f"resource type {resource.resource_type} is not supported")
    duplicate = duplicate_names(resource)
    if duplicate is not None:
        return resource_result(resource, ErrorCode.invalid_request, f"config {duplicate!r} is given twice")
    return None


async def alter_topic(ctx: RequestContext, resource: Any, changes: Mapping[str, Any | None],
                      validate_only: bool) -> dict[str, Any]:
    """Apply ``changes`` (None deletes an override) to the topic named by ``resource``."""
    result = await ctx.broker.controller.alter_configs(resource.resource_name, changes, validate_only)
    return resource_result(resource, result.error_code, result.error_message)


@handles(ApiKey.ALTER_CONFIGS, versions=(0, 2))
async def handle_alter_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Replace the overrides of each topic resource."""
    responses = []
    for resource in request.resources:
        refused = unsupported(resource)
        if refused is not None:
            responses.append(refused)
            continue
        topic = ctx.broker.image.topics.get(resource.resource_name)
        current = topic.config if topic is not None else {}
        changes: dict[str, Any] = {name: None for name in current}
        changes.update({c.name: c.value for c in resource.configs})
        responses.append(await alter_topic(ctx, resource, changes, request.validate_only))
    return {"throttle_time": 0, "responses": responses}
