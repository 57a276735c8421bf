"""The request side of the classic rebalance protocol: JoinGroup, SyncGroup, Heartbeat,
LeaveGroup, and the membership checks of OffsetCommit.

A port of Apache Kafka's ``GroupCoordinator`` (``handleJoinGroup``, ``handleSyncGroup``,
``handleHeartbeat``, ``handleLeaveGroup``, ``doCommitOffsets``), including MEMBER_ID_REQUIRED
(KIP-394) and static membership (KIP-345, KIP-814). Timers and generations are the base class,
``rebalance.ClassicRebalancer``.

Groups passed in are live: the GroupCoordinator's cache never holds a Dead group (it drops a
group as it dies), so Kafka's COORDINATOR_NOT_AVAILABLE answers for Dead groups cannot arise,
and an Empty group has no members (a member's arrival moves it to PreparingRebalance at once).

Concurrency: event loop only. Each method reads and updates the group without awaiting and
returns an error code or an ``asyncio.Future`` (already done unless the request is parked until
the rebalance completes or the group's new generation reaches the in-sync replicas). Simplification against Kafka: ``group.max.size`` is not enforced.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from cluster.group.group import (
    ClassicGroup,
    ClassicGroupMember,
    GroupState,
    JoinGroupResult,
    Protocols,
    SyncGroupResult,
    now_ms,
)
from cluster.group.rebalance import COMPLETING, PREPARING, STABLE, UNKNOWN_MEMBER_ID, ClassicRebalancer
from pykafka_ops.errors import ErrorCode

log = logging.getLogger(__name__)

#: Kafka's ``GroupCoordinator.NewMemberJoinTimeoutMs``.
NEW_MEMBER_JOIN_TIMEOUT_MS = 300_000


@dataclass(frozen=True)
class MemberJoin:
    """A JoinGroup request as the protocol sees it (timeouts in ms)."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    require_known_member_id: bool
    """JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED and its id."""
    supports_skip_assignment: bool
    """JoinGroup v9+: a static leader that rejoins a Stable group is told to skip assigning."""
    reason: str | None = None
    """JoinGroup v8+: why the client (re)joins, for the logs."""


@dataclass(frozen=True)
class LeavingMember:
    """One member of a LeaveGroup request (an empty member id + instance id = admin removal)."""

    member_id: str
    group_instance_id: str | None
    reason: str | None = None


_R = TypeVar("_R")


def completed(result: _R) -> asyncio.Future[_R]:
    """A Future already holding ``result`` (an answer that needs no waiting)."""
    future: asyncio.Future[_R] = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return future


