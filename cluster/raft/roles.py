"""The per-epoch states of a Raft node (Kafka's ``EpochState`` classes, held by ``QuorumState``).

A node is in exactly one of them at a time; the :class:`~cluster.raft.core.RaftNode` replaces the
object on every transition, so nothing leaks from one epoch or role into the next:

- :class:`UnattachedState` — an epoch without a known leader, possibly with a vote cast in it
  (Kafka's ``UnattachedState``; its ``votedKey`` was Kafka's former ``VotedState``);
- :class:`ProspectiveState` — a voter that lost its leader (or its election) asking the voters
  whether they would vote for it, without leaving its epoch (pre-vote, KIP-996; Kafka's
  ``ProspectiveState``);
- :class:`CandidateState` — asking for votes in a new epoch, then backing off if it loses;
- :class:`LeaderState` — replica progress, the high watermark's inputs, check-quorum, the fetch
  purgatory and the voters still to be told of the new epoch;
- :class:`FollowerState` — fetching from a known leader (a voter or an observer), entries with
  Fetch or, when the leader's log no longer holds its position, the leader's snapshot with
  FetchSnapshot (:class:`SnapshotFetch`, Kafka's ``FollowerState.fetchingSnapshot``);
- :class:`ResignedState` — a leader that gave up its epoch (graceful shutdown, lost quorum, or a
  restart of a former leader) and tells the voters so with EndQuorumEpoch.

These are plain records with small helpers; the rules that use them live in ``core.py``.

Concurrency: not thread-safe; owned by one ``RaftNode`` and its single driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cluster.raft.log import OffsetAndEpoch
from cluster.raft.messages import NO_LEADER, Message

__all__ = ["CandidateState", "EpochState", "FollowerState", "LeaderState", "ProspectiveState", "ReplicaState",
           "ResignedState", "SnapshotFetch", "UnattachedState"]

#: Kafka's ``LeaderState.CHECK_QUORUM_TIMEOUT_FACTOR``.
CHECK_QUORUM_TIMEOUT_FACTOR = 1.5


class EpochState:
    """What every state answers: its name, epoch, the leader it knows and the vote it holds."""

    __slots__ = ()

    name = "?"
    epoch: int
    leader_id: int
    voted_id: int

    def __repr__(self) -> str:
        return f"{self.name}(epoch={self.epoch}, leader={self.leader_id}, voted={self.voted_id})"


@dataclass(repr=False, slots=True)
class UnattachedState(EpochState):
    """No leader known in ``epoch``; a voter starts an election at ``election_deadline_ms``."""

    epoch: int
    voted_id: int
    election_deadline_ms: int
    name = "Unattached"
    leader_id = NO_LEADER


@dataclass(repr=False, slots=True)
class ProspectiveState(EpochState):
    """Pre-vote (KIP-996): asking the voters, in ``epoch`` itself, whether they would vote for us.
    Nothing is persisted and no epoch changes; a majority of grants (ours included) makes a
    candidate of ``epoch`` + 1. ``voted_id`` is the vote held in ``epoch``; ``last_leader`` the leader
    of ``epoch`` we followed (it is not assumed alive: ``leader_id`` is -1), followed again after a
    lost pre-vote. ``retries`` is the lost elections so far (for the candidate's backoff)."""

    epoch: int
    voted_id: int
    last_leader: int
    election_deadline_ms: int
    retries: int
    granted: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)
    #: voter -> (correlation id, sent at) of the last pre-vote request to it
    vote_sent: dict[int, tuple[int, int]] = field(default_factory=dict)
    name = "Prospective"
    leader_id = NO_LEADER
    backing_off = False
    backoff_until_ms = -1


@dataclass(repr=False, slots=True)
class CandidateState(EpochState):
    """Asking for votes in ``epoch``. ``granted`` holds the local vote from the start. A lost
    election (timeout, or a majority rejecting) backs off until ``backoff_until_ms`` (-1: not
    backing off) and then campaigns again in the next epoch with ``retries`` + 1."""

    epoch: int
    voted_id: int
    election_deadline_ms: int
    retries: int
    granted: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)
    backoff_until_ms: int = -1
    #: voter -> (correlation id, sent at) of the last Vote request to it
    vote_sent: dict[int, tuple[int, int]] = field(default_factory=dict)
    name = "Candidate"
    leader_id = NO_LEADER

    @property
    def backing_off(self) -> bool:
        return self.backoff_until_ms >= 0


@dataclass(slots=True)
class SnapshotFetch:
    """The leader's snapshot ``snapshot_id`` being loaded with FetchSnapshot: the bytes received
    so far (the next request asks from ``len(data)``) and its total size, once known."""

    snapshot_id: OffsetAndEpoch
    data: bytearray = field(default_factory=bytearray)
    size: int = -1


