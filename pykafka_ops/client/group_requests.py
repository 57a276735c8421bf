"""Group requests confluent-kafka has no call for, sent with our codec over ``WireClient``.

OffsetDelete (key 47, KIP-496): find the group coordinator with FindCoordinator (key 10) on a
bootstrap server, then ask the coordinator. Blocking; ``client.admin`` runs it in a thread.
Plaintext listeners only (``WireClient`` speaks neither TLS nor SASL).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from pykafka_ops.client.admin import ERROR_MESSAGES
from pykafka_ops.client.wire import WireClient, WireError, bootstrap_addresses
from pykafka_ops.errors import error_name
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey

_RETRIABLE = {"COORDINATOR_NOT_AVAILABLE", "COORDINATOR_LOAD_IN_PROGRESS", "NOT_COORDINATOR"}


class GroupRequestError(Exception):
    """A top-level Kafka error (``code`` is Kafka's constant) or an unsupported broker."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _max_version(client: WireClient, api_key: int) -> int:
    """The highest version of ``api_key`` both the broker and our codec speak (ApiVersions v0)."""
    response = client.request(ApiKey.API_VERSIONS, 0, {})
    ours = codec.known_versions(api_key)
    for entry in response.api_keys:
        if entry.api_key == api_key and ours and entry.min_version <= ours[1]:
            return min(entry.max_version, ours[1])
    raise GroupRequestError(
        "UNSUPPORTED_VERSION",
        f"the broker at {client.address} does not support {ApiKey(api_key).name} (key {int(api_key)})")


def _find_coordinator(client: WireClient, group_id: str) -> tuple[str, int]:
    version = _max_version(client, ApiKey.FIND_COORDINATOR)
    if version >= 4:  # KIP-699: batched keys
        response = client.request(ApiKey.FIND_COORDINATOR, version, {"key_type": 0, "coordinator_keys": [group_id]})
        answer = response.coordinators[0]
    else:
        answer = client.request(ApiKey.FIND_COORDINATOR, version, {"key": group_id, "key_type": 0})
    code = error_name(answer.error_code)
    if code != "NONE":
        raise GroupRequestError(code, ERROR_MESSAGES.get(code, code))
    return answer.host, answer.port


def offset_delete(bootstrap_servers: str, timeout_s: float, group_id: str,
                  partitions: Iterable[tuple[str, int]]) -> tuple[str, dict[tuple[str, int], str]]:
    """Delete committed offsets of ``partitions`` for ``group_id``.

    Returns Kafka's top-level error constant (``"NONE"`` on success) and one constant per
    (topic, partition). Retriable coordinator errors are retried until ``timeout_s`` passes.
    """
    topics: dict[str, list[int]] = {}
    for topic, partition in partitions:
        topics.setdefault(topic, []).append(partition)
    body = {"group_id": group_id, "topics": [{"name": t, "partitions": [{"partition_index": p} for p in ps]}
                                             for t, ps in topics.items()]}
    deadline = time.monotonic() + timeout_s
    last_error: Exception = GroupRequestError("COORDINATOR_NOT_AVAILABLE", "no bootstrap server answered")
    while time.monotonic() < deadline:
        for host, port in bootstrap_addresses(bootstrap_servers):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                with WireClient(host, port, remaining) as bootstrap:
                    coordinator = _find_coordinator(bootstrap, group_id)
                with WireClient(*coordinator, remaining) as client:
                    version = _max_version(client, ApiKey.OFFSET_DELETE)
                    response = client.request(ApiKey.OFFSET_DELETE, version, body)
            except WireError as exc:
                last_error = exc
                continue
            except GroupRequestError as exc:
                if exc.code not in _RETRIABLE:
                    raise
                last_error = exc
                continue
            code = error_name(response.error_code)
            if code in _RETRIABLE:
                last_error = GroupRequestError(code, ERROR_MESSAGES[code])
                continue
            return code, {(t.name, p.partition_index): error_name(p.error_code)
                          for t in response.topics for p in t.partitions}
        time.sleep(0.05)  # back off before asking for the coordinator again
    raise last_error
