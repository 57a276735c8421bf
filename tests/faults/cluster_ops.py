"""Cluster operations of the fault tests (specs/reliability.md §5.2 item 4): leader lookup by
Metadata, faults through ``RunningCluster`` or the real ``pko cluster`` binary (recorded as
``nemesis`` ops in a history), replica dumps through ``pko dump-log --output json``, and timing.

Every wait is a deadline poller (``poll_until``): it returns as soon as its condition holds and
says how long that took, so "time to new leader" and "time to first ack" are measured, not slept.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cluster.pytest_plugin import RunningCluster, wait_until
from faults.checker import BatchSummary, batches_from_dump
from faults.history import History
from pykafka_ops.client.wire import WireClient
from pykafka_ops.protocol.api_keys import ApiKey

T = TypeVar("T")
PKO = str(Path(sys.executable).parent / "pko")
#: Poll interval of ``poll_until``, in seconds.
#: The signals of ``fault`` and the nemesis op name of each.
FAULTS = {"KILL": "kill-9", "TERM": "stop", "STOP": "pause", "CONT": "resume"}


def poll_until(predicate: Callable[[], T], timeout_s: float, what: str) -> tuple[T, float]:
    """``wait_until``, with the seconds it took: (the truthy value, seconds)."""
    started = time.monotonic()
    return wait_until(predicate, timeout_s, what), time.monotonic() - started


# -- leaders ------------------------------------------------------------------------------------


def metadata(cluster: RunningCluster, node: int, topics: Iterable[str] | None = None, timeout_s: float = 3) -> Any:
    """A Metadata v12 answer of ``node`` (all topics, or ``topics``)."""
    body = {"topics": None if topics is None else [{"name": t} for t in topics],
            "allow_auto_topic_creation": False, "include_topic_authorized_operations": False}
    with WireClient(cluster.config.host, cluster.config.node(node).port, timeout=timeout_s) as client:
        return client.request(ApiKey.METADATA, 12, body)


def brokers(cluster: RunningCluster) -> list[int]:
    """Ids of the nodes with the broker role."""
    return [node.id for node in cluster.config.nodes if "broker" in node.roles]


@dataclass(frozen=True)
class PartitionState:
    """One partition as a broker's Metadata answers: leader (-1: none), epoch, replicas, ISR."""

    leader: int
    epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


def partition_states(cluster: RunningCluster, topic: str, via: Iterable[int] | None = None) -> dict[int, PartitionState]:
    """partition → ``PartitionState`` of ``topic``, from the first broker of ``via`` (default:
    every broker) that answers Metadata; raises if none answers."""
    errors = []
    for node in via if via is not None else brokers(cluster):
        try:
            answer = metadata(cluster, node, [topic])
        except (OSError, ConnectionError, TimeoutError) as exc:
            errors.append(f"node {node}: {exc!r}")
            continue
        for entry in answer.topics:
            if entry.name == topic and entry.error_code == 0:
                return {p.partition_index: PartitionState(p.leader_id, p.leader_epoch, tuple(p.replica_nodes),
                                                          tuple(p.isr_nodes)) for p in entry.partitions}
        errors.append(f"node {node}: {topic} not in its metadata")
    raise ConnectionError(f"no broker answered Metadata for {topic}: {errors}")


def leaders(cluster: RunningCluster, topic: str, via: Iterable[int] | None = None) -> dict[int, int]:
    """partition → leader id (-1: none) of ``topic`` (``partition_states``)."""
    return {p: state.leader for p, state in partition_states(cluster, topic, via).items()}


def leader_of(cluster: RunningCluster, topic: str, partition: int, via: Iterable[int] | None = None) -> int:
    """The leader of ``topic``-``partition`` (-1 when it has none), as Metadata answers."""
    return leaders(cluster, topic, via).get(partition, -1)


def wait_for_leader(cluster: RunningCluster, topic: str, partition: int, timeout_s: float = 15,
                    not_on: Iterable[int] = (), via: Iterable[int] | None = None) -> tuple[int, float]:
    """(leader, seconds) once the partition has a leader that is not one of ``not_on``."""
    excluded = set(not_on)

    def found() -> int | None:
        leader = leader_of(cluster, topic, partition, via)
        return leader if leader >= 0 and leader not in excluded else None

    return poll_until(found, timeout_s, f"a leader of {topic}-{partition} outside {sorted(excluded)}")


# -- faults -------------------------------------------------------------------------------------


