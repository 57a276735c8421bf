"""ListConfigResources (key 74), versions 0-1: the config resources a client may describe.

v0 is Kafka 3.7's ListClientMetricsResources (KIP-714): client-metrics resources only — pko has
none, so the list is empty. v1 (Kafka 4.1, KIP-1142) takes ``resource_types`` (empty = every
supported type) and answers, as Kafka's ``KafkaApis.handleListConfigResources``: TOPIC (2) every
topic, BROKER (4) and BROKER_LOGGER (8) every live broker, CLIENT_METRICS (16) none, GROUP (32)
the groups with dynamic group configs (Kafka's ``GroupConfigManager.groupIds``: pko has no group
configs, so none). A type outside these is UNSUPPORTED_VERSION for the whole request.
"""

from __future__ import annotations

from typing import Any

from cluster.handlers import handles
from cluster.network.request import RequestContext
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP = 2, 4, 8, 16, 32
#: ``ListConfigResourcesRequest.supportedResourceTypes`` by version.
SUPPORTED_TYPES = {0: (CLIENT_METRICS,), 1: (GROUP, CLIENT_METRICS, BROKER_LOGGER, BROKER, TOPIC)}


def _resources(ctx: RequestContext, resource_type: int) -> list[dict[str, Any]]:
    image = ctx.broker.image
    if resource_type == TOPIC:
        names = sorted(image.topics)
    elif resource_type in (BROKER, BROKER_LOGGER):
        names = [str(b.broker_id) for b in image.live_brokers]
    else:  # CLIENT_METRICS, GROUP: pko has no such configs
        names = []
    return [{"resource_name": name, "resource_type": resource_type} for name in names]


@handles(ApiKey.LIST_CONFIG_RESOURCES, versions=(0, 1))
def handle_list_config_resources(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """List config resources of the asked types."""
    supported = SUPPORTED_TYPES[ctx.api_version]
    asked = getattr(request, "resource_types", ()) or supported
    if any(t not in supported for t in asked):
        return {"throttle_time": 0, "error_code": ErrorCode.unsupported_version, "config_resources": []}
    return {"throttle_time": 0, "error_code": ErrorCode.none,
            "config_resources": [r for t in supported if t in asked for r in _resources(ctx, t)]}
