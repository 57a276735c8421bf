"""The pure part of partition reassignment (kafka-reassign-partitions): its JSON files, the
proposals of --generate, the throttle configs of --execute and the states of --verify.

No I/O here: ``services.reassign`` gathers what the cluster says and calls these, and the unit
tests call them with plain values. Messages are Kafka's (``ReassignPartitionsCommand``), so a
user who knows the Java tool recognises them.

Placement is Kafka's ``AdminUtils.assignReplicasToBrokers``: rack-unaware through the
controller's own ``place_replicas`` (one implementation for the broker and the tool), rack-aware
(brokers alternated by rack, no two replicas in one rack while a rack has none) here.
``change_replication_factor`` is pko's: it keeps the current replicas, in order (so the leader
does not move), and adds the least loaded brokers or drops the last replicas.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pykafka_ops.models.reassign import (
    ANY_LOG_DIR,
    MOVE_ACTIVE,
    MOVE_CANCELLED,
    MOVE_COMPLETED,
    MOVE_MISSING_LOG_DIR,
    MOVE_MISSING_REPLICA,
    BrokerInfo,
    LogDirMoveStatus,
    OngoingReassignment,
    PartitionMove,
    PartitionStatus,
    PartitionTarget,
    ThrottlePlan,
)
from pykafka_ops.replica_placement import place_replicas, place_replicas_rack_aware

TopicPartition = tuple[str, int]
#: The broker and topic configs of a reassignment throttle (Kafka's ``QuotaConfig`` names).
LEADER_RATE, FOLLOWER_RATE = "leader.replication.throttled.rate", "follower.replication.throttled.rate"
LOG_DIR_RATE = "replica.alter.log.dirs.io.max.bytes.per.second"
LEADER_REPLICAS, FOLLOWER_REPLICAS = "leader.replication.throttled.replicas", "follower.replication.throttled.replicas"
BROKER_THROTTLES = (LEADER_RATE, FOLLOWER_RATE, LOG_DIR_RATE)
TOPIC_THROTTLES = (LEADER_REPLICAS, FOLLOWER_REPLICAS)


class ReassignmentDataError(ValueError):
    """A JSON file or flag value that cannot be a reassignment (a usage error)."""


def _java_list(values: Iterable[Any]) -> str:
    """Java's ``List.toString``: ``[1, 2]``, ``[any, any]``."""
    return "[" + ", ".join(str(v) for v in values) + "]"