def pko_cluster(cluster: RunningCluster, *args: str, timeout_s: float = 60) -> str:
    """Run ``pko cluster <args> -c <the cluster's file>``; stdout; AssertionError on a non-zero exit."""
    done = subprocess.run([PKO, "cluster", *args, "-c", str(cluster.config_path)], capture_output=True,
                          text=True, timeout=timeout_s, check=False)
    assert done.returncode == 0, f"pko cluster {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


def fault(cluster: RunningCluster, node: int, signal: str = "KILL", history: History | None = None,
          cli: bool = False) -> float:
    """Send ``signal`` (KILL, TERM, STOP, CONT) to ``node`` and wait for it to take effect, through
    ``RunningCluster`` or (``cli``) ``pko cluster kill --signal``; recorded in ``history`` as a
    nemesis op. Returns the history time (or monotonic time) at which it had taken effect."""
    def act() -> None:
        if cli:
            pko_cluster(cluster, "kill", "--node", str(node), "--signal", signal)
        else:
            cluster.kill(node, signal)

    if history is None:
        act()
        return time.monotonic()
    history.nemesis(FAULTS[signal], node, act)
    return history.now()


def kill9(cluster: RunningCluster, node: int, history: History | None = None, cli: bool = False) -> float:
    """kill -9 ``node``; see ``fault``."""
    return fault(cluster, node, "KILL", history, cli)


def pause(cluster: RunningCluster, node: int, history: History | None = None, cli: bool = False) -> float:
    """SIGSTOP ``node``; see ``fault``."""
    return fault(cluster, node, "STOP", history, cli)


def resume(cluster: RunningCluster, node: int, history: History | None = None, cli: bool = False) -> float:
    """SIGCONT ``node``; see ``fault``."""
    return fault(cluster, node, "CONT", history, cli)


def restart(cluster: RunningCluster, node: int, history: History | None = None, cli: bool = False) -> float:
    """Start ``node`` again (stopping it gracefully if it runs); returns once it answers."""
    def act() -> None:
        if cli:
            pko_cluster(cluster, "restart", "--node", str(node))
        else:
            cluster.restart(node)

    if history is None:
        act()
        return time.monotonic()
    history.nemesis("restart", node, act)
    return history.now()


# -- timing -------------------------------------------------------------------------------------


def time_to_first_ack(history: History, since: float, partitions: Iterable[int] | None = None,
                      timeout_s: float = 30) -> float:
    """Seconds from history time ``since`` (e.g. a fault's) to the first ``ok`` send completed
    after it (on one of ``partitions``), waiting for it up to ``timeout_s``."""
    wanted = None if partitions is None else list(partitions)
    first, _waited = poll_until(lambda: history.first_ok_after(since, partitions=wanted), timeout_s,
                                f"an acknowledged send after t={since:.3f}"
                                + (f" on partitions {wanted}" if wanted is not None else ""))
    return first.t - since


def longest_ack_gap(history: History, partitions: Iterable[int] | None = None) -> float:
    """The longest time between two consecutive ``ok`` sends (on ``partitions``): the longest
    produce stall a client saw."""
    wanted = None if partitions is None else set(partitions)
    times = [op.t for op in history.ops if op.type == "ok" and op.f == "send"
             and (wanted is None or op.partition in wanted)]
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


# -- replica dumps ------------------------------------------------------------------------------


def segment_files(cluster: RunningCluster, node: int, topic: str, partition: int) -> list[Path]:
    """The ``.log`` segment files of ``node``'s replica of the partition, in offset order."""
    return sorted((cluster.config.node_dir(node) / f"{topic}-{partition}").glob("*.log"))


def dump_log(files: Iterable[Path], deep: bool = False) -> list[dict[str, Any]]:
    """``pko dump-log --files … --output json`` (``--deep-iteration`` with ``deep``): one object per file."""
    names = ",".join(str(f) for f in files)
    args = [PKO, "dump-log", "--files", names, "--output", "json", *(["--deep-iteration"] if deep else [])]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"pko dump-log: exit {done.returncode}\n{done.stderr}"
    payload = json.loads(done.stdout)
    return payload if isinstance(payload, list) else [payload]


def replica_batches(cluster: RunningCluster, topic: str, partitions: Iterable[int],
                    nodes: Iterable[int] | None = None) -> dict[int, dict[int, list[BatchSummary]]]:
    """node → partition → batches of every replica found on disk (the checker's ``replicas``)."""
    found: dict[int, dict[int, list[BatchSummary]]] = {}
    for node in nodes if nodes is not None else brokers(cluster):
        for partition in partitions:
            files = segment_files(cluster, node, topic, partition)
            if files:
                found.setdefault(node, {})[partition] = batches_from_dump(dump_log(files))
    return found


