"""AlterConfigs (key 33), versions 0-2: the legacy, non-incremental call.

v0: replace a resource's overrides. v1: same as v0. v2: flexible. As in Kafka, the given
configs become the topic's whole set of overrides: names not given lose their override. TOPIC
resources only; BROKER resources are refused (no dynamic broker configs yet). validate_only is
supported. ``alter_resources`` is shared with IncrementalAlterConfigs. Both are forwarded to the
active controller from any other broker (``forwarding``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cluster.handlers import BROKER as BROKER_LISTENER
from cluster.handlers import CONTROLLER, handles
from cluster.handlers.forwarding import forwarded
from cluster.network.request import RequestContext
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

TOPIC, BROKER = 2, 4


def _resource_result(resource: Any, error: ErrorCode = ErrorCode.none, message: str | None = None) -> dict[str, Any]:
    """One entry of the response's ``responses`` array."""
    return {"error_code": error, "error_message": message, "resource_type": resource.resource_type,
            "resource_name": resource.resource_name}


def error_response(request: Any, code: ErrorCode, message: str) -> dict[str, Any]:
    """Every resource answered ``code`` (no controller answered the forwarded request)."""
    return {"throttle_time": 0, "responses": [_resource_result(r, code, message) for r in request.resources]}


def _duplicate_name(resource: Any) -> str | None:
    """The first config name given twice for ``resource`` (Kafka refuses such a request)."""
    seen: set[str] = set()
    for config in resource.configs:
        if config.name in seen:
            return config.name
        seen.add(config.name)
    return None


def _unsupported(resource: Any) -> dict[str, Any] | None:
    """The answer for a resource we cannot alter, or None for a topic with distinct names."""
    if resource.resource_type == BROKER:
        return _resource_result(resource, ErrorCode.invalid_request, "dynamic broker configs are not supported yet")
    if resource.resource_type != TOPIC:
        return _resource_result(resource, ErrorCode.invalid_request,
                               f"resource type {resource.resource_type} is not supported")
    duplicate = _duplicate_name(resource)
    if duplicate is not None:
        return _resource_result(resource, ErrorCode.invalid_request, f"config {duplicate!r} is given twice")
    return None


class Refused(Exception):
    """A resource answered with an error code before reaching the controller."""

    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error


ChangesFn = Callable[[RequestContext, Any], Mapping[str, Any | None]]


async def alter_resources(ctx: RequestContext, request: Any, changes_of: ChangesFn) -> dict[str, Any]:
    """The response body: each topic resource's ``changes_of(ctx, resource)`` (None deletes an
    override) applied by the controller; refused resources get their error code."""
    responses = []
    for resource in request.resources:
        refused = _unsupported(resource)
        if refused is not None:
            responses.append(refused)
            continue
        try:
            changes = changes_of(ctx, resource)
        except Refused as exc:
            responses.append(_resource_result(resource, exc.error, str(exc)))
            continue
        result = await ctx.broker.controller.alter_configs(resource.resource_name, changes, request.validate_only)
        responses.append(_resource_result(resource, result.error_code, result.error_message))
    return {"throttle_time": 0, "responses": responses}


def _replacement(ctx: RequestContext, resource: Any) -> dict[str, Any]:
    topic = ctx.broker.image.topics.get(resource.resource_name)
    changes: dict[str, Any] = {name: None for name in (topic.config if topic is not None else {})}
    changes.update({c.name: c.value for c in resource.configs})
    return changes


@handles(ApiKey.ALTER_CONFIGS, versions=(0, 2), listeners=(BROKER_LISTENER, CONTROLLER))
@forwarded(error_response)
async def handle_alter_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Replace the overrides of each topic resource."""
    return await alter_resources(ctx, request, _replacement)
