"""Partition reassignments on the controller (KIP-455, Kafka's
``ReplicationControlManager.alterPartitionReassignments`` and ``PartitionChangeBuilder``): a
real QuorumController over a single-voter RaftQuorum with brokers 1-3 registered (the fixture of
``test_alter_partition_control``: partition 0 on 1, 2, 3, led by 1). Each stage's record, the
completion by an ISR expansion, cancelling, Kafka's refusals, and replay of the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_alter_partition_control import LEADER_EPOCH, PARTITION_EPOCH, _alter, _isr, _run

from cluster.controller.controller import QuorumController
from cluster.controller.metadata_image import MetadataImage, PartitionImage, image_records
from cluster.controller.raft_quorum import decode_record
from cluster.controller.reassignment_control import ReassignmentRequest, ReassignmentResult
from pykafka_ops.errors import ErrorCode


def _partition(controller: QuorumController, index: int = 0) -> PartitionImage:
    return controller.image.topics["replicated"].partitions[index]


async def _reassign(controller: QuorumController, replicas: tuple[int, ...] | None, partition: int = 0,
                    **kwargs: Any) -> ReassignmentResult:
    (result,) = await controller.alter_partition_reassignments(
        [ReassignmentRequest("replicated", partition, replicas)], **kwargs)
    return result


def _records(controller: QuorumController) -> list[tuple[int, dict[str, Any]]]:
    log = controller.quorum.raft_log
    return [(e.offset, decode_record(e)) for e in log.read(log.start_offset, 100_000) if not e.control]


def test_a_move_adds_the_targets_then_an_isr_expansion_completes_it_and_elects_from_the_target(
        tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> Any:
        # shrink the fixture partition to {1, 2} first, then move it to {2, 3}
        first = await _reassign(controller, (1, 2))
        shrunk = _partition(controller)
        started = await _reassign(controller, (2, 3))
        moving = _partition(controller)
        listed = controller.list_partition_reassignments(None)
        expanded = await _alter(controller, 1, epochs[1], _isr(1, 2, 3), leader_epoch=moving.leader_epoch,
                                partition_epoch=moving.partition_epoch)
        return first, shrunk, started, moving, listed, expanded, _partition(controller), controller

    first, shrunk, started, moving, listed, expanded, done, controller = _run(tmp_path, scenario)
    assert first.error_code == ErrorCode.none
    # a shrink adds nothing: complete in its first record, the leader epoch bumped (replica 3 left)
    assert (shrunk.replicas, shrunk.isr, shrunk.leader, shrunk.adding_replicas, shrunk.removing_replicas) == (
        (1, 2), (1, 2), 1, (), ())
    assert shrunk.leader_epoch == LEADER_EPOCH + 1 and shrunk.partition_epoch == PARTITION_EPOCH + 1
    assert started == ReassignmentResult("replicated", 0)
    assert (moving.replicas, moving.isr, moving.adding_replicas, moving.removing_replicas, moving.leader) == (
        (2, 3, 1), (1, 2), (3,), (1,), 1)
    assert moving.leader_epoch == shrunk.leader_epoch  # nothing left the replica set yet
    assert [(name, [p.partition for p in parts]) for name, parts in listed] == [("replicated", [0])]
    # the leader's expansion completes it: broker 1 leaves, 2 (first of the target in the ISR) leads
    assert expanded.error_code == ErrorCode.new_leader_elected
    assert (done.replicas, done.isr, done.leader, done.adding_replicas, done.removing_replicas) == (
        (2, 3), (2, 3), 2, (), ())
    assert done.leader_epoch == moving.leader_epoch + 1
    assert controller.list_partition_reassignments(None) == []
    records = _records(controller)
    replayed = MetadataImage().apply_all(records)
    assert replayed.topics["replicated"].partitions == controller.image.topics["replicated"].partitions
    versions = {r.get("version", 0) for _, r in records if r["type"] == "PartitionChangeRecord"}
    assert versions == {1}  # the reassignment fields are version 1 only


def test_cancel_reverts_to_the_original_replicas(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> Any:
        await _reassign(controller, (1, 2))
        before = _partition(controller)
        await _reassign(controller, (2, 3))
        moving = _partition(controller)
        snapshot = image_records(controller.image)
        cancelled = await _reassign(controller, None)
        again = await _reassign(controller, None)
        return before, moving, snapshot, cancelled, again, _partition(controller)

    before, moving, snapshot, cancelled, again, after = _run(tmp_path, scenario)
    assert moving.adding_replicas == (3,)
    # a snapshot taken mid-move keeps the reassignment
    rebuilt = MetadataImage().apply_all(enumerate(snapshot))
    assert rebuilt.topics["replicated"].partitions[0] == moving
    assert cancelled.error_code == ErrorCode.none
    # Kafka's originalReplicas: the replica list (target, then removing) without the added ones, so
    # the order may differ from the original's ({1, 2} comes back as 2, 1); the leader stays
    assert (after.replicas, after.isr, after.leader, after.adding_replicas, after.removing_replicas) == (
        (2, 1), before.isr, before.leader, (), ())
    assert after.leader_epoch == moving.leader_epoch + 1  # broker 3 left: its fetches are fenced
    assert again.error_code == ErrorCode.no_reassignment_in_progress


def test_refusals_are_per_partition_with_kafkas_codes(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> Any:
        results = await controller.alter_partition_reassignments([
            ReassignmentRequest("replicated", 0, (1, 1)),
            ReassignmentRequest("replicated", 0, (1, 7)),
            ReassignmentRequest("replicated", 0, ()),
            ReassignmentRequest("nope", 0, (1,)),
            ReassignmentRequest("replicated", 5, (1,)),
            ReassignmentRequest("replicated", 1, (3, 2, 1)),  # valid: committed with the refusals
        ])
        rf = await _reassign(controller, (1, 2), allow_replication_factor_change=False)
        return [r.error_code for r in results], rf, _partition(controller, 1)

    codes, rf, partition1 = _run(tmp_path, scenario)
    assert codes == [ErrorCode.invalid_replica_assignment, ErrorCode.invalid_replica_assignment,
                     ErrorCode.invalid_replica_assignment, ErrorCode.unknown_topic_or_partition,
                     ErrorCode.unknown_topic_or_partition, ErrorCode.none]
    assert rf.error_code == ErrorCode.invalid_replication_factor
    # 1, 2, 9 → 3, 2, 1: 3 added, 9 (never registered) removed once 3 is in the ISR
    assert (partition1.replicas, partition1.adding_replicas, partition1.removing_replicas) == ((3, 2, 1, 9), (3,), (9,))


def test_a_reordering_completes_at_once_and_keeps_the_leader(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> Any:
        await _reassign(controller, (3, 2, 1))
        return _partition(controller)

    p = _run(tmp_path, scenario)
    assert (p.replicas, p.isr, p.leader, p.adding_replicas, p.leader_epoch) == ((3, 2, 1), (1, 2, 3), 1, (),
                                                                                 LEADER_EPOCH)
