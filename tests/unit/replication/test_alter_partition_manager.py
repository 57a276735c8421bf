"""AlterPartitionManager (Kafka's ``DefaultAlterPartitionManager``): batching with one request in
flight, retries, stale changes dropped; the v3 request and answer through the codec and the
controller listener's handler; and a shrink then an expand committed by a real QuorumController
in process (no sockets)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from replication_builders import T0

from cluster.controller.alter_partition import (
    AlterPartitionResult,
    IsrMember,
    PartitionIsrRequest,
    PartitionIsrResult,
    TopicIsrRequest,
)
from cluster.controller.cluster_control import BrokerEndpoint
from cluster.controller.controller import QuorumController
from cluster.controller.quorum import METADATA_LOG_CONFIG, METADATA_TOPIC
from cluster.controller.raft_quorum import RaftQuorum
from cluster.controller_requests import alter_partition_body, alter_partition_result
from cluster.handlers.alter_partition import handle_alter_partition
from cluster.log.config import LogConfig
from cluster.log.manager import LogManager
from cluster.log.partition_log import PartitionLog
from cluster.network.request import RequestContext
from cluster.replication.alter_partition_manager import AlterPartitionManager
from cluster.replication.partition import Partition
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey

TOPIC_ID = uuid.UUID("00000000-0000-0000-0000-0000000000bb")
LAG_MS = 30_000


def _partition(tmp_path: Path, index: int = 0, leader_epoch: int = 5, partition_epoch: int = 10,
               isr: tuple[int, ...] = (1, 2, 3)) -> Partition:
    config = LogConfig.from_topic_config(topic_defaults(broker_defaults()))
    log = PartitionLog.open(tmp_path / f"t-{index}", config, 86_400_000, clean_shutdown=True)
    partition = Partition("t", index, TOPIC_ID, log, 1)
    partition.update_leadership(1, leader_epoch, (1, 2, 3), isr, now_ms=T0, partition_epoch=partition_epoch)
    return partition


class FakeController:
    """Answers each AlterPartition after ``gate`` is set (one per call), accepting the ISR."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, list[TopicIsrRequest]]] = []
        self.gates: list[asyncio.Event] = []
        self.top_level: list[ErrorCode] = []  # errors answered first, one per call
        self.skip: set[int] = set()  # partitions left out of the next answer

    async def send(self, broker_epoch: int, topics: Sequence[TopicIsrRequest]) -> AlterPartitionResult:
        self.calls.append((broker_epoch, list(topics)))
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        if self.top_level:
            return AlterPartitionResult(self.top_level.pop(0))
        skip, self.skip = self.skip, set()
        return AlterPartitionResult(ErrorCode.none, tuple(
            (t.topic_id, tuple(PartitionIsrResult(p.partition, ErrorCode.none, 1, p.leader_epoch,
                                                  tuple(m.broker_id for m in p.new_isr), p.partition_epoch + 1)
                               for p in t.partitions if p.partition not in skip)) for t in topics))

    async def release(self) -> None:
        self.gates[-1].set()
        for _ in range(5):
            await asyncio.sleep(0)


def _manager(controller: FakeController) -> AlterPartitionManager:
    return AlterPartitionManager(1, lambda: 77, controller.send, retry_backoff_s=0.0)


def test_changes_are_batched_with_one_request_in_flight(tmp_path: Path) -> None:
    async def scenario() -> None:
        controller = FakeController()
        manager = _manager(controller)
        a, b, c = (_partition(tmp_path, i) for i in range(3))
        for p in (a, b, c):
            p.alter_partition_manager = manager
        assert a.maybe_shrink_isr(T0 + LAG_MS + 1, LAG_MS) is not None
        await asyncio.sleep(0)
        b.maybe_shrink_isr(T0 + LAG_MS + 1, LAG_MS)
        c.maybe_shrink_isr(T0 + LAG_MS + 1, LAG_MS)
        assert len(controller.calls) == 1 and manager.in_flight and manager.pending() == 3
        assert manager.submit(a, a.pending_isr) is False  # a second change of a queued partition: refused
        epoch, topics = controller.calls[0]
        assert epoch == 77 and [p.partition for p in topics[0].partitions] == [0]
        assert topics[0].partitions[0].new_isr == (IsrMember(1, 77),)  # the leader's own epoch; others -1
        await controller.release()
        assert a.isr == (1,) and a.partition_epoch == 11 and a.pending_isr is None
        assert len(controller.calls) == 2 and [p.partition for p in controller.calls[1][1][0].partitions] == [1, 2]
        await controller.release()
        assert (b.isr, c.isr) == ((1,), (1,)) and manager.pending() == 0 and not manager.in_flight

    asyncio.run(scenario())


def test_refused_requests_and_missing_partitions_are_sent_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        controller = FakeController()
        manager = _manager(controller)
        a, b = _partition(tmp_path, 0), _partition(tmp_path, 1)
        a.alter_partition_manager = b.alter_partition_manager = manager
        controller.top_level = [ErrorCode.not_controller]
        a.maybe_shrink_isr(T0 + LAG_MS + 1, LAG_MS)
        b.maybe_shrink_isr(T0 + LAG_MS + 1, LAG_MS)
        await asyncio.sleep(0)
        await controller.release()  # NOT_CONTROLLER: all again
        controller.skip = {1}
        await controller.release()  # partition 1 missing from the answer: again
        assert a.isr == (1,) and b.pending_isr is not None
        await controller.release()
        assert b.isr == (1,) and [len(t[0].partitions) for _, t in controller.calls] == [2, 2, 1]

    asyncio.run(scenario())


