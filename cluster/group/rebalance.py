"""The timer-driven half of the classic rebalance protocol (Kafka's ``GroupCoordinator``
``prepareRebalance`` … ``onCompleteJoin``, ``onExpirePendingSync``, ``onExpireHeartbeat``).

Kafka's purgatories become ``loop.call_later`` timers kept on the group and its members:

* **join**: a rebalance completes once every member has rejoined, or after the group's
  rebalance timeout (the largest member ``rebalance.timeout.ms`` = ``max.poll.interval.ms``),
  when dynamic members that did not rejoin are dropped. The first rebalance of an Empty group
  waits ``group.initial.rebalance.delay.ms``, again while new members keep arriving, at most up
  to the rebalance timeout (Kafka's ``InitialDelayedJoin``).
* **sync**: members that send no SyncGroup within the rebalance timeout after the join are
  dropped and the group rebalances (``DelayedSync``).
* **session**: a member not heard from for ``session.timeout.ms`` is removed (``DelayedHeartbeat``);
  members parked in a rebalance stay alive, new members expire after 5 minutes if the join
  never completes, and ids handed out with MEMBER_ID_REQUIRED expire after the session timeout.

The request side (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) is ``membership.GroupMembership``,
a subclass. Concurrency: event loop only (requests and timer callbacks); nothing here awaits, so
each step leaves the group consistent. A member's parked request is always answered (a result,
an error, or REBALANCE_IN_PROGRESS when a newer request replaces it): responses on a connection
go out in order, and one unanswered request would block its connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from cluster.group.group import (
    ClassicGroup,
    ClassicGroupMember,
    GroupState,
    JoinGroupResult,
    SyncGroupResult,
    now_ms,
)
from pykafka_ops.errors import ErrorCode

log = logging.getLogger(__name__)

UNKNOWN_MEMBER_ID = ""

StoreGroup = Callable[[ClassicGroup, dict[str, bytes], Callable[[ErrorCode], None]], None]
"""Persist a group with an assignment (member id → bytes), then call back with the outcome once
the in-sync replicas have it (at once when nothing is left to wait for)."""

PREPARING, COMPLETING, STABLE = (GroupState.PREPARING_REBALANCE, GroupState.COMPLETING_REBALANCE,
                                 GroupState.STABLE)


class ClassicRebalancer:
    """Rebalances, generations and member expiry of ClassicGroup objects."""

    def __init__(self, initial_rebalance_delay_ms: int, store_group: StoreGroup) -> None:
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self.store_group = store_group

    # -- rebalance -----------------------------------------------------------------------

    def _maybe_prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, reason)

    def _prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        if group.is_in(COMPLETING):
            self._reset_and_propagate_assignment_error(group, ErrorCode.rebalance_in_progress)
        self._cancel_sync_expiry(group)
        if group.is_in(GroupState.EMPTY):
            delay_ms = self.initial_rebalance_delay_ms
            group.initial_join_remaining_ms = max(group.rebalance_timeout_ms - delay_ms, 0)
            group.new_member_added = False
            self._schedule_join(group, delay_ms, self._on_initial_delay_expired)
        else:
            self._schedule_join(group, group.rebalance_timeout_ms, self._complete_join)
        log.info("preparing to rebalance group %s in state %s with old generation %d (%s)",
                 group.group_id, group.state.value, group.generation_id, reason)
        group.transition_to(PREPARING, now_ms())
        self._maybe_complete_join(group)

    def _schedule_join(self, group: ClassicGroup, delay_ms: int, callback: Callable[[ClassicGroup], None]) -> None:
        if group.join_timer is not None:
            group.join_timer.cancel()
        group.join_timer = asyncio.get_running_loop().call_later(delay_ms / 1000, callback, group)

    def _on_initial_delay_expired(self, group: ClassicGroup) -> None:
        remaining = group.initial_join_remaining_ms or 0
        if group.new_member_added and remaining > 0:
            group.new_member_added = False
            delay_ms = min(self.initial_rebalance_delay_ms, remaining)
            group.initial_join_remaining_ms = max(remaining - delay_ms, 0)
            self._schedule_join(group, delay_ms, self._on_initial_delay_expired)
        else:
            self._complete_join(group)

    def _maybe_complete_join(self, group: ClassicGroup) -> None:
        if group.is_in(PREPARING) and group.initial_join_remaining_ms is None and group.has_all_members_joined():
            self._complete_join(group)

    def _complete_join(self, group: ClassicGroup) -> None:
        """Kafka's ``onCompleteJoin``: drop dynamic members that did not rejoin, start the next
        generation and answer every parked JoinGroup (the leader gets the subscriptions)."""
        if group.join_timer is not None:
            group.join_timer.cancel()
            group.join_timer = None
        group.initial_join_remaining_ms = None
        if not group.is_in(PREPARING):
            return
        for member in [m for m in group.members.values() if not m.is_awaiting_join and m.group_instance_id is None]:
            log.info("member %s of group %s did not rejoin in time; removing it", member.member_id, group.group_id)
            self._drop_member(group, member)
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Nobody rejoined: wait again, until their sessions expire (Kafka does the same).
            self._schedule_join(group, group.rebalance_timeout_ms, self._complete_join)
            return
        group.init_next_generation(now_ms())
        if group.is_in(GroupState.EMPTY):
            self.store_group(group, {}, lambda error: _log_store_error(group, error))
            return
        log.info("stabilized group %s generation %d with %d member(s), protocol %s", group.group_id,
                 group.generation_id, len(group.members), group.protocol_name)
        for member in group.members.values():
            is_leader = group.leader_id == member.member_id
            member.complete_join(self._generation_result(group, member, with_members=is_leader))
            self._schedule_heartbeat_expiry(group, member)
            member.is_new = False
            group.pending_sync_members.add(member.member_id)
        group.sync_timer = asyncio.get_running_loop().call_later(
            group.rebalance_timeout_ms / 1000, self._expire_pending_sync, group, group.generation_id)

    def _generation_result(self, group: ClassicGroup, member: ClassicGroupMember,
                           with_members: bool) -> JoinGroupResult:
        return JoinGroupResult(ErrorCode.none, member.member_id, group.generation_id, group.protocol_type,
                               group.protocol_name, group.leader_id or "",
                               group.member_metadata_for_leader() if with_members else ())

    # -- assignment and sync expiry -----------------------------------------------------

    def _remove_pending_sync_member(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync_members.discard(member_id)
        if not group.pending_sync_members:
            self._cancel_sync_expiry(group)

    def _cancel_sync_expiry(self, group: ClassicGroup) -> None:
        group.pending_sync_members.clear()
        if group.sync_timer is not None:
            group.sync_timer.cancel()
            group.sync_timer = None

    def _expire_pending_sync(self, group: ClassicGroup, generation_id: int) -> None:
        group.sync_timer = None
        if generation_id != group.generation_id or not group.is_in(COMPLETING, STABLE):
            return
        missing = [group.members[mid] for mid in group.pending_sync_members if mid in group.members]
        for member in missing:
            self._drop_member(group, member)
        self._prepare_rebalance(group, f"member(s) {[m.member_id for m in missing]} sent no SyncGroup in time")

    def _reset_and_propagate_assignment_error(self, group: ClassicGroup, error: ErrorCode) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error)

    def _propagate_assignment(self, group: ClassicGroup, error: ErrorCode) -> None:
        ok = error == ErrorCode.none
        for member in group.members.values():
            result = SyncGroupResult(error, group.protocol_type if ok else None, group.protocol_name if ok else None,
                                     member.assignment)
            if member.complete_sync(result):
                self._schedule_heartbeat_expiry(group, member)

    # -- members leaving -----------------------------------------------------------------

    def _drop_member(self, group: ClassicGroup, member: ClassicGroupMember) -> None:
        """Remove a member, answering its parked requests with UNKNOWN_MEMBER_ID."""
        member.complete_join(JoinGroupResult(ErrorCode.unknown_member_id, UNKNOWN_MEMBER_ID))
        member.complete_sync(SyncGroupResult(ErrorCode.unknown_member_id))
        if member.heartbeat_timer is not None:
            member.heartbeat_timer.cancel()
            member.heartbeat_timer = None
        group.remove(member.member_id)

    def _remove_member_and_update_group(self, group: ClassicGroup, member: ClassicGroupMember) -> None:
        self._drop_member(group, member)
        if group.is_in(STABLE, COMPLETING):
            self._maybe_prepare_rebalance(group, f"member {member.member_id} left")
        elif group.is_in(PREPARING):
            self._maybe_complete_join(group)

    def _expire_pending_member(self, group: ClassicGroup, member_id: str) -> None:
        timer = group.pending_members.pop(member_id, None)
        if timer is not None:
            timer.cancel()
        self._maybe_complete_join(group)

    def _schedule_heartbeat_expiry(self, group: ClassicGroup, member: ClassicGroupMember,
                                   timeout_ms: int | None = None) -> None:
        if member.heartbeat_timer is not None:
            member.heartbeat_timer.cancel()
        delay_ms = member.session_timeout_ms if timeout_ms is None else timeout_ms
        member.heartbeat_timer = asyncio.get_running_loop().call_later(
            delay_ms / 1000, self._expire_heartbeat, group, member)

    def _expire_heartbeat(self, group: ClassicGroup, member: ClassicGroupMember) -> None:
        member.heartbeat_timer = None
        if group.is_in(GroupState.DEAD) or group.members.get(member.member_id) is not member:
            return
        if not member.is_new and (member.is_awaiting_join or member.is_awaiting_sync):
            return  # a rebalance keeps it alive; the join/sync timers bound that wait
        log.info("member %s of group %s has failed (session timeout %d ms); removing it",
                 member.member_id, group.group_id, member.session_timeout_ms)
        self._remove_member_and_update_group(group, member)

    # -- lifecycle -----------------------------------------------------------------------

    def schedule_loaded_members(self, group: ClassicGroup) -> None:
        """Start the session timers of a group just loaded from ``__consumer_offsets``."""
        for member in group.members.values():
            self._schedule_heartbeat_expiry(group, member)

    def unload(self, group: ClassicGroup, error: ErrorCode) -> None:
        """Mark the group Dead (deleted, or its partition moved): answer parked requests with
        ``error`` and stop every timer."""
        group.transition_to(GroupState.DEAD, now_ms())
        for timer in (group.join_timer, group.sync_timer, *group.pending_members.values(),
                      *(m.heartbeat_timer for m in group.members.values())):
            if timer is not None:
                timer.cancel()
        group.join_timer = group.sync_timer = None
        group.pending_members.clear()
        for member in group.members.values():
            member.heartbeat_timer = None
            member.complete_join(JoinGroupResult(error, member.member_id))
            member.complete_sync(SyncGroupResult(error))


def _log_store_error(group: ClassicGroup, error: ErrorCode) -> None:
    if error != ErrorCode.none:  # no members, so an older generation coming back is harmless
        log.warning("could not store empty group %s: %s", group.group_id, error.name)