# -- partition state, node logs, replica catch-up -----------------------------------------------


def wait_for_isr(cluster: RunningCluster, topic: str, partition: int, predicate: Callable[[PartitionState], bool],
                 what: str, timeout_s: float = 15, via: Iterable[int] | None = None) -> tuple[PartitionState, float]:
    """(state, seconds) once the partition's Metadata state (as ``via`` answers) satisfies ``predicate``."""
    via = list(via) if via is not None else None

    def found() -> PartitionState | None:
        state = partition_states(cluster, topic, via).get(partition)
        return state if state is not None and predicate(state) else None

    return poll_until(found, timeout_s, f"{topic}-{partition}: {what}")


def wait_for_full_isr(cluster: RunningCluster, topic: str, timeout_s: float = 15,
                      via: Iterable[int] | None = None) -> dict[int, PartitionState]:
    """Every partition's state once each has a leader and its ISR holds every replica."""
    via = list(via) if via is not None else None

    def full() -> dict[int, PartitionState] | None:
        states = partition_states(cluster, topic, via)
        return states if states and all(s.leader >= 0 and set(s.isr) == set(s.replicas)
                                        for s in states.values()) else None

    return poll_until(full, timeout_s, f"a leader and a full ISR for every partition of {topic}")[0]


def node_log(cluster: RunningCluster, node: int) -> Path:
    """The log file of ``node`` (stdout and stderr of every run, appended)."""
    return cluster.config.data_dir / "logs" / f"node-{node}.log"


def node_log_mark(cluster: RunningCluster, node: int) -> int:
    """The size of ``node``'s log now: pass it to ``truncations`` to look only at what follows."""
    path = node_log(cluster, node)
    return path.stat().st_size if path.exists() else 0


_TRUNCATION = re.compile(r"(?P<topic>[\w.-]+)-(?P<partition>\d+): (?:truncating from (?P<end>\d+) to (?P<to>\d+)"
                         r"|log end (?P<end2>\d+) is above the leader's range; truncating to its high watermark "
                         r"(?P<to2>\d+))")


def truncations(cluster: RunningCluster, node: int, topic: str, since: int = 0) -> dict[int, int]:
    """partition → records ``node`` truncated from its replicas of ``topic`` (a follower's
    diverging-epoch or out-of-range truncation, as its log says) after log position ``since``."""
    with node_log(cluster, node).open("rb") as f:
        f.seek(since)
        text = f.read().decode(errors="replace")
    cut: dict[int, int] = {}
    for match in _TRUNCATION.finditer(text):
        if match["topic"] == topic:
            end, to = (int(match["end"]), int(match["to"])) if match["end"] else (int(match["end2"]), int(match["to2"]))
            partition = int(match["partition"])
            cut[partition] = cut.get(partition, 0) + end - to
    return cut


def snapshot_segments(cluster: RunningCluster, node: int, topic: str, partitions: Iterable[int],
                      dest: Path) -> dict[int, list[Path]]:
    """Copy ``node``'s segment files of the partitions to ``dest`` (of a stopped or paused node:
    its log as it was then, to dump later); partition → copies."""
    copies: dict[int, list[Path]] = {}
    for partition in partitions:
        target = dest / f"node-{node}" / f"{topic}-{partition}"
        target.mkdir(parents=True, exist_ok=True)
        copies[partition] = [Path(shutil.copy2(f, target / f.name)) for f in segment_files(cluster, node, topic, partition)]
    return copies


def log_ends(replicas: dict[int, dict[int, list[BatchSummary]]]) -> dict[int, dict[int, int]]:
    """node → partition → log end offset (last batch's last offset + 1; 0 when empty) of dumps."""
    return {node: {p: (batches[-1].last_offset + 1 if batches else 0) for p, batches in held.items()}
            for node, held in replicas.items()}


def wait_for_replicas_at(cluster: RunningCluster, topic: str, ends: dict[int, int], nodes: Iterable[int] | None = None,
                         timeout_s: float = 20) -> tuple[dict[int, dict[int, list[BatchSummary]]], float]:
    """(``replica_batches``, seconds) once every replica on ``nodes`` (default: every broker)
    holds each partition up to ``ends`` (partition → offset, e.g. the high watermarks): followers
    have caught up and the dumps can be compared."""
    nodes = list(nodes) if nodes is not None else brokers(cluster)

    def caught_up() -> dict[int, dict[int, list[BatchSummary]]] | None:
        replicas = replica_batches(cluster, topic, ends, nodes)
        held = log_ends(replicas)
        return replicas if all(held.get(n, {}).get(p, 0) >= end for n in nodes for p, end in ends.items()) else None

    return poll_until(caught_up, timeout_s, f"every replica of {topic} on nodes {nodes} at {ends}")


