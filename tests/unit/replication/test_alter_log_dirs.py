"""Moving a replica between log dirs (AlterReplicaLogDirs): the copy keeps offsets, leader epochs,
producer state, transaction index and log start; the swap; what the current log does meanwhile
(appends, truncation, DeleteRecords, a new leader epoch); a crash mid-move; Kafka's error codes.
Real logs in temp dirs, driven step by step."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cluster.handlers.alter_replica_log_dirs import handle_alter_replica_log_dirs
from cluster.handlers.describe_log_dirs import handle_describe_log_dirs
from cluster.log.manager import LogManager
from cluster.log.partition_log import PartitionLog
from cluster.log.transactions import Origin, build_end_txn_marker
from cluster.network.request import RequestContext
from cluster.replication import alter_log_dirs
from cluster.replication.alter_log_dirs import ReplicaAlterLogDirsManager
from cluster.replication.partition import Partition
from cluster.security.acls import (
    ANONYMOUS,
    AclBinding,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
)
from cluster.security.authorizer import StandardAuthorizer
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records import RecordBatchBuilder
from pykafka_ops.records.batch import iter_batches

T0 = 1_700_000_000_000
TP = ("t", 0)
TOPIC_CONFIG = topic_defaults(broker_defaults()) | {"segment.bytes": 2000}


class Node:
    """A LogManager over dirs a and b, the partitions it hosts and a mover copying 300 bytes a step."""

    def __init__(self, tmp_path: Path) -> None:
        self.a, self.b = tmp_path / "a", tmp_path / "b"
        self.manager = LogManager([self.a, self.b], 86_400_000, metadata_log_dir=tmp_path / "node")
        self.manager.startup()
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.mover = ReplicaAlterLogDirsManager(self.manager, self.partitions.get, broker_defaults())
        self.sequences: dict[int, int] = {}

    def host(self, topic: str = "t", epoch: int = 5) -> Partition:
        log = self.manager.get_or_create(topic, 0, TOPIC_CONFIG)
        partition = Partition(topic, 0, uuid.uuid4(), log, 1)
        partition.update_leadership(1, epoch, (1,), (1,), now_ms=T0)
        self.partitions[(topic, 0)] = partition
        return partition

    def produce(self, partition: Partition, batches: int = 1, transactional: bool = False, pid: int = 77) -> None:
        """``batches`` idempotent batches of 3 records from producer ``pid``."""
        for _ in range(batches):
            seq = self.sequences.get(pid, 0)
            builder = RecordBatchBuilder(producer_id=pid, producer_epoch=0, base_sequence=seq,
                                         is_transactional=transactional)
            for i in range(3):
                builder.append(b"k%d" % i, b"v" * 40, timestamp_ms=T0 + seq)
            self.sequences[pid] = seq + 3
            partition.append_records_to_leader(memoryview(bytearray(builder.build())), -1, T0)

    def step(self, times: int = 1) -> int:
        return sum(self.mover.step(TP, 300, T0) for _ in range(times))


def _batches(log: PartitionLog) -> list[bytes]:
    """Every batch from the log start, whichever segment holds it (segments may be cut elsewhere)."""
    found, offset = [], log.log_start_offset
    while offset < log.log_end_offset:
        data = bytes(log.read(offset, 1 << 30, log.log_end_offset, True))
        for position, header in iter_batches(data):
            found.append(data[position:position + header.size])
            offset = header.last_offset + 1
    return found


def _state(log: PartitionLog) -> dict[str, Any]:
    """Everything that must be equal across the swap (segment boundaries need not be)."""
    state = log.producer_state
    return {
        "batches": _batches(log),
        "offsets": (log.log_start_offset, log.high_watermark, log.log_end_offset),
        "epochs": log.leader_epochs.entries,
        "producers": {pid: (e.epoch, list(e.batches), e.current_txn_first_offset)
                      for pid, e in state.producers.items()},
        "txns": (dict(state.ongoing_txns), list(state.unreplicated_txns)),
        "aborted": [e for s in log.segments for e in s.txn_index.entries],
    }


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return Node(tmp_path)


def test_a_move_copies_everything_while_the_partition_keeps_taking_writes_then_swaps(node: Node) -> None:
    partition = node.host()
    node.produce(partition, 6)
    node.produce(partition, 2, transactional=True)
    partition.append_records_to_leader(memoryview(bytearray(build_end_txn_marker(77, 0, 0, False, T0))), -1, T0,
                                       origin=Origin.COORDINATOR)
    partition.log.delete_records_before(4)  # log start inside the first batch
    old = partition.log
    assert node.mover.alter_log_dir(TP, str(node.b)) == ErrorCode.none
    future = node.manager.future_logs[TP]
    assert future.directory.parent == node.b and future.directory.name.startswith("t-0.")
    node.step(2)
    node.produce(partition, 3)  # served by the current log meanwhile
    partition.update_leadership(1, 6, (1,), (1,), now_ms=T0)  # a new epoch with no batch yet
    before = _state(old)
    while TP in node.manager.future_logs:
        assert node.step() > 0 or TP not in node.manager.future_logs
    assert partition.log is future and node.manager.logs[TP] is future
    assert future.directory == node.b / "t-0" and not (node.a / "t-0").exists()
    assert _state(future) == before and before["epochs"][-1].epoch == 6 and before["aborted"]
    assert old.directory.name.endswith("-delete") and old.directory.parent == node.a
    node.produce(partition, 1)  # the moved log takes writes; its producer state continues the sequence
    node.manager.shutdown()
    again = LogManager([node.a, node.b], 86_400_000, metadata_log_dir=node.a.parent / "node")
    again.startup()
    reopened = again.get_or_create("t", 0, TOPIC_CONFIG)
    assert reopened.directory == node.b / "t-0" and reopened.log_end_offset == future.log_end_offset
    assert not list(node.a.glob("t-0*"))  # the -delete dir went at shutdown


def test_truncation_and_log_start_moves_of_the_current_log_are_mirrored(node: Node) -> None:
    partition = node.host()
    node.produce(partition, 8)
    node.mover.alter_log_dir(TP, str(node.b))
    node.step(4)
    future = node.manager.future_logs[TP]
    copied = future.log_end_offset
    assert 0 < copied < partition.log.log_end_offset
    partition.log.truncate_to(6)  # a follower's truncation after a leader change
    assert future.log_end_offset == 6
    node.produce(partition, 2, pid=78)  # the truncation took producer 77's sequence back
    partition.log.delete_records_before(9)
    node.step()
    assert future.log_start_offset == partition.log.log_start_offset == 9
    partition.log.truncate_fully_and_start_at(30, T0)  # reset to the leader's log start: the copy restarts
    assert (future.log_start_offset, future.log_end_offset) == (30, 30)
    node.produce(partition, 2, pid=79)
    before = _state(partition.log)
    node.step(10)
    assert TP not in node.manager.future_logs and _state(partition.log) == before


def test_a_crash_mid_move_resumes_the_copy(node: Node, tmp_path: Path) -> None:
    partition = node.host()
    node.produce(partition, 10)
    node.mover.alter_log_dir(TP, str(node.b))
    node.step(3)
    copied = node.manager.future_logs[TP].log_end_offset
    before = _state(partition.log)
    for log in (partition.log, node.manager.future_logs[TP]):
        log.close(clean=False)  # kill -9
    restarted = Node(tmp_path)
    partition = restarted.host()
    assert restarted.manager.future_logs[TP].log_end_offset == copied  # resumed, not restarted
    restarted.step(20)
    assert TP not in restarted.manager.future_logs and partition.log.directory == node.b / "t-0"
    assert _state(partition.log)["batches"] == before["batches"]


def test_kafkas_answers(node: Node) -> None:
    partition = node.host()
    assert node.mover.alter_log_dir(TP, "/no/such/dir") == ErrorCode.log_dir_not_found
    assert node.mover.alter_log_dir(TP, str(node.a)) == ErrorCode.none  # there already: nothing to do
    assert node.manager.future_logs == {} and node.manager.preferred_dirs == {}
    assert node.mover.alter_log_dir(("later", 0), str(node.a)) == ErrorCode.replica_not_available
    assert node.manager.preferred_dirs == {("later", 0): node.a}
    assert node.mover.alter_log_dir(("__cluster_metadata", 0), str(node.b)) == ErrorCode.replica_not_available
    with pytest.MonkeyPatch.context() as patch:  # destinations for partitions not hosted: bounded, oldest out
        patch.setattr(alter_log_dirs, "MAX_PREFERRED_DIRS", 2)
        for index in (1, 2):
            node.mover.alter_log_dir(("later", index), str(node.b))
        assert list(node.manager.preferred_dirs) == [("later", 1), ("later", 2)]
        node.manager.preferred_dirs.clear()
        node.manager.preferred_dirs[("later", 0)] = node.a
    node.mover.alter_log_dir(TP, str(node.b))
    first = node.manager.future_logs[TP]
    assert node.mover.alter_log_dir(TP, str(node.a)) == ErrorCode.none  # back where it is: the move is cancelled
    assert node.manager.future_logs == {} and not first.directory.exists()
    node.b.rename(node.b.with_name("b-unmounted"))  # an offline dir
    assert node.mover.alter_log_dir(TP, str(node.b)) == ErrorCode.kafka_storage_error
    assert partition.log.directory.parent == node.a


def test_deleting_the_partition_cancels_its_move(node: Node) -> None:
    partition = node.host()
    node.produce(partition, 5)
    node.mover.alter_log_dir(TP, str(node.b))
    node.step()
    future = node.manager.future_logs[TP]
    node.manager.delete(*TP)
    del node.partitions[TP]
    assert node.step() == 0 and not future.directory.exists() and not (node.a / "t-0").exists()


def test_the_io_rate_bounds_the_copy(node: Node) -> None:
    """``replica.alter.log.dirs.io.max.bytes.per.second``: a token bucket holding one step's bytes
    (here a second's worth: a step copies at most that); what was copied beyond it is paid for by waiting."""
    node.mover.broker_config = broker_defaults() | {"replica.alter.log.dirs.io.max.bytes.per.second": 1000}
    assert node.mover._chunk_bytes() == 1000
    node.mover._refilled -= 10  # idle for long: the bucket is full, not more
    assert node.mover._throttle_delay(800) == 0.0
    assert node.mover._throttle_delay(1200) == pytest.approx(1.0, abs=0.05)  # 1000 bytes over the budget
    node.mover.broker_config = broker_defaults()  # Kafka's default: unlimited
    assert node.mover._throttle_delay(10**12) == 0.0


def _handle(node: Node, api_key: ApiKey, version: int, body: dict[str, Any], *allowed: AclOperation) -> Any:
    """The handler's answer to ``body`` with an authorizer allowing ``allowed`` on the cluster."""
    frame = bytearray(codec.encode_request(api_key, version, 1, "test", body))
    offset = codec.decode_request_header(memoryview(frame)).size
    request = codec.decode_request(api_key, version, memoryview(frame), offset)
    acls = {str(op): AclBinding(ResourceType.CLUSTER, "kafka-cluster", PatternType.LITERAL, ANONYMOUS, "*", op,
                                AclPermissionType.ALLOW) for op in allowed}
    broker = SimpleNamespace(log_manager=node.manager, alter_log_dirs=node.mover, authorizer=StandardAuthorizer(),
                             image=SimpleNamespace(acls=acls))
    ctx = RequestContext(api_key, version, 1, "test", "127.0.0.1:1", broker, 0.0)  # type: ignore[arg-type]
    handler = handle_alter_replica_log_dirs if api_key == ApiKey.ALTER_REPLICA_LOG_DIRS else handle_describe_log_dirs
    return codec.decode_response(api_key, version, codec.encode_response_body(api_key, version, handler(ctx, request)))


def test_the_handlers_check_the_cluster_acl_and_describe_the_future_replica(node: Node) -> None:
    partition = node.host()
    node.produce(partition, 8)
    move = {"dirs": [{"path": str(node.b), "topics": [{"name": "t", "partitions": [0]}]}]}
    refused = _handle(node, ApiKey.ALTER_REPLICA_LOG_DIRS, 2, move, AclOperation.DESCRIBE)
    assert [(r.topic_name, [p.error_code for p in r.partitions]) for r in refused.results] == [
        ("t", [ErrorCode.cluster_authorization_failed])]
    assert node.manager.future_logs == {}
    every = {"topics": None}
    assert _handle(node, ApiKey.DESCRIBE_LOG_DIRS, 4, every).error_code == ErrorCode.cluster_authorization_failed
    answer = _handle(node, ApiKey.ALTER_REPLICA_LOG_DIRS, 2, move, AclOperation.ALTER)
    assert [p.error_code for r in answer.results for p in r.partitions] == [ErrorCode.none]
    node.step(2)
    described = _handle(node, ApiKey.DESCRIBE_LOG_DIRS, 4, every, AclOperation.DESCRIBE)
    rows = {Path(r.log_dir): [(t.name, p.partition_index, p.is_future_key, p.offset_lag) for t in r.topics
                              for p in t.partitions] for r in described.results}
    lag = partition.log.log_end_offset - node.manager.future_logs[TP].log_end_offset
    assert lag > 0 and rows == {node.a.resolve(): [("t", 0, False, 0)], node.b.resolve(): [("t", 0, True, lag)]}
