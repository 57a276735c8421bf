"""The listeners the fuzzer targets: what differs between them, and nothing else.

A node serves clients on its ``client`` (BROKER) listener and, with the controller role, quorum
members and brokers on its ``controller`` listener (``cluster.handlers``: Vote, BeginQuorumEpoch,
EndQuorumEpoch, Fetch of ``__cluster_metadata``, FetchSnapshot, DescribeQuorum, BrokerRegistration,
BrokerHeartbeat, AllocateProducerIds, AlterPartition and the forwarded admin requests). The runner
(``fuzz.runner``), the frames (``fuzz.frames``) and the judging (``fuzz.expect``) are the same for
both; a ``Listener`` says only

* which node to start and which of its ports to hit (``start``, ``port``);
* what to prepare before the run (``prepare``: the client listener's topics);
* the health probe (``health``: ApiVersions + Produce + Fetch on the client listener,
  ApiVersions + DescribeQuorum on the controller listener);
* how to count partitions for the JSON line (``partitions``; None where Metadata is not served);
* the listener's own valid bodies (``bodies``: on the controller listener, the Raft RPCs as
  ``cluster.raft.kraft_rpc.request_body`` builds them from sample ``cluster.raft.messages``, and the
  node's real cluster id in every body that carries one, so that fuzzing gets past that check);
* checks after the run (``final_checks``: a controller must lead its quorum again).

The controller node is a single controller-only node: it is the only voter, so it leads, and it
serves its controller listener on its ``port`` (``cluster.broker``: a controller-only node always
listens; a combined node only in a quorum of several).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.pytest_plugin import RunningCluster, start_cluster
from cluster.raft import kraft_rpc
from cluster.raft.log import OffsetAndEpoch
from cluster.raft.messages import (
    BeginQuorumEpochRequest,
    EndQuorumEpochRequest,
    FetchRequest,
    FetchSnapshotRequest,
    VoteRequest,
)
from fuzz.frames import Bodies
from fuzz.node import (
    controller_health_check,
    health_check,
    own_node,
    partition_count,
    prepare_topics,
    quorum_leader,
)
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey

CONTROLLER_YAML = """\
cluster: {name: pko-fuzz-controller}
nodes:
  - {id: 1, roles: [controller]}
