"""Broker fencing rules of the controller, with a fake clock and no sockets: heartbeat sessions
(``BrokerHeartbeatManager``), Kafka's rack-unaware replica placement, and the leadership moves
written when a broker is fenced or unfenced (``ReplicationControl._leader_changes``), replayed
through ``MetadataDelta`` as the brokers replay them."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path
from typing import Any

from cluster.controller.broker_heartbeats import BrokerHeartbeatManager
from cluster.controller.cluster_control import BrokerEndpoint
from cluster.controller.controller import QuorumController
from cluster.controller.metadata_image import MetadataImage
from cluster.controller.quorum import METADATA_LOG_CONFIG, METADATA_TOPIC
from cluster.controller.raft_quorum import RaftQuorum
from cluster.controller.topics import NewTopic
from cluster.log.manager import LogManager
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.errors import ErrorCode
from pykafka_ops.replica_placement import place_replicas

SESSION_MS = 1_000


def test_a_broker_heard_within_the_session_timeout_keeps_its_session() -> None:
    sessions = BrokerHeartbeatManager(SESSION_MS)
    sessions.touch(1, now_ms=0)
    sessions.touch(2, now_ms=0)
    sessions.touch(1, now_ms=900)
    assert sessions.expired(now_ms=999) == []
    assert sessions.expired(now_ms=1_000) == [2]
    assert sessions.has_valid_session(1, 1_000) and not sessions.has_valid_session(2, 1_000)


def test_a_new_active_controller_gives_every_unfenced_broker_a_full_session() -> None:
    sessions = BrokerHeartbeatManager(SESSION_MS)
    sessions.activate([1, 2], now_ms=5_000)
    assert sessions.expired(now_ms=5_999) == []
    assert sessions.expired(now_ms=6_000) == [1, 2]
    # not heard yet: a restarted process of broker 1 may register at once
    assert not sessions.has_valid_session(1, 5_001)


def test_an_ended_session_never_expires() -> None:
    sessions = BrokerHeartbeatManager(SESSION_MS)
    sessions.touch(3, now_ms=0)
    sessions.end_session(3)
    assert sessions.expired(now_ms=10_000) == [] and not sessions.has_valid_session(3, 1)


def test_the_next_expiry_is_the_earliest_session_end() -> None:
    sessions = BrokerHeartbeatManager(SESSION_MS)
    assert sessions.next_expiry_ms() is None
    sessions.touch(1, now_ms=100)
    sessions.touch(2, now_ms=300)
    assert sessions.next_expiry_ms() == 1_100
    sessions.touch(1, now_ms=400)
    assert sessions.next_expiry_ms() == 1_300
    sessions.end_session(2)
    assert sessions.next_expiry_ms() == 1_400


def test_placement_spreads_leaders_and_followers_as_kafka() -> None:
    brokers = [1, 2, 3]
    placed = place_replicas(brokers, 6, 1, rng=random.Random(7))
    assert Counter(r[0] for r in placed.values()) == {1: 2, 2: 2, 3: 2}
    wide = place_replicas(brokers, 30, 3, rng=random.Random(1))
    assert all(sorted(r) == brokers for r in wide.values())
    assert Counter(r[0] for r in wide.values()) == {1: 10, 2: 10, 3: 10}
    grown = place_replicas(brokers, 3, 1, first_partition=6, rng=random.Random(3))
    assert sorted(grown) == [6, 7, 8] and Counter(r[0] for r in grown.values()) == {1: 1, 2: 1, 3: 1}


def test_placement_starts_at_a_random_broker() -> None:
    firsts = {place_replicas([1, 2, 3], 1, 1, rng=random.Random(seed))[0][0] for seed in range(20)}
    assert firsts == {1, 2, 3}


async def _ignore(_image: object) -> None:
    pass


def _controller(directory: Path) -> QuorumController:
    manager = LogManager(directory, 86_400_000)
    manager.startup()
    settings = broker_defaults() | {"broker.session.timeout.ms": SESSION_MS}
    metadata_log = manager.get_or_create(METADATA_TOPIC, 0, topic_defaults(settings) | METADATA_LOG_CONFIG)
    controller = QuorumController(RaftQuorum(1, [1], metadata_log), settings, on_image=_ignore)
    controller.load()
    return controller


async def _cluster_of_three(controller: QuorumController) -> dict[int, int]:
    controller.on_leadership()
    epochs = {}
    for broker_id in (1, 2, 3):
        error, epoch = await controller.register_broker(BrokerEndpoint(broker_id, f"i{broker_id}", "127.0.0.1",
                                                                       9090 + broker_id))
        assert error == ErrorCode.none
        assert controller.image.brokers[broker_id].fenced
        beat = await controller.broker_heartbeat(broker_id, epoch, epoch, False, False)
        assert (beat.error_code, beat.is_fenced, beat.is_caught_up) == (ErrorCode.none, False, True)
        epochs[broker_id] = epoch
    return epochs


def _leaders(image: MetadataImage, topic: str) -> dict[int, int]:
    return {p.partition: p.leader for p in image.topics[topic].partitions.values()}


def test_fencing_takes_leadership_away_and_unfencing_gives_it_back(tmp_path: Path) -> None:
    async def scenario() -> dict[str, Any]:
        controller = _controller(tmp_path)
        epochs = await _cluster_of_three(controller)
        (created,) = await controller.create_topics([NewTopic("orders", 6, 1)])
        assert created.error_code == ErrorCode.none
        before = _leaders(controller.image, "orders")
        assert Counter(before.values()) == {1: 2, 2: 2, 3: 2}
        epoch_before = controller.image.topics["orders"].partitions[0].leader_epoch
        # broker 2 asks to shut down (controlled shutdown): fenced, its partitions offline
        down = await controller.broker_heartbeat(2, epochs[2], epochs[2], False, True)
        assert down.should_shut_down and down.is_fenced
        offline = _leaders(controller.image, "orders")
        # a stale epoch is refused, an unknown broker too
        stale = await controller.broker_heartbeat(2, epochs[2] - 1, 10**9, False, False)
        unknown = await controller.broker_heartbeat(7, 0, 10**9, False, False)
        # a broker that is fenced cannot be placed on
        (refused,) = await controller.create_topics([NewTopic("on-fenced", assignments={0: [2]})])
        back = await controller.broker_heartbeat(2, epochs[2], epochs[2], False, False)
        controller._watching.cancel()
        return {"before": before, "offline": offline, "after": _leaders(controller.image, "orders"),
                "stale": stale.error_code, "unknown": unknown.error_code, "refused": refused.error_code,
                "back": back.is_fenced, "epochs": (epoch_before, controller.image.topics["orders"].partitions)}

    result = asyncio.run(scenario())
    before = result["before"]
    assert result["offline"] == {p: (-1 if leader == 2 else leader) for p, leader in before.items()}
    assert result["after"] == before and result["back"] is False
    assert result["stale"] == ErrorCode.stale_broker_epoch and result["unknown"] == ErrorCode.broker_id_not_registered
    assert result["refused"] == ErrorCode.invalid_replica_assignment
    epoch_before, partitions = result["epochs"]
    moved = [p for p, leader in before.items() if leader == 2]
    assert all(partitions[p].leader_epoch == epoch_before + 2 for p in moved)  # -1, then 2 again
    assert all(partitions[p].isr == (2,) for p in moved)  # the last ISR member stays in it


def test_a_silent_broker_is_fenced_after_the_session_timeout(tmp_path: Path) -> None:
    async def scenario() -> tuple[bool, bool, int]:
        controller = _controller(tmp_path)
        epochs = await _cluster_of_three(controller)
        await controller.create_topics([NewTopic("t", 3, 1)])
        deadline = asyncio.get_running_loop().time() + 5
        while asyncio.get_running_loop().time() < deadline:
            for broker_id in (1, 3):  # broker 2 stays silent
                await controller.broker_heartbeat(broker_id, epochs[broker_id], epochs[broker_id], False, False)
            if controller.image.brokers[2].fenced:
                break
            await asyncio.sleep(0.05)
        fenced = controller.image.brokers[2].fenced
        others = controller.image.brokers[1].fenced or controller.image.brokers[3].fenced
        # a second process registering as broker 1 while broker 1 heartbeats is refused
        duplicate, _ = await controller.register_broker(BrokerEndpoint(1, "another", "127.0.0.1", 9091))
        controller._watching.cancel()
        return fenced, others, duplicate

    fenced, others, duplicate = asyncio.run(scenario())
    assert fenced and not others
    assert duplicate == ErrorCode.duplicate_broker_registration


def test_replay_of_fence_records_matches_the_controller(tmp_path: Path) -> None:
    """A broker replaying the log builds the controller's image (records, not side effects)."""

    async def scenario() -> QuorumController:
        controller = _controller(tmp_path)
        epochs = await _cluster_of_three(controller)
        await controller.create_topics([NewTopic("t", 6, 1)])
        await controller.broker_heartbeat(3, epochs[3], epochs[3], False, True)
        controller._watching.cancel()
        return controller

    controller = asyncio.run(scenario())
    replayed = _controller(tmp_path / "replay")
    replayed.image = MetadataImage().apply_all(
        (offset, record) for offset, record in _records(controller))
    assert replayed.image.brokers == controller.image.brokers
    assert replayed.image.topics["t"].partitions == controller.image.topics["t"].partitions


def _records(controller: QuorumController) -> list[tuple[int, Any]]:
    from cluster.controller.raft_quorum import decode_record

    log = controller.quorum.raft_log
    entries = log.read(log.start_offset, 100_000)
    return [(entry.offset, decode_record(entry)) for entry in entries if not entry.control]
