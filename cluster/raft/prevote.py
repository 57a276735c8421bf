"""Pre-vote (KIP-996) of ``RaftNode``: a voter asks before it campaigns.

A mixin of :class:`cluster.raft.core.RaftNode` (through ``ElectionRules``). The rules, as Kafka
4.0's ``KafkaRaftClient`` with its ``ProspectiveState`` applies them:

- a voter whose fetch timeout (follower) or election timeout (unattached) expires, or a candidate
  whose backoff after a lost election ends, becomes a *prospective* in its current epoch: it
  persists nothing and sends Vote requests with ``pre_vote`` (Vote v2) carrying that epoch and its
  log's last epoch and end offset;
- a voter grants a pre-vote if the prospective's log is at least as up to date as its own and it
  has no live leader: unattached, prospective and candidate voters grant (whatever vote they cast
  in the epoch), a follower grants only while it has not fetched from its leader in this state
  (Kafka's ``hasFetchedFromLeader``; a leader that resigns with EndQuorumEpoch no longer counts as
  heard from), leaders and resigned leaders never. Answering a pre-vote changes nothing: not the
  voter's epoch (even for a pre-vote from a newer epoch), nor its vote, nor its timers;
- a majority of grants (its own included) makes the prospective a candidate in epoch + 1, which
  asks for real votes as before; a majority of rejections, or quorum.election.timeout.ms
  (randomized) without a majority either way, loses: it follows again the leader it knew in this
  epoch (fetch timer restarted), or else stays unattached with a new election timeout;
- a response or request that names a leader of its epoch, or a newer epoch, moves it like any
  other state (follower of that leader; unattached in the newer epoch); a grant or rejection from a
  voter still in an older epoch counts as such (pre-votes move no epoch, so that voter stays
  behind).

Concurrency: not thread-safe; part of a ``RaftNode`` driven by one caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cluster.raft.messages import NO_LEADER, VoteRequest
from cluster.raft.roles import (
    CandidateState,
    FollowerState,
    ProspectiveState,
    UnattachedState,
)

if TYPE_CHECKING:
    from cluster.raft.core import RaftNode

    _Base = RaftNode
else:
    _Base = object


class PreVoteRules(_Base):
    """The prospective's transitions and timers, and the voter's pre-vote rule."""

    def _become_prospective(self) -> None:
        """Kafka's ``transitionToProspective``: nothing is persisted, the epoch stays."""
        old = self.state
        retries = old.retries if isinstance(old, (CandidateState, ProspectiveState)) else 0
        last_leader = old.leader_id if isinstance(old, FollowerState) else NO_LEADER
        self._transition(ProspectiveState(old.epoch, old.voted_id, last_leader, self._election_deadline(),
                                          retries, granted={self.node_id}))
        self._count_pre_vote(self.state, self.node_id, True)  # type: ignore[arg-type]

    def _poll_prospective(self, state: ProspectiveState) -> None:
        if self.now_ms >= state.election_deadline_ms:
            self._lose_pre_vote(state)
            return
        self._send_vote_requests(state, VoteRequest(state.epoch, self.node_id, self.log.last_epoch,
                                                    self.log.end_offset, pre_vote=True))

    def _count_pre_vote(self, state: ProspectiveState, voter: int, granted: bool) -> None:
        """Kafka's ``maybeTransitionForward`` / ``maybeHandleElectionLoss`` for a prospective."""
        if granted:
            state.granted.add(voter)
            if len(state.granted & self.voters) >= self._majority():
                self._become_candidate()
        else:
            state.rejected.add(voter)
            if len(self.voters) - len(state.rejected & self.voters) < self._majority():
                self._lose_pre_vote(state)

    def _lose_pre_vote(self, state: ProspectiveState) -> None:
        """Kafka's ``prospectiveTransitionAfterElectionLoss``: follow the leader we knew in this
        epoch again, or wait unattached (a new randomized election timeout) for the next try."""
        if state.last_leader != NO_LEADER:
            self._become_follower(state.epoch, state.last_leader)
        else:
            self._transition(UnattachedState(state.epoch, state.voted_id, self._election_deadline()))

    def _may_grant_pre_vote(self, candidate_id: int, log_up_to_date: bool) -> bool:
        """Kafka's ``canGrantVote`` with ``isPreVote``: an up-to-date log, and no live leader."""
        if not self.is_voter or candidate_id not in self.voters or not log_up_to_date:
            return False
        state = self.state
        if isinstance(state, FollowerState):
            return not state.fetched_from_leader
        return isinstance(state, (UnattachedState, ProspectiveState, CandidateState))
