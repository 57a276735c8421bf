"""AlterPartition on the controller (``AlterPartitionControl``, Kafka's
``ReplicationControlManager.alterPartition``): a real QuorumController over a single-voter
RaftQuorum, three registered and unfenced brokers, and a 3-replica partition written as a
PartitionRecord (partition 1 names a broker that never registers). Each of Kafka's
refusals, and the ISR shrink and expand that commit a PartitionChangeRecord."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from cluster.controller.alter_partition import (
    RECOVERING,
    AlterPartitionResult,
    IsrMember,
    PartitionIsrRequest,
    PartitionIsrResult,
    TopicIsrRequest,
)
from cluster.controller.cluster_control import BrokerEndpoint
from cluster.controller.controller import QuorumController
from cluster.controller.metadata_image import MetadataImage
from cluster.controller.quorum import METADATA_LOG_CONFIG, METADATA_TOPIC
from cluster.controller.raft_quorum import RaftQuorum, decode_record
from cluster.log.manager import LogManager
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.errors import ErrorCode

T = TypeVar("T")
TOPIC_ID = uuid.UUID("00000000-0000-0000-0000-0000000000aa")
#: Partition 0: replicas 1, 2, 3, all in sync, led by 1 at leader epoch 3, partition epoch 5.
#: Partition 1: replicas 1, 2, 9 (9 never registers), ISR 1, 2.
LEADER_EPOCH, PARTITION_EPOCH = 3, 5


async def _ignore(_image: object) -> None:
    pass


def _controller(directory: Path, voters: tuple[int, ...] = (1,)) -> QuorumController:
    manager = LogManager(directory, 86_400_000)
    manager.startup()
    settings = broker_defaults() | {"broker.session.timeout.ms": 600_000}
    metadata_log = manager.get_or_create(METADATA_TOPIC, 0, topic_defaults(settings) | METADATA_LOG_CONFIG)
    controller = QuorumController(RaftQuorum(1, list(voters), metadata_log), settings, on_image=_ignore)
    controller.load()
    return controller


async def _three_brokers_and_a_partition(controller: QuorumController) -> dict[int, int]:
    """Brokers 1-3 registered and unfenced (their epochs), and the fixture topic."""
    controller.on_leadership()
    epochs = {}
    for broker_id in (1, 2, 3):
        _, epoch = await controller.register_broker(BrokerEndpoint(broker_id, f"i{broker_id}", "127.0.0.1",
                                                                   9090 + broker_id))
        await controller.broker_heartbeat(broker_id, epoch, epoch, False, False)
        epochs[broker_id] = epoch
    await controller._commit([
        {"type": "TopicRecord", "name": "replicated", "topic_id": str(TOPIC_ID)},
        {"type": "PartitionRecord", "topic_id": str(TOPIC_ID), "partition": 0, "replicas": [1, 2, 3],
         "isr": [1, 2, 3], "leader": 1, "leader_epoch": LEADER_EPOCH, "partition_epoch": PARTITION_EPOCH},
        {"type": "PartitionRecord", "topic_id": str(TOPIC_ID), "partition": 1, "replicas": [1, 2, 9],
         "isr": [1, 2], "leader": 1, "leader_epoch": 0, "partition_epoch": 0},
    ])
    assert all(not controller.image.brokers[b].fenced for b in (1, 2, 3))
    return epochs


def _run(tmp_path: Path, scenario: Callable[[QuorumController, dict[int, int]], Awaitable[T]]) -> T:
    async def main() -> T:
        controller = _controller(tmp_path)
        epochs = await _three_brokers_and_a_partition(controller)
        try:
            return await scenario(controller, epochs)
        finally:
            assert controller._watching is not None
            controller._watching.cancel()

    return asyncio.run(main())


def _isr(*members: int | tuple[int, int]) -> tuple[IsrMember, ...]:
    return tuple(IsrMember(*m) if isinstance(m, tuple) else IsrMember(m) for m in members)


async def _alter(controller: QuorumController, broker_id: int, broker_epoch: int, new_isr: tuple[IsrMember, ...],
                 partition: int = 0, leader_epoch: int = LEADER_EPOCH, partition_epoch: int = PARTITION_EPOCH,
                 topic_id: uuid.UUID = TOPIC_ID, **extra: Any) -> PartitionIsrResult:
    result = await controller.alter_partition(broker_id, broker_epoch, [TopicIsrRequest(topic_id, (
        PartitionIsrRequest(partition, leader_epoch, new_isr, partition_epoch, **extra),))])
    assert result.error_code == ErrorCode.none
    ((answered_id, (answer,)),) = result.topics
    assert answered_id == topic_id
    return answer


def test_an_isr_shrink_then_expand_commits_partition_change_records(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> Any:
        shrunk = await _alter(controller, 1, epochs[1], _isr(1, 2))
        after_shrink = controller.image.topics["replicated"].partitions[0]
        expanded = await _alter(controller, 1, epochs[1], _isr((1, epochs[1]), (2, epochs[2]), (3, epochs[3])),
                                partition_epoch=PARTITION_EPOCH + 1)
        return shrunk, after_shrink, expanded, controller

    shrunk, after_shrink, expanded, controller = _run(tmp_path, scenario)
    assert shrunk == PartitionIsrResult(0, ErrorCode.none, leader_id=1, leader_epoch=LEADER_EPOCH, isr=(1, 2),
                                        partition_epoch=PARTITION_EPOCH + 1)
    assert (after_shrink.isr, after_shrink.leader, after_shrink.leader_epoch, after_shrink.partition_epoch) == (
        (1, 2), 1, LEADER_EPOCH, PARTITION_EPOCH + 1)
    assert expanded.isr == (1, 2, 3) and expanded.partition_epoch == PARTITION_EPOCH + 2
    assert expanded.leader_epoch == LEADER_EPOCH
    # the records in the log, replayed as a broker replays them, build the same partition
    log = controller.quorum.raft_log
    records = [(e.offset, decode_record(e)) for e in log.read(log.start_offset, 100_000) if not e.control]
    changes = [r for _, r in records if r["type"] == "PartitionChangeRecord"]
    assert [c["isr"] for c in changes] == [[1, 2], [1, 2, 3]] and all("leader" not in c for c in changes)
    replayed = MetadataImage().apply_all(records)
    assert replayed.topics["replicated"].partitions == controller.image.topics["replicated"].partitions


def test_an_unchanged_isr_answers_the_current_state_without_a_record(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> tuple[PartitionIsrResult, bool]:
        end = controller.quorum.end_offset
        answer = await _alter(controller, 1, epochs[1], _isr(1, 2, 3))
        return answer, controller.quorum.end_offset == end

    answer, nothing_written = _run(tmp_path, scenario)
    assert answer == PartitionIsrResult(0, ErrorCode.none, 1, LEADER_EPOCH, (1, 2, 3), PARTITION_EPOCH)
    assert nothing_written


def test_a_controller_that_does_not_lead_answers_not_controller(tmp_path: Path) -> None:
    async def scenario() -> AlterPartitionResult:
        follower = _controller(tmp_path, voters=(1, 2))  # no election held: it does not lead
        return await follower.alter_partition(1, 0, [TopicIsrRequest(TOPIC_ID, ())])

    assert asyncio.run(scenario()) == AlterPartitionResult(ErrorCode.not_controller)


def test_a_stale_or_unknown_requester_is_refused_at_the_top_level(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> list[AlterPartitionResult]:
        request = [TopicIsrRequest(TOPIC_ID, (PartitionIsrRequest(0, LEADER_EPOCH, _isr(1), PARTITION_EPOCH),))]
        return [await controller.alter_partition(1, epochs[1] - 1, request),
                await controller.alter_partition(42, 0, request)]

    assert _run(tmp_path, scenario) == [AlterPartitionResult(ErrorCode.stale_broker_epoch)] * 2


def test_unknown_topics_and_partitions_and_epoch_mismatches(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> dict[str, ErrorCode]:
        e1, image = epochs[1], controller.image
        answers = {
            "unknown topic id": await _alter(controller, 1, e1, _isr(1), topic_id=uuid.uuid4()),
            "unknown partition": await _alter(controller, 1, e1, _isr(1), partition=7),
            "newer leader epoch": await _alter(controller, 1, e1, _isr(1), leader_epoch=LEADER_EPOCH + 1),
            "newer partition epoch": await _alter(controller, 1, e1, _isr(1), partition_epoch=PARTITION_EPOCH + 1),
            "older leader epoch": await _alter(controller, 1, e1, _isr(1), leader_epoch=LEADER_EPOCH - 1),
            "not the leader": await _alter(controller, 2, epochs[2], _isr(2, 3)),
            "older partition epoch": await _alter(controller, 1, e1, _isr(1), partition_epoch=PARTITION_EPOCH - 1),
        }
        assert controller.image is image  # nothing committed
        return {name: answer.error_code for name, answer in answers.items()}

    assert _run(tmp_path, scenario) == {
        "unknown topic id": ErrorCode.unknown_topic_id,
        "unknown partition": ErrorCode.unknown_topic_or_partition,
        "newer leader epoch": ErrorCode.not_controller,  # Kafka: the leader heard from a newer controller
        "newer partition epoch": ErrorCode.not_controller,
        "older leader epoch": ErrorCode.fenced_leader_epoch,
        "not the leader": ErrorCode.invalid_request,  # Kafka's validateAlterPartitionData answers this
        "older partition epoch": ErrorCode.invalid_update_version,
    }


def test_an_invalid_new_isr_is_an_invalid_request(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> dict[str, ErrorCode]:
        e1 = epochs[1]
        answers = {
            "not a replica": await _alter(controller, 1, e1, _isr(1, 4)),
            "without the leader": await _alter(controller, 1, e1, _isr(2, 3)),
            "empty": await _alter(controller, 1, e1, ()),
            "duplicate": await _alter(controller, 1, e1, _isr(1, 2, 2)),
            "recovering": await _alter(controller, 1, e1, _isr(1), leader_recovery_state=RECOVERING),
        }
        return {name: answer.error_code for name, answer in answers.items()}

    assert set(_run(tmp_path, scenario).values()) == {ErrorCode.invalid_request}


def test_fenced_unregistered_or_restarted_replicas_are_ineligible(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> dict[str, ErrorCode]:
        e1 = epochs[1]
        answers = {
            "stale broker epoch (v3)": await _alter(controller, 1, e1, _isr((1, e1), (2, epochs[2] - 1))),
            "not registered": await _alter(controller, 1, e1, _isr(1, 2, 9), partition=1, leader_epoch=0,
                                           partition_epoch=0),
        }
        # broker 3 shuts down (controlled shutdown: fenced at once, and it leaves the ISR)
        await controller.broker_heartbeat(3, epochs[3], epochs[3], False, True)
        partition = controller.image.topics["replicated"].partitions[0]
        assert partition.isr == (1, 2)
        answers["fenced"] = await _alter(controller, 1, e1, _isr(1, 2, 3), partition_epoch=partition.partition_epoch)
        assert controller.image.topics["replicated"].partitions[0] == partition
        return {name: answer.error_code for name, answer in answers.items()}

    assert set(_run(tmp_path, scenario).values()) == {ErrorCode.ineligible_replica}


def test_two_changes_of_one_partition_in_one_request_are_checked_in_turn(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> AlterPartitionResult:
        return await controller.alter_partition(1, epochs[1], [TopicIsrRequest(TOPIC_ID, (
            PartitionIsrRequest(0, LEADER_EPOCH, _isr(1, 2), PARTITION_EPOCH),
            PartitionIsrRequest(0, LEADER_EPOCH, _isr(1), PARTITION_EPOCH),  # written for the old version
        ))])

    ((_, (first, second)),) = _run(tmp_path, scenario).topics
    assert first.error_code == ErrorCode.none and first.partition_epoch == PARTITION_EPOCH + 1
    assert second.error_code == ErrorCode.invalid_update_version
