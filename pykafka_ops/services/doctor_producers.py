"""The acks evidence of `pko doctor`: what our nodes' admin endpoints saw producers send.

Each node of a `pko cluster up` cluster with an ``admin_port`` answers ``GET /v1/produce-clients``
(``cluster/admin/``): per (client id, topic), the acks values of its Produce requests over the
last ``admin.produce.clients.window.ms`` and whether any carried a producer id (idempotence).
This module finds the endpoints from the cluster file and reads them; entries of several nodes
for one (client id, topic) are merged. Any other Kafka cluster has no such endpoint: there the
check is skipped.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from typing import Any

from pykafka_ops.config.cluster import ClusterConfig
from pykafka_ops.models.doctor import ProduceClient

PATH = "/v1/produce-clients"
#: Acks values from the weakest to the strongest (-1 = all).
_STRENGTH = {0: 0, 1: 1, -1: 2}


def admin_endpoints(config: ClusterConfig) -> list[str]:
    """``host:port`` of each broker's admin endpoint: on ``admin.bind.address``, or on the node's
    own address when that binds every interface."""
    bind = str(config.broker.get("admin.bind.address", "127.0.0.1"))
    return [f"{config.host_of(n.id) if bind in ('0.0.0.0', '::') else bind}:{n.admin_port}"
            for n in config.nodes if n.is_broker and n.admin_port is not None]


def clients_of(answers: Sequence[dict[str, Any]]) -> tuple[ProduceClient, ...]:
    """The (client id, topic) entries of several nodes' answers, merged: the weakest acks seen,
    idempotent only when every node saw it so."""
    merged: dict[tuple[str, str], ProduceClient] = {}
    for answer in answers:
        for c in answer.get("clients", ()):
            acks = min((int(a) for a in c.get("acks", {})), key=lambda a: _STRENGTH.get(a, 0), default=-1)
            key = (str(c["client_id"]), str(c["topic"]))
            seen = merged.get(key)
            if seen is not None:
                acks = min(acks, seen.acks, key=lambda a: _STRENGTH.get(a, 0))
            merged[key] = ProduceClient(key[0], key[1], acks, bool(c.get("idempotent"))
                                        and (seen is None or seen.idempotent))
    return tuple(merged[k] for k in sorted(merged))


def read_produce_clients(endpoints: Sequence[str], timeout_s: float) -> tuple[tuple[ProduceClient, ...] | None, list[str]]:
    """Every endpoint's answer merged (blocking), and what could not be read; None when no
    endpoint answered."""
    answers, errors = [], []
    for endpoint in endpoints:
        try:
            with urllib.request.urlopen(f"http://{endpoint}{PATH}", timeout=timeout_s) as response:
                answers.append(json.loads(response.read()))
        except (OSError, ValueError) as exc:
            errors.append(f"admin endpoint {endpoint}: {exc}")
    return (clients_of(answers) if answers else None), errors
