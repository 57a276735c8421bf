"""Leader state of a Partition with replicas (1, 2, 3): follower LEOs, high watermark = min over
the ISR, caught-up times, resets on leadership changes, follower fetch checks, diverging epochs."""

from __future__ import annotations

import asyncio

import pytest
from replication_builders import T0, records

from cluster.log.retention import OffsetOutOfRangeError
from pykafka_ops.errors import ErrorCode


def test_high_watermark_is_the_smallest_leo_in_the_isr(make_partition) -> None:
    p = make_partition()
    p.append_records_to_leader(records(5), 1, T0)
    assert (p.log.log_end_offset, p.log.high_watermark) == (5, 0)
    assert p.update_follower_fetch(2, 5, T0 + 1) is False  # 3 has not fetched: its LEO is -1
    assert p.log.high_watermark == 0
    assert p.update_follower_fetch(3, 3, T0 + 2) is True
    assert p.log.high_watermark == 3
    p.update_follower_fetch(3, 5, T0 + 3)
    assert p.log.high_watermark == 5


def test_high_watermark_only_moves_forward(make_partition) -> None:
    p = make_partition()
    p.append_records_to_leader(records(4), 1, T0)
    p.update_follower_fetch(2, 4, T0)
    p.update_follower_fetch(3, 4, T0)
    assert p.log.high_watermark == 4
    p.update_follower_fetch(3, 2, T0 + 1)  # a follower that went back (truncated) does not pull it down
    assert p.log.high_watermark == 4


def test_followers_outside_the_isr_do_not_hold_back_the_high_watermark(make_partition) -> None:
    p = make_partition(isr=(1, 2))
    p.append_records_to_leader(records(3), 1, T0)
    p.update_follower_fetch(2, 3, T0)
    assert p.log.high_watermark == 3
    assert p.follower_state(3).log_end_offset == -1


def test_single_replica_high_watermark_follows_appends(make_partition) -> None:
    p = make_partition(replicas=(1,))
    p.append_records_to_leader(records(3), -1, T0)
    assert p.log.high_watermark == 3


def test_high_watermark_move_wakes_parked_fetches(make_partition) -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        p = make_partition()
        consumer = asyncio.get_running_loop().create_future()
        replica = asyncio.get_running_loop().create_future()
        p.add_waiter(consumer)
        p.add_waiter(replica, follower=True)
        p.append_records_to_leader(records(2), 1, T0)
        woken_by_append = (consumer.done(), replica.done())
        p.update_follower_fetch(2, 2, T0)
        p.update_follower_fetch(3, 2, T0)
        return (*woken_by_append, consumer.done())

    assert asyncio.run(scenario()) == (False, True, True)


def test_last_caught_up_time_is_that_of_a_fetch_that_reached_the_leo_at_its_start(make_partition) -> None:
    p = make_partition()
    state = p.follower_state(2)
    assert state.last_caught_up_time_ms == T0  # an ISR member counts as caught up at the leadership change
    p.append_records_to_leader(records(4), 1, T0)
    p.update_follower_fetch(2, 0, T0 + 100)  # behind: LEO was 4
    assert state.last_caught_up_time_ms == T0
    p.update_follower_fetch(2, 4, T0 + 200)  # reached the LEO of its own start
    assert state.last_caught_up_time_ms == T0 + 200
    p.update_follower_fetch(2, 4, T0 + 300, leader_end_offset=6)  # appends arrived meanwhile
    p.update_follower_fetch(2, 6, T0 + 400, leader_end_offset=9)  # reached what the previous fetch saw
    assert state.last_caught_up_time_ms == T0 + 300
    assert state.is_caught_up(9, T0 + 400, 10_000) and not state.is_caught_up(9, T0 + 20_000, 10_000)


def test_leadership_change_resets_follower_state(make_partition) -> None:
    p = make_partition()
    p.append_records_to_leader(records(2), 1, T0)
    p.update_follower_fetch(2, 2, T0)
    p.update_follower_fetch(3, 2, T0)
    assert p.log.high_watermark == 2
    p.update_leadership(1, 6, (1, 2, 3), (1, 2, 3), now_ms=T0 + 10)  # a new leader epoch
    assert p.follower_state(2).log_end_offset == -1
    p.append_records_to_leader(records(1), 1, T0)
    assert p.log.high_watermark == 2  # stays until the followers fetch again
    p.update_leadership(2, 7, (1, 2, 3), (1, 2, 3))  # a follower now
    assert p.follower_state(2) is None and p.update_follower_fetch(2, 3, T0) is False


def test_same_leadership_keeps_follower_state_across_isr_changes(make_partition) -> None:
    p = make_partition()
    p.update_follower_fetch(2, 0, T0 + 5)
    p.update_leadership(1, 5, (1, 2, 3, 4), (1, 2), now_ms=T0 + 10)
    assert p.follower_state(2).last_fetch_time_ms == T0 + 5
    assert p.follower_state(4).log_end_offset == -1


def test_is_replica_and_follower_fetch_checks(make_partition) -> None:
    p = make_partition()
    assert p.is_replica(1) and p.is_replica(3) and not p.is_replica(4)
    assert p.follower_fetch_error(2) is None
    assert p.follower_fetch_error(2, 5) is None
    assert p.follower_fetch_error(2, 4) == ErrorCode.fenced_leader_epoch
    assert p.follower_fetch_error(4) == ErrorCode.not_leader_or_follower
    assert p.follower_fetch_error(4, 5) == ErrorCode.unknown_leader_epoch
    assert p.follower_fetch_error(1) == ErrorCode.not_leader_or_follower  # the leader is no follower
    follower = make_partition(broker_id=2)
    assert follower.follower_fetch_error(3) == ErrorCode.not_leader_or_follower


def test_diverging_epoch(make_partition) -> None:
    p = make_partition(epoch=3)
    p.append_records_to_leader(records(4), 1, T0)  # epoch 3: offsets 0-3
    p.update_leadership(1, 5, (1, 2, 3), (1, 2, 3), now_ms=T0)
    p.append_records_to_leader(records(2), 1, T0)  # epoch 5: offsets 4-5
    assert p.diverging_epoch(5, 6) is None
    assert p.diverging_epoch(3, 4) is None  # at the end of epoch 3: consistent
    assert p.diverging_epoch(3, 6) == (3, 4)  # the follower has epoch-3 records past 4
    assert p.diverging_epoch(4, 5) == (3, 4)  # an epoch the leader never had
    with pytest.raises(OffsetOutOfRangeError):
        p.diverging_epoch(9, 6)  # above every known epoch
