"""Partition reassignment on any Kafka cluster (kafka-reassign-partitions' --generate, --execute,
--verify, --cancel and --list).

Brokers and their racks come from DescribeCluster, replicas from Metadata (confluent-kafka);
AlterPartitionReassignments, ListPartitionReassignments, AlterReplicaLogDirs and DescribeLogDirs
go through our codec (``client.reassign_requests``); throttle configs through the configs
service (IncrementalAlterConfigs SET / DELETE, as Kafka's tool). The arithmetic is in
``reassign_plan``. Each step follows Kafka's ``ReassignPartitionsCommand``: --execute refuses to
run beside an ongoing reassignment without ``additional``, checks broker ids and partitions,
sets the throttles, starts the reassignments, then retries AlterReplicaLogDirs until each
replica exists on its broker (or ``timeout_ms`` passes); --verify and --cancel clear every
throttle once nothing is moving.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.librdkafka import admin_client, in_thread, metadata, result
from pykafka_ops.client.reassign_requests import (
    alter_partition_reassignments,
    alter_replica_log_dirs,
    describe_replica_log_dirs,
    list_partition_reassignments,
)
from pykafka_ops.models.reassign import (
    MOVE_ACTIVE,
    BrokerInfo,
    CancelReport,
    ExecuteReport,
    GeneratedPlan,
    LogDirMoveStatus,
    OngoingReassignment,
    PartitionTarget,
    ThrottlesCleared,
    VerifyReport,
)
from pykafka_ops.services import reassign_plan as plan
from pykafka_ops.services.configs import alter_configs

TopicPartition = tuple[str, int]
#: Pause between AlterReplicaLogDirs attempts while a replica does not exist yet (Kafka's 100 ms).
LOG_DIR_RETRY_S = 0.1
CANNOT_EXECUTE_BECAUSE_OF_EXISTING = (
    "Cannot execute because there is an existing partition assignment.  Use --additional to override this and "
    "create a new partition assignment in addition to the existing one. The --additional flag can also be used "
    "to change the throttle by resubmitting the current reassignment.")


class ReassignmentRefusedError(RuntimeError):
    """The cluster's state forbids the plan (unknown broker or partition, an ongoing reassignment,
    a log-dir move that could not start); the message is Kafka's."""


@dataclass(frozen=True)
class ClusterView:
    """What the services read before acting: brokers (with racks) and every partition's replicas."""

    brokers: tuple[BrokerInfo, ...]
    replicas: dict[TopicPartition, tuple[int, ...]]

    def broker(self, broker_id: int) -> BrokerInfo:
        """The broker with ``broker_id`` (KeyError when unknown)."""
        return {b.broker_id: b for b in self.brokers}[broker_id]

    def topics(self) -> set[str]:
        """Every topic name."""
        return {t for t, _ in self.replicas}


def _view(settings: ClientSettings) -> ClusterView:
    admin = admin_client(settings)
    cluster = metadata(admin, settings)  # the reachability check, naming the bootstrap servers
    described = result(admin.describe_cluster(request_timeout=settings.timeout_s), settings, "describe cluster")
    brokers = tuple(sorted((BrokerInfo(n.id, n.host, n.port, n.rack or None) for n in described.nodes),
                           key=lambda b: b.broker_id))
    replicas = {(name, p.id): tuple(p.replicas) for name, topic in cluster.topics.items()
                for p in topic.partitions.values()}
    return ClusterView(brokers, replicas)


async def cluster_view(settings: ClientSettings) -> ClusterView:
    """Brokers (DescribeCluster, racks included) and every partition's replicas (Metadata)."""
    return await in_thread(_view, settings)


async def generate(settings: ClientSettings, topics: Sequence[str], broker_ids: Sequence[int] | None,
                   rack_aware: bool = True, replication_factor: int | None = None) -> GeneratedPlan:
    """--generate: the current assignment of ``topics`` and a proposal on ``broker_ids`` (None:
    every broker). Without ``replication_factor``, Kafka's placement from scratch; with it, the
    current replicas kept first and the least loaded brokers added (or the last dropped)."""
    view = await cluster_view(settings)
    missing = sorted(set(topics) - view.topics())
    if missing:
        raise ReassignmentRefusedError(f"Topic {missing[0]} not found.")
    current = {k: r for k, r in view.replicas.items() if k[0] in topics}
    wanted = [b.broker_id for b in view.brokers] if broker_ids is None else list(broker_ids)
    if replication_factor is None:
        proposed = plan.propose_assignment(current, plan.usable_brokers(view.brokers, wanted, rack_aware))
    else:
        load: dict[int, int] = {}
        for replicas in view.replicas.values():
            for b in replicas:
                load[b] = load.get(b, 0) + 1
        known = [b for b in wanted if b in {x.broker_id for x in view.brokers}]
        proposed = plan.change_replication_factor(current, known, replication_factor, load)
    return GeneratedPlan(plan.targets_from(current), plan.targets_from(proposed))


async def list_reassignments(settings: ClientSettings) -> tuple[OngoingReassignment, ...]:
    """--list: every reassignment going on, sorted by topic and partition."""
    return await in_thread(list_partition_reassignments, settings)


