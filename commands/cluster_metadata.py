"""`pko cluster metadata [--node N]` (in the spirit of kafka-metadata-shell): a node's committed metadata.

Rebuilt offline from the node's ``__cluster_metadata-0`` log in its data dir (read-only: it works
while the node runs and after it stopped). The text is one fact per line, sorted, and names
nothing node-specific, so two nodes compare with ``diff``::

    offset 12
    cluster.id q1Sh-9_ISia_zwGINzRvyQ
    next.producer.id 1000
    broker 1 host=127.0.0.1 port=9092 rack=- epoch=3 fenced=false
    topic orders id=Qm8rX3n2TXqkY0yBkNlxVQ internal=false partitions=2
    topic orders config retention.ms=86400000
    topic orders partition 0 leader=1 leaderEpoch=0 partitionEpoch=0 replicas=1 isr=1

``--output json|yaml`` gives the same facts with a stable schema, ``table`` Rich tables. Node ``N``
is a node of the cluster file (``-c``, else the built-in default cluster); without ``--node``, the
first node of the file. Registered on the ``cluster`` group by ``commands/cluster.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands._exit import USAGE, CliError, handle_errors
from commands._render import Output, Table, render

if TYPE_CHECKING:
    from cluster.controller.metadata_image import MetadataImage, TopicImage


def _topic_id(topic: TopicImage) -> str:
    from pykafka_ops.client.quorum_requests import kafka_uuid_text

    return kafka_uuid_text(topic.topic_id) or str(topic.topic_id)


def _ids(values: tuple[int, ...]) -> str:
    return ",".join(map(str, values))


def _text(image: MetadataImage) -> str:
    lines = [f"offset {image.offset}", f"cluster.id {image.cluster_id}", f"next.producer.id {image.next_producer_id}"]
    for broker in sorted(image.brokers.values(), key=lambda b: b.broker_id):
        lines.append(f"broker {broker.broker_id} host={broker.host} port={broker.port} rack={broker.rack or '-'} "
                     f"epoch={broker.epoch} fenced={str(broker.fenced).lower()}")
    lines += [f"broker.config {name}={value}" for name, value in sorted(image.broker_configs.items())]
    for name in sorted(image.topics):
        topic = image.topics[name]
        lines.append(f"topic {name} id={_topic_id(topic)} internal={str(topic.is_internal).lower()} "
                     f"partitions={len(topic.partitions)}")
        lines += [f"topic {name} config {key}={value}" for key, value in sorted(topic.config.items())]
        for number in sorted(topic.partitions):
            p = topic.partitions[number]
            lines.append(f"topic {name} partition {number} leader={p.leader} leaderEpoch={p.leader_epoch} "
                         f"partitionEpoch={p.partition_epoch} replicas={_ids(p.replicas)} isr={_ids(p.isr)}")
    return "\n".join(lines)


def _payload(image: MetadataImage) -> dict[str, Any]:
    return {
        "offset": image.offset, "cluster_id": image.cluster_id, "next_producer_id": image.next_producer_id,
        "brokers": [{"id": b.broker_id, "host": b.host, "port": b.port, "rack": b.rack, "epoch": b.epoch,
                     "fenced": b.fenced}
                    for b in sorted(image.brokers.values(), key=lambda b: b.broker_id)],
        "broker_configs": dict(sorted(image.broker_configs.items())),
        "topics": [{"name": name, "topic_id": _topic_id(t), "internal": t.is_internal,
                    "configs": dict(sorted(t.config.items())),
                    "partitions": [{"partition": n, "leader": p.leader, "leader_epoch": p.leader_epoch,
                                    "partition_epoch": p.partition_epoch, "replicas": list(p.replicas),
                                    "isr": list(p.isr)} for n, p in sorted(t.partitions.items())]}
                   for name, t in sorted(image.topics.items())],
    }


def _tables(image: MetadataImage) -> list[Table]:
    brokers = Table(["BROKER", "HOST", "PORT", "RACK", "EPOCH", "FENCED"],
                    [[b.broker_id, b.host, b.port, b.rack, b.epoch, b.fenced] for b in sorted(image.brokers.values(),
                                                                           key=lambda b: b.broker_id)],
                    title=f"cluster {image.cluster_id} at metadata offset {image.offset}",
                    numeric=frozenset({"BROKER", "PORT"}))
    partitions = Table(["TOPIC", "PARTITION", "LEADER", "LEADER-EPOCH", "PARTITION-EPOCH", "REPLICAS", "ISR"],
                       [[name, n, p.leader, p.leader_epoch, p.partition_epoch, _ids(p.replicas), _ids(p.isr)]
                        for name, t in sorted(image.topics.items()) for n, p in sorted(t.partitions.items())],
                       numeric=frozenset({"PARTITION", "LEADER", "LEADER-EPOCH", "PARTITION-EPOCH"}))
    return [brokers, partitions]


@handle_errors
def metadata(
    node: Annotated[int | None, typer.Option(
        "--node", help="Node id, as in the cluster file (default: the first).")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", dir_okay=False,
        help="Cluster YAML file (default: the built-in single-node cluster, data under $XDG_STATE_HOME/pko).")] = None,
    output: Annotated[Output | None, typer.Option(
        "--output", case_sensitive=False,
        help="text (the default, one fact per line for diff), table, json, yaml or csv.")] = None,
) -> None:
    """Print a node's committed metadata (offset, brokers, topics, partitions, configs), read offline."""
    from pykafka_ops.config.cluster import load
    from pykafka_ops.services.quorum import read_node_metadata

    cluster_config = load(config)
    ids = [n.id for n in cluster_config.nodes]
    if node is None:
        node = ids[0]
    elif node not in ids:
        raise CliError(f"--node: no node {node} in {cluster_config.source} (nodes: {', '.join(map(str, ids))})", USAGE)
    image = read_node_metadata(cluster_config, node).image
    render(output or Output.text, _tables(image), _payload(image), text=lambda: _text(image))