@dataclass(repr=False, slots=True)
class FollowerState(EpochState):
    """Fetching from ``leader_id``; a voter that hears nothing valid from it before
    ``fetch_deadline_ms`` (quorum.fetch.timeout.ms) becomes a prospective. ``snapshot_fetch`` is the
    snapshot being loaded (FetchSnapshot instead of Fetch until it is installed); a transition
    drops it with the state. ``fetched_from_leader``: the leader answered a fetch in this state
    (Kafka's ``hasFetchedFromLeader``), and has not resigned since: such a follower rejects
    pre-votes, the leader being alive."""

    epoch: int
    leader_id: int
    voted_id: int
    fetch_deadline_ms: int
    snapshot_fetch: SnapshotFetch | None = None
    fetched_from_leader: bool = False
    name = "Follower"

    def heard_from_leader(self, now_ms: int, fetch_timeout_ms: int) -> None:
        """A valid answer from the leader: restart the fetch timer."""
        self.fetch_deadline_ms = now_ms + fetch_timeout_ms
        self.fetched_from_leader = True


@dataclass(slots=True)
class ReplicaState:
    """The leader's view of one replica (Kafka's ``LeaderState.ReplicaState``)."""

    end_offset: int = -1
    last_fetch_ms: int = -1
    last_caught_up_ms: int = -1
    sent_high_watermark: int = -1
    """The high watermark last told to this replica (a fetch is not parked while it is behind)."""


@dataclass(repr=False, slots=True)
class LeaderState(EpochState):
    """Leading ``epoch``, which started at ``epoch_start_offset`` (the offset of the leader's
    LeaderChangeMessage)."""

    epoch: int
    leader_id: int
    epoch_start_offset: int
    voters: frozenset[int]
    check_quorum_timeout_ms: int
    check_quorum_deadline_ms: int
    replicas: dict[int, ReplicaState] = field(default_factory=dict)
    observers: dict[int, ReplicaState] = field(default_factory=dict)
    #: voters that fetched since the check-quorum timer was last reset
    fetched_voters: set[int] = field(default_factory=set)
    #: voters that have not acknowledged the epoch (by BeginQuorumEpoch response or a Fetch)
    unacknowledged: set[int] = field(default_factory=set)
    begin_epoch_resend_ms: int = 0
    #: voter -> correlation id of the last BeginQuorumEpoch request to it
    begin_sent: dict[int, int] = field(default_factory=dict)
    #: the fetch purgatory: replica -> (request message, answer-by time)
    parked: dict[int, tuple[Message, int]] = field(default_factory=dict)
    name = "Leader"

    @property
    def voted_id(self) -> int:  # type: ignore[override]
        return self.leader_id

    def replica(self, replica_id: int) -> ReplicaState:
        """The progress record of a voter or observer (created on first fetch)."""
        table = self.replicas if replica_id in self.voters else self.observers
        state = table.get(replica_id)
        if state is None:
            state = table[replica_id] = ReplicaState()
        return state

    def note_voter_fetch(self, voter_id: int, now_ms: int) -> None:
        """Kafka's ``updateCheckQuorumForFollowingVoter``: once a majority of the voters (the
        leader counting itself) fetched, restart the check-quorum timer."""
        if voter_id not in self.voters or voter_id == self.leader_id:
            return
        self.unacknowledged.discard(voter_id)
        self.fetched_voters.add(voter_id)
        needed = len(self.voters) // 2 + 1 - (1 if self.leader_id in self.voters else 0)
        if len(self.fetched_voters) >= needed:
            self.fetched_voters.clear()
            self.check_quorum_deadline_ms = now_ms + self.check_quorum_timeout_ms

    def preferred_successors(self) -> tuple[int, ...]:
        """The other voters, most caught-up first (``nonLeaderVotersByDescendingFetchOffset``)."""
        others = [v for v in self.voters if v != self.leader_id]
        return tuple(sorted(others, key=lambda v: (-self.replica(v).end_offset, v)))


@dataclass(repr=False, slots=True)
class ResignedState(EpochState):
    """A leader that gave up ``epoch``: it never votes in it again, tells the voters with
    EndQuorumEpoch and, at ``election_deadline_ms``, campaigns for the next epoch."""

    epoch: int
    leader_id: int
    election_deadline_ms: int
    preferred_successors: tuple[int, ...]
    unacknowledged: set[int] = field(default_factory=set)
    #: voter -> (correlation id, sent at) of the last EndQuorumEpoch request to it
    end_sent: dict[int, tuple[int, int]] = field(default_factory=dict)
    name = "Resigned"

    @property
    def voted_id(self) -> int:  # type: ignore[override]
        return self.leader_id
