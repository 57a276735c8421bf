"""DescribeProducers / DescribeTransactions / ListTransactions (KIP-664, KIP-994): the handlers'
answers from the coordinator's cache and a partition's producer state, as Kafka gives them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cluster.handlers.describe_producers import handle_describe_producers
from cluster.handlers.describe_transactions import describe_transaction
from cluster.handlers.list_transactions import handle_list_transactions
from cluster.log.producer_state import ProducerStateManager
from cluster.txn.state_manager import (
    TransactionConfig,
    TransactionStateManager,
    TxnPartitionCache,
)
from cluster.txn.transaction_metadata import TransactionMetadata, TransactionState
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records.batch import BatchHeader

T0 = 1_700_000_000_000


def _manager() -> TransactionStateManager:
    broker = SimpleNamespace(image=SimpleNamespace(topics={}), config={})
    return TransactionStateManager(broker, TransactionConfig())  # type: ignore[arg-type]


def _put(manager: TransactionStateManager, tid: str, state: TransactionState, pid: int, start: int = T0,
         partitions: set[tuple[str, int]] | None = None) -> None:
    index = manager.partition_for(tid)
    cache = manager.partitions.setdefault(index, TxnPartitionCache(7))
    cache.ids[tid] = TransactionMetadata(tid, pid, producer_epoch=3, timeout_ms=60_000, state=state,
                                         partitions=partitions or set(), start_timestamp_ms=start)


def _encodes(api_key: ApiKey, version: int, body: dict[str, Any]) -> None:
    codec.encode_response(api_key, version, 1, body)


def test_describe_transaction_as_kafka() -> None:
    manager = _manager()
    assert describe_transaction(manager, "nowhere")["error_code"] == ErrorCode.not_coordinator
    _put(manager, "tx", TransactionState.ONGOING, 42, partitions={("b", 1), ("a", 2), ("a", 0)})
    answer = describe_transaction(manager, "tx")
    assert answer["error_code"] == ErrorCode.none
    assert answer["transaction_state"] == "Ongoing"
    assert (answer["producer_id"], answer["producer_epoch"], answer["transaction_timeout"]) == (42, 3, 60_000)
    assert answer["transaction_start_time"] == T0
    assert answer["topics"] == [{"topic": "a", "partitions": [0, 2]}, {"topic": "b", "partitions": [1]}]
    other = next(f"t{i}" for i in range(1000) if manager.partition_for(f"t{i}") == manager.partition_for("tx"))
    assert describe_transaction(manager, other)["error_code"] == ErrorCode.transactional_id_not_found
    _put(manager, "dead", TransactionState.DEAD, 43)
    assert describe_transaction(manager, "dead")["error_code"] == ErrorCode.transactional_id_not_found
    manager.begin_loading(manager.partition_for("tx"), 8)
    assert describe_transaction(manager, "tx")["error_code"] == ErrorCode.coordinator_load_in_progress
    _encodes(ApiKey.DESCRIBE_TRANSACTIONS, 0, {"throttle_time": 0, "transaction_states": [answer]})


def test_list_transactions_filters() -> None:
    manager = _manager()
    _put(manager, "old", TransactionState.ONGOING, 1, start=T0)
    _put(manager, "new", TransactionState.ONGOING, 2, start=T0 + 50_000)
    _put(manager, "done", TransactionState.COMPLETE_COMMIT, 3)
    _put(manager, "dead", TransactionState.DEAD, 4)

    def listed(**filters: Any) -> tuple[ErrorCode, list[str], set[str]]:
        error, unknown, found = manager.list_transaction_states(now=T0 + 60_000, **filters)
        return error, unknown, {m.transactional_id for m in found}

    assert listed() == (ErrorCode.none, [], {"old", "new", "done"})
    assert listed(state_names=["Ongoing", "Bogus"]) == (ErrorCode.none, ["Bogus"], {"old", "new"})
    assert listed(producer_ids=[2, 3])[2] == {"new", "done"}
    assert listed(duration_ms=30_000)[2] == {"old", "done"}
    manager.begin_loading(0, 1)
    assert listed() == (ErrorCode.coordinator_load_in_progress, [], set())


def test_list_transactions_handler_v0_and_v1() -> None:
    manager = _manager()
    _put(manager, "tx", TransactionState.PREPARE_COMMIT, 9)
    ctx = SimpleNamespace(broker=SimpleNamespace(txn_coordinator=SimpleNamespace(state=manager)),
                          authorized=lambda *_: True)
    request = SimpleNamespace(state_filters=(), producer_id_filters=())  # v0: no duration_filter
    body = handle_list_transactions(ctx, request)  # type: ignore[arg-type]
    assert body["transaction_states"] == [{"transactional_id": "tx", "producer_id": 9,
                                           "transaction_state": "PrepareCommit"}]
    for version in (0, 1):
        _encodes(ApiKey.LIST_TRANSACTIONS, version, body)


def test_list_transactions_v2_filters_by_a_pattern_matching_the_whole_id() -> None:
    """KIP-1152: the whole id must match; empty means all; a bad pattern is INVALID_REGULAR_EXPRESSION."""
    manager = _manager()
    for pid, tid in enumerate(("orders-1", "orders-2", "payments-1", "xorders-1")):
        _put(manager, tid, TransactionState.ONGOING, pid)
    ctx = SimpleNamespace(broker=SimpleNamespace(txn_coordinator=SimpleNamespace(state=manager)),
                          authorized=lambda *_: True)

    def listed(pattern: str | None) -> Any:
        request = SimpleNamespace(state_filters=(), producer_id_filters=(), duration_filter=-1,
                                  transactional_id_pattern=pattern)
        return handle_list_transactions(ctx, request)  # type: ignore[arg-type]

    assert sorted(t["transactional_id"] for t in listed("orders-.*")["transaction_states"]) == ["orders-1", "orders-2"]
    assert len(listed("")["transaction_states"]) == len(listed(None)["transaction_states"]) == 4
    assert listed("orders")["transaction_states"] == []  # a partial match is not a match
    bad = listed("orders-[")
    assert (bad["error_code"], bad["transaction_states"]) == (ErrorCode.invalid_regular_expression, [])
    _encodes(ApiKey.LIST_TRANSACTIONS, 2, listed("orders-.*"))


def _header(pid: int, base_offset: int, transactional: bool) -> BatchHeader:
    attributes = 0x10 if transactional else 0
    return BatchHeader(base_offset=base_offset, batch_length=0, partition_leader_epoch=0, magic=2, crc=0,
                       attributes=attributes, last_offset_delta=2, base_timestamp=T0, max_timestamp=T0 + 5,
                       producer_id=pid, producer_epoch=1, base_sequence=0, records_count=3)


def test_describe_producers_from_the_local_replica(tmp_path: Path) -> None:
    state = ProducerStateManager(tmp_path, 60_000)
    state.update(_header(7, 10, transactional=True))
    state.update(_header(5, 20, transactional=False))
    leader = SimpleNamespace(is_leader=True, log=SimpleNamespace(producer_state=state))
    partitions = {("t", 0): leader}
    absent = {("t", 1): ErrorCode.not_leader_or_follower, ("t", 2): ErrorCode.unknown_topic_or_partition}
    replicas = SimpleNamespace(partition=lambda topic, index: partitions.get((topic, index)),
                               absent_error=lambda topic, index: absent[(topic, index)])
    ctx = SimpleNamespace(broker=SimpleNamespace(replica_manager=replicas), authorized=lambda *_: True)
    request = SimpleNamespace(topics=[SimpleNamespace(name="t", partition_indexes=[0, 1, 2])])
    body = handle_describe_producers(ctx, request)  # type: ignore[arg-type]
    p0, p1, p2 = body["topics"][0]["partitions"]
    assert [p["error_code"] for p in (p0, p1, p2)] == [ErrorCode.none, ErrorCode.not_leader_or_follower,
                                                      ErrorCode.unknown_topic_or_partition]
    assert p0["active_producers"] == [
        {"producer_id": 5, "producer_epoch": 1, "last_sequence": 2, "last_timestamp": T0 + 5,
         "coordinator_epoch": -1, "current_txn_start_offset": -1},
        {"producer_id": 7, "producer_epoch": 1, "last_sequence": 2, "last_timestamp": T0 + 5,
         "coordinator_epoch": -1, "current_txn_start_offset": 10}]
    _encodes(ApiKey.DESCRIBE_PRODUCERS, 0, body)
