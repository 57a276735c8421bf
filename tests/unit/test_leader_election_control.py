"""Preferred and unclean leader elections on the controller (``LeaderElectionControl``, Kafka's
``ReplicationControlManager.electLeaders`` and ``maybeBalancePartitionLeaders``, KIP-460): each
per-partition answer, the epochs a change bumps, "every partition" answers, and the automatic
balance scheduled after a write that leaves a partition without its preferred leader. A real
QuorumController over a single-voter RaftQuorum, no sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cluster.controller import leader_election
from cluster.controller.cluster_control import BrokerEndpoint
from cluster.controller.controller import QuorumController
from cluster.controller.leader_election import (
    PREFERRED,
    UNCLEAN,
    ElectionResult,
    elect_preferred,
)
from cluster.controller.metadata_image import PartitionImage
from cluster.controller.quorum import METADATA_LOG_CONFIG, METADATA_TOPIC
from cluster.controller.raft_quorum import RaftQuorum
from cluster.controller.topics import NewTopic
from cluster.log.manager import LogManager
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.errors import ErrorCode

T = TypeVar("T")
#: Topic "t": partition p's preferred replica is broker p + 1.
ASSIGNMENTS = {0: (1, 2, 3), 1: (2, 3, 1), 2: (3, 1, 2)}


async def _ignore(_image: object) -> None:
    pass


def _run(tmp_path: Path, scenario: Callable[[QuorumController, dict[int, int]], Awaitable[T]],
         voters: tuple[int, ...] = (1,), **settings: Any) -> T:
    """``scenario(controller, broker epochs)`` with brokers 1-3 unfenced and topic "t" created
    (when the controller leads); ``settings`` override broker settings (dots as underscores)."""
    async def main() -> T:
        manager = LogManager(tmp_path, 86_400_000)
        manager.startup()
        config = (broker_defaults() | {"broker.session.timeout.ms": 600_000}
                  | {k.replace("_", "."): v for k, v in settings.items()})
        metadata_log = manager.get_or_create(METADATA_TOPIC, 0, topic_defaults(config) | METADATA_LOG_CONFIG)
        controller = QuorumController(RaftQuorum(1, list(voters), metadata_log), config, on_image=_ignore)
        controller.load()
        controller.on_leadership()
        epochs = {}
        if controller.is_active:
            for broker_id in (1, 2, 3):
                _, epoch = await controller.register_broker(
                    BrokerEndpoint(broker_id, f"i{broker_id}", "127.0.0.1", 9090 + broker_id))
                await controller.broker_heartbeat(broker_id, epoch, epoch, False, False)
                epochs[broker_id] = epoch
            (created,) = await controller.create_topics([NewTopic("t", assignments=ASSIGNMENTS)])
            assert created.error_code == ErrorCode.none
        try:
            return await scenario(controller, epochs)
        finally:
            for task in (controller._watching, controller._balancing):
                if task is not None:
                    task.cancel()

    return asyncio.run(main())


async def _move_leader(controller: QuorumController, partition: int, leader: int,
                       isr: tuple[int, ...] | None = None) -> None:
    """Commit a leadership change away from the preferred replica (as a fenced leader would)."""
    topic = controller.image.topics["t"]
    record: dict[str, Any] = {"type": "PartitionChangeRecord", "topic_id": str(topic.topic_id),
                              "partition": partition, "leader": leader}
    if isr is not None:
        record["isr"] = list(isr)
    await controller._commit([record])


def _partition(controller: QuorumController, partition: int) -> PartitionImage:
    return controller.image.topics["t"].partitions[partition]


def _codes(results: tuple[ElectionResult, ...]) -> list[tuple[str, int, ErrorCode]]:
    return [(r.topic, r.partition, r.error_code) for r in results]


# -- the rule alone ----------------------------------------------------------------------------

def test_the_preferred_replica_leads_only_when_unfenced_and_in_the_isr() -> None:
    moved = PartitionImage(0, (1, 2, 3), (1, 2, 3), 2, 4, 7)
    assert elect_preferred(moved, {1, 2, 3}) == (1, (1, 2, 3))
    assert elect_preferred(moved, {2, 3}) == (2, (1, 2, 3))  # fenced: the leader stays
    assert elect_preferred(PartitionImage(0, (1, 2, 3), (2, 3), 2, 4, 7), {1, 2, 3}) == (2, (2, 3))
    # no valid leader and the preferred replica cannot lead: the online election (Kafka's builder)
    assert elect_preferred(PartitionImage(0, (1, 2, 3), (2, 3), -1, 4, 7), {2, 3}) == (2, (2, 3))


# -- ElectLeaders ------------------------------------------------------------------------------

def test_a_preferred_election_moves_leadership_back_and_bumps_both_epochs(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, _epochs: dict[int, int]) -> None:
        await _move_leader(controller, 0, 2)
        before = _partition(controller, 0)
        answer = await controller.elect_leaders(PREFERRED, [("t", 0), ("t", 1)])
        assert answer.error_code == ErrorCode.none
        assert _codes(answer.results) == [("t", 0, ErrorCode.none), ("t", 1, ErrorCode.election_not_needed)]
        after = _partition(controller, 0)
        assert (after.leader, after.isr) == (1, (1, 2, 3))
        assert (after.leader_epoch, after.partition_epoch) == (before.leader_epoch + 1, before.partition_epoch + 1)
        again = await controller.elect_leaders(PREFERRED, [("t", 0)])
        assert _codes(again.results) == [("t", 0, ErrorCode.election_not_needed)]
        assert _partition(controller, 0) == after  # nothing written

    _run(tmp_path, scenario, auto_leader_rebalance_enable=False)


def test_a_preferred_replica_out_of_the_isr_or_fenced_cannot_lead(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> None:
        await _move_leader(controller, 0, 2, isr=(2, 3))  # broker 1 not in sync
        beat = await controller.broker_heartbeat(3, epochs[3], epochs[3], False, True)  # 3 shuts down
        assert beat.is_fenced
        assert _partition(controller, 2).leader == 1  # 3 led partition 2: moved to 1
        answer = await controller.elect_leaders(PREFERRED, [("t", 0), ("t", 2)])
        assert _codes(answer.results) == [("t", 0, ErrorCode.preferred_leader_not_available),
                                          ("t", 2, ErrorCode.preferred_leader_not_available)]
        assert (_partition(controller, 0).leader, _partition(controller, 2).leader) == (2, 1)

    _run(tmp_path, scenario, auto_leader_rebalance_enable=False)


def test_unknown_topics_and_partitions_and_a_bad_election_type(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, _epochs: dict[int, int]) -> None:
        answer = await controller.elect_leaders(PREFERRED, [("nope", 0), ("t", 9)])
        assert [(r.error_code, r.error_message) for r in answer.results] == [
            (ErrorCode.unknown_topic_or_partition, "No such topic as nope"),
            (ErrorCode.unknown_topic_or_partition, "No such partition as t-9")]
        bad = await controller.elect_leaders(7, [("t", 0)])
        assert bad.error_code == ErrorCode.invalid_request
        assert _codes(bad.results) == [("t", 0, ErrorCode.invalid_request)]

    _run(tmp_path, scenario)


def test_every_partition_answers_only_the_partitions_that_needed_an_election(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, _epochs: dict[int, int]) -> None:
        await _move_leader(controller, 1, 3)
        await _move_leader(controller, 2, 1, isr=(1, 2))
        answer = await controller.elect_leaders(PREFERRED, None)
        assert _codes(answer.results) == [("t", 1, ErrorCode.none), ("t", 2, ErrorCode.preferred_leader_not_available)]
        assert [_partition(controller, p).leader for p in ASSIGNMENTS] == [1, 2, 1]
        assert (await controller.elect_leaders(UNCLEAN, None)).results == ()  # every partition has a leader

    _run(tmp_path, scenario, auto_leader_rebalance_enable=False)


def test_an_unclean_election_elects_only_a_partition_without_a_leader(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> None:
        await _move_leader(controller, 0, 1, isr=(1,))  # only broker 1 in sync; then it goes away
        await controller.broker_heartbeat(1, epochs[1], epochs[1], False, True)
        assert (_partition(controller, 0).leader, _partition(controller, 0).isr) == (-1, (1,))
        answer = await controller.elect_leaders(UNCLEAN, [("t", 0), ("t", 1)])
        assert _codes(answer.results) == [("t", 0, ErrorCode.none), ("t", 1, ErrorCode.election_not_needed)]
        assert (_partition(controller, 0).leader, _partition(controller, 0).isr) == (2, (2,))

    _run(tmp_path, scenario, auto_leader_rebalance_enable=False)


def test_an_unclean_election_without_any_live_replica_is_refused(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> None:
        for broker_id in (1, 2, 3):
            await controller.broker_heartbeat(broker_id, epochs[broker_id], epochs[broker_id], False, True)
        answer = await controller.elect_leaders(UNCLEAN, [("t", 0)])
        assert _codes(answer.results) == [("t", 0, ErrorCode.eligible_leaders_not_available)]

    _run(tmp_path, scenario)


def test_a_controller_that_does_not_lead_answers_not_controller(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, _epochs: dict[int, int]) -> None:
        answer = await controller.elect_leaders(PREFERRED, [("t", 0)])
        assert answer.error_code == ErrorCode.not_controller
        assert _codes(answer.results) == [("t", 0, ErrorCode.not_controller)]

    _run(tmp_path, scenario, voters=(1, 2, 3))


# -- automatic balance -------------------------------------------------------------------------

async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_a_write_that_moves_a_leader_away_schedules_the_balance(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, _epochs: dict[int, int]) -> None:
        assert controller._balancing is None  # every partition led by its preferred replica
        await _move_leader(controller, 0, 2)
        await _move_leader(controller, 1, 1, isr=(1, 3))  # broker 2 out of sync: stays imbalanced
        await _until(lambda: _partition(controller, 0).leader == 1)
        assert _partition(controller, 1).leader == 1
        assert controller._balancing is not None  # partition 1 is tried again an interval later

    _run(tmp_path, scenario, leader_imbalance_check_interval_seconds=0)


def test_a_balance_writes_at_most_its_bound_and_says_when_to_run_again_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leader_election, "MAX_ELECTIONS_PER_IMBALANCE", 1)

    async def scenario(controller: QuorumController, _epochs: dict[int, int]) -> None:
        await _move_leader(controller, 0, 2)
        await _move_leader(controller, 1, 3)
        # as Kafka's: a balance that wrote as many changes as its bound may have left some
        assert await controller.balance_partition_leaders() is True
        assert [_partition(controller, p).leader for p in ASSIGNMENTS] == [1, 3, 3]
        assert await controller.balance_partition_leaders() is True
        assert await controller.balance_partition_leaders() is False
        assert [_partition(controller, p).leader for p in ASSIGNMENTS] == [1, 2, 3]

    _run(tmp_path, scenario)  # the default interval (300 s): only the direct calls balance


def test_no_balance_when_auto_leader_rebalance_is_off(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, _epochs: dict[int, int]) -> None:
        await _move_leader(controller, 0, 2)
        assert controller._balancing is None
        await asyncio.sleep(0.05)
        assert _partition(controller, 0).leader == 2

    _run(tmp_path, scenario, auto_leader_rebalance_enable=False, leader_imbalance_check_interval_seconds=0)


def test_a_new_active_controller_looks_at_the_whole_image(tmp_path: Path) -> None:
    async def scenario(controller: QuorumController, _epochs: dict[int, int]) -> None:
        controller.broker_defaults = {**controller.broker_defaults, "auto.leader.rebalance.enable": False}
        await _move_leader(controller, 0, 2)
        controller.broker_defaults = {**controller.broker_defaults, "auto.leader.rebalance.enable": True}
        controller.on_leadership()
        await _until(lambda: _partition(controller, 0).leader == 1)

    _run(tmp_path, scenario, leader_imbalance_check_interval_seconds=0)
