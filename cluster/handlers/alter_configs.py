"""AlterConfigs (key 33), versions 0-2: the legacy, non-incremental call.

v0: replace a resource's overrides. v1: same as v0. v2: flexible. As in Kafka, the given
configs become the resource's whole set of overrides: names not given lose their override.
TOPIC resources (per-topic overrides) and BROKER resources (dynamic broker configs of one broker,
or of the cluster-wide default for the empty name; ``cluster.controller.broker_configs``).
validate_only is supported. ``alter_resources`` is shared with IncrementalAlterConfigs. Both are
forwarded to the active controller from any other broker (``forwarding``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cluster.handlers import BROKER as BROKER_LISTENER
from cluster.handlers import CONTROLLER, handles
from cluster.handlers.forwarding import forwarded
from cluster.network.request import RequestContext
from cluster.security.acls import AclOperation, ResourceType
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
    """The answer for a resource we cannot alter, or None for a topic or broker with distinct names."""
    if resource.resource_type not in (TOPIC, BROKER):
        return _resource_result(resource, ErrorCode.invalid_request,
                               f"resource type {resource.resource_type} is not supported")
    duplicate = _duplicate_name(resource)
    if duplicate is not None:
        return _resource_result(resource, ErrorCode.invalid_request, f"config {duplicate!r} is given twice")
    return None


def config_authorization_error(ctx: RequestContext, resource: Any, operation: AclOperation) -> ErrorCode | None:
    """The error for a principal not allowed ``operation`` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on
    the resource: on the topic for a TOPIC resource, on the cluster for a BROKER one (Kafka's
    ``AuthHelper``/``ConfigAdminManager``); None when allowed."""
    if resource.resource_type == TOPIC:
        allowed = ctx.authorized(operation, ResourceType.TOPIC, resource.resource_name)
        return None if allowed else ErrorCode.topic_authorization_failed
    if resource.resource_type == BROKER:
        return None if ctx.authorized_on_cluster(operation) else ErrorCode.cluster_authorization_failed
    return None


class Refused(Exception):
    """A resource answered with an error code before reaching the controller."""

    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error


ChangesFn = Callable[[RequestContext, Any], Mapping[str, Any | None]]


async def alter_resources(ctx: RequestContext, request: Any, changes_of: ChangesFn) -> dict[str, Any]:
    """The response body: each resource's ``changes_of(ctx, resource)`` (None deletes an
    override) applied by the controller; refused resources get their error code."""
    responses = []
    for resource in request.resources:
        refused = _unsupported(resource)
        if refused is not None:
            responses.append(refused)
            continue
        denied = config_authorization_error(ctx, resource, AclOperation.ALTER_CONFIGS)
        if denied is not None:
            responses.append(_resource_result(resource, denied))
            continue
        try:
            changes = changes_of(ctx, resource)
        except Refused as exc:
            responses.append(_resource_result(resource, exc.error, str(exc)))
            continue
        if resource.resource_type == BROKER:
            alter = ctx.broker.controller.alter_broker_configs
        else:
            alter = ctx.broker.controller.alter_configs
        result = await alter(resource.resource_name, changes, request.validate_only)
        responses.append(_resource_result(resource, result.error_code, result.error_message))
    return {"throttle_time": 0, "responses": responses}


def current_overrides(ctx: RequestContext, resource: Any) -> Mapping[str, Any]:
    """The overrides a resource has now: a topic's own configs, or a broker's dynamic configs
    (the cluster-wide default's for the empty name)."""
    image = ctx.broker.image
    if resource.resource_type == BROKER:
        name = resource.resource_name
        if not name:
            return image.broker_configs
        return image.broker_node_configs.get(int(name), {}) if name.isascii() and name.isdigit() else {}
    topic = image.topics.get(resource.resource_name)
    return topic.config if topic is not None else {}


def _replacement(ctx: RequestContext, resource: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {name: None for name in current_overrides(ctx, resource)}
    changes.update({c.name: c.value for c in resource.configs})
    return changes


@handles(ApiKey.ALTER_CONFIGS, versions=(0, 2), listeners=(BROKER_LISTENER, CONTROLLER))
@forwarded(error_response)
async def handle_alter_configs(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Replace the overrides of each topic or broker resource."""
    return await alter_resources(ctx, request, _replacement)
