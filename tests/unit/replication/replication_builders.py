"""Builders for the replication tests (imported by name: this directory has no __init__.py): a real PartitionLog in a tmp dir, a Partition led by
broker 1 with replicas (1, 2, 3), and handler contexts around it."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cluster.log.config import LogConfig
from cluster.log.partition_log import PartitionLog
from cluster.network.request import RequestContext
from cluster.replication.partition import Partition
from cluster.replication.replication_quota import ReplicationQuotas
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol import codec
from pykafka_ops.records import RecordBatchBuilder

T0 = 1_700_000_000_000
TOPIC = "t"


def records(n: int = 1) -> memoryview:
    """One v2 batch of ``n`` records as the Produce path hands it to the log."""
    builder = RecordBatchBuilder()
    for i in range(n):
        builder.append(b"k%d" % i, b"v%d" % i, timestamp_ms=T0 + i)
    return memoryview(bytearray(builder.build()))


class FakeReplicaManager:
    def __init__(self, partition: Partition) -> None:
        self.partitions = {(partition.topic, partition.index): partition}
        self.quotas = ReplicationQuotas(partition.broker_id, broker_defaults(), lambda _topic: None)

    def partition(self, topic: str, index: int) -> Partition | None:
        return self.partitions.get((topic, index))

    def absent_error(self, topic: str, index: int) -> ErrorCode:
        return ErrorCode.unknown_topic_or_partition

    def current_leader(self, topic: str, index: int) -> tuple[int, int] | None:
        partition = self.partitions.get((topic, index))
        return None if partition is None else (partition.leader, partition.leader_epoch)


def context(partition: Partition, api_key: int, version: int, received_at: float = 0.0) -> RequestContext:
    broker = SimpleNamespace(replica_manager=FakeReplicaManager(partition), config={"fetch.max.bytes": 50 << 20})
    return RequestContext(api_key, version, 1, "test", "127.0.0.1:1", broker, received_at)  # type: ignore[arg-type]


def encoded(api_key: int, version: int, body: dict[str, Any]) -> tuple[bytearray, int]:
    frame = bytearray(codec.encode_request(api_key, version, 1, "test", body))
    return frame, codec.decode_request_header(memoryview(frame)).size


def partition_factory(tmp_path: Path):
    """``make_partition(replicas=(1, 2, 3), isr=..., min_isr=1, broker_id=1)``: broker 1 leads at
    epoch 5; each broker id has its own log directory."""

    def make(replicas: tuple[int, ...] = (1, 2, 3), isr: tuple[int, ...] | None = None, min_isr: int = 1,
             broker_id: int = 1, leader: int = 1, epoch: int = 5) -> Partition:
        config = LogConfig.from_topic_config(topic_defaults(broker_defaults()) | {"min.insync.replicas": min_isr})
        directory = tmp_path / (f"{TOPIC}-0" if broker_id == 1 else f"broker-{broker_id}/{TOPIC}-0")
        log = PartitionLog.open(directory, config, 86_400_000, clean_shutdown=True)
        partition = Partition(TOPIC, 0, uuid.uuid4(), log, broker_id)
        partition.update_leadership(leader, epoch, replicas, replicas if isr is None else isr, now_ms=T0)
        return partition

    return make