"""
#: Seconds a controller has after the run to lead its quorum again (fuzzed Votes and
#: BeginQuorumEpochs of higher epochs legally make it resign; the only voter re-elects itself).
REELECT_S = 20.0


@dataclass(frozen=True)
class Listener:
    """What the fuzzer needs to know of one listener type (module doc)."""

    name: str
    start: Callable[[str | Path], RunningCluster]
    port: Callable[[RunningCluster], int]
    prepare: Callable[[str, int], None]
    health: Callable[[str, int], None]
    partitions: Callable[[str, int], int | None]
    bodies: Callable[[RunningCluster | None], Bodies | None]
    final_checks: Callable[[str, int], list[str]]


# --- the controller listener ---------------------------------------------------------------------


def _cluster_id(cluster: RunningCluster | None) -> str:
    """The node's cluster id from its meta.properties ("" when unknown: a Raft request without a
    cluster id is accepted)."""
    if cluster is None:
        return ""
    path = cluster.config.node_dir(1) / "meta.properties"
    try:
        for line in path.read_text().splitlines():
            if line.startswith("cluster.id="):
                return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return ""


#: Values the sample Raft messages take: mostly near the node's own (node 1, epochs and offsets
#: near its log's), sometimes another voter or none, sometimes extreme.
_IDS = (1, 1, 2, 3, -1, 1000, 2**31 - 1)
_EPOCHS = (0, 1, 1, 2, 3, 10, -1, 2**31 - 1)
_OFFSETS = (0, 1, 2, 5, 100, -1, 2**62)


def raft_payload(key: int, version: int, rng: random.Random) -> Any:
    """A sample ``cluster.raft.messages`` request carried by (key, version), or None."""
    if key == kraft_rpc.VOTE:
        return VoteRequest(rng.choice(_EPOCHS), rng.choice(_IDS), rng.choice(_EPOCHS), rng.choice(_OFFSETS),
                           pre_vote=version >= 2 and rng.random() < 0.5)
    if key == kraft_rpc.BEGIN_QUORUM_EPOCH:
        return BeginQuorumEpochRequest(rng.choice(_IDS), rng.choice(_EPOCHS))
    if key == kraft_rpc.END_QUORUM_EPOCH:
        return EndQuorumEpochRequest(rng.choice(_IDS), rng.choice(_EPOCHS),
                                     tuple(rng.sample((1, 2, 3, -1), rng.randint(0, 3))))
    if key == kraft_rpc.FETCH:
        return FetchRequest(rng.choice(_IDS), rng.choice(_OFFSETS), rng.choice(_EPOCHS), rng.choice(_EPOCHS),
                            max_wait_ms=rng.choice((0, 0, 50, 500)))
    if key == kraft_rpc.FETCH_SNAPSHOT:
        return FetchSnapshotRequest(rng.choice(_IDS), rng.choice(_EPOCHS),
                                    OffsetAndEpoch(rng.choice(_OFFSETS), rng.choice(_EPOCHS)),
                                    rng.choice((0, 1, 100, -1, 2**62)), rng.choice((0, 1, 1024, 2**20, -1)))
    return None


def controller_bodies(cluster_id: str) -> Bodies:
    """Valid bodies of the controller listener: about half the Raft RPCs built by
    ``kraft_rpc.request_body`` from a sample message (the versions it speaks), and any body with a
    ``cluster_id`` field given the node's (or no) cluster id half the time; None otherwise (the
    generic example, with its random cluster id)."""
    def bodies(key: int, version: int, rng: random.Random) -> Any:
        from fuzz.examples import example

        if (key in kraft_rpc.VERSIONS and kraft_rpc.MIN_VERSIONS[key] <= version <= kraft_rpc.VERSIONS[key]
                and rng.random() < 0.5):
            payload = raft_payload(key, version, rng)
            endpoints = [("CONTROLLER", "127.0.0.1", rng.choice((9093, 0, 65535)))] if rng.random() < 0.5 else []
            _, _, body = kraft_rpc.request_body(payload, rng.choice((cluster_id, cluster_id, "")),
                                                destination_id=rng.choice((1, -1, 2)), version=version,
                                                leader_endpoints=endpoints)
            return body
        if rng.random() < 0.5:
            entity = example(codec.load_request_schema(key, version), rng)
            if any(f.name == "cluster_id" for f in dataclasses.fields(entity)):
                return dataclasses.replace(entity, cluster_id=cluster_id)
            return entity
        return None
    return bodies


def _controller_final_checks(host: str, port: int) -> list[str]:
    leader = quorum_leader(host, port, REELECT_S)
    detail = f"the only voter does not lead its quorum {REELECT_S:.0f} s after the run (leader {leader})"
    return [] if leader == 1 else [detail]


CLIENT = Listener(
    name="client",
    start=own_node,
    port=lambda cluster: cluster.config.node(1).port,
    prepare=prepare_topics,
    health=health_check,
    partitions=partition_count,
    bodies=lambda cluster: None,
    final_checks=lambda host, port: [],
)

CONTROLLER = Listener(
    name="controller",
    start=lambda tmp_dir: start_cluster(CONTROLLER_YAML, tmp_dir),
    port=lambda cluster: cluster.config.node(1).quorum_port,
    prepare=lambda host, port: None,
    health=controller_health_check,
    partitions=lambda host, port: None,
    bodies=lambda cluster: controller_bodies(_cluster_id(cluster)),
    final_checks=_controller_final_checks,
)

LISTENERS = {listener.name: listener for listener in (CLIENT, CONTROLLER)}
#: The API keys each listener must advertise (the test checks the advertised set, not only "some").
CONTROLLER_APIS = frozenset({
    ApiKey.API_VERSIONS, ApiKey.VOTE, ApiKey.BEGIN_QUORUM_EPOCH, ApiKey.END_QUORUM_EPOCH, ApiKey.FETCH,
    ApiKey.FETCH_SNAPSHOT, ApiKey.DESCRIBE_QUORUM, ApiKey.BROKER_REGISTRATION, ApiKey.BROKER_HEARTBEAT,
    ApiKey.ALLOCATE_PRODUCER_IDS, ApiKey.ALTER_PARTITION, ApiKey.CREATE_TOPICS, ApiKey.DELETE_TOPICS,
    ApiKey.CREATE_PARTITIONS, ApiKey.ALTER_CONFIGS, ApiKey.INCREMENTAL_ALTER_CONFIGS, ApiKey.ELECT_LEADERS,
    ApiKey.ALTER_PARTITION_REASSIGNMENTS, ApiKey.LIST_PARTITION_REASSIGNMENTS,
})
