"""ApiVersions (key 18), versions 0-4. Built from the handler registry, never typed by hand.

v0: the list of (api key, min, max). v1: + throttle_time_ms. v2: same. v3 (flexible): the client
sends its software name/version, checked against Kafka's pattern (INVALID_REQUEST otherwise);
supported/finalized features are empty (no KIP-890 transaction.version, protocol.md §1c). v4
(Kafka 4.0, KAFKA-17011): the same fields; it only lets a supported feature's minimum be 0, and
we list no features — Java 4.x clients send it first, and are answered without a retry.
An unknown version is answered in v0 by the connection (KIP-511).
"""

from __future__ import annotations

import re
from typing import Any

from cluster.handlers import BROKER, CONTROLLER, REGISTRY, handles
from cluster.network.request import RequestContext
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

_SOFTWARE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$")


def api_version_entries(listener: str = BROKER) -> list[dict[str, int]]:
    """(api_key, min_version, max_version) of every handler of ``listener``, by key."""
    return [{"api_key": h.api_key, "min_version": h.min_version, "max_version": h.max_version}
            for h in sorted(REGISTRY[listener].values(), key=lambda h: h.api_key)]


@handles(ApiKey.API_VERSIONS, versions=(0, 4), listeners=(BROKER, CONTROLLER))
def handle_api_versions(ctx: RequestContext, request: Any) -> dict[str, Any]:
    """Answer the version ranges of the listener the request came in on."""
    entries = api_version_entries(ctx.listener)
    if ctx.api_version >= 3:
        for value in (request.client_software_name, request.client_software_version):
            if not _SOFTWARE.match(value):
                return {"error_code": ErrorCode.invalid_request, "api_keys": entries}
    return {"error_code": ErrorCode.none, "api_keys": entries, "throttle_time": 0,
            "finalized_features_epoch": -1}
