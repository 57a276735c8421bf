"""A broker stand-in for the transaction coordinator's tests: a real ``__transaction_state``
partition log (replicas (1,) or more) led by broker 1 at leader epoch 5, a metadata image, a
producer-id allocator, and WriteTxnMarkers answered by a scripted leader."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cluster.controller.metadata_image import (
    BrokerImage,
    MetadataImage,
    PartitionImage,
    TopicImage,
)
from cluster.group.offsets_topic import OFFSETS_TOPIC
from cluster.log.config import LogConfig
from cluster.log.partition_log import PartitionLog
from cluster.replication.partition import Partition
from cluster.txn.coordinator import TransactionCoordinator
from cluster.txn.state_manager import TransactionConfig
from cluster.txn.transaction_log import TRANSACTION_STATE_TOPIC
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey

T0 = 1_700_000_000_000
COORDINATOR_EPOCH = 5


class ProducerIds:
    def __init__(self, first: int = 1000) -> None:
        self.next = first

    async def next_id(self) -> int:
        await asyncio.sleep(0)
        self.next += 1
        return self.next - 1


class Markers:
    """Answers WriteTxnMarkers: ``script`` maps a partition to the errors it answers in turn
    (then NONE); every request is kept; ``gate`` (if set) holds answers until it is set."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, dict[str, Any]]] = []
        self.script: dict[tuple[str, int], list[ErrorCode | Exception]] = {}
        self.gate: asyncio.Event | None = None

    async def __call__(self, leader: int, body: dict[str, Any]) -> Any:
        self.requests.append((leader, body))
        if self.gate is not None:
            await self.gate.wait()
        marker = body["markers"][0]
        topics = []
        for topic in marker["topics"]:
            partitions = []
            for index in topic["partition_indexes"]:
                queue = self.script.get((topic["name"], index), [])
                error = queue.pop(0) if queue else ErrorCode.none
                if isinstance(error, Exception):
                    raise error
                partitions.append({"partition_index": index, "error_code": error})
            topics.append({"name": topic["name"], "partitions": partitions})
        encoded = codec.encode_response_body(ApiKey.WRITE_TXN_MARKERS, 1, {
            "markers": [{"producer_id": marker["producer_id"], "topics": topics}]})
        return codec.decode_response(ApiKey.WRITE_TXN_MARKERS, 1, encoded)


def _placement(index: int, leader: int, replicas: tuple[int, ...]) -> PartitionImage:
    return PartitionImage(index, replicas, replicas, leader, COORDINATOR_EPOCH, 0)


def image(replicas: tuple[int, ...] = (1,), leader: int = 1, user_leader: int = 1) -> MetadataImage:
    brokers = {b: BrokerImage(b, "127.0.0.1", 9090 + b) for b in (1, 2, 3)}
    return MetadataImage(brokers=brokers, topics={
        TRANSACTION_STATE_TOPIC: TopicImage(TRANSACTION_STATE_TOPIC, uuid.uuid4(), {0: _placement(0, leader, replicas)}),
        "t": TopicImage("t", uuid.uuid4(), {i: _placement(i, user_leader, (1, 2, 3)) for i in range(3)}),
        OFFSETS_TOPIC: TopicImage(OFFSETS_TOPIC, uuid.uuid4(), {i: _placement(i, 1, (1,)) for i in range(50)}),
    })


def open_partition(directory: Path, replicas: tuple[int, ...] = (1,), epoch: int = COORDINATOR_EPOCH) -> Partition:
    config = LogConfig.from_topic_config(topic_defaults(broker_defaults()) | {"min.insync.replicas": 1})
    log = PartitionLog.open(directory / f"{TRANSACTION_STATE_TOPIC}-0", config, 86_400_000, clean_shutdown=True)
    partition = Partition(TRANSACTION_STATE_TOPIC, 0, uuid.uuid4(), log, 1)
    partition.update_leadership(1, epoch, replicas, replicas, now_ms=T0)
    return partition


class ReplicaManager:
    def __init__(self, partition: Partition | None) -> None:
        self.owned = partition

    def partition(self, topic: str, index: int) -> Partition | None:
        return self.owned if (topic, index) == (TRANSACTION_STATE_TOPIC, 0) else None


def broker(partition: Partition | None, metadata: MetadataImage | None = None) -> SimpleNamespace:
    return SimpleNamespace(node_id=1, image=metadata or image(), replica_manager=ReplicaManager(partition),
                           config={"offsets.topic.num.partitions": 50}, producer_ids=ProducerIds())


async def loaded_coordinator(b: SimpleNamespace, markers: Markers | None = None,
                             config: TransactionConfig | None = None,
                             make: Callable[..., TransactionCoordinator] = TransactionCoordinator
                             ) -> TransactionCoordinator:
    """A coordinator (one ``__transaction_state`` partition) that has loaded partition 0."""
    coordinator = make(b, config or TransactionConfig(num_partitions=1, max_timeout_ms=60_000),  # type: ignore[arg-type]
                       markers or Markers())
    coordinator.markers.backoff_s = 0.001
    coordinator.on_metadata_update(b.image)
    for task in list(coordinator._loads.values()):
        await task
    return coordinator


async def settle(coordinator: TransactionCoordinator) -> None:
    """Wait until no markers are in flight."""
    for _ in range(1000):
        if not coordinator.markers.pending:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"markers still in flight: {list(coordinator.markers.pending)}")
