"""Partition reassignment (KIP-455) as pure functions over a ``PartitionImage``: Kafka's
``PartitionReassignmentReplicas``, ``PartitionReassignmentRevert`` and the reassignment steps of
``PartitionChangeBuilder``.

A reassignment of a partition from its current replicas to a target goes through three stages:

1. one ``PartitionChangeRecord`` sets replicas = target + the replicas being removed, with
   ``adding_replicas`` (target − current) and ``removing_replicas`` (current − target); the added
   brokers then hold the partition and follow its leader;
2. the leader adds each new replica to the ISR once it has caught up (AlterPartition);
3. the change that leaves every target replica in the ISR (after taking the removed ones out)
   completes it: replicas = target, ISR = ISR − removing, adding/removing cleared, a new leader
   from the target when the old one is removed. A reassignment that adds nothing (a shrink or a
   reordering) completes in its first record.

The leader epoch goes up whenever a replica leaves the replica set, even if the leader stays
(Kafka's ``triggerLeaderEpochBumpForReplicaReassignmentIfNeeded``): the removed replicas' fetches
are then fenced. Cancelling reverts: replicas − adding, ISR − adding; if that empties the ISR,
the first remaining replica becomes the ISR, an unclean election refused unless the topic allows
unclean leader election.

Records carry only what changes. ``leader_epoch_bump`` asks for a new leader epoch with the same
leader (Kafka writes the leader field again for that; here the field would not say it).
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from cluster.controller.metadata_image import PartitionImage, TopicImage
from pykafka_ops.errors import ErrorCode

NO_LEADER = -1


class ReassignmentError(Exception):
    """A reassignment refused for one partition, with Kafka's error code."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def in_progress(partition: PartitionImage) -> bool:
    """Whether ``partition`` is being reassigned (Kafka's ``isReassignmentInProgress``)."""
    return bool(partition.adding_replicas or partition.removing_replicas)


def original_replicas(partition: PartitionImage) -> tuple[int, ...]:
    """The replicas before the ongoing reassignment (Kafka's ``originalReplicas``)."""
    return tuple(r for r in partition.replicas if r not in partition.adding_replicas)


def reassign(topic: TopicImage, partition: PartitionImage, target: Sequence[int],
             alive: AbstractSet[int]) -> dict[str, Any] | None:
    """The record that starts (or, if it needs no catching up, completes) moving ``partition`` to
    ``target``; None when nothing changes. The reassignment is computed from the replicas of
    the ongoing reassignment's origin, as Kafka's (a new target replaces an ongoing one: its
    current replica set, which holds the added replicas too, is what data exists)."""
    current = partition.replicas
    removing = tuple(sorted(set(current) - set(target)))
    adding = tuple(sorted(set(target) - set(current)))
    return build_change(topic, partition, alive, replicas=tuple(target) + removing, adding=adding,
                        removing=removing)


def cancel(topic: TopicImage, partition: PartitionImage, alive: AbstractSet[int],
           unclean_allowed: bool) -> dict[str, Any] | None:
    """The record that reverts the ongoing reassignment of ``partition`` (Kafka's
    ``cancelPartitionReassignment``); ReassignmentError when there is none, or when reverting
    needs an unclean election the topic does not allow."""
    if not in_progress(partition):
        raise ReassignmentError(ErrorCode.no_reassignment_in_progress,
                                "No partition reassignment is in progress for this topic or partition.")
    replicas = original_replicas(partition)
    isr = tuple(r for r in partition.isr if r not in partition.adding_replicas)
    unclean = not isr
    if unclean:
        if not unclean_allowed:
            raise ReassignmentError(ErrorCode.invalid_replica_assignment,
                                    f"Unable to revert partition assignment for {topic.name}:{partition.partition} "
                                    "because it would require an unclean leader election.")
        isr = replicas[:1]
    return build_change(topic, partition, alive, replicas=replicas, isr=isr, adding=(), removing=(),
                        unclean=unclean)


def build_change(topic: TopicImage, partition: PartitionImage, alive: AbstractSet[int], *,
                 replicas: tuple[int, ...] | None = None, isr: tuple[int, ...] | None = None,
                 adding: tuple[int, ...] | None = None, removing: tuple[int, ...] | None = None,
                 unclean: bool = False) -> dict[str, Any] | None:
    """Kafka's ``PartitionChangeBuilder.build`` for reassignments and ISR changes: the targets
    (the partition's own values where not given), completed if the ISR allows, a leader elected
    when the current one is no longer in the ISR or no longer alive, the leader epoch bumped when
    a replica leaves; the ``PartitionChangeRecord`` of what differs, or None."""
    replicas = partition.replicas if replicas is None else replicas
    isr = partition.isr if isr is None else isr
    adding = partition.adding_replicas if adding is None else adding
    removing = partition.removing_replicas if removing is None else removing
    completed = _maybe_complete(replicas, adding, removing, isr)
    if completed is not None:
        replicas, isr = completed
        adding = removing = ()
    leader = _elect(partition.leader, replicas, isr, alive, unclean)
    record: dict[str, Any] = {"type": "PartitionChangeRecord", "topic_id": str(topic.topic_id),
                              "partition": partition.partition}
    if leader != partition.leader:
        record["leader"] = leader
    elif not set(partition.replicas) <= set(replicas):
        record["leader_epoch_bump"] = True  # a replica leaves: fence its fetches
    for key, new, old in (("isr", isr, partition.isr), ("replicas", replicas, partition.replicas),
                          ("adding_replicas", adding, partition.adding_replicas),
                          ("removing_replicas", removing, partition.removing_replicas)):
        if tuple(new) != tuple(old):
            record[key] = list(new)
    return record if len(record) > 3 else None


def _maybe_complete(replicas: Sequence[int], adding: Sequence[int], removing: Sequence[int],
                    isr: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(replicas, ISR) once a reassignment completes, else None (Kafka's
    ``maybeCompleteReassignment``): every replica kept is in the ISR without the removed ones."""
    if not adding and not removing:
        return None
    new_isr = tuple(r for r in isr if r not in removing)
    new_replicas = tuple(r for r in replicas if r not in removing)
    if not new_isr or not new_replicas or not set(new_replicas) <= set(new_isr):
        return None
    return new_replicas, new_isr


def _elect(leader: int, replicas: Sequence[int], isr: Sequence[int], alive: AbstractSet[int],
           unclean: bool) -> int:
    """Kafka's ``electAnyLeader``: the current leader if it stays in the ISR and is alive, else
    the first replica (target order) in the ISR and alive; with ``unclean``, the first alive
    replica; else no leader."""
    if leader != NO_LEADER and leader in isr and leader in alive:
        return leader
    online = next((r for r in replicas if r in isr and r in alive), None)
    if online is not None:
        return online
    if unclean:
        return next((r for r in replicas if r in alive), NO_LEADER)
    return NO_LEADER
