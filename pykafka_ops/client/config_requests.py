"""Config requests for the cluster-wide broker default, sent with our codec over ``WireClient``.

librdkafka refuses a config resource without a name, which is how Kafka names the default of
every broker (kafka-configs' ``--entity-default``): DescribeConfigs (key 32) and
IncrementalAlterConfigs (key 44) for the BROKER resource ``""`` go to the first bootstrap server
that answers (``wire_admin``; any broker forwards the alteration to the active controller).
Blocking; the service layer runs them in a thread. Plaintext listeners only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.librdkafka import KafkaCallError
from pykafka_ops.client.wire_admin import send_admin_request
from pykafka_ops.errors import error_name
from pykafka_ops.protocol.api_keys import ApiKey

BROKER = 4
SET, DELETE = 0, 1


def _check(error_code: int, message: str | None, what: str) -> None:
    name = error_name(error_code)
    if name != "NONE":
        raise KafkaCallError(name, f"{what}: {name}: {message or name}")


def describe_broker_default(settings: ClientSettings) -> Sequence[Any]:
    """The cluster-wide dynamic broker configs (kio ``DescribeConfigsResourceResult`` entries)."""
    response = send_admin_request(settings, ApiKey.DESCRIBE_CONFIGS, {
        "resources": [{"resource_type": BROKER, "resource_name": "", "configuration_keys": None}],
        "include_synonyms": True, "include_documentation": False})
    (resource,) = response.results
    _check(resource.error_code, resource.error_message, "describe configs of the broker default")
    return resource.configs


def alter_broker_default(settings: ClientSettings, to_set: Mapping[str, str], to_delete: Sequence[str]) -> None:
    """Set ``to_set`` and remove ``to_delete`` of the cluster-wide dynamic broker configs."""
    configs = [{"name": k, "config_operation": SET, "value": v} for k, v in to_set.items()]
    configs += [{"name": k, "config_operation": DELETE, "value": None} for k in to_delete]
    response = send_admin_request(settings, ApiKey.INCREMENTAL_ALTER_CONFIGS, {
        "validate_only": False, "resources": [{"resource_type": BROKER, "resource_name": "", "configs": configs}]})
    (resource,) = response.responses
    _check(resource.error_code, resource.error_message, "alter configs of the broker default")
