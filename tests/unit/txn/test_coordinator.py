"""TransactionCoordinator over a real ``__transaction_state`` partition log: InitProducerId,
AddPartitionsToTxn, AddOffsetsToTxn, EndTxn and the markers, Kafka's errors, fencing, timeouts,
reloading on failover and transactional id expiry."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cluster.group.offsets_topic import OFFSETS_TOPIC, partition_for
from cluster.network.node_channel import NodeUnreachableError
from cluster.txn.state_manager import TransactionConfig
from cluster.txn.transaction_log import (
    decode_key,
    decode_value,
)
from cluster.txn.transaction_metadata import SHORT_MAX, TransactionState
from pykafka_ops.errors import ErrorCode
from pykafka_ops.records.batch import RecordBatch, iter_batches

from .txn_builders import (
    COORDINATOR_EPOCH,
    Markers,
    broker,
    image,
    loaded_coordinator,
    open_partition,
    settle,
)

S = TransactionState
E = ErrorCode


def _records(partition) -> list[tuple[str, int | None]]:
    """(transactional id, state id or None for a tombstone) of every record in the partition."""
    log = partition.log
    data = log.read(log.log_start_offset, 1 << 20, log.log_end_offset, min_one_batch=True)
    out = []
    for position, _ in iter_batches(data):
        for r in RecordBatch(data, position).records():
            out.append((decode_key(r.key), None if r.value is None else decode_value(r.value).state_id))
    return out


def _state(coordinator, txn_id: str = "tx"):
    return coordinator.state.get_transaction_state(txn_id)[1].metadata


def test_init_add_commit_writes_each_state_and_the_markers(tmp_path: Path) -> None:
    async def scenario():
        p = open_partition(tmp_path)
        markers = Markers()
        c = await loaded_coordinator(broker(p), markers)
        init = await c.handle_init_producer_id("tx", 10_000)
        assert (init.error, init.producer_id, init.producer_epoch) == (E.none, 1000, 0)
        assert await c.handle_add_partitions("tx", 1000, 0, [("t", 0), ("t", 2)]) == E.none
        assert await c.handle_add_partitions("tx", 1000, 0, [("t", 2)]) == E.none  # already in: nothing written
        assert await c.handle_add_offsets("tx", 1000, 0, "g") == E.none
        assert await c.handle_end_txn("tx", 1000, 0, commit=True) == E.none
        await settle(c)
        return p, markers, c

    p, markers, c = asyncio.run(scenario())
    m = _state(c)
    assert (m.state, m.partitions, m.producer_epoch) == (S.COMPLETE_COMMIT, set(), 0)
    assert _records(p) == [("tx", 0), ("tx", 1), ("tx", 1), ("tx", 2), ("tx", 4)]
    assert len(markers.requests) == 1  # one leader (broker 1) for all three partitions
    leader, body = markers.requests[0]
    marker = body["markers"][0]
    assert (leader, marker["producer_id"], marker["producer_epoch"], marker["transaction_result"],
            marker["coordinator_epoch"]) == (1, 1000, 0, True, COORDINATOR_EPOCH)
    assert marker["topics"] == [{"name": OFFSETS_TOPIC, "partition_indexes": [partition_for("g", 50)]},
                                {"name": "t", "partition_indexes": [0, 2]}]


def test_end_txn_errors_as_kafka(tmp_path: Path) -> None:
    async def scenario():
        markers = Markers()
        c = await loaded_coordinator(broker(open_partition(tmp_path)), markers)
        out = [await c.handle_end_txn("nobody", 1, 0, True)]
        await c.handle_init_producer_id("tx", 10_000)
        out.append(await c.handle_end_txn("tx", 1000, 0, True))  # Empty
        await c.handle_add_partitions("tx", 1000, 0, [("t", 0)])
        out += [await c.handle_end_txn("tx", 999, 0, True), await c.handle_end_txn("tx", 1000, 1, True),
                await c.handle_add_partitions("tx", 1000, 3, [("t", 1)])]
        markers.gate = asyncio.Event()
        out.append(await c.handle_end_txn("tx", 1000, 0, True))
        out += [await c.handle_end_txn("tx", 1000, 0, True),  # markers in flight
                await c.handle_add_partitions("tx", 1000, 0, [("t", 1)]),
                (await c.handle_init_producer_id("tx", 10_000)).error]
        markers.gate.set()
        await settle(c)
        out += [await c.handle_end_txn("tx", 1000, 0, True),  # a retried commit after it completed
                await c.handle_end_txn("tx", 1000, 0, False)]
        return out

    assert asyncio.run(scenario()) == [
        E.invalid_producer_id_mapping, E.invalid_txn_state, E.invalid_producer_id_mapping, E.producer_fenced,
        E.producer_fenced, E.none, E.concurrent_transactions, E.concurrent_transactions, E.concurrent_transactions,
        E.none, E.invalid_txn_state]


def test_add_partitions_waits_for_the_previous_markers(tmp_path: Path) -> None:
    """AddPartitionsToTxn right after EndTxn is answered once the markers are written (NONE, a new
    Ongoing transaction), not CONCURRENT_TRANSACTIONS; after ``wait_s`` it is CONCURRENT_TRANSACTIONS."""
    async def scenario():
        markers = Markers()
        c = await loaded_coordinator(broker(open_partition(tmp_path)), markers)
        await c.handle_init_producer_id("tx", 10_000)
        await c.handle_add_partitions("tx", 1000, 0, [("t", 0)])
        markers.gate = asyncio.Event()
        assert await c.handle_end_txn("tx", 1000, 0, True) == E.none
        timed_out = await c.handle_add_partitions("tx", 1000, 0, [("t", 1)], wait_s=0.05)
        waiting = asyncio.create_task(c.handle_add_partitions("tx", 1000, 0, [("t", 1)]))
        await asyncio.sleep(0.05)
        still_waiting = not waiting.done()
        markers.gate.set()
        return timed_out, still_waiting, await waiting, _state(c)

    timed_out, still_waiting, answer, m = asyncio.run(scenario())
    assert (timed_out, still_waiting, answer) == (E.concurrent_transactions, True, E.none)
    assert (m.state, m.partitions) == (S.ONGOING, {("t", 1)})


def test_transaction_timeout_bounds(tmp_path: Path) -> None:
    async def scenario():
        c = await loaded_coordinator(broker(open_partition(tmp_path)))
        return [(await c.handle_init_producer_id("tx", t)).error for t in (0, 60_001, 60_000)] + \
            [(await c.handle_init_producer_id("", 1000)).error]

    assert asyncio.run(scenario()) == [E.invalid_transaction_timeout, E.invalid_transaction_timeout, E.none,
                                       E.invalid_request]


def test_a_new_instance_fences_the_old_one_and_aborts_its_transaction(tmp_path: Path) -> None:
    async def scenario():
        markers = Markers()
        c = await loaded_coordinator(broker(open_partition(tmp_path)), markers)
        await c.handle_init_producer_id("tx", 10_000)
        await c.handle_add_partitions("tx", 1000, 0, [("t", 1)])
        first = await c.handle_init_producer_id("tx", 10_000)  # the new instance
        await settle(c)
        second = await c.handle_init_producer_id("tx", 10_000)
        zombie = [await c.handle_add_partitions("tx", 1000, 0, [("t", 0)]),
                  await c.handle_end_txn("tx", 1000, 0, True)]
        return first, second, zombie, markers.requests

    first, second, zombie, requests = asyncio.run(scenario())
    assert first.error == E.concurrent_transactions
    assert (second.error, second.producer_id, second.producer_epoch) == (E.none, 1000, 2)
    assert zombie == [E.producer_fenced, E.producer_fenced]
    marker = requests[0][1]["markers"][0]
    assert (marker["producer_epoch"], marker["transaction_result"], marker["topics"]) == \
        (1, False, [{"name": "t", "partition_indexes": [1]}])


def test_kip_360_retry_and_fencing_with_expected_epoch(tmp_path: Path) -> None:
    async def scenario():
        c = await loaded_coordinator(broker(open_partition(tmp_path)))
        await c.handle_init_producer_id("tx", 10_000)
        bumped = await c.handle_init_producer_id("tx", 10_000, (1000, 0))
        retried = await c.handle_init_producer_id("tx", 10_000, (1000, 0))  # response lost, same call again
        other = await c.handle_init_producer_id("tx", 10_000, (77, 0))
        return bumped, retried, other

    bumped, retried, other = asyncio.run(scenario())
    assert (bumped.producer_epoch, retried.producer_epoch) == (1, 1)
    assert other.error == E.producer_fenced


def test_an_exhausted_epoch_gets_a_new_producer_id(tmp_path: Path) -> None:
    async def scenario():
        c = await loaded_coordinator(broker(open_partition(tmp_path)))
        await c.handle_init_producer_id("tx", 10_000)
        _state(c).producer_epoch = SHORT_MAX - 2
        last = await c.handle_init_producer_id("tx", 10_000)
        rotated = await c.handle_init_producer_id("tx", 10_000)
        return last, rotated, _state(c)

    last, rotated, m = asyncio.run(scenario())
    assert (last.producer_id, last.producer_epoch) == (1000, SHORT_MAX - 1)
    assert (rotated.error, rotated.producer_id, rotated.producer_epoch) == (E.none, 1001, 0)
    assert (m.last_producer_id, m.last_producer_epoch) == (1000, -1)


def test_timed_out_transactions_are_fenced_and_aborted(tmp_path: Path) -> None:
    async def scenario():
        markers = Markers()
        c = await loaded_coordinator(broker(open_partition(tmp_path)), markers)
        await c.handle_init_producer_id("tx", 1)
        await c.handle_add_partitions("tx", 1000, 0, [("t", 0)])
        start = _state(c).start_timestamp_ms
        assert c.abort_timed_out_transactions(start) == []  # not yet
        aborts = c.abort_timed_out_transactions(start + 2)
        results = [await a for a in aborts]
        await settle(c)
        return results, markers.requests, await c.handle_end_txn("tx", 1000, 0, True), _state(c)

    results, requests, late_commit, m = asyncio.run(scenario())
    assert results == [E.none]
    assert requests[0][1]["markers"][0]["transaction_result"] is False
    assert late_commit == E.producer_fenced
    assert (m.state, m.producer_epoch) == (S.COMPLETE_ABORT, 1)


def test_markers_are_retried_until_every_partition_answered(tmp_path: Path) -> None:
    async def scenario():
        markers = Markers()
        markers.script[("t", 0)] = [E.not_leader_or_follower, NodeUnreachableError("down")]
        markers.script[("t", 1)] = []  # answered at once: not sent again
        c = await loaded_coordinator(broker(open_partition(tmp_path)), markers)
        await c.handle_init_producer_id("tx", 10_000)
        await c.handle_add_partitions("tx", 1000, 0, [("t", 0), ("t", 1), ("gone", 0)])
        assert await c.handle_end_txn("tx", 1000, 0, False) == E.none
        await settle(c)
        return markers.requests, _state(c).state

    requests, state = asyncio.run(scenario())
    assert state == S.COMPLETE_ABORT
    assert [r[1]["markers"][0]["topics"][0]["partition_indexes"] for r in requests] == [[0, 1], [0], [0]]


def test_fenced_markers_give_the_transaction_up(tmp_path: Path) -> None:
    async def scenario():
        markers = Markers()
        markers.script[("t", 0)] = [E.transaction_coordinator_fenced]
        c = await loaded_coordinator(broker(open_partition(tmp_path)), markers)
        await c.handle_init_producer_id("tx", 10_000)
        await c.handle_add_partitions("tx", 1000, 0, [("t", 0)])
        await c.handle_end_txn("tx", 1000, 0, True)
        await settle(c)
        return _state(c)

    m = asyncio.run(scenario())
    assert (m.state, m.pending_state) == (S.PREPARE_COMMIT, S.COMPLETE_COMMIT)


def test_failover_reloads_state_and_completes_a_prepared_commit(tmp_path: Path) -> None:
    async def first_life():
        markers = Markers()
        markers.gate = asyncio.Event()  # the coordinator "dies" with its markers unsent
        c = await loaded_coordinator(broker(open_partition(tmp_path)), markers)
        await c.handle_init_producer_id("tx", 10_000)
        await c.handle_init_producer_id("idle", 10_000)
        await c.handle_add_partitions("tx", 1000, 0, [("t", 2)])
        await c.handle_end_txn("tx", 1000, 0, True)
        c.shutdown()

    async def second_life():
        p = open_partition(tmp_path, epoch=COORDINATOR_EPOCH)
        markers = Markers()
        c = await loaded_coordinator(broker(p), markers)
        await settle(c)
        return c, markers.requests

    asyncio.run(first_life())
    c, requests = asyncio.run(second_life())
    assert [r[1]["markers"][0]["topics"] for r in requests] == [[{"name": "t", "partition_indexes": [2]}]]
    assert _state(c).state == S.COMPLETE_COMMIT
    assert (_state(c, "idle").state, _state(c, "idle").producer_id) == (S.EMPTY, 1001)


def test_load_in_progress_and_not_coordinator(tmp_path: Path) -> None:
    async def scenario():
        b = broker(open_partition(tmp_path), image(leader=2))
        c = await loaded_coordinator(b)
        not_owned = (await c.handle_init_producer_id("tx", 1000)).error
        c.state.begin_loading(0, 6)
        loading = await c.handle_add_partitions("tx", 1, 0, [("t", 0)])
        return not_owned, loading

    assert asyncio.run(scenario()) == (E.not_coordinator, E.coordinator_load_in_progress)


def test_resigning_drops_the_cache_and_the_markers(tmp_path: Path) -> None:
    async def scenario():
        markers = Markers()
        markers.gate = asyncio.Event()
        b = broker(open_partition(tmp_path))
        c = await loaded_coordinator(b, markers)
        await c.handle_init_producer_id("tx", 10_000)
        await c.handle_add_partitions("tx", 1000, 0, [("t", 0)])
        await c.handle_end_txn("tx", 1000, 0, True)
        c.on_metadata_update(image(leader=2))
        await asyncio.sleep(0)
        return c.markers.pending, c.state.get_transaction_state("tx")[0]

    assert asyncio.run(scenario()) == ({}, E.not_coordinator)


def test_idle_transactional_ids_expire_with_a_tombstone(tmp_path: Path) -> None:
    async def scenario():
        p = open_partition(tmp_path)
        config = TransactionConfig(num_partitions=1, id_expiration_ms=1000)
        c = await loaded_coordinator(broker(p), config=config)
        await c.handle_init_producer_id("old", 10_000)
        await c.handle_init_producer_id("busy", 10_000)
        await c.handle_add_partitions("busy", 1001, 0, [("t", 0)])
        results = [await f for f in c.state.remove_expired_transactional_ids(_state(c, "old").last_update_timestamp_ms
                                                                              + 5000)]
        return p, results, c.state.get_transaction_state("old"), _state(c, "busy").state

    p, results, old, busy = asyncio.run(scenario())
    assert results == [E.none] and old == (E.none, None) and busy == S.ONGOING
    assert _records(p)[-1] == ("old", None)


def test_acks_all_the_answer_waits_for_the_followers(tmp_path: Path) -> None:
    async def scenario():
        p = open_partition(tmp_path, replicas=(1, 2))
        c = await loaded_coordinator(broker(p, image(replicas=(1, 2))))
        waiting = asyncio.ensure_future(c.handle_init_producer_id("tx", 10_000))
        for _ in range(5):
            await asyncio.sleep(0)
        early = waiting.done()
        p.update_follower_fetch(2, p.log.log_end_offset, 0)
        return early, await asyncio.wait_for(waiting, 1)

    early, result = asyncio.run(scenario())
    assert not early and (result.error, result.producer_epoch) == (E.none, 0)


def test_maintenance_runs_each_job_at_its_interval(tmp_path: Path) -> None:
    async def scenario():
        config = TransactionConfig(num_partitions=1, abort_timed_out_interval_ms=100, remove_expired_interval_ms=1000,
                                   id_expiration_ms=10)
        c = await loaded_coordinator(broker(open_partition(tmp_path)), config=config)
        await c.handle_init_producer_id("tx", 1)
        await c.handle_add_partitions("tx", 1000, 0, [("t", 0)])
        await c.handle_init_producer_id("idle", 10_000)
        start = c._last_abort_ms
        c.maintenance(start + 50)  # neither interval has passed
        untouched = _state(c).state
        c.maintenance(start + 500)  # the abort job only
        await asyncio.sleep(0.01)
        await settle(c)
        aborted, idle = _state(c).state, c.state.get_transaction_state("idle")[1] is not None
        c.maintenance(start + 5000)  # expiry too
        await asyncio.sleep(0.01)
        return untouched, aborted, idle, {i for i in ("tx", "idle") if c.state.get_transaction_state(i)[1]}

    assert asyncio.run(scenario()) == (S.ONGOING, S.COMPLETE_ABORT, True, set())


def test_find_coordinator_creates_the_topic_then_names_the_leader(tmp_path: Path) -> None:
    created = []

    class Requests:
        async def create_topics(self, topics):
            created.extend(topics)
            return [type("R", (), {"error_code": E.topic_already_exists, "error_message": None})()]

    async def scenario():
        b = broker(open_partition(tmp_path))
        c = await loaded_coordinator(b)
        found = await c.find_coordinator("tx")
        b.image = image(leader=-1)
        b.requests = Requests()
        leaderless = await c.find_coordinator("tx")
        return found, leaderless

    found, leaderless = asyncio.run(scenario())
    assert (found.error_code, found.broker.broker_id) == (E.none, 1)
    assert leaderless.error_code == E.coordinator_not_available
    assert created == []  # the topic existed in both images