def _check_targets(view: ClusterView, targets: Sequence[PartitionTarget]) -> None:
    """Kafka's ``verifyBrokerIds`` and ``getReplicaAssignmentForPartitions`` checks."""
    known = {b.broker_id for b in view.brokers}
    unknown = next((b for t in targets for b in t.replicas if b not in known), None)
    if unknown is not None:
        raise ReassignmentRefusedError(f"Unknown broker id {unknown}")
    missing_topic = next((t.topic for t in targets if t.topic not in view.topics()), None)
    if missing_topic is not None:
        raise ReassignmentRefusedError(f"Topic {missing_topic} not found.")
    missing = [t.name for t in targets if (t.topic, t.partition) not in view.replicas]
    if missing:
        raise ReassignmentRefusedError(f"Unable to find partition: {', '.join(missing)}")


async def _set_broker_configs(settings: ClientSettings, brokers: Iterable[int], configs: Mapping[str, str]) -> None:
    for broker in brokers:
        await alter_configs(settings, "brokers", str(broker), configs)


async def execute(settings: ClientSettings, targets: Sequence[PartitionTarget], additional: bool = False,
                  throttle: int | None = None, log_dir_throttle: int | None = None) -> ExecuteReport:
    """--execute: set the throttles given (bytes/s; None: none) and start moving each partition to
    its target replicas; ``start_log_dir_moves`` then moves replicas between log dirs.
    ``ReassignmentRefusedError`` for a reassignment already going on without ``additional``, an
    unknown broker or partition; partitions the cluster refuses are in the report."""
    plan.check_execute_plan(targets)
    ongoing = await in_thread(list_partition_reassignments, settings)
    if ongoing and not additional:
        raise ReassignmentRefusedError(CANNOT_EXECUTE_BECAUSE_OF_EXISTING)
    view = await cluster_view(settings)
    _check_targets(view, targets)
    proposed = {(t.topic, t.partition): t.replicas for t in targets}
    current = {k: view.replicas[k] for k in proposed}
    if throttle is not None:
        throttles = plan.throttle_plan(plan.move_map(ongoing, proposed, current))
        for topic in sorted(set(throttles.leader_replicas) | set(throttles.follower_replicas)):
            await alter_configs(settings, "topics", topic, {
                plan.LEADER_REPLICAS: throttles.leader_replicas.get(topic, ""),
                plan.FOLLOWER_REPLICAS: throttles.follower_replicas.get(topic, "")})
        await _set_broker_configs(settings, throttles.brokers,
                                  {plan.LEADER_RATE: str(throttle), plan.FOLLOWER_RATE: str(throttle)})
    if log_dir_throttle is not None:
        moving = sorted({b for t in targets for b in t.log_dir_moves})
        await _set_broker_configs(settings, moving, {plan.LOG_DIR_RATE: str(log_dir_throttle)})
    errors = await in_thread(alter_partition_reassignments, settings, proposed)
    started = () if errors else tuple(t.name for t in sorted(targets, key=lambda t: (t.topic, t.partition)))
    return ExecuteReport(plan.targets_from(current), throttle, log_dir_throttle, started, errors)


async def start_log_dir_moves(settings: ClientSettings, targets: Sequence[PartitionTarget], timeout_ms: int = 10000,
                              progress: Callable[[str], None] | None = None) -> tuple[tuple[str, int, str], ...]:
    """The second half of --execute: move the replicas the plan places in a given log dir, once
    each exists on its broker; (partition, broker, log dir) of each move started, by broker.
    ``ReassignmentRefusedError`` when a broker refuses or ``timeout_ms`` passes first."""
    moves = {(t.topic, t.partition, b): d for t in targets for b, d in t.log_dir_moves.items()}
    if not moves:
        return ()
    view = await cluster_view(settings)
    return await in_thread(_start_log_dir_moves, settings, view, moves, timeout_ms, progress)


def _start_log_dir_moves(settings: ClientSettings, view: ClusterView, moves: Mapping[tuple[str, int, int], str],
                         timeout_ms: int, progress: Callable[[str], None] | None) -> tuple[tuple[str, int, str], ...]:
    """AlterReplicaLogDirs to each broker until every move started (Kafka's ``executeMoves``):
    REPLICA_NOT_AVAILABLE (the replica is not on the broker yet) is retried every 100 ms."""
    deadline = time.monotonic() + timeout_ms / 1000
    pending = dict(moves)
    begun: list[tuple[str, int, str]] = []
    while True:
        for broker in sorted({b for _, _, b in pending}):
            mine = {(t, p): d for (t, p, b), d in pending.items() if b == broker}
            for (topic, partition), error in alter_replica_log_dirs(settings, view.broker(broker), mine).items():
                if error == "NONE":
                    begun.append((f"{topic}-{partition}", broker, pending.pop((topic, partition, broker))))
                elif error != "REPLICA_NOT_AVAILABLE":
                    raise ReassignmentRefusedError(f"Failed to alter dir for {topic}-{partition}-{broker}: {error}")
        if not pending:
            return tuple(sorted(begun, key=lambda m: (m[1], m[0])))
        if time.monotonic() >= deadline:
            names = ",".join(f"{t}-{p}-{b}" for t, p, b in sorted(pending, key=lambda k: (k[2], k[0], k[1])))
            raise ReassignmentRefusedError(
                f"Timed out before log directory move{'' if len(pending) == 1 else 's'} could be started for: {names}")
        if progress is not None:
            progress(f"waiting for {len(pending)} replica(s) to exist before moving their log dir")
        time.sleep(LOG_DIR_RETRY_S)


