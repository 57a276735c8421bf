"""`pko cluster info` (kcat -L): brokers, controller, topics, partitions, leaders, replicas, ISR.

Piped, kcat -L's own layout (``Metadata for all topics (from broker 1: host:port/1):`` …);
``--output json`` kcat -L -J's schema (``originating_broker``, ``query``, ``controllerid``,
``brokers``, ``topics[].partitions[]`` with ``replicas``/``isrs`` as ``{"id": n}``) plus
``cluster_id``. Registered on the ``cluster`` group by ``commands/cluster.py``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands._exit import handle_errors
from commands._options import BootstrapOption, CommandConfigOption, OutputOption, TimeoutOption
from commands._render import Table, render

if TYPE_CHECKING:
    from pykafka_ops.models.topics import ClusterInfo


def _text(info: ClusterInfo, topic: str | None) -> str:
    lines = [f"Metadata for {topic or 'all topics'} (from broker {info.originating_broker_id}: "
             f"{info.originating_broker}):", f" {len(info.brokers)} brokers:"]
    lines += [f"  broker {b.id} at {b.host}:{b.port}{' (controller)' if b.id == info.controller_id else ''}"
              for b in info.brokers]
    lines.append(f" {len(info.topics)} topics:")
    for t in info.topics:
        lines.append(f'  topic "{t.name}" with {len(t.partitions)} partitions:' + (f" {t.error}" if t.error else ""))
        lines += [f"    partition {p.partition}, leader {-1 if p.leader is None else p.leader}, "
                  f"replicas: {','.join(map(str, p.replicas))}, isrs: {','.join(map(str, p.isr))}"
                  for p in t.partitions]
    return "\n".join(lines)


def _payload(info: ClusterInfo, topic: str | None) -> dict[str, Any]:
    return {
        "originating_broker": {"id": info.originating_broker_id, "name": info.originating_broker},
        "query": {"topic": topic or "*"}, "cluster_id": info.cluster_id, "controllerid": info.controller_id,
        "brokers": [{"id": b.id, "name": f"{b.host}:{b.port}"} for b in info.brokers],
        "topics": [{"topic": t.name, **({"error": t.error} if t.error else {}),
                    "partitions": [{"partition": p.partition, "leader": -1 if p.leader is None else p.leader,
                                    "replicas": [{"id": r} for r in p.replicas], "isrs": [{"id": r} for r in p.isr]}
                                   for p in t.partitions]} for t in info.topics],
    }


def _tables(info: ClusterInfo) -> list[Table]:
    brokers = Table(["BROKER", "HOST", "PORT", "CONTROLLER"],
                    [[b.id, b.host, b.port, b.id == info.controller_id] for b in info.brokers],
                    title=f"cluster {info.cluster_id}", numeric=frozenset({"BROKER", "PORT"}))
    partitions = Table(["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"],
                       [[t.name, p.partition, p.leader, ",".join(map(str, p.replicas)), ",".join(map(str, p.isr))]
                        for t in info.topics for p in t.partitions], numeric=frozenset({"PARTITION", "LEADER"}))
    return [brokers, partitions]


@handle_errors
def info(
    topic: Annotated[str | None, typer.Option("-t", "--topic", help="Only this topic.")] = None,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 10000,
    output: OutputOption = None,
) -> None:
    """Brokers, controller, topics, partitions, leaders, replicas and ISR of any cluster (kcat -L)."""
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.services.topics import cluster_info

    described = asyncio.run(cluster_info(client_settings(bootstrap_server, command_config, timeout), topic))
    render(output, _tables(described), _payload(described, topic), text=lambda: _text(described, topic))
