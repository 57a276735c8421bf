"""Offsets committed in transactions (KIP-447): pending until the marker, committed or dropped by
it, replayed the same way by ``load_partition`` — against a real ``__consumer_offsets`` log."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from types import SimpleNamespace

from cluster.group.group import ClassicGroup, ClassicGroupMember, GroupState
from cluster.group.metadata_manager import GroupMetadataManager
from cluster.group.offsets_topic import OFFSETS_TOPIC, OffsetCommitValue
from cluster.group.txn_offsets import validate_txn_offset_commit
from cluster.log.config import LogConfig
from cluster.log.partition_log import PartitionLog
from cluster.replication.partition import Partition
from cluster.replication.txn_markers import append_txn_marker
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.errors import ErrorCode
from pykafka_ops.records.batch import iter_batches

T0 = 1_700_000_000_000
TP = ("orders", 0)
PID, EPOCH = 4000, 0


class _Replicas:
    def __init__(self, partition: Partition) -> None:
        self.owned = partition

    def partition(self, topic: str, index: int) -> Partition | None:
        return self.owned if (topic, index) == (OFFSETS_TOPIC, 0) else None


def _offsets_partition(directory: Path) -> Partition:
    config = LogConfig.from_topic_config(topic_defaults(broker_defaults()) | {"min.insync.replicas": 1,
                                                                              "cleanup.policy": "compact"})
    log = PartitionLog.open(directory / f"{OFFSETS_TOPIC}-0", config, 86_400_000, clean_shutdown=True)
    partition = Partition(OFFSETS_TOPIC, 0, uuid.uuid4(), log, 1)
    partition.update_leadership(1, 1, (1,), (1,), now_ms=T0)
    return partition


def _manager(partition: Partition) -> GroupMetadataManager:
    b = SimpleNamespace(node_id=1, image=SimpleNamespace(topics={}), replica_manager=_Replicas(partition),
                        config={"offsets.topic.num.partitions": 1, "offsets.commit.timeout.ms": 5000})
    manager = GroupMetadataManager(b)  # type: ignore[arg-type]
    manager.owned_partitions.add(0)
    return manager


def _value(offset: int) -> OffsetCommitValue:
    return OffsetCommitValue(offset, -1, "", T0)


async def _loaded(partition: Partition) -> GroupMetadataManager:
    manager = _manager(partition)
    manager.owned_partitions.clear()
    manager.begin_loading(0)
    await manager.load_partition(0)
    return manager


async def _marker(manager: GroupMetadataManager, partition: Partition, commit: bool, pid: int = PID) -> None:
    written = append_txn_marker(manager.broker.replica_manager, OFFSETS_TOPIC, 0, pid, EPOCH, 0, commit, 5000)
    assert await written == ErrorCode.none
    manager.txn.complete(0, pid, commit)


def test_txn_offsets_are_pending_until_commit(tmp_path: Path) -> None:
    async def scenario():
        partition = _offsets_partition(tmp_path)
        manager = _manager(partition)
        group = manager.add_group("g")
        assert await manager.txn.store(group, PID, EPOCH, {TP: _value(7)}) == ErrorCode.none
        before = (dict(group.offsets), manager.txn.unstable("g", [TP, ("orders", 1)]))
        # the batch is transactional and carries the producer: the log tracks the open transaction
        data = partition.log.read(0, 1 << 20, partition.log.log_end_offset, min_one_batch=True)
        headers = [(h.producer_id, h.is_transactional) for _, h in iter_batches(data)]
        await _marker(manager, partition, commit=True)
        return before, headers, group.offsets, group.pending_txn_offsets, manager.txn.unstable("g", [TP])

    (offsets_before, unstable_before), headers, offsets, pending, unstable = asyncio.run(scenario())
    assert offsets_before == {} and unstable_before == {TP}
    assert headers == [(PID, True)]
    assert offsets == {TP: _value(7)} and pending == {} and unstable == set()


def test_abort_drops_the_pending_offsets(tmp_path: Path) -> None:
    async def scenario():
        partition = _offsets_partition(tmp_path)
        manager = _manager(partition)
        group = manager.add_group("g")
        assert await manager.store_offsets(group, {TP: _value(3)}) == ErrorCode.none
        assert await manager.txn.store(group, PID, EPOCH, {TP: _value(9)}) == ErrorCode.none
        await _marker(manager, partition, commit=False)
        return group.offsets, group.pending_txn_offsets

    offsets, pending = asyncio.run(scenario())
    assert offsets == {TP: _value(3)} and pending == {}


def test_commit_keeps_a_newer_non_transactional_commit(tmp_path: Path) -> None:
    async def scenario():
        partition = _offsets_partition(tmp_path)
        manager = _manager(partition)
        group = manager.add_group("g")
        assert await manager.txn.store(group, PID, EPOCH, {TP: _value(9), ("orders", 1): _value(4)}) == ErrorCode.none
        assert await manager.store_offsets(group, {TP: _value(11)}) == ErrorCode.none
        await _marker(manager, partition, commit=True)
        return group.offsets

    assert asyncio.run(scenario()) == {TP: _value(11), ("orders", 1): _value(4)}


def test_marker_of_another_producer_leaves_the_pending_offsets(tmp_path: Path) -> None:
    async def scenario():
        partition = _offsets_partition(tmp_path)
        manager = _manager(partition)
        group = manager.add_group("g")
        assert await manager.txn.store(group, PID, EPOCH, {TP: _value(9)}) == ErrorCode.none
        assert await manager.txn.store(group, PID + 1, EPOCH, {TP: _value(5)}) == ErrorCode.none
        await _marker(manager, partition, commit=True, pid=PID + 1)
        return group.offsets, set(group.pending_txn_offsets), manager.txn.unstable("g", [TP])

    offsets, pending, unstable = asyncio.run(scenario())
    assert offsets == {TP: _value(5)} and pending == {PID} and unstable == {TP}


def test_second_commit_in_the_same_transaction_is_not_a_duplicate(tmp_path: Path) -> None:
    async def scenario():
        partition = _offsets_partition(tmp_path)
        manager = _manager(partition)
        group = manager.add_group("g")
        for offset in (5, 6):  # both batches have base sequence 0: the coordinator's are not sequence-checked
            assert await manager.txn.store(group, PID, EPOCH, {TP: _value(offset)}) == ErrorCode.none
        end = partition.log.log_end_offset
        await _marker(manager, partition, commit=True)
        return end, group.offsets

    end, offsets = asyncio.run(scenario())
    assert end == 2 and offsets == {TP: _value(6)}


def test_loading_resolves_transactions_by_their_markers(tmp_path: Path) -> None:
    async def scenario():
        partition = _offsets_partition(tmp_path)
        manager = _manager(partition)
        committed, aborted, open_ = manager.add_group("c"), manager.add_group("a"), manager.add_group("o")
        assert await manager.store_offsets(aborted, {TP: _value(1)}) == ErrorCode.none
        assert await manager.txn.store(committed, PID, EPOCH, {TP: _value(10)}) == ErrorCode.none
        assert await manager.txn.store(aborted, PID + 1, EPOCH, {TP: _value(20)}) == ErrorCode.none
        assert await manager.txn.store(open_, PID + 2, EPOCH, {TP: _value(30)}) == ErrorCode.none
        await _marker(manager, partition, commit=True, pid=PID)
        await _marker(manager, partition, commit=False, pid=PID + 1)
        reloaded = await _loaded(partition)
        return {g: (group.offsets, {pid: dict(p) for pid, p in group.pending_txn_offsets.items()})
                for g, group in reloaded.groups.items()}

    groups = asyncio.run(scenario())
    assert groups["c"] == ({TP: _value(10)}, {})
    assert groups["a"] == ({TP: _value(1)}, {})
    offsets, pending = groups["o"]
    assert offsets == {} and list(pending) == [PID + 2] and pending[PID + 2][TP].value == _value(30)


def test_loaded_pending_offsets_commit_on_a_later_marker(tmp_path: Path) -> None:
    async def scenario():
        partition = _offsets_partition(tmp_path)
        manager = _manager(partition)
        group = manager.add_group("g")
        assert await manager.txn.store(group, PID, EPOCH, {TP: _value(10)}) == ErrorCode.none
        reloaded = await _loaded(partition)  # a coordinator failover while the transaction is open
        before = reloaded.txn.unstable("g", [TP])
        await _marker(reloaded, partition, commit=True)
        return before, reloaded.groups["g"].offsets

    before, offsets = asyncio.run(scenario())
    assert before == {TP} and offsets == {TP: _value(10)}


def test_loading_keeps_a_newer_commit_over_a_committed_transaction(tmp_path: Path) -> None:
    async def scenario():
        partition = _offsets_partition(tmp_path)
        manager = _manager(partition)
        group = manager.add_group("g")
        assert await manager.txn.store(group, PID, EPOCH, {TP: _value(10)}) == ErrorCode.none
        assert await manager.store_offsets(group, {TP: _value(12)}) == ErrorCode.none
        await _marker(manager, partition, commit=True)
        return (await _loaded(partition)).groups["g"].offsets

    assert asyncio.run(scenario()) == {TP: _value(12)}


def test_an_older_producer_epoch_is_refused_by_the_log(tmp_path: Path) -> None:
    async def scenario():
        partition = _offsets_partition(tmp_path)
        manager = _manager(partition)
        group = manager.add_group("g")
        assert await manager.txn.store(group, PID, 3, {TP: _value(1)}) == ErrorCode.none
        return await manager.txn.store(group, PID, 2, {TP: _value(2)}), group.pending_txn_offsets[PID][TP].value

    error, pending = asyncio.run(scenario())
    assert error == ErrorCode.invalid_producer_epoch and pending == _value(1)


def _stable_group() -> ClassicGroup:
    group = ClassicGroup("g", T0)
    member = ClassicGroupMember("m1", "i1", "client", "host", 30_000, 10_000, "consumer", (("range", b""),))
    group.members["m1"] = member
    group.static_members["i1"] = "m1"
    group.generation_id = 3
    for state in (GroupState.PREPARING_REBALANCE, GroupState.COMPLETING_REBALANCE, GroupState.STABLE):
        group.transition_to(state, T0)
    return group


def test_zombie_consumers_are_fenced() -> None:
    group = _stable_group()
    assert validate_txn_offset_commit(group, "m1", "i1", 3) == ErrorCode.none
    assert validate_txn_offset_commit(group, "m1", "i1", 2) == ErrorCode.illegal_generation
    assert validate_txn_offset_commit(group, "gone", None, 3) == ErrorCode.unknown_member_id
    assert validate_txn_offset_commit(group, "m0", "i1", 3) == ErrorCode.fenced_instance_id
    assert validate_txn_offset_commit(group, "", None, -1) == ErrorCode.none  # v0-2: no group metadata
    empty = ClassicGroup("e", T0)
    assert validate_txn_offset_commit(empty, "", None, -1) == ErrorCode.none
    assert validate_txn_offset_commit(empty, "m1", None, 1) == ErrorCode.unknown_member_id