def _load(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReassignmentDataError(f"The input string is not a valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ReassignmentDataError("The input string is not a valid JSON: expected an object")
    version = data.get("version", 1)
    if version != 1 or isinstance(version, bool):
        raise ReassignmentDataError(f"Not supported version field value {version}")
    return data


def _entries(data: Mapping[str, Any], field: str) -> list[Any]:
    entries = data.get(field, [])
    if not isinstance(entries, list):
        raise ReassignmentDataError(f'"{field}" must be a list')
    return entries


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _target(entry: Any) -> PartitionTarget:
    if not isinstance(entry, dict):
        raise ReassignmentDataError(f"Each partition must be an object, got {json.dumps(entry)}")
    topic, partition, replicas = entry.get("topic"), entry.get("partition"), entry.get("replicas")
    if not isinstance(topic, str) or not _is_int(partition) or not isinstance(replicas, list) \
            or not all(_is_int(r) for r in replicas):
        raise ReassignmentDataError('Each partition needs "topic" (a string), "partition" (an integer) and '
                                    f'"replicas" (a list of broker ids), got {json.dumps(entry)}')
    log_dirs = entry.get("log_dirs", [ANY_LOG_DIR] * len(replicas))
    if not isinstance(log_dirs, list) or not all(isinstance(d, str) for d in log_dirs):
        raise ReassignmentDataError(f'"log_dirs" must be a list of strings, got {json.dumps(log_dirs)}')
    if len(log_dirs) != len(replicas):
        raise ReassignmentDataError(f"Size of replicas list {_java_list(replicas)} is different from size of log dirs "
                                    f"list {_java_list(log_dirs)} for partition {topic}-{partition}")
    return PartitionTarget(topic, partition, tuple(replicas), tuple(log_dirs))


def parse_reassignment_json(text: str) -> tuple[PartitionTarget, ...]:
    """The partitions of a --reassignment-json-file, in file order, duplicates kept (Kafka's
    ``parsePartitionReassignmentData``): ``{"version":1,"partitions":[{"topic":..,"partition":..,
    "replicas":[..],"log_dirs":[..]}]}``."""
    return tuple(_target(entry) for entry in _entries(_load(text), "partitions"))


def check_execute_plan(targets: Sequence[PartitionTarget]) -> None:
    """What --execute refuses before asking the cluster (Kafka's ``parseExecuteAssignmentArgs``):
    an empty plan, an empty replica list, a partition twice, a broker twice in one partition."""
    if not targets:
        raise ReassignmentDataError("Partition reassignment list cannot be empty")
    if any(not t.replicas for t in targets):
        raise ReassignmentDataError("Partition replica list cannot be empty")
    names = [t.name for t in targets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ReassignmentDataError(f"Partition reassignment contains duplicate topic partitions: {','.join(duplicates)}")
    repeated = [f"{t.name} contains multiple entries for {','.join(str(b) for b in sorted(_duplicates(t.replicas)))}"
                for t in targets if _duplicates(t.replicas)]
    if repeated:
        raise ReassignmentDataError(f"Partition replica lists may not contain duplicate entries: {'. '.join(repeated)}")


def _duplicates(values: Sequence[Any]) -> set[Any]:
    return {v for v in values if values.count(v) > 1}


def parse_topics_json(text: str) -> list[str]:
    """The topics of a --topics-to-move-json-file (``{"topics":[{"topic":"foo"}],"version":1}``),
    refusing duplicates as Kafka does."""
    topics = []
    for entry in _entries(_load(text), "topics"):
        if not isinstance(entry, dict) or not isinstance(entry.get("topic"), str):
            raise ReassignmentDataError(f'Each topic must be {{"topic": "<name>"}}, got {json.dumps(entry)}')
        topics.append(entry["topic"])
    duplicates = sorted(_duplicates(topics))
    if duplicates:
        raise ReassignmentDataError(f"List of topics to reassign contains duplicate entries: {_java_list(duplicates)}")
    return topics


def parse_broker_list(text: str) -> list[int]:
    """``1,2,3`` → [1, 2, 3]; a duplicate or a non-integer is refused."""
    try:
        brokers = [int(b) for b in text.split(",")]
    except ValueError:
        raise ReassignmentDataError(f"Invalid broker list '{text}': expected broker ids like 1,2,3") from None
    duplicates = sorted(_duplicates(brokers))
    if duplicates:
        raise ReassignmentDataError(f"Broker list contains duplicate entries: {_java_list(duplicates)}")
    return brokers


def targets_from(assignment: Mapping[TopicPartition, Sequence[int]]) -> tuple[PartitionTarget, ...]:
    """An assignment as reassignment entries, sorted by topic then partition, log dirs ``any``."""
    return tuple(PartitionTarget(t, p, tuple(r), (ANY_LOG_DIR,) * len(r)) for (t, p), r in sorted(assignment.items()))


def reassignment_json(targets: Iterable[PartitionTarget]) -> str:
    """Kafka's ``formatAsReassignmentJson``: compact, version first, sorted by topic then partition."""
    partitions = [{"topic": t.topic, "partition": t.partition, "replicas": list(t.replicas),
                   "log_dirs": list(t.log_dirs)} for t in sorted(targets, key=lambda t: (t.topic, t.partition))]
    return json.dumps({"version": 1, "partitions": partitions}, separators=(",", ":"), ensure_ascii=False)


def usable_brokers(cluster: Sequence[BrokerInfo], wanted: Sequence[int], rack_aware: bool) -> list[BrokerInfo]:
    """The brokers of --broker-list that exist (the others are left out, as Kafka does), racks
    dropped unless ``rack_aware``; some with a rack and some without is refused."""
    found = [b if rack_aware else BrokerInfo(b.broker_id, b.host, b.port) for b in cluster if b.broker_id in wanted]
    rackless = sum(b.rack is None for b in found)
    if rack_aware and 0 < rackless < len(found):
        raise ReassignmentDataError("Not all brokers have rack information. Add --disable-rack-aware in command line "
                                    "to make replica assignment without rack information.")
    return found


def assign_replicas(brokers: Sequence[BrokerInfo], partitions: int, replication_factor: int,
                    rng: random.Random | None = None) -> dict[int, list[int]]:
    """Kafka's ``AdminUtils.assignReplicasToBrokers`` from partition 0, random start: rack-aware
    when any broker has a rack."""
    if replication_factor > len(brokers):
        raise ReassignmentDataError(f"Replication factor: {replication_factor} larger than available brokers: "
                                    f"{len(brokers)}.")
    if not any(b.rack for b in brokers):
        return place_replicas(sorted(b.broker_id for b in brokers), partitions, replication_factor, rng=rng)
    return place_replicas_rack_aware({b.broker_id: b.rack or "" for b in brokers}, partitions, replication_factor,
                                     rng or random.Random())


def propose_assignment(current: Mapping[TopicPartition, Sequence[int]], brokers: Sequence[BrokerInfo],
                       rng: random.Random | None = None) -> dict[TopicPartition, list[int]]:
    """--generate's proposal (Kafka's ``calculateAssignment``): each topic placed afresh on
    ``brokers`` with its partition count and the replication factor of its first partition."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in current:
        by_topic.setdefault(topic, []).append(partition)
    proposed = {}
    for topic, indexes in sorted(by_topic.items()):
        replication_factor = len(current[(topic, min(indexes))])
        for partition, replicas in assign_replicas(brokers, len(indexes), replication_factor, rng).items():
            proposed[(topic, partition)] = replicas
    return proposed


def change_replication_factor(current: Mapping[TopicPartition, Sequence[int]], brokers: Sequence[int],
                              replication_factor: int, load: Mapping[int, int]) -> dict[TopicPartition, list[int]]:
    """Each partition with ``replication_factor`` replicas: the current ones kept in order (the
    leader stays), then ``brokers`` not yet holding it, least loaded first (``load``: replicas per
    broker in the cluster, counted as brokers are added), or the last replicas dropped."""
    if replication_factor < 1:
        raise ReassignmentDataError(f"Replication factor must be larger than 0, got {replication_factor}")
    if replication_factor > len(set(brokers)):
        raise ReassignmentDataError(f"Replication factor: {replication_factor} larger than available brokers: "
                                    f"{len(set(brokers))}.")
    counts = {b: load.get(b, 0) for b in brokers}
    proposed = {}
    for key, replicas in sorted(current.items()):
        chosen = list(replicas[:replication_factor])
        while len(chosen) < replication_factor:
            candidates = sorted((b for b in counts if b not in chosen), key=lambda b: (counts[b], b))
            if not candidates:
                raise ReassignmentDataError(f"Not enough brokers to give {key[0]}-{key[1]} {replication_factor} replicas")
            chosen.append(candidates[0])
            counts[candidates[0]] += 1
        proposed[key] = chosen
    return proposed


def move_map(ongoing: Iterable[OngoingReassignment], proposed: Mapping[TopicPartition, Sequence[int]],
             current: Mapping[TopicPartition, Sequence[int]]) -> dict[TopicPartition, PartitionMove]:
    """Every partition moving once the plan runs (Kafka's ``calculateProposedMoveMap``): the
    ongoing reassignments (their sources: replicas not being added), then the plan's partitions
    (sources: the ongoing move's, else the current replicas; destinations: the others)."""
    moves = {(r.topic, r.partition): PartitionMove(frozenset(r.replicas) - frozenset(r.adding), frozenset(r.adding))
             for r in ongoing}
    for key, replicas in proposed.items():
        if key in moves:
            sources = moves[key].sources
        elif key in current:
            sources = frozenset(current[key])
        else:
            raise ReassignmentDataError(f"Trying to reassign a topic partition {key[0]}-{key[1]} with 0 replicas")
        moves[key] = PartitionMove(sources, frozenset(replicas) - sources)
    return moves


def throttle_plan(moves: Mapping[TopicPartition, PartitionMove]) -> ThrottlePlan:
    """The topic and broker throttle configs for ``moves`` (Kafka's ``calculateLeaderThrottles``,
    ``calculateFollowerThrottles``, ``calculateReassigningBrokers``): entries ``partition:broker``
    sorted as strings, as Kafka's TreeSet sorts them."""
    leaders: dict[str, set[str]] = {}
    followers: dict[str, set[str]] = {}
    for (topic, partition), move in moves.items():
        leaders.setdefault(topic, set()).update(f"{partition}:{b}" for b in move.sources)
        followers.setdefault(topic, set()).update(f"{partition}:{b}" for b in move.destinations - move.sources)
    brokers = sorted(set().union(*(m.sources | m.destinations for m in moves.values())))
    return ThrottlePlan({t: ",".join(sorted(v)) for t, v in sorted(leaders.items())},
                        {t: ",".join(sorted(v)) for t, v in sorted(followers.items())}, tuple(brokers))


def partition_states(targets: Iterable[PartitionTarget], ongoing: Mapping[TopicPartition, OngoingReassignment],
                     replicas_now: Mapping[TopicPartition, Sequence[int]]) -> tuple[PartitionStatus, ...]:
    """--verify's partition states (Kafka's ``findPartitionReassignmentStates``): in progress
    while listed as ongoing, else done with the replicas the cluster has (none for an unknown
    partition); sorted by topic then partition."""
    states = []
    for t in targets:
        key = (t.topic, t.partition)
        if key in ongoing:
            states.append(PartitionStatus(t.topic, t.partition, ongoing[key].replicas, t.replicas, False))
        else:
            states.append(PartitionStatus(t.topic, t.partition, tuple(replicas_now.get(key, ())), t.replicas, True))
    return tuple(sorted(states, key=lambda s: (s.topic, s.partition)))


def log_dir_states(targets: Iterable[PartitionTarget],
                   replica_dirs: Mapping[tuple[str, int, int], tuple[str | None, str | None]]
                   ) -> tuple[LogDirMoveStatus, ...]:
    """--verify's log-dir move states (Kafka's ``findLogDirMoveStates``) from each replica's
    (current dir, future dir) as DescribeLogDirs reports it; sorted by broker, topic, partition."""
    states = []
    for t in targets:
        for broker, target_dir in t.log_dir_moves.items():
            found = replica_dirs.get((t.topic, t.partition, broker))
            current_dir, future_dir = found if found is not None else (None, None)
            if found is None:
                state = MOVE_MISSING_REPLICA
            elif current_dir is None:
                state = MOVE_MISSING_LOG_DIR
            elif future_dir is None:
                state = MOVE_COMPLETED if current_dir == target_dir else MOVE_CANCELLED
            else:
                state = MOVE_ACTIVE
            states.append(LogDirMoveStatus(t.topic, t.partition, broker, target_dir, current_dir, future_dir, state))
    return tuple(sorted(states, key=lambda s: (s.broker, s.topic, s.partition)))


def throttle_targets(targets: Iterable[PartitionTarget], cluster_brokers: Iterable[int]) -> tuple[list[int], list[str]]:
    """The brokers (every broker in the cluster and in the plan) and topics (those of the plan)
    whose throttles --verify and --cancel clear (Kafka's ``clearAllThrottles``)."""
    plan = list(targets)
    brokers = set(cluster_brokers).union(*(t.replicas for t in plan))
    return sorted(brokers), sorted({t.topic for t in plan})
