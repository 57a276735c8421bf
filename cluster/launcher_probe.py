"""Readiness of freshly started nodes: what `pko cluster up` and `restart` wait for.

A node is ready when it answers ApiVersions (key 18, v0) and, for a broker, Metadata (key 3, v1,
all topics) lists the expected brokers — each registered with the active controller and unfenced,
which needs a quorum leader — and every topic of the cluster file, with a leader (``leader_id``
≥ 0) for every partition that has a replica on an expected broker: from then on a client can
produce. `up` expects every broker of the cluster file, so it returns once the whole cluster
serves; `restart` expects the restarted broker (the others may be down on purpose). A broker
opens its client listener only once it is registered and unfenced, so all nodes of a cluster are
spawned before any is waited for. A controller-only node is ready once it answers ApiVersions.
The probe opens a fresh connection each time, so a listener that accepts but never answers
cannot wedge the wait, and each attempt is bounded.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.launcher_process import POLL_S, LauncherError
from pykafka_ops.client.reassign_requests import adding_replicas
from pykafka_ops.client.wire import WireClient
from pykafka_ops.config.cluster import ClusterConfig, NodeSpec
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.codec import ErrorCode

#: Lines of a node's log quoted when it fails to start.
TAIL_LINES = 5
#: Upper bound of one probe (connect + both requests), in seconds.
PROBE_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class StartingNode:
    """A node process just spawned; ``log_offset`` is where its output starts in ``log_file``."""

    node: NodeSpec
    proc: subprocess.Popen[bytes]
    log_file: Path
    log_offset: int


def probe(host: str, port: int, is_broker: bool, topics: Iterable[str], brokers: Collection[int],
          timeout_s: float) -> str | None:
    """None when the node at ``host:port`` is ready (a broker: its Metadata lists ``brokers`` and
    ``topics``, led), else why not (one line)."""
    try:
        with WireClient(host, port, timeout=timeout_s) as client:
            versions = client.request(ApiKey.API_VERSIONS, 0, {})
            if versions.error_code != 0:
                return f"ApiVersions answered {_error_name(versions.error_code)}"
            if not is_broker:
                return None
            metadata = client.request(ApiKey.METADATA, 1, {"topics": None})
    except Exception as exc:  # noqa: BLE001 - a node still starting may refuse, close, time out or answer garbage
        return str(exc) or type(exc).__name__
    return metadata_problem(metadata, topics, brokers)


def metadata_problem(metadata: Any, topics: Iterable[str], brokers: Collection[int]) -> str | None:
    """Why a Metadata response does not show a usable cluster yet, or None: a broker of
    ``brokers`` missing (not registered, or fenced), a topic missing, or a partition with a replica
    on one of ``brokers`` (or with no replica listed) and no leader."""
    registered = {broker.node_id for broker in metadata.brokers}
    absent = sorted(set(brokers) - registered)
    if absent:
        return f"broker {absent[0]} is not in Metadata yet (not registered, or fenced)"
    listed = {topic.name for topic in metadata.topics}
    missing = sorted(set(topics) - listed)
    if missing:
        return f"topic {missing[0]!r} is not in Metadata yet"
    for topic in metadata.topics:
        if topic.error_code != 0:
            return f"Metadata answered {_error_name(topic.error_code)} for topic {topic.name!r}"
        for partition in topic.partitions:
            on_expected = not partition.replica_nodes or not set(brokers).isdisjoint(partition.replica_nodes)
            if partition.leader_id < 0 and on_expected:
                return f"partition {topic.name}-{partition.partition_index} has no leader yet"
    return None


def under_replicated(host: str, port: int, timeout_s: float) -> list[str]:
    """The partitions whose ISR lacks one of their replicas (replicas a reassignment is adding left
    out, KIP-455), or that have no leader, as the broker at ``host:port`` answers Metadata
    (kafka-topics' ``--under-replicated-partitions``); raises OSError/ValueError when it does not
    answer."""
    with WireClient(host, port, timeout=timeout_s) as client:
        metadata = client.request(ApiKey.METADATA, 1, {"topics": None})
        adding = adding_replicas(client, metadata, int(timeout_s * 1000))
    return [f"{topic.name}-{p.partition_index}" for topic in metadata.topics for p in topic.partitions
            if p.leader_id < 0
            or not set(p.replica_nodes) - set(adding.get((topic.name, p.partition_index), ())) <= set(p.isr_nodes)]


def wait_in_sync(config: ClusterConfig, wait_s: float, on_wait: Callable[[list[str]], None]) -> float:
    """Return (the seconds it took) once a running broker answers that no partition is under-
    replicated; ``on_wait`` hears the under-replicated partitions each time their count changes.
    Raises LauncherError after ``wait_s`` seconds."""
    began = time.monotonic()
    deadline = began + wait_s
    last: list[str] | None = None
    problem = "no broker answered"
    while True:
        for node in (n for n in config.nodes if n.is_broker):
            try:
                lagging = under_replicated(config.host_of(node.id), node.port, PROBE_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - a node being restarted may refuse or close
                problem = f"node {node.id}: {exc or type(exc).__name__}"
                continue
            if not lagging:
                return time.monotonic() - began
            if last is None or len(lagging) != len(last):
                on_wait(lagging)
            last = lagging
            problem = f"{len(lagging)} under-replicated partition(s), e.g. {lagging[0]}"
            break
        if time.monotonic() >= deadline:
            raise LauncherError(f"the cluster is not in sync after {wait_s:g} s ({problem})")
        time.sleep(POLL_S)


def wait_ready(config: ClusterConfig, starting: Sequence[StartingNode], wait_s: float,
               brokers: Collection[int]) -> None:
    """Return once every node in ``starting`` is ready, its Metadata listing ``brokers`` (broker
    ids); raise LauncherError as soon as one exits, or after ``wait_s`` seconds, quoting the last
    probe error and the tail of the node's log."""
    deadline = time.monotonic() + wait_s
    topics = [topic.name for topic in config.topics]
    pending = list(starting)
    last_problem: dict[int, str] = {}
    while True:
        for item in list(pending):
            code = item.proc.poll()
            if code is not None:
                raise LauncherError(f"node {item.node.id} {_describe_exit(code)} during start-up{log_tail(item)}")
            timeout_s = min(PROBE_TIMEOUT_S, max(deadline - time.monotonic(), POLL_S))
            host = config.host_of(item.node.id)
            problem = probe(host, item.node.port, item.node.is_broker, topics, brokers, timeout_s)
            if problem is None:
                pending.remove(item)
            else:
                last_problem[item.node.id] = problem
        if not pending:
            return
        if time.monotonic() >= deadline:
            item = pending[0]
            raise LauncherError(
                f"node {item.node.id} is not ready after {wait_s:g} s "
                f"(last probe: {last_problem[item.node.id]}){log_tail(item)}"
            )
        time.sleep(POLL_S)


def log_tail(item: StartingNode, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines this start wrote to the node's log, as a message suffix."""
    try:
        with item.log_file.open("rb") as log:
            log.seek(item.log_offset)
            text = log.read().decode(errors="replace")
    except OSError as exc:
        return f"; cannot read {item.log_file}: {exc.strerror or exc}"
    tail = text.rstrip().splitlines()[-lines:]
    if not tail:
        return f"; its log {item.log_file} is empty"
    return f"; last lines of {item.log_file}:\n" + "\n".join(f"    {line}" for line in tail)


def _describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _error_name(code: int) -> str:
    return ErrorCode(code).name.upper()