def _replica_dirs(settings: ClientSettings, view: ClusterView, targets: Sequence[PartitionTarget]
                  ) -> dict[tuple[str, int, int], tuple[str | None, str | None]]:
    """(current, future) log dir of every replica the plan places in a given log dir."""
    wanted: dict[int, list[TopicPartition]] = {}
    for t in targets:
        for broker in t.log_dir_moves:
            wanted.setdefault(broker, []).append((t.topic, t.partition))
    known = {b.broker_id for b in view.brokers}
    found = {}
    for broker, partitions in sorted(wanted.items()):
        if broker in known:
            for (topic, partition), dirs in describe_replica_log_dirs(settings, view.broker(broker), partitions).items():
                found[(topic, partition, broker)] = dirs
    return found


async def _log_dir_states(settings: ClientSettings, view: ClusterView,
                          targets: Sequence[PartitionTarget]) -> tuple[LogDirMoveStatus, ...]:
    if not any(t.log_dir_moves for t in targets):
        return ()
    return plan.log_dir_states(targets, await in_thread(_replica_dirs, settings, view, targets))


async def clear_throttles(settings: ClientSettings, view: ClusterView,
                          targets: Sequence[PartitionTarget]) -> ThrottlesCleared:
    """Remove the throttle configs of every broker and of the plan's topics (Kafka's
    ``clearAllThrottles``: which brokers sent data is not known any more). Topics that no longer
    exist are left out."""
    brokers, topics = plan.throttle_targets(targets, (b.broker_id for b in view.brokers))
    known = {b.broker_id for b in view.brokers}
    brokers = [b for b in brokers if b in known]
    topics = [t for t in topics if t in view.topics()]
    for broker in brokers:
        await alter_configs(settings, "brokers", str(broker), {}, plan.BROKER_THROTTLES)
    for topic in topics:
        await alter_configs(settings, "topics", topic, {}, plan.TOPIC_THROTTLES)
    return ThrottlesCleared(tuple(brokers), tuple(topics))


async def verify(settings: ClientSettings, targets: Sequence[PartitionTarget],
                 preserve_throttles: bool = False) -> VerifyReport:
    """--verify: each partition's and log-dir move's state; once nothing moves in the cluster,
    the throttles are cleared unless ``preserve_throttles``."""
    ongoing = await in_thread(list_partition_reassignments, settings)
    view = await cluster_view(settings)
    states = plan.partition_states(targets, {(r.topic, r.partition): r for r in ongoing}, view.replicas)
    moves = await _log_dir_states(settings, view, targets)
    moves_ongoing = not all(m.done for m in moves)
    cleared = None
    if not ongoing and not moves_ongoing and not preserve_throttles:
        cleared = await clear_throttles(settings, view, targets)
    return VerifyReport(states, moves, bool(ongoing), moves_ongoing, cleared)


async def cancel(settings: ClientSettings, targets: Sequence[PartitionTarget], preserve_throttles: bool = False,
                 timeout_ms: int = 10000, progress: Callable[[str], None] | None = None) -> CancelReport:
    """--cancel: cancel the plan's reassignments still going on (AlterPartitionReassignments with
    null replicas), put active log-dir moves back (Kafka's ``cancelAssignment``), then clear the
    throttles unless ``preserve_throttles``."""
    keys = [(t.topic, t.partition) for t in targets]
    ongoing = await in_thread(list_partition_reassignments, settings, keys)
    # every one listed adds or removes a replica: cancelled, as Kafka's Scala tool did (its Java port
    # of KAFKA-14595 lost a negation and skips a reassignment that only adds replicas)
    active = [(r.topic, r.partition) for r in ongoing]
    errors = await in_thread(alter_partition_reassignments, settings, dict.fromkeys(active)) if active else ()
    if errors:
        return CancelReport((), (), None, errors)
    view = await cluster_view(settings)
    moving = {(m.topic, m.partition, m.broker): m.current_dir or ""
              for m in await _log_dir_states(settings, view, targets) if m.state == MOVE_ACTIVE}
    if moving:
        await in_thread(_start_log_dir_moves, settings, view, moving, timeout_ms, progress)
    cleared = None if preserve_throttles else await clear_throttles(settings, view, targets)
    return CancelReport(tuple(f"{t}-{p}" for t, p in sorted(active)),
                        tuple(f"{t}-{p}-{b}" for t, p, b in sorted(moving, key=lambda k: (k[2], k[0], k[1]))),
                        cleared)
