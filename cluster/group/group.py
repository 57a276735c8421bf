"""ClassicGroup: one consumer group of the classic protocol — its state, members and offsets.

States and legal moves (Kafka's ``GroupState`` / ``ClassicGroupState``)::

    Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
      ▲                 ▲        │ (no member left)                  │ leader's SyncGroup
      └─────────────────┼────────┘                                    ▼
                        └────────── member joins, leaves or fails ── Stable
    any state ──▶ Dead (deleted, or its __consumer_offsets partition moved away)

This module holds state and the moves that keep it consistent (membership, leader, protocol
selection, generations); the timers and the request flow live in ``membership``, persistence
in ``coordinator``.

Concurrency: a group is owned by the GroupCoordinator and touched only from the node's event
loop; no method here awaits, so every request sees and leaves a consistent group. A member's
parked JoinGroup/SyncGroup is an ``asyncio.Future`` that some later event completes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from cluster.group.offsets_topic import GroupMetadataValue, MemberMetadata, OffsetCommitValue
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol.codec import consumer_subscription_topics

CONSUMER_PROTOCOL_TYPE = "consumer"
TopicPartition = tuple[str, int]


class PendingTxnOffset(NamedTuple):
    """An offset committed in an open transaction (Kafka's ``CommitRecordMetadataAndOffset``)."""

    value: OffsetCommitValue
    position: int
    """Log offset of the ``__consumer_offsets`` record: which of two commits is newer."""


Protocols = tuple[tuple[str, bytes], ...]
"""A member's (protocol name, metadata) pairs, in its order of preference."""


def now_ms() -> int:
    """Wall-clock time in ms (state and commit timestamps, as Kafka's)."""
    return int(time.time() * 1000)


class GroupState(Enum):
    """The classic protocol's group states; the values are Kafka's names (ListGroups, DescribeGroups)."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_VALID_PREVIOUS_STATES: dict[GroupState, frozenset[GroupState]] = {
    GroupState.DEAD: frozenset(GroupState),
    GroupState.COMPLETING_REBALANCE: frozenset({GroupState.PREPARING_REBALANCE}),
    GroupState.STABLE: frozenset({GroupState.COMPLETING_REBALANCE}),
    GroupState.PREPARING_REBALANCE: frozenset(
        {GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY}),
    GroupState.EMPTY: frozenset({GroupState.PREPARING_REBALANCE}),
}


@dataclass(frozen=True)
class JoinGroupResult:
    """What a JoinGroup gets back (``members`` only for the leader)."""

    error_code: ErrorCode
    member_id: str = ""
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    members: tuple[tuple[str, str | None, bytes], ...] = ()
    """(member id, group instance id, metadata of the selected protocol) of every member."""
    skip_assignment: bool = False
    """KIP-814 (JoinGroup v9): the leader must not compute a new assignment."""


@dataclass(frozen=True)
class SyncGroupResult:
    """What a SyncGroup gets back."""

    error_code: ErrorCode
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass(eq=False)
class ClassicGroupMember:
    """A member of a classic group (Kafka's ``MemberMetadata``; timeouts in ms)."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    protocols: Protocols
    assignment: bytes = b""
    is_new: bool = False
    """Joined but not yet through a rebalance: expires after the new-member join timeout."""
    join_future: asyncio.Future[JoinGroupResult] | None = None
    sync_future: asyncio.Future[SyncGroupResult] | None = None
    heartbeat_timer: asyncio.TimerHandle | None = None

    @property
    def is_awaiting_join(self) -> bool:
        return self.join_future is not None

    @property
    def is_awaiting_sync(self) -> bool:
        return self.sync_future is not None

    def metadata(self, protocol: str) -> bytes:
        """This member's metadata for ``protocol`` (the consumer subscription)."""
        return next(meta for name, meta in self.protocols if name == protocol)

    def matches(self, protocols: Protocols) -> bool:
        """Same protocols, in the same order, with the same metadata."""
        return self.protocols == protocols

    def complete_join(self, result: JoinGroupResult) -> bool:
        """Answer the parked JoinGroup, if any; True if there was one."""
        future, self.join_future = self.join_future, None
        if future is None:
            return False
        if not future.done():
            future.set_result(result)
        return True

    def complete_sync(self, result: SyncGroupResult) -> bool:
        """Answer the parked SyncGroup, if any; True if there was one."""
        future, self.sync_future = self.sync_future, None
        if future is None:
            return False
        if not future.done():
            future.set_result(result)
        return True


class ClassicGroup:
    """State of one group (Kafka's ``GroupMetadata`` / ``ClassicGroup``)."""

    def __init__(self, group_id: str, now_ms: int) -> None:
        self.group_id = group_id
        self.state = GroupState.EMPTY
        self.state_timestamp_ms = now_ms
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, ClassicGroupMember] = {}
        self.static_members: dict[str, str] = {}
        """group.instance.id → member id."""
        self.pending_members: dict[str, asyncio.TimerHandle | None] = {}
        """Member ids handed out with MEMBER_ID_REQUIRED, not joined yet → their expiry timer."""
        self.pending_sync_members: set[str] = set()
        self.subscribed_topics: frozenset[str] | None = None
        """Topics the members subscribe to (consumer protocol), None when unknown."""
        self.offsets: dict[TopicPartition, OffsetCommitValue] = {}
        self.offset_positions: dict[TopicPartition, int] = {}
        """Log offset of the commit each cached offset came from, for commits made since the group
        was loaded: a commit replicated after a later one must not overwrite it in the cache."""
        self.pending_txn_offsets: dict[int, dict[TopicPartition, PendingTxnOffset]] = {}
        """Producer id → offsets its open transaction committed, not visible until its COMMIT
        marker (Kafka's ``pendingTransactionalOffsetCommits``; ``cluster.group.txn_offsets``)."""
        self.join_timer: asyncio.TimerHandle | None = None
        self.sync_timer: asyncio.TimerHandle | None = None
        self.initial_join_remaining_ms: int | None = None
        """Set while the first rebalance is delayed (group.initial.rebalance.delay.ms)."""
        self.new_member_added = False

    def __repr__(self) -> str:
        return f"ClassicGroup({self.group_id!r}, {self.state.value}, generation {self.generation_id})"

    # -- state ---------------------------------------------------------------------------

    def is_in(self, *states: GroupState) -> bool:
        return self.state in states

    def can_rebalance(self) -> bool:
        return self.state in _VALID_PREVIOUS_STATES[GroupState.PREPARING_REBALANCE]

    def transition_to(self, state: GroupState, now_ms: int) -> None:
        """Move to ``state``; an illegal move is a bug (Kafka throws IllegalStateException)."""
        if self.state not in _VALID_PREVIOUS_STATES[state]:
            raise RuntimeError(f"group {self.group_id}: illegal transition {self.state.value} → {state.value}")
        self.state = state
        self.state_timestamp_ms = now_ms

    # -- membership ----------------------------------------------------------------------

    def add(self, member: ClassicGroupMember) -> None:
        """Add a member (the first one sets the protocol type and becomes leader)."""
        if not self.members:
            self.protocol_type = member.protocol_type
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.pending_members.pop(member.member_id, None)

    def remove(self, member_id: str) -> ClassicGroupMember | None:
        """Drop a member (a new leader is the oldest remaining member)."""
        member = self.members.pop(member_id, None)
        if member is not None and member.group_instance_id is not None:
            self.static_members.pop(member.group_instance_id, None)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        self.pending_sync_members.discard(member_id)
        return member

    def replace_static_member(self, group_instance_id: str, old_member_id: str,
                              new_member_id: str) -> ClassicGroupMember:
        """A static member rejoined with a new member id: keep its place (and leadership)."""
        member = self.members.pop(old_member_id)
        member.complete_join(JoinGroupResult(ErrorCode.fenced_instance_id, old_member_id))
        member.complete_sync(SyncGroupResult(ErrorCode.fenced_instance_id))
        member.member_id = new_member_id
        self.members[new_member_id] = member
        if self.leader_id == old_member_id:
            self.leader_id = new_member_id
        self.static_members[group_instance_id] = new_member_id
        return member

    def is_static_member_fenced(self, group_instance_id: str | None, member_id: str) -> bool:
        """A known group.instance.id presented with another member id (FENCED_INSTANCE_ID)."""
        if group_instance_id is None or group_instance_id not in self.static_members:
            return False
        return self.static_members[group_instance_id] != member_id

    def maybe_elect_new_joined_leader(self) -> bool:
        """Keep a leader that rejoined, else pick a member that did; False if none rejoined."""
        if self.leader_id is None:
            return False
        if self.members[self.leader_id].is_awaiting_join:
            return True
        joined = next((m.member_id for m in self.members.values() if m.is_awaiting_join), None)
        if joined is None:
            return False
        self.leader_id = joined
        return True

    def has_all_members_joined(self) -> bool:
        return not self.pending_members and all(m.is_awaiting_join for m in self.members.values())

    @property
    def rebalance_timeout_ms(self) -> int:
        """The largest rebalance timeout of the members (bounds a rebalance)."""
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    # -- protocols -----------------------------------------------------------------------

    def supports_protocols(self, protocol_type: str, protocols: Protocols) -> bool:
        """Whether a member with these protocols may join (else INCONSISTENT_GROUP_PROTOCOL)."""
        if self.state is GroupState.EMPTY:
            return bool(protocol_type) and bool(protocols)
        counts = Counter(name for m in self.members.values() for name, _meta in m.protocols)
        return protocol_type == self.protocol_type and any(counts[name] == len(self.members) for name, _ in protocols)

    def select_protocol(self) -> str:
        """The protocol every member supports that most members prefer (Kafka's vote)."""
        candidates = set.intersection(*({name for name, _ in m.protocols} for m in self.members.values()))
        votes = Counter(next(name for name, _ in m.protocols if name in candidates) for m in self.members.values())
        return max(votes, key=lambda name: votes[name])

    def init_next_generation(self, now_ms: int) -> None:
        """Generation + 1: CompletingRebalance with the selected protocol, or Empty without members."""
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.subscribed_topics = self._compute_subscribed_topics()
            self.transition_to(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.subscribed_topics = None
            self.transition_to(GroupState.EMPTY, now_ms)
        self.pending_sync_members.clear()

    def _compute_subscribed_topics(self) -> frozenset[str] | None:
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE or self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            parsed = consumer_subscription_topics(member.metadata(self.protocol_name))
            if parsed is None:
                return None
            topics.update(parsed)
        return frozenset(topics)

    def is_subscribed_to_topic(self, topic: str) -> bool:
        """True when a member consumes ``topic`` — or when the subscriptions are unknown."""
        return self.subscribed_topics is None or topic in self.subscribed_topics

    def member_metadata_for_leader(self) -> tuple[tuple[str, str | None, bytes], ...]:
        """Every member's subscription for the selected protocol (the leader's JoinGroup answer)."""
        if self.protocol_name is None:
            raise RuntimeError(f"group {self.group_id} has no selected protocol")
        return tuple((m.member_id, m.group_instance_id, m.metadata(self.protocol_name))
                     for m in self.members.values())

    # -- persistence ---------------------------------------------------------------------

    def to_record(self, assignment: dict[str, bytes]) -> GroupMetadataValue:
        """The GroupMetadataValue to persist, with ``assignment`` (member id → bytes)."""
        members = tuple(
            MemberMetadata(m.member_id, m.group_instance_id, m.client_id, m.client_host, m.rebalance_timeout_ms,
                           m.session_timeout_ms,
                           m.metadata(self.protocol_name) if self.protocol_name else b"",
                           assignment.get(m.member_id, b""))
            for m in self.members.values())
        return GroupMetadataValue(self.protocol_type or "", self.generation_id, self.protocol_name, self.leader_id,
                                  self.state_timestamp_ms, members)

    @classmethod
    def from_record(cls, group_id: str, value: GroupMetadataValue, now_ms: int) -> ClassicGroup:
        """A group loaded from ``__consumer_offsets``: Stable with its members, or Empty."""
        group = cls(group_id, value.current_state_timestamp if value.current_state_timestamp >= 0 else now_ms)
        group.generation_id = value.generation
        group.protocol_name = value.protocol
        for m in value.members:
            protocols: Protocols = ((value.protocol, m.subscription),) if value.protocol else ()
            group.add(ClassicGroupMember(m.member_id, m.group_instance_id, m.client_id, m.client_host,
                                         m.rebalance_timeout, m.session_timeout, value.protocol_type, protocols,
                                         m.assignment))
        group.leader_id = value.leader if value.leader in group.members else group.leader_id
        group.protocol_type = value.protocol_type or None
        if group.members:
            group.state = GroupState.STABLE
            group.subscribed_topics = group._compute_subscribed_topics()
        return group
