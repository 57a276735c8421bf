"""Replication on the controller (``ReplicationControl``, Kafka's ``ReplicationControlManager``):
CreateTopics / CreatePartitions with a replication factor above 1 and Kafka's refusals, manual
assignments, and leader election (``partition_change``, Kafka's ``PartitionChangeBuilder``): a
fenced leader replaced by an ISR member, a partition offline with its last ISR member kept, the
returning ISR member elected on unfence, and unclean leader election (topic config, else broker
default; on fence, on unfence, on a config change). A real QuorumController over a single-voter
RaftQuorum, no sockets."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cluster.controller.cluster_control import BrokerEndpoint
from cluster.controller.controller import QuorumController
from cluster.controller.metadata_image import PartitionImage, TopicImage
from cluster.controller.partition_change import elect, unclean_election_enabled
from cluster.controller.quorum import METADATA_LOG_CONFIG, METADATA_TOPIC
from cluster.controller.raft_quorum import RaftQuorum
from cluster.controller.topics import NewTopic
from cluster.log.manager import LogManager
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.errors import ErrorCode

T = TypeVar("T")


def _partition(replicas: tuple[int, ...], isr: tuple[int, ...], leader: int) -> PartitionImage:
    return PartitionImage(0, replicas, isr, leader, leader_epoch=4, partition_epoch=7)


# -- the election rule, alone ------------------------------------------------------------------

def test_a_fenced_follower_leaves_the_isr_and_the_leader_stays() -> None:
    assert elect(_partition((1, 2, 3), (1, 2, 3), 1), {1, 3}, False, leaving_isr=2) == (1, (1, 3))


def test_a_fenced_leader_is_replaced_by_the_first_isr_replica_in_replica_order() -> None:
    assert elect(_partition((3, 1, 2), (1, 2, 3), 3), {1, 2}, False, leaving_isr=3) == (1, (1, 2))


def test_the_last_isr_member_stays_in_the_isr_and_the_partition_goes_offline() -> None:
    offline = _partition((1, 2, 3), (2,), 2)
    assert elect(offline, {1, 3}, False, leaving_isr=2) == (-1, (2,))
    # an unfenced replica outside the ISR does not lead unless unclean election is on
    assert elect(_partition((1, 2, 3), (2,), -1), {1, 3}, False) == (-1, (2,))
    assert elect(_partition((1, 2, 3), (2,), -1), {1, 2, 3}, False) == (2, (2,))


def test_unclean_election_picks_the_first_unfenced_replica_and_makes_it_the_isr() -> None:
    assert elect(_partition((1, 2, 3), (2,), 2), {3, 1}, True, leaving_isr=2) == (1, (1,))
    assert elect(_partition((1, 2, 3), (2,), 2), set(), True, leaving_isr=2) == (-1, (2,))
    # an ISR member alive wins over unclean
    assert elect(_partition((1, 2, 3), (2, 3), 2), {1, 3}, True, leaving_isr=2) == (3, (3,))


@pytest.mark.parametrize(("overrides", "broker", "expected"), [
    ({}, False, False), ({}, True, True), ({"unclean.leader.election.enable": True}, False, True),
    ({"unclean.leader.election.enable": False}, True, False), ({"unclean.leader.election.enable": "true"}, False, True),
])
def test_the_topic_config_overrides_the_broker_default(overrides: dict[str, Any], broker: bool,
                                                       expected: bool) -> None:
    topic = TopicImage("t", uuid.uuid4(), config=overrides)
    assert unclean_election_enabled(topic, {"unclean.leader.election.enable": broker}) is expected


# -- on the controller -------------------------------------------------------------------------

async def _ignore(_image: object) -> None:
    pass


def _run(tmp_path: Path, scenario: Callable[[QuorumController, dict[int, int]], Awaitable[T]],
         brokers: tuple[int, ...] = (1, 2, 3), **settings: Any) -> T:
    async def main() -> T:
        manager = LogManager(tmp_path, 86_400_000)
        manager.startup()
        config = broker_defaults() | {"broker.session.timeout.ms": 600_000} | settings
        metadata_log = manager.get_or_create(METADATA_TOPIC, 0, topic_defaults(config) | METADATA_LOG_CONFIG)
        controller = QuorumController(RaftQuorum(1, [1], metadata_log), config, on_image=_ignore)
        controller.load()
        controller.on_leadership()
        epochs = {}
        for broker_id in brokers:
            _, epoch = await controller.register_broker(BrokerEndpoint(broker_id, f"i{broker_id}", "127.0.0.1",
                                                                       9090 + broker_id))
            await controller.broker_heartbeat(broker_id, epoch, epoch, False, False)
            epochs[broker_id] = epoch
        try:
            return await scenario(controller, epochs)
        finally:
            assert controller._watching is not None
            controller._watching.cancel()

    return asyncio.run(main())


async def _fence(controller: QuorumController, epochs: dict[int, int], broker_id: int) -> None:
    beat = await controller.broker_heartbeat(broker_id, epochs[broker_id], epochs[broker_id], False, True)
    assert beat.is_fenced


async def _unfence(controller: QuorumController, epochs: dict[int, int], broker_id: int) -> None:
    beat = await controller.broker_heartbeat(broker_id, epochs[broker_id], epochs[broker_id], False, False)
    assert not beat.is_fenced


def _state(controller: QuorumController, topic: str, partition: int = 0) -> tuple[int, tuple[int, ...]]:
    p = controller.image.topics[topic].partitions[partition]
    return p.leader, p.isr


def test_create_topics_places_three_replicas_all_in_sync(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, _epochs: dict[int, int]) -> None:
        (created,) = await controller.create_topics([NewTopic("orders", 6, 3, config={"min.insync.replicas": 2})])
        assert (created.error_code, created.replication_factor, created.partitions) == (ErrorCode.none, 3, 6)
        topic = controller.image.topics["orders"]
        assert topic.config == {"min.insync.replicas": 2}
        for p in topic.partitions.values():
            assert sorted(p.replicas) == [1, 2, 3] and p.isr == p.replicas and p.leader == p.replicas[0]
        assert sorted(p.leader for p in topic.partitions.values()) == [1, 1, 2, 2, 3, 3]
        grown = await controller.create_partitions("orders", 9, None, validate_only=False)
        assert (grown.error_code, grown.replication_factor) == (ErrorCode.none, 3)
        assert all(sorted(p.replicas) == [1, 2, 3] for p in controller.image.topics["orders"].partitions.values())

    _run(tmp_path, scenario)


def test_a_replication_factor_above_the_brokers_is_refused_with_kafkas_message(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> list[tuple[ErrorCode, str | None]]:
        results = await controller.create_topics([NewTopic("four", 1, 4), NewTopic("zero", 1, 0)])
        await _fence(controller, epochs, 3)
        (three,) = await controller.create_topics([NewTopic("three", 1, 3)])
        await controller.create_topics([NewTopic("two", 1, 2)])
        grown = await controller.create_partitions("two", 2, None, validate_only=False)  # fits on 1 and 2
        assert grown.error_code == ErrorCode.none
        await _fence(controller, epochs, 2)
        more = await controller.create_partitions("two", 3, None, validate_only=False)
        return [(r.error_code, r.error_message) for r in (*results, three, more)]

    code = ErrorCode.invalid_replication_factor
    assert _run(tmp_path, scenario) == [
        (code, ("Unable to replicate the partition 4 time(s): The target replication factor of 4 cannot be reached "
               "because only 3 broker(s) are registered.")),
        (code, ("Unable to replicate the partition 0 time(s): Invalid replication factor 0: the replication factor "
               "must be positive.")),
        (code, ("Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached "
               "because only 2 of the 3 registered broker(s) are unfenced.")),
        (code, ("Unable to replicate the partition 2 time(s): The target replication factor of 2 cannot be reached "
               "because only 1 of the 3 registered broker(s) are unfenced.")),
    ]


def test_manual_assignments_are_checked_as_kafka(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> dict[str, Any]:
        await _fence(controller, epochs, 3)
        answers = {}
        cases = {"repeated": {0: [1, 1]}, "unknown": {0: [1, 7]}, "empty": {0: []}, "all fenced": {0: [3]},
                 "uneven": {0: [1, 2], 1: [2]}}
        for name, assignments in cases.items():
            (result,) = await controller.create_topics([NewTopic(name.replace(" ", "-"), assignments=assignments)])
            answers[name] = (result.error_code, result.error_message)
        # a fenced broker may be named next to an unfenced one: it starts outside the ISR
        (ok,) = await controller.create_topics([NewTopic("with-fenced", assignments={0: [3, 1], 1: [1, 2]})])
        answers["with fenced"] = (ok.error_code, _state(controller, "with-fenced"), _state(controller, "with-fenced", 1))
        wrong_rf = await controller.create_partitions("with-fenced", 3, [[1]], validate_only=False)
        answers["create partitions"] = (wrong_rf.error_code, wrong_rf.error_message)
        return answers

    answers = _run(tmp_path, scenario)
    bad = ErrorCode.invalid_replica_assignment
    assert answers == {
        "repeated": (bad, "The manual partition assignment includes the broker 1 more than once."),
        "unknown": (bad, "The manual partition assignment includes broker 7, but no such broker is registered."),
        "empty": (bad, "The manual partition assignment includes an empty replica list."),
        "all fenced": (bad, ("All brokers specified in the manual partition assignment for partition 0 are fenced or "
                            "in controlled shutdown.")),
        "uneven": (bad, ("The manual partition assignment includes a partition with 1 replica(s), but this is not "
                        "consistent with previous partitions, which have 2 replica(s).")),
        "with fenced": (ErrorCode.none, (1, (1,)), (1, (1, 2))),
        "create partitions": (bad, ("The manual partition assignment includes a partition with 1 replica(s), but this "
                                   "is not consistent with previous partitions, which have 2 replica(s).")),
    }


def test_fencing_moves_leadership_within_the_isr_and_unfencing_brings_the_last_member_back(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> list[Any]:
        await controller.create_topics([NewTopic("t", assignments={0: [1, 2, 3]})])
        seen = [_state(controller, "t")]
        for broker_id in (1, 2, 3):
            await _fence(controller, epochs, broker_id)
            seen.append(_state(controller, "t"))
        await _unfence(controller, epochs, 1)  # not in the ISR: stays offline (unclean is off)
        seen.append(_state(controller, "t"))
        await _unfence(controller, epochs, 3)  # the last ISR member: leads again
        seen.append(_state(controller, "t"))
        seen.append(controller.image.topics["t"].partitions[0].leader_epoch)
        return seen

    assert _run(tmp_path, scenario) == [(1, (1, 2, 3)), (2, (2, 3)), (3, (3,)), (-1, (3,)), (-1, (3,)), (3, (3,)), 4]


def test_unclean_election_on_fencing_when_the_topic_allows_it(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> list[Any]:
        await controller.create_topics([
            NewTopic("clean", assignments={0: [1, 2]}),
            NewTopic("unclean", assignments={0: [1, 2]}, config={"unclean.leader.election.enable": "true"})])
        await _fence(controller, epochs, 2)  # ISR [1]
        await _fence(controller, epochs, 1)  # the last ISR member: 2 is unfenced only later
        seen = [_state(controller, "clean"), _state(controller, "unclean")]
        await _unfence(controller, epochs, 2)  # outside the ISR: leads the unclean topic only
        seen += [_state(controller, "clean"), _state(controller, "unclean")]
        return seen

    assert _run(tmp_path, scenario) == [(-1, (1,)), (-1, (1,)), (-1, (1,)), (2, (2,))]


def test_the_broker_default_enables_unclean_election_unless_the_topic_turns_it_off(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> list[Any]:
        await controller.create_topics([
            NewTopic("default", assignments={0: [1, 2]}),
            NewTopic("off", assignments={0: [1, 2]}, config={"unclean.leader.election.enable": False})])
        await _fence(controller, epochs, 2)
        await _unfence(controller, epochs, 2)  # not back in the ISR: only its leader's AlterPartition does that
        await _fence(controller, epochs, 1)
        return [_state(controller, "default"), _state(controller, "off")]

    assert _run(tmp_path, scenario, **{"unclean.leader.election.enable": True}) == [(2, (2,)), (-1, (1,))]


def test_turning_unclean_election_on_elects_a_leader_for_an_offline_partition(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> list[Any]:
        await controller.create_topics([NewTopic("t", assignments={0: [1, 2], 1: [2, 3]})])
        await _fence(controller, epochs, 2)
        await _unfence(controller, epochs, 2)
        await _fence(controller, epochs, 1)  # partition 0: ISR [1], offline; partition 1: led by 3 since 2 was fenced
        seen: list[Any] = [_state(controller, "t"), _state(controller, "t", 1)]
        dry = await controller.alter_configs("t", {"unclean.leader.election.enable": "true"}, validate_only=True)
        seen.append((dry.error_code, _state(controller, "t")))
        result = await controller.alter_configs("t", {"unclean.leader.election.enable": "true"})
        seen += [result.error_code, _state(controller, "t"), _state(controller, "t", 1),
                 controller.image.topics["t"].config]
        return seen

    assert _run(tmp_path, scenario) == [
        (-1, (1,)), (3, (3,)), (ErrorCode.none, (-1, (1,))),
        ErrorCode.none, (2, (2,)), (3, (3,)), {"unclean.leader.election.enable": True}]


def test_min_insync_replicas_and_unclean_election_are_topic_configs_of_alter_configs(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, _epochs: dict[int, int]) -> list[Any]:
        await controller.create_topics([NewTopic("t", 1, 3)])
        set_ = await controller.alter_configs("t", {"min.insync.replicas": "2",
                                                    "unclean.leader.election.enable": "false"})
        bad = await controller.alter_configs("t", {"min.insync.replicas": "0"})
        return [set_.error_code, dict(controller.image.topics["t"].config), bad.error_code, bad.error_message]

    assert _run(tmp_path, scenario) == [
        ErrorCode.none, {"min.insync.replicas": 2, "unclean.leader.election.enable": False},
        ErrorCode.invalid_config, "min.insync.replicas: must be at least 1, got 0"]
