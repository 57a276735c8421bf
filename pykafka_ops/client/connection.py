"""Where a command connects, and with which client settings.

Bootstrap servers come from ``--bootstrap-server``, else ``$PKO_BOOTSTRAP``, else the default
local cluster when it is running (from its state file), else a usage error that says so.
``ClientSettings.librdkafka()`` gives confluent-kafka configs with librdkafka's own logging
silenced: failures reach the user as one-line errors naming the bootstrap server instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_BOOTSTRAP = "PKO_BOOTSTRAP"
_SILENT = logging.getLogger("pko.librdkafka")
_SILENT.addHandler(logging.NullHandler())
_SILENT.propagate = False


class BootstrapNotFoundError(ValueError):
    """No bootstrap server was given and none could be found (a usage error)."""


class ClusterUnreachableError(ConnectionError):
    """The cluster did not answer; the message names the bootstrap servers."""


@dataclass(frozen=True)
class ClientSettings:
    """Bootstrap servers, extra client properties (librdkafka names) and the request timeout."""

    bootstrap_servers: str
    properties: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 5.0

    def librdkafka(self, **extra: Any) -> dict[str, Any]:
        """A confluent-kafka config: properties, then the bootstrap servers (the flag wins over a
        ``bootstrap.servers`` line in ``--command-config``, as in Kafka's tools), then ``extra``
        (dots may be written as underscores)."""
        config: dict[str, Any] = {"client.id": "pko", **self.properties,
                                  "bootstrap.servers": self.bootstrap_servers, "logger": _SILENT}
        config.update({k.replace("_", "."): v for k, v in extra.items()})
        return config

    def any_server_accepts(self) -> bool:
        """Whether a TCP connection to any bootstrap server succeeds within min(1 s, timeout): tells
        "down" (refused, no route) from "slow" before a client waits out its whole timeout."""
        import socket

        for server in self.bootstrap_servers.split(","):
            host, _, port = server.strip().rpartition(":")
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=min(1.0, self.timeout_s)).close()
                return True
            except (OSError, ValueError):
                continue
        return False

    def unreachable(self, reason: object) -> ClusterUnreachableError:
        """The error for a cluster that did not answer within the timeout."""
        return ClusterUnreachableError(
            f"cannot reach the Kafka cluster at {self.bootstrap_servers} within {self.timeout_s:g} s ({reason})")


def local_cluster_bootstrap(cluster_config: Path | None = None) -> str | None:
    """Bootstrap servers of a cluster started by `pko cluster up` if its nodes are running: the
    cluster of ``cluster_config`` (a cluster YAML), else the built-in default cluster."""
    import psutil

    from pykafka_ops.config.cluster import load, load_default
    from pykafka_ops.state import StateFileError, read_state

    config = load(cluster_config) if cluster_config is not None else load_default()
    try:
        state = read_state(config.state_file)
    except StateFileError:
        return None
    if state is None or not any(psutil.pid_exists(n.pid) for n in state.nodes.values()):
        return None
    return state.bootstrap_servers


def resolve_bootstrap(explicit: str | None, cluster_config: Path | None = None) -> str:
    """``explicit`` (flag or ``$PKO_BOOTSTRAP``, which Typer fills in), else the running local
    cluster: the one of ``cluster_config`` when given, else the default cluster."""
    if explicit:
        return explicit
    found = local_cluster_bootstrap(cluster_config)
    if found:
        return found
    if cluster_config is not None:
        raise BootstrapNotFoundError(
            f"no --bootstrap-server given, ${ENV_BOOTSTRAP} is not set, and the cluster of {cluster_config} "
            f"is not running (start it with `pko cluster up -c {cluster_config}`)")
    raise BootstrapNotFoundError(
        f"no --bootstrap-server given, ${ENV_BOOTSTRAP} is not set, and the default local cluster "
        "is not running (start it with `pko cluster up`)")


def client_settings(bootstrap: str | None, command_config: Path | None, timeout_ms: int,
                    cluster_config: Path | None = None) -> ClientSettings:
    """Settings for a command from its connection options (``cluster_config``: a cluster YAML
    whose running cluster to use when no bootstrap server is given)."""
    from pykafka_ops.config.client import load_client_properties

    properties = load_client_properties(command_config) if command_config else {}
    return ClientSettings(resolve_bootstrap(bootstrap, cluster_config), properties, timeout_ms / 1000)
