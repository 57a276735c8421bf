"""Fetch from a follower (replica_id ≥ 0) through the Fetch handler: read to the log end, position
recorded, only from replicas and only on the leader, diverging epochs, long polls woken by appends."""

from __future__ import annotations

import asyncio
from typing import Any

from replication_builders import T0, TOPIC, context, encoded, records

from cluster.handlers.fetch import handle_fetch
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey

VERSION = 12


def _request(replica_id: int, fetch_offset: int, last_fetched_epoch: int = -1, current_leader_epoch: int = -1,
             max_wait_ms: int = 0, version: int = VERSION) -> Any:
    body = {"cluster_id": None, "replica_id": replica_id, "max_wait": max_wait_ms, "min_bytes": 1,
            "max_bytes": 1 << 20, "isolation_level": 0, "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": TOPIC, "partitions": [{
                "partition": 0, "current_leader_epoch": current_leader_epoch, "fetch_offset": fetch_offset,
                "last_fetched_epoch": last_fetched_epoch, "log_start_offset": 0,
                "partition_max_bytes": 1 << 20}]}],
            "forgotten_topics_data": [], "rack_id": ""}
    frame, offset = encoded(ApiKey.FETCH, version, body)
    return codec.decode_request(ApiKey.FETCH, version, memoryview(frame), offset)


def _fetch(partition, request: Any, version: int = VERSION) -> Any:
    ctx = context(partition, ApiKey.FETCH, version, asyncio.get_event_loop().time() if _loop_running() else 0.0)
    return handle_fetch(ctx, request)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


def _partition(body: Any, version: int = VERSION) -> Any:
    return codec.decode_response(ApiKey.FETCH, version, b"".join(bytes(b) for b in body)).responses[0].partitions[0]


def test_follower_reads_to_the_log_end_and_moves_the_high_watermark(make_partition) -> None:
    p = make_partition()
    p.append_records_to_leader(records(3), 1, T0)
    consumer = _partition(_fetch(p, _request(-1, 0)))
    assert (consumer.high_watermark, bytes(consumer.records or b"")) == (0, b"")  # consumers stop at the HW
    answer = _partition(_fetch(p, _request(2, 0)))
    assert answer.error_code == ErrorCode.none and answer.records
    assert p.follower_state(2).log_end_offset == 0
    _fetch(p, _request(2, 3))
    _fetch(p, _request(3, 3))
    assert p.log.high_watermark == 3
    answer = _partition(_fetch(p, _request(3, 3)))
    assert (answer.high_watermark, answer.log_start_offset) == (3, 0)


def test_fetch_from_a_non_replica_or_on_a_follower_is_refused(make_partition) -> None:
    p = make_partition()
    assert _partition(_fetch(p, _request(4, 0))).error_code == ErrorCode.not_leader_or_follower
    assert _partition(_fetch(p, _request(4, 0, current_leader_epoch=5))).error_code == ErrorCode.unknown_leader_epoch
    assert _partition(_fetch(p, _request(2, 0, current_leader_epoch=4))).error_code == ErrorCode.fenced_leader_epoch
    follower = make_partition(broker_id=2)
    assert _partition(_fetch(follower, _request(3, 0))).error_code == ErrorCode.not_leader_or_follower


def test_diverging_epoch_is_answered_without_records(make_partition) -> None:
    p = make_partition(epoch=3)
    p.append_records_to_leader(records(4), 1, T0)
    p.update_leadership(1, 5, (1, 2, 3), (1, 2, 3), now_ms=T0)
    p.append_records_to_leader(records(2), 1, T0)
    answer = _partition(_fetch(p, _request(2, 6, last_fetched_epoch=3)))
    assert answer.error_code == ErrorCode.none and not answer.records
    assert (answer.diverging_epoch.epoch, answer.diverging_epoch.end_offset) == (3, 4)
    assert answer.high_watermark == p.log.high_watermark
    assert p.follower_state(2).log_end_offset == -1  # a diverging fetch records no position
    consistent = _partition(_fetch(p, _request(2, 4, last_fetched_epoch=3)))
    assert consistent.diverging_epoch.epoch == -1 and consistent.records
    assert p.follower_state(2).log_end_offset == 4
    unknown = _partition(_fetch(p, _request(2, 6, last_fetched_epoch=9)))
    assert unknown.error_code == ErrorCode.offset_out_of_range


def test_follower_long_poll_is_woken_by_an_append(make_partition) -> None:
    async def scenario() -> tuple[int, bool]:
        p = make_partition()
        loop = asyncio.get_running_loop()
        started = loop.time()
        waiting = asyncio.ensure_future(_fetch(p, _request(2, 0, max_wait_ms=5_000)))
        await asyncio.sleep(0)
        p.append_records_to_leader(records(1), 1, T0)  # the HW does not move: only followers wake
        answer = _partition(await asyncio.wait_for(waiting, 2))
        return answer.error_code, bool(answer.records) and loop.time() - started < 2

    assert asyncio.run(scenario()) == (ErrorCode.none, True)


def test_fetch_below_v12_has_no_epoch_check(make_partition) -> None:
    p = make_partition()
    p.append_records_to_leader(records(2), 1, T0)
    answer = _partition(_fetch(p, _request(2, 0, version=11), version=11), version=11)
    assert answer.error_code == ErrorCode.none and answer.records


def test_a_fetch_from_a_follower_replica_names_the_current_leader(make_partition) -> None:
    follower = make_partition(broker_id=2)  # broker 1 leads epoch 5
    answer = _partition(_fetch(follower, _request(-1, 0)))
    assert answer.error_code == ErrorCode.not_leader_or_follower
    assert (answer.current_leader.leader_id, answer.current_leader.leader_epoch) == (1, 5)
    stale = _partition(_fetch(make_partition(), _request(-1, 0, current_leader_epoch=4)))
    assert stale.error_code == ErrorCode.fenced_leader_epoch
    assert (stale.current_leader.leader_id, stale.current_leader.leader_epoch) == (1, 5)