class GroupMembership(ClassicRebalancer):
    """Serves the membership requests of ClassicGroup objects owned by the GroupCoordinator."""

    # -- JoinGroup -----------------------------------------------------------------------

    def join_group(self, group: ClassicGroup, join: MemberJoin) -> asyncio.Future[JoinGroupResult]:
        """Handle a JoinGroup for an existing (possibly just created) group."""
        future: asyncio.Future[JoinGroupResult] = asyncio.get_running_loop().create_future()
        if not group.supports_protocols(join.protocol_type, join.protocols):
            future.set_result(JoinGroupResult(ErrorCode.inconsistent_group_protocol, join.member_id))
        elif join.member_id == UNKNOWN_MEMBER_ID:
            self._join_new_member(group, join, future)
        else:
            self._join_known_member(group, join, future)
        if group.is_in(PREPARING):
            self._maybe_complete_join(group)
        return future

    def _join_new_member(self, group: ClassicGroup, join: MemberJoin,
                         future: asyncio.Future[JoinGroupResult]) -> None:
        member_id = f"{join.group_instance_id or join.client_id}-{uuid.uuid4()}"
        if join.group_instance_id is not None:
            old_member_id = group.static_members.get(join.group_instance_id)
            if old_member_id is not None:
                self._replace_static_member(group, old_member_id, member_id, join, future)
            else:
                self._add_member_and_rebalance(group, member_id, join, future)
        elif join.require_known_member_id:
            group.pending_members[member_id] = asyncio.get_running_loop().call_later(
                join.session_timeout_ms / 1000, self._expire_pending_member, group, member_id)
            future.set_result(JoinGroupResult(ErrorCode.member_id_required, member_id))
        else:
            self._add_member_and_rebalance(group, member_id, join, future)

    def _join_known_member(self, group: ClassicGroup, join: MemberJoin,
                           future: asyncio.Future[JoinGroupResult]) -> None:
        member_id = join.member_id
        if member_id in group.pending_members:  # the second JoinGroup of KIP-394 (never static)
            self._add_member_and_rebalance(group, member_id, join, future)
            return
        unknown_instance = join.group_instance_id is not None and join.group_instance_id not in group.static_members
        if group.is_static_member_fenced(join.group_instance_id, member_id):
            future.set_result(JoinGroupResult(ErrorCode.fenced_instance_id, member_id))
            return
        member = group.members.get(member_id)
        if member is None or unknown_instance:
            future.set_result(JoinGroupResult(ErrorCode.unknown_member_id, member_id))
            return
        unchanged = member.matches(join.protocols)
        if group.is_in(COMPLETING) and unchanged:
            # The member lost the JoinGroup answer: give it the current generation again.
            future.set_result(self._generation_result(group, member, with_members=group.leader_id == member_id))
        elif group.is_in(STABLE) and unchanged and group.leader_id != member_id:
            future.set_result(self._generation_result(group, member, with_members=False))
        else:  # PreparingRebalance, changed metadata, or the leader asking for a new assignment
            self._update_member(member, join, future)
            self._maybe_prepare_rebalance(group, f"member {member_id} rejoined in state {group.state.value}; "
                                                 f"client reason: {join.reason}")

    def _add_member_and_rebalance(self, group: ClassicGroup, member_id: str, join: MemberJoin,
                                  future: asyncio.Future[JoinGroupResult]) -> None:
        pending = group.pending_members.pop(member_id, None)
        if pending is not None:
            pending.cancel()
        member = ClassicGroupMember(member_id, join.group_instance_id, join.client_id, join.client_host,
                                    join.rebalance_timeout_ms, join.session_timeout_ms, join.protocol_type,
                                    join.protocols, is_new=True)
        if group.is_in(PREPARING) and group.generation_id == 0:
            group.new_member_added = True  # lets the initial delay extend once more
        group.add(member)
        self._park_join(member, future)
        # New members cannot heartbeat yet: bound their wait by the new-member join timeout.
        self._schedule_heartbeat_expiry(group, member, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._maybe_prepare_rebalance(group, f"new member {member_id} joined; client reason: {join.reason}")

    def _update_member(self, member: ClassicGroupMember, join: MemberJoin,
                       future: asyncio.Future[JoinGroupResult]) -> None:
        member.protocols = join.protocols
        member.rebalance_timeout_ms = join.rebalance_timeout_ms
        member.session_timeout_ms = join.session_timeout_ms
        self._park_join(member, future)

    def _replace_static_member(self, group: ClassicGroup, old_member_id: str, new_member_id: str,
                               join: MemberJoin, future: asyncio.Future[JoinGroupResult]) -> None:
        """A known group.instance.id joined with no member id: it takes over its old place
        (Kafka's ``updateStaticMemberAndRebalance``); a Stable group does not rebalance."""
        assert join.group_instance_id is not None
        log.info("static member %s of group %s rejoined in state %s: %s replaces %s", join.group_instance_id,
                 group.group_id, group.state.value, new_member_id, old_member_id)
        old_leader = group.leader_id
        member = group.replace_static_member(join.group_instance_id, old_member_id, new_member_id)
        old_settings = (member.protocols, member.rebalance_timeout_ms, member.session_timeout_ms)
        self._schedule_heartbeat_expiry(group, member)
        self._update_member(member, join, future)
        if group.is_in(PREPARING):
            return  # it joins the rebalance under way
        if group.is_in(COMPLETING) or group.protocol_name != group.select_protocol():
            self._maybe_prepare_rebalance(group, f"static member {join.group_instance_id} rejoined")
            return

        def stored(error: ErrorCode) -> None:
            if error != ErrorCode.none:
                group.replace_static_member(join.group_instance_id, new_member_id, old_member_id)
                member.join_future = None
                member.protocols, member.rebalance_timeout_ms, member.session_timeout_ms = old_settings
                if not future.done():
                    future.set_result(JoinGroupResult(error, UNKNOWN_MEMBER_ID))
                return
            # KIP-814: a v9+ leader learns it leads but must skip the assignment; older clients get
            # the old leader id, so the rejoined leader acts as a follower and nothing is reassigned.
            is_leader = join.supports_skip_assignment and group.leader_id == new_member_id
            member.complete_join(JoinGroupResult(
                ErrorCode.none, new_member_id, group.generation_id, group.protocol_type, group.protocol_name,
                (group.leader_id if join.supports_skip_assignment else old_leader) or "",
                group.member_metadata_for_leader() if is_leader else (), skip_assignment=is_leader))

        self.store_group(group, {m.member_id: m.assignment for m in group.members.values()}, stored)

    def _park_join(self, member: ClassicGroupMember, future: asyncio.Future[JoinGroupResult]) -> None:
        member.complete_join(JoinGroupResult(ErrorCode.rebalance_in_progress, member.member_id))  # superseded
        member.join_future = future

    # -- SyncGroup -----------------------------------------------------------------------

    def sync_group(self, group: ClassicGroup, member_id: str, group_instance_id: str | None, generation_id: int,
                   protocol_type: str | None, protocol_name: str | None,
                   assignments: dict[str, bytes]) -> asyncio.Future[SyncGroupResult]:
        """Handle a SyncGroup; the leader's carries the assignment (member id → bytes)."""
        member = group.members.get(member_id)
        if group.is_static_member_fenced(group_instance_id, member_id):
            return completed(SyncGroupResult(ErrorCode.fenced_instance_id))
        if member is None:
            return completed(SyncGroupResult(ErrorCode.unknown_member_id))
        if generation_id != group.generation_id:
            return completed(SyncGroupResult(ErrorCode.illegal_generation))
        if (protocol_type is not None and protocol_type != group.protocol_type) or (
                protocol_name is not None and protocol_name != group.protocol_name):
            return completed(SyncGroupResult(ErrorCode.inconsistent_group_protocol))
        if group.is_in(PREPARING):
            return completed(SyncGroupResult(ErrorCode.rebalance_in_progress))
        self._remove_pending_sync_member(group, member_id)
        if group.is_in(STABLE):
            self._schedule_heartbeat_expiry(group, member)
            return completed(SyncGroupResult(ErrorCode.none, group.protocol_type, group.protocol_name,
                                             member.assignment))
        future: asyncio.Future[SyncGroupResult] = asyncio.get_running_loop().create_future()
        member.complete_sync(SyncGroupResult(ErrorCode.rebalance_in_progress))  # superseded
        member.sync_future = future
        if group.leader_id == member_id:
            assignment = {mid: assignments.get(mid, b"") for mid in group.members}
            generation = group.generation_id

            def stored(error: ErrorCode) -> None:
                # Kafka's check: a member may have joined (or the group moved away) while the
                # assignment was replicated; then this generation is over and nothing is done
                if not group.is_in(COMPLETING) or group.generation_id != generation:
                    return
                if error != ErrorCode.none:
                    self._reset_and_propagate_assignment_error(group, error)
                    self._maybe_prepare_rebalance(group, f"storing the assignment failed ({error.name})")
                    return
                for m in group.members.values():
                    m.assignment = assignment.get(m.member_id, b"")
                self._propagate_assignment(group, ErrorCode.none)
                group.transition_to(STABLE, now_ms())

            self.store_group(group, assignment, stored)
        return future

    # -- Heartbeat and LeaveGroup --------------------------------------------------------

    def heartbeat(self, group: ClassicGroup, member_id: str, group_instance_id: str | None,
                  generation_id: int) -> ErrorCode:
        """Handle a Heartbeat: keeps the member alive, tells it when to rejoin."""
        member = group.members.get(member_id)
        if group.is_static_member_fenced(group_instance_id, member_id):
            return ErrorCode.fenced_instance_id
        if member is None:
            return ErrorCode.unknown_member_id
        if generation_id != group.generation_id:
            return ErrorCode.illegal_generation
        self._schedule_heartbeat_expiry(group, member)
        return ErrorCode.rebalance_in_progress if group.is_in(PREPARING) else ErrorCode.none

    def validate_offset_commit(self, group: ClassicGroup, member_id: str, group_instance_id: str | None,
                               generation_id: int) -> ErrorCode:
        """May this member commit now? (Kafka's ``doCommitOffsets`` checks.) Generation -1 on an
        Empty group is a client that only stores offsets; a member's commit counts as a heartbeat."""
        member = group.members.get(member_id)
        if group.is_static_member_fenced(group_instance_id, member_id):
            return ErrorCode.fenced_instance_id
        if generation_id < 0 and group.is_in(GroupState.EMPTY):
            return ErrorCode.none
        if member is None:
            return ErrorCode.unknown_member_id
        if generation_id != group.generation_id:
            return ErrorCode.illegal_generation
        if group.is_in(COMPLETING):  # it has the new generation but not yet its assignment
            return ErrorCode.rebalance_in_progress
        self._schedule_heartbeat_expiry(group, member)
        return ErrorCode.none

    def leave_group(self, group: ClassicGroup, leaving: Sequence[LeavingMember]) -> list[ErrorCode]:
        """Handle a LeaveGroup; one error per leaving member."""
        errors = []
        for leaver in leaving:
            member_id, instance_id = leaver.member_id, leaver.group_instance_id
            if member_id == UNKNOWN_MEMBER_ID and instance_id is not None:
                member_id = group.static_members.get(instance_id, UNKNOWN_MEMBER_ID)
            if member_id in group.pending_members:
                self._expire_pending_member(group, member_id)
                errors.append(ErrorCode.none)
            elif group.is_static_member_fenced(instance_id, member_id):
                errors.append(ErrorCode.fenced_instance_id)
            elif member_id in group.members:
                log.info("member %s left group %s; client reason: %s", member_id, group.group_id, leaver.reason)
                self._remove_member_and_update_group(group, group.members[member_id])
                errors.append(ErrorCode.none)
            else:
                errors.append(ErrorCode.unknown_member_id)
        return errors

