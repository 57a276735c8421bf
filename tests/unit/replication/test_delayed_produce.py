"""acks=all as a delayed operation (Kafka's DelayedProduce) through the Produce handler, on a
Partition with replicas (1, 2, 3)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from replication_builders import T0, TOPIC, context, encoded, records

from cluster.handlers.produce import handle_produce
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey

VERSION = 9


def _produce(partition, acks: int = -1, timeout_ms: int = 5_000, n: int = 2) -> Any:
    body = {"transactional_id": None, "acks": acks, "timeout": timeout_ms,
            "topic_data": [{"name": TOPIC, "partition_data": [{"index": 0, "records": bytes(records(n))}]}]}
    frame, offset = encoded(ApiKey.PRODUCE, VERSION, body)
    return handle_produce(context(partition, ApiKey.PRODUCE, VERSION), memoryview(frame), offset)


def _answer(body: Any) -> tuple[int, int]:
    response = codec.decode_response(ApiKey.PRODUCE, VERSION, b"".join(body))
    p = response.responses[0].partition_responses[0]
    return p.error_code, p.base_offset


def test_single_replica_answers_at_once(make_partition) -> None:
    p = make_partition(replicas=(1,))
    body = _produce(p)
    assert isinstance(body, list)
    assert _answer(body) == (ErrorCode.none, 0)
    assert not p._delayed_produces


def test_acks_one_answers_at_once_with_followers(make_partition) -> None:
    p = make_partition()
    body = _produce(p, acks=1)
    assert isinstance(body, list) and _answer(body) == (ErrorCode.none, 0)


def test_acks_all_completes_when_the_followers_reach_the_offset(make_partition) -> None:
    async def scenario() -> tuple[Any, ...]:
        p = make_partition()
        waiting = asyncio.ensure_future(_produce(p, n=3))
        await asyncio.sleep(0)
        p.update_follower_fetch(2, 3, T0)
        await asyncio.sleep(0)
        half = waiting.done()
        p.update_follower_fetch(3, 3, T0)
        body = await asyncio.wait_for(waiting, 1)
        return half, _answer(body), len(p._delayed_produces)

    assert asyncio.run(scenario()) == (False, (ErrorCode.none, 0), 0)


def test_acks_all_times_out(make_partition) -> None:
    async def scenario() -> tuple[Any, ...]:
        p = make_partition()
        body = await _produce(p, timeout_ms=20)
        return _answer(body)[0], len(p._delayed_produces), p.log.log_end_offset

    assert asyncio.run(scenario()) == (ErrorCode.request_timed_out, 0, 2)


def test_not_enough_replicas_before_the_append(make_partition) -> None:
    p = make_partition(isr=(1,), min_isr=2)
    assert _answer(_produce(p))[0] == ErrorCode.not_enough_replicas
    assert p.log.log_end_offset == 0


def test_not_enough_replicas_after_append_when_the_isr_shrank(make_partition) -> None:
    async def scenario() -> int:
        p = make_partition(min_isr=2)
        waiting = asyncio.ensure_future(_produce(p))
        await asyncio.sleep(0)
        p.update_follower_fetch(2, 2, T0)
        p.update_leadership(1, 5, (1, 2, 3), (1, 2), now_ms=T0)  # 3 left the ISR: HW 2, completed ...
        p.update_leadership(1, 5, (1, 2, 3), (1,), now_ms=T0)  # ... so a later shrink changes nothing
        return _answer(await asyncio.wait_for(waiting, 1))[0]

    assert asyncio.run(scenario()) == ErrorCode.none  # HW 2 reached with ISR (1, 2) ≥ min 2

    async def shrunk_first() -> int:
        p = make_partition(min_isr=2)
        waiting = asyncio.ensure_future(_produce(p))
        await asyncio.sleep(0)
        p.update_leadership(1, 5, (1, 2, 3), (1,), now_ms=T0)  # HW jumps to the LEO, ISR below min
        return _answer(await asyncio.wait_for(waiting, 1))[0]

    assert asyncio.run(shrunk_first()) == ErrorCode.not_enough_replicas_after_append


def test_leadership_change_answers_parked_produces(make_partition) -> None:
    async def scenario(leader: int, epoch: int) -> int:
        p = make_partition()
        waiting = asyncio.ensure_future(_produce(p))
        await asyncio.sleep(0)
        p.update_leadership(leader, epoch, (1, 2, 3), (1, 2, 3), now_ms=T0)
        return _answer(await asyncio.wait_for(waiting, 1))[0]

    assert asyncio.run(scenario(2, 6)) == ErrorCode.not_leader_or_follower
    assert asyncio.run(scenario(1, 6)) == ErrorCode.not_leader_or_follower  # the epoch that appended is over


def test_deleted_partition_answers_parked_produces(make_partition) -> None:
    async def scenario() -> int:
        p = make_partition()
        waiting = asyncio.ensure_future(_produce(p))
        await asyncio.sleep(0)
        p.mark_deleted()
        return _answer(await asyncio.wait_for(waiting, 1))[0]

    assert asyncio.run(scenario()) == ErrorCode.unknown_topic_or_partition


def test_a_cancelled_wait_unregisters(make_partition) -> None:
    async def scenario() -> int:
        p = make_partition()
        waiting = asyncio.ensure_future(_produce(p))
        await asyncio.sleep(0)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        return len(p._delayed_produces)

    assert asyncio.run(scenario()) == 0
