"""One admin request to a cluster with pko's own codec over ``WireClient``, for the calls
librdkafka cannot make (the cluster-wide broker config default) or cannot survive (a malformed
CreateAcls answer makes librdkafka 2.x abort the process; here it is a ``WireError``, one line).

Blocking; PLAINTEXT listeners only (``WireClient`` speaks neither TLS nor SASL).
"""

from __future__ import annotations

from typing import Any

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.librdkafka import KafkaCallError
from pykafka_ops.client.wire import WireClient, WireError, bootstrap_addresses
from pykafka_ops.protocol.api_keys import ApiKey


def send_admin_request(settings: ClientSettings, api_key: ApiKey, body: dict[str, Any],
                       max_version: int | None = None) -> Any:
    """``body`` sent to the first bootstrap server that answers, in the newest version both speak
    (at most ``max_version``); ``ClusterUnreachableError`` naming the servers when none answers."""
    failures = []
    for host, port in bootstrap_addresses(settings.bootstrap_servers):
        try:
            with WireClient(host, port, settings.timeout_s) as client:
                version = client.api_versions().get(int(api_key))
                if version is None:
                    raise KafkaCallError("UNSUPPORTED_VERSION",
                                         f"the broker at {client.address} does not support {api_key.name}")
                return client.request(api_key, version if max_version is None else min(version, max_version), body)
        except WireError as exc:
            failures.append(str(exc))
    raise settings.unreachable("; ".join(failures))
