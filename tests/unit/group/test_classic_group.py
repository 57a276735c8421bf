"""The classic group state machine (ClassicGroup + GroupMembership) without a broker: real
asyncio timers with millisecond timeouts, deadline polling, a store that records what it writes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from cluster.group.group import ClassicGroup, GroupState, JoinGroupResult
from cluster.group.membership import GroupMembership, LeavingMember, MemberJoin
from pykafka_ops.errors import ErrorCode

SESSION_MS = 200
REBALANCE_MS = 300


class Store:
    """Records every stored (generation, assignment); answers ``error`` at once, or, while
    ``replicating``, only when ``replicated()`` is called (the in-sync replicas caught up)."""

    def __init__(self) -> None:
        self.stored: list[tuple[int, dict[str, bytes]]] = []
        self.error = ErrorCode.none
        self.replicating = False
        self.pending: list[Callable[[ErrorCode], None]] = []

    def __call__(self, group: ClassicGroup, assignment: dict[str, bytes],
                 on_stored: Callable[[ErrorCode], None]) -> None:
        self.stored.append((group.generation_id, assignment))
        if self.replicating:
            self.pending.append(on_stored)
        else:
            on_stored(self.error)

    def replicated(self) -> None:
        pending, self.pending = self.pending, []
        for on_stored in pending:
            on_stored(self.error)


def run(scenario: Callable[[GroupMembership, ClassicGroup, Store], Coroutine[Any, Any, None]],
        initial_delay_ms: int = 0) -> None:
    async def main() -> None:
        store = Store()
        membership = GroupMembership(initial_delay_ms, store)
        group = ClassicGroup("g", 0)
        try:
            await scenario(membership, group, store)
        finally:
            if not group.is_in(GroupState.DEAD):
                membership.unload(group, ErrorCode.not_coordinator)

    asyncio.run(main())


def join(member_id: str = "", *, instance: str | None = None, protocols: tuple[tuple[str, bytes], ...] = (
        ("range", b"sub"),), session_ms: int = SESSION_MS, rebalance_ms: int = REBALANCE_MS,
         require_known: bool = False, protocol_type: str = "consumer") -> MemberJoin:
    return MemberJoin(member_id, instance, "client", "/127.0.0.1", session_ms, rebalance_ms, protocol_type,
                      protocols, require_known, supports_skip_assignment=False)


async def done(future: Awaitable[Any], timeout_s: float = 2) -> Any:
    return await asyncio.wait_for(future, timeout_s)


async def until(predicate: Callable[[], bool], timeout_s: float = 2) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.005)


async def stable_group_of_one(m: GroupMembership, group: ClassicGroup) -> str:
    result: JoinGroupResult = await done(m.join_group(group, join()))
    await done(m.sync_group(group, result.member_id, None, result.generation_id, None, None,
                            {result.member_id: b"all"}))
    return result.member_id


def test_first_member_becomes_leader_and_the_group_stabilizes_after_the_leaders_sync() -> None:
    async def scenario(m: GroupMembership, group: ClassicGroup, store: Store) -> None:
        result = await done(m.join_group(group, join()))
        assert result.error_code == ErrorCode.none and result.generation_id == 1
        assert result.leader_id == result.member_id and result.member_id.startswith("client-")
        assert result.members == ((result.member_id, None, b"sub"),) and result.protocol_name == "range"
        assert group.state is GroupState.COMPLETING_REBALANCE
        synced = await done(m.sync_group(group, result.member_id, None, 1, "consumer", "range",
                                         {result.member_id: b"p0"}))
        assert (synced.error_code, synced.assignment, synced.protocol_name) == (ErrorCode.none, b"p0", "range")
        assert group.state is GroupState.STABLE and store.stored == [(1, {result.member_id: b"p0"})]

    run(scenario)


def test_the_assignment_is_handed_out_only_once_the_in_sync_replicas_have_it() -> None:
    """Kafka's storeGroup callback: the group turns Stable and the members get their assignment
    when the generation is replicated; a generation ended meanwhile (a member joined) is not
    completed by its late callback."""
    async def scenario(m: GroupMembership, group: ClassicGroup, store: Store) -> None:
        store.replicating = True
        first = await done(m.join_group(group, join()))
        synced = m.sync_group(group, first.member_id, None, 1, "consumer", "range", {first.member_id: b"p0"})
        await asyncio.sleep(0.01)
        assert not synced.done() and group.state is GroupState.COMPLETING_REBALANCE
        store.replicated()
        assert (await done(synced)).assignment == b"p0" and group.state is GroupState.STABLE

        joining = m.join_group(group, join())  # a second generation starts …
        rejoin = m.join_group(group, join(first.member_id))
        second = await done(joining)
        assert (await done(rejoin)).generation_id == second.generation_id == 2
        late = m.sync_group(group, first.member_id, None, 2, "consumer", "range",
                            {first.member_id: b"a", second.member_id: b"b"})
        third = m.join_group(group, join(second.member_id))  # … and is over before it is replicated
        await until(lambda: group.state is GroupState.PREPARING_REBALANCE)
        store.replicated()
        assert (await done(late)).error_code == ErrorCode.rebalance_in_progress
        assert group.state is GroupState.PREPARING_REBALANCE
        third.cancel()

    run(scenario)


def test_member_id_required_then_rejoin_with_the_given_id() -> None:
    async def scenario(m: GroupMembership, group: ClassicGroup, _store: Store) -> None:
        first = await done(m.join_group(group, join(require_known=True)))
        assert first.error_code == ErrorCode.member_id_required and first.member_id
        assert group.state is GroupState.EMPTY and first.member_id in group.pending_members
        second = await done(m.join_group(group, join(first.member_id, require_known=True)))
        assert second.error_code == ErrorCode.none and second.member_id == first.member_id

    run(scenario)


def test_a_second_member_triggers_a_rebalance_that_waits_for_every_member() -> None:
    async def scenario(m: GroupMembership, group: ClassicGroup, _store: Store) -> None:
        leader = await stable_group_of_one(m, group)
        newcomer = m.join_group(group, join(protocols=(("range", b"sub2"),)))
        assert group.state is GroupState.PREPARING_REBALANCE and not newcomer.done()
        assert m.heartbeat(group, leader, None, 1) == ErrorCode.rebalance_in_progress
        assert m.validate_offset_commit(group, leader, None, 1) == ErrorCode.none  # still allowed, as Kafka
        assert (await done(m.sync_group(group, leader, None, 1, None, None, {}))).error_code == \
            ErrorCode.rebalance_in_progress
        rejoined = await done(m.join_group(group, join(leader)))
        follower = await done(newcomer)
        assert rejoined.generation_id == follower.generation_id == 2
        assert rejoined.leader_id == leader and len(rejoined.members) == 2 and follower.members == ()
        follower_sync = m.sync_group(group, follower.member_id, None, 2, None, None, {})
        assert not follower_sync.done()  # waits for the leader's assignment
        await done(m.sync_group(group, leader, None, 2, None, None, {leader: b"a", follower.member_id: b"b"}))
        assert (await done(follower_sync)).assignment == b"b"
        assert group.state is GroupState.STABLE

    run(scenario)


def test_leave_rebalances_and_the_last_member_leaving_empties_the_group() -> None:
    async def scenario(m: GroupMembership, group: ClassicGroup, store: Store) -> None:
        member = await stable_group_of_one(m, group)
        assert m.leave_group(group, [LeavingMember(member, None), LeavingMember("nobody", None)]) == [
            ErrorCode.none, ErrorCode.unknown_member_id]
        assert group.state is GroupState.EMPTY and group.generation_id == 2 and not group.members
        assert store.stored[-1] == (2, {})  # the empty generation is persisted

    run(scenario)


def test_a_member_that_stops_heartbeating_is_removed_after_its_session_timeout() -> None:
    async def scenario(m: GroupMembership, group: ClassicGroup, _store: Store) -> None:
        await stable_group_of_one(m, group)
        await until(lambda: group.state is GroupState.EMPTY)
        assert group.generation_id == 2

    run(scenario)


def test_heartbeats_keep_a_member_alive_past_its_session_timeout() -> None:
    async def scenario(m: GroupMembership, group: ClassicGroup, _store: Store) -> None:
        member = await stable_group_of_one(m, group)
        for _ in range(6):  # 6 × 60 ms > the 200 ms session timeout
            await asyncio.sleep(0.06)
            assert m.heartbeat(group, member, None, 1) == ErrorCode.none
        assert group.state is GroupState.STABLE

    run(scenario)


def test_a_member_that_does_not_rejoin_is_dropped_after_the_rebalance_timeout() -> None:
    async def scenario(m: GroupMembership, group: ClassicGroup, _store: Store) -> None:
        silent = await stable_group_of_one(m, group)
        # The silent member keeps heartbeating (so its session lives) but never rejoins.
        newcomer = m.join_group(group, join(session_ms=5000, rebalance_ms=REBALANCE_MS))
        while not newcomer.done():
            m.heartbeat(group, silent, None, 1)
            await asyncio.sleep(0.02)
        result = newcomer.result()
        assert result.generation_id == 2 and list(group.members) == [result.member_id]
        assert result.leader_id == result.member_id  # the leader that did not rejoin lost its place

    run(scenario)


def test_members_that_never_sync_are_removed_and_the_group_rebalances() -> None:
    async def scenario(m: GroupMembership, group: ClassicGroup, _store: Store) -> None:
        first = await done(m.join_group(group, join(session_ms=5000)))
        assert group.state is GroupState.COMPLETING_REBALANCE
        await until(lambda: group.generation_id == 2)  # no SyncGroup within the rebalance timeout
        assert first.member_id not in group.members and group.state is GroupState.EMPTY

    run(scenario)


def test_request_errors_match_kafka() -> None:
    async def scenario(m: GroupMembership, group: ClassicGroup, _store: Store) -> None:
        member = await stable_group_of_one(m, group)
        assert m.heartbeat(group, member, None, 7) == ErrorCode.illegal_generation
        assert m.heartbeat(group, "ghost", None, 1) == ErrorCode.unknown_member_id
        assert (await done(m.join_group(group, join(protocol_type="connect")))).error_code == \
            ErrorCode.inconsistent_group_protocol
        assert (await done(m.join_group(group, join(protocols=(("sticky", b""),))))).error_code == \
            ErrorCode.inconsistent_group_protocol
        assert (await done(m.join_group(group, join("ghost")))).error_code == ErrorCode.unknown_member_id
        assert (await done(m.sync_group(group, member, None, 1, None, "roundrobin", {}))).error_code == \
            ErrorCode.inconsistent_group_protocol
        assert m.validate_offset_commit(group, member, None, 1) == ErrorCode.none
        assert m.validate_offset_commit(group, "", None, -1) == ErrorCode.unknown_member_id  # not Empty
        m.join_group(group, join(member))  # the leader rejoins: generation 2, not yet assigned
        assert group.state is GroupState.COMPLETING_REBALANCE
        assert m.validate_offset_commit(group, member, None, 2) == ErrorCode.rebalance_in_progress

    run(scenario)


def test_a_static_member_rejoining_a_stable_group_takes_its_place_without_a_rebalance() -> None:
    async def scenario(m: GroupMembership, group: ClassicGroup, store: Store) -> None:
        first = await done(m.join_group(group, join(instance="i-1", session_ms=5000)))
        await done(m.sync_group(group, first.member_id, "i-1", 1, None, None, {first.member_id: b"mine"}))
        again = await done(m.join_group(group, join(instance="i-1", session_ms=5000)))
        assert again.error_code == ErrorCode.none and again.member_id != first.member_id
        assert again.generation_id == 1 and group.state is GroupState.STABLE
        assert again.leader_id == first.member_id  # old id: a pre-v9 client must not reassign
        assert (await done(m.sync_group(group, again.member_id, "i-1", 1, None, None, {}))).assignment == b"mine"
        assert m.heartbeat(group, first.member_id, "i-1", 1) == ErrorCode.fenced_instance_id
        assert store.stored[-1] == (1, {again.member_id: b"mine"})

    run(scenario)


def test_static_members_that_miss_a_rebalance_stay_members() -> None:
    async def scenario(m: GroupMembership, group: ClassicGroup, _store: Store) -> None:
        static = await done(m.join_group(group, join(instance="i-1", session_ms=5000)))
        await done(m.sync_group(group, static.member_id, "i-1", 1, None, None, {}))
        newcomer = m.join_group(group, join(session_ms=5000))
        while not newcomer.done():
            m.heartbeat(group, static.member_id, "i-1", 1)
            await asyncio.sleep(0.02)
        assert set(group.members) == {static.member_id, newcomer.result().member_id}

    run(scenario)


def test_the_initial_delay_gathers_members_into_the_first_generation() -> None:
    async def scenario(m: GroupMembership, group: ClassicGroup, _store: Store) -> None:
        first = m.join_group(group, join(rebalance_ms=2000))
        await asyncio.sleep(0.02)
        second = m.join_group(group, join(rebalance_ms=2000))
        results = [await done(first), await done(second)]
        assert {r.generation_id for r in results} == {1} and len(group.members) == 2

    run(scenario, initial_delay_ms=100)


def test_a_failed_assignment_store_fails_the_sync_and_rebalances() -> None:
    async def scenario(m: GroupMembership, group: ClassicGroup, store: Store) -> None:
        result = await done(m.join_group(group, join()))
        store.error = ErrorCode.not_coordinator
        synced = await done(m.sync_group(group, result.member_id, None, 1, None, None, {}))
        assert synced.error_code == ErrorCode.not_coordinator
        assert group.state is GroupState.PREPARING_REBALANCE

    run(scenario)


def test_unload_answers_parked_requests() -> None:
    async def scenario(m: GroupMembership, group: ClassicGroup, _store: Store) -> None:
        leader = await stable_group_of_one(m, group)
        parked = m.join_group(group, join())
        m.unload(group, ErrorCode.not_coordinator)
        assert (await done(parked)).error_code == ErrorCode.not_coordinator
        assert group.state is GroupState.DEAD and leader

    run(scenario)


def test_illegal_transitions_raise() -> None:
    group = ClassicGroup("g", 0)
    with pytest.raises(RuntimeError, match="illegal transition Empty → Stable"):
        group.transition_to(GroupState.STABLE, 1)