# -- coordinators and controlled shutdown -------------------------------------------------------


def find_coordinator(cluster: RunningCluster, group: str, via: Iterable[int] | None = None,
                     timeout_s: float = 3, key_type: int = 0) -> int:
    """The node id of ``group``'s coordinator, by FindCoordinator v3 to the first broker of ``via``
    (default: every broker) that answers without an error; raises if none does (e.g.
    COORDINATOR_NOT_AVAILABLE while the group's ``__consumer_offsets`` partition has no leader).
    ``key_type`` 1: ``group`` is a transactional id, the answer its transaction coordinator."""
    errors = []
    for node in via if via is not None else brokers(cluster):
        try:
            with WireClient(cluster.config.host, cluster.config.node(node).port, timeout=timeout_s) as client:
                answer = client.request(ApiKey.FIND_COORDINATOR, 3, {"key": group, "key_type": key_type})
        except (OSError, ConnectionError, TimeoutError) as exc:
            errors.append(f"node {node}: {exc!r}")
            continue
        if answer.error_code == 0:
            return answer.node_id
        errors.append(f"node {node}: error {answer.error_code}")
    raise ConnectionError(f"no broker named the coordinator of {group}: {errors}")


def wait_for_coordinator(cluster: RunningCluster, group: str, timeout_s: float = 15, not_on: Iterable[int] = (),
                         via: Iterable[int] | None = None) -> tuple[int, float]:
    """(coordinator, seconds) once FindCoordinator names a node that is not one of ``not_on``."""
    excluded = set(not_on)
    via = list(via) if via is not None else None

    def found() -> int | None:
        node = find_coordinator(cluster, group, via)
        return node if node not in excluded else None

    return poll_until(found, timeout_s, f"a coordinator of {group} outside {sorted(excluded)}")


def sigterm(cluster: RunningCluster, node: int, history: History | None = None, timeout_s: float = 30) -> float:
    """SIGTERM ``node`` (a broker's controlled shutdown) and wait for its process to exit; the
    seconds from the signal to the exit (recorded as a ``stop`` nemesis op in ``history``).
    AssertionError if it has not exited after ``timeout_s``."""
    from cluster import launcher

    started = time.monotonic()

    def act() -> Any:
        return launcher.kill(cluster.config, node, "TERM", timeout_s=timeout_s)

    result = act() if history is None else history.nemesis("stop", node, act)
    took = time.monotonic() - started
    assert result.state == "down", f"node {node} still {result.state} {took:.1f} s after SIGTERM"
    return took


class LeadershipWatch:
    """Polls Metadata of ``via`` (the other brokers) from a thread and records the monotonic time
    at which none of ``topics``' partitions is led by ``node`` any more (``moved_at``): start it
    before a SIGTERM to time the controlled shutdown's leadership move as clients see it."""

    def __init__(self, cluster: RunningCluster, node: int, topics: Iterable[str], via: Iterable[int],
                 timeout_s: float = 30) -> None:
        self.cluster, self.node, self.topics, self.via = cluster, node, list(topics), list(via)
        self.timeout_s = timeout_s
        self.moved_at: float | None = None
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"leadership-watch-{node}", daemon=True)

    def _still_leads(self) -> bool:
        return any(leader == self.node for topic in self.topics
                   for leader in leaders(self.cluster, topic, self.via).values())

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.polls += 1
            try:
                if not self._still_leads():
                    self.moved_at = time.monotonic()
                    return
            except (OSError, ConnectionError, TimeoutError):
                pass
            self._stop.wait(0.01)

    def start(self) -> LeadershipWatch:
        self._thread.start()
        return self

    def wait(self, timeout_s: float | None = None) -> float | None:
        """The monotonic time leadership had moved (None if not within the watch's timeout)."""
        self._thread.join(self.timeout_s if timeout_s is None else timeout_s)
        self._stop.set()
        return self.moved_at


def quorum_leader(cluster: RunningCluster, via: Iterable[int] | None = None) -> int:
    """The node DescribeQuorum names as the metadata quorum's leader (the active controller),
    asked through ``via`` (default: every node); -1 if none is known."""
    from pykafka_ops.client.quorum_requests import describe_metadata_quorum

    nodes = list(via) if via is not None else [n.id for n in cluster.config.nodes]
    servers = ",".join(f"{cluster.config.host_of(n)}:{cluster.config.node(n).port}" for n in nodes)
    return describe_metadata_quorum(servers, timeout_s=2.0).leader_id