def test_a_change_the_metadata_replaced_is_not_sent(tmp_path: Path) -> None:
    async def scenario() -> None:
        controller = FakeController()
        manager = _manager(controller)
        a, b = _partition(tmp_path, 0), _partition(tmp_path, 1)
        a.alter_partition_manager = b.alter_partition_manager = manager
        a.maybe_shrink_isr(T0 + LAG_MS + 1, LAG_MS)
        await asyncio.sleep(0)
        b.maybe_shrink_isr(T0 + LAG_MS + 1, LAG_MS)
        b.update_leadership(1, 5, (1, 2, 3), (1, 2), now_ms=T0, partition_epoch=11)  # metadata: pending ends
        await controller.release()
        assert len(controller.calls) == 1 and manager.pending() == 0 and b.isr == (1, 2)

    asyncio.run(scenario())


def test_the_v3_request_and_answer_through_the_codec_and_the_controller_handler() -> None:
    topics = [TopicIsrRequest(TOPIC_ID, (PartitionIsrRequest(4, 5, (IsrMember(1, 77), IsrMember(2, -1)), 10),))]
    seen: list[Any] = []

    async def alter_partition(broker_id: int, broker_epoch: int, requested: list[TopicIsrRequest]) -> Any:
        seen.append((broker_id, broker_epoch, requested))
        return AlterPartitionResult(ErrorCode.none, ((TOPIC_ID, (PartitionIsrResult(4, ErrorCode.none, 1, 5, (1, 2),
                                                                                   11),)),))

    frame = codec.encode_request(ApiKey.ALTER_PARTITION, 3, 9, "broker-1", alter_partition_body(1, 77, topics))
    header = codec.decode_request_header(memoryview(frame))
    request = codec.decode_request(ApiKey.ALTER_PARTITION, 3, memoryview(frame), header.size)
    broker = SimpleNamespace(controller=SimpleNamespace(alter_partition=alter_partition))
    ctx = RequestContext(ApiKey.ALTER_PARTITION, 3, 9, "broker-1", "127.0.0.1:1", broker, 0.0)  # type: ignore[arg-type]
    body = asyncio.run(handle_alter_partition(ctx, request))
    assert seen == [(1, 77, topics)]
    answer = codec.encode_response(ApiKey.ALTER_PARTITION, 3, 9, body)
    decoded = codec.decode_response(ApiKey.ALTER_PARTITION, 3, answer,
                                    codec.response_header_size(ApiKey.ALTER_PARTITION, 3))
    assert alter_partition_result(decoded) == AlterPartitionResult(
        ErrorCode.none, ((TOPIC_ID, (PartitionIsrResult(4, ErrorCode.none, 1, 5, (1, 2), 11),)),))


async def _ignore(_image: object) -> None:
    pass


def test_shrink_and_expand_committed_by_a_real_controller(tmp_path: Path) -> None:
    async def scenario() -> None:
        manager_dir = LogManager(tmp_path / "controller", 86_400_000)
        manager_dir.startup()
        settings = broker_defaults() | {"broker.session.timeout.ms": 600_000}
        metadata_log = manager_dir.get_or_create(METADATA_TOPIC, 0, topic_defaults(settings) | METADATA_LOG_CONFIG)
        controller = QuorumController(RaftQuorum(1, [1], metadata_log), settings, on_image=_ignore)
        controller.load()
        controller.on_leadership()
        epochs = {}
        for broker_id in (1, 2, 3):
            _, epoch = await controller.register_broker(BrokerEndpoint(broker_id, f"i{broker_id}", "127.0.0.1",
                                                                       9090 + broker_id))
            await controller.broker_heartbeat(broker_id, epoch, epoch, False, False)
            epochs[broker_id] = epoch
        await controller._commit([
            {"type": "TopicRecord", "name": "t", "topic_id": str(TOPIC_ID)},
            {"type": "PartitionRecord", "topic_id": str(TOPIC_ID), "partition": 0, "replicas": [1, 2, 3],
             "isr": [1, 2, 3], "leader": 1, "leader_epoch": 5, "partition_epoch": 10}])
        try:
            manager = AlterPartitionManager(1, lambda: epochs[1],
                                            lambda e, topics: controller.alter_partition(1, e, topics),
                                            image=lambda: controller.image)
            p = _partition(tmp_path)
            p.alter_partition_manager = manager
            p.update_follower_fetch(2, 0, T0 + LAG_MS, broker_epoch=epochs[2])
            assert p.maybe_shrink_isr(T0 + LAG_MS + 1, LAG_MS) is not None  # 3 never fetched
            while manager.pending():
                await asyncio.sleep(0.001)
            image = controller.image.topics["t"].partitions[0]
            assert (p.isr, p.partition_epoch, p.pending_isr) == ((1, 2), 11, None) == (image.isr, 11, None)
            p.update_follower_fetch(3, 0, T0 + LAG_MS + 2, broker_epoch=epochs[3])  # caught up: expand
            assert p.pending_isr is not None and p.maximal_isr == (1, 2, 3)
            while manager.pending():
                await asyncio.sleep(0.001)
            assert (p.isr, p.partition_epoch) == ((1, 2, 3), 12)
            assert controller.image.topics["t"].partitions[0].isr == (1, 2, 3)
            manager.close()
        finally:
            assert controller._watching is not None
            controller._watching.cancel()

    asyncio.run(scenario())
