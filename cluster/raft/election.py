"""Election rules of ``RaftNode``: Vote, BeginQuorumEpoch and EndQuorumEpoch (KIP-595), with
pre-vote (KIP-996, ``prevote.py``).

A mixin of :class:`cluster.raft.core.RaftNode`, kept apart so each file stays readable; it uses the
node's state and transitions. The rules, as Kafka's ``KafkaRaftClient`` applies them:

- a voter grants at most one vote per epoch, persisted before the answer leaves; and only to a
  candidate whose log is at least as up to date (last epoch, then end offset);
- any request or response with a newer epoch moves the node to that epoch (follower if the
  leader is named, unattached otherwise) — a leader or candidate steps down; a pre-vote request
  (``VoteRequest.pre_vote``) is the exception: it moves nothing (``prevote.py``);
- a voter whose leader went silent (fetch timeout) or whose election timeout expired first asks
  for pre-votes in its own epoch as a prospective, and campaigns only once a majority would vote
  for it: a voter that was paused, cut off or restarted does not depose a working leader;
- a candidate that wins a majority leads; one that times out, or that a majority rejects, backs
  off (binary exponential, at most quorum.election.backoff.max.ms) and then asks for pre-votes
  again before campaigning in the next epoch; a resigned leader campaigns directly (it knows the
  leader is gone);
- a new leader announces itself with BeginQuorumEpoch until each voter acknowledged it (by answer
  or by fetching); a resigning leader sends EndQuorumEpoch with its preferred successors, and
  each of them starts its election after a backoff that grows with its place in that list.

Pre-vote follows KIP-996 (Vote v2's ``PreVote``). Not done: treating UNSUPPORTED_VERSION from an
older voter as a granted pre-vote (every node runs this code; a top-level error reaches the core as
a lost response). Not implemented: voter-set changes (KIP-853).

Concurrency: not thread-safe; part of a ``RaftNode`` driven by one caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cluster.raft.errors import RaftStateError
from cluster.raft.messages import (
    NO_LEADER,
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    Errors,
    FetchRequest,
    Message,
    VoteRequest,
    VoteResponse,
)
from cluster.raft.roles import (
    CandidateState,
    FollowerState,
    LeaderState,
    ProspectiveState,
    ResignedState,
    UnattachedState,
)

if TYPE_CHECKING:
    from cluster.raft.core import RaftNode

    _Base = RaftNode
else:
    _Base = object

#: Kafka's ``KafkaRaftClient.RETRY_BACKOFF_BASE_MS`` for election backoff.
RETRY_BACKOFF_BASE_MS = 100


class ElectionRules(_Base):
    """Vote, BeginQuorumEpoch and EndQuorumEpoch handling, and the candidate's timers."""

    # ------------------------------------------------------------------ Vote

    def _handle_vote_request(self, message: Message) -> None:
        request: VoteRequest = message.payload  # type: ignore[assignment]
        if (request.last_offset < 0 or request.last_offset_epoch < 0
                or request.last_offset_epoch > request.candidate_epoch
                or (request.last_offset_epoch == request.candidate_epoch and not request.pre_vote)):
            self._answer_vote(message, Errors.INVALID_REQUEST, False)
            return
        if request.candidate_epoch < self.epoch:
            self._answer_vote(message, Errors.FENCED_LEADER_EPOCH, False)
            return
        if request.pre_vote:  # answered in our own epoch, and nothing changes (KIP-996)
            self._answer_vote(message, Errors.NONE,
                              self._may_grant_pre_vote(request.candidate_id, self._log_up_to_date(request)))
            return
        if request.candidate_epoch > self.epoch:
            self._become_unattached(request.candidate_epoch)
        granted = self._may_grant_vote(request.candidate_id, self._log_up_to_date(request))
        state = self.state
        if granted and isinstance(state, (UnattachedState, ProspectiveState)) and state.voted_id == NO_LEADER:
            self._become_unattached_voted(request.candidate_id)
        self._answer_vote(message, Errors.NONE, granted)

    def _probe_older_leader(self, leader_id: int) -> None:
        """We are ahead of the quorum (a candidate whose election failed, or a forged Vote or
        announcement): voters that hear from ``leader_id`` in an older epoch refuse our pre-votes,
        and epochs never go back. A Fetch in our epoch makes that leader step down into it
        (``_handle_fetch_request``, Raft's newer-epoch rule; etcd raft answers a lower-term leader
        likewise), and the quorum elects a leader above us. Its answer is not awaited."""
        self._send_request(leader_id, FetchRequest(self.node_id, self.log.end_offset, self.log.last_epoch,
                                                   self.epoch))

    def _log_up_to_date(self, request: VoteRequest) -> bool:
        """Raft's election restriction: the candidate's log ends in a later epoch, or in the same
        epoch at an offset at least as large as ours."""
        return (request.last_offset_epoch, request.last_offset) >= (self.log.last_epoch, self.log.end_offset)

    def _may_grant_vote(self, candidate_id: int, log_up_to_date: bool) -> bool:
        """Kafka's ``EpochState.canGrantVote``: only a voter without a leader in this epoch votes,
        once — again for the same candidate (a retried request), never for another."""
        if not self.is_voter or candidate_id not in self.voters:
            return False  # observers never vote
        state = self.state
        if isinstance(state, UnattachedState) or (isinstance(state, ProspectiveState)
                                                  and state.last_leader == NO_LEADER):
            if state.voted_id != NO_LEADER:
                return state.voted_id == candidate_id
            return log_up_to_date
        return False  # a candidate voted for itself; the others know (or knew) this epoch's leader

    def _answer_vote(self, message: Message, error: Errors, granted: bool) -> None:
        self._respond(message, VoteResponse(error, self.leader_id, self.epoch, granted))

    def _handle_vote_response(self, message: Message) -> None:
        if not self._take_pending(message):
            return
        response: VoteResponse = message.payload  # type: ignore[assignment]
        state = self.state
        if isinstance(state, ProspectiveState) and response.error == Errors.NONE and (
                response.leader_epoch < state.epoch or (response.leader_epoch == state.epoch
                                                        and response.leader_id in (NO_LEADER, state.last_leader))):
            # an answer to our pre-vote that teaches nothing new: from a voter still in an older
            # epoch (pre-votes move no epoch), or naming no leader or the one we knew
            self._count_pre_vote(state, message.source, response.vote_granted)
            if (not response.vote_granted and response.leader_epoch < state.epoch
                    and response.leader_id in self.voters and response.leader_id != self.node_id):
                self._probe_older_leader(response.leader_id)
            return
        if self._handle_common_response(response.error, response.leader_id, response.leader_epoch):
            return
        state = self.state
        if isinstance(state, ProspectiveState):
            self._count_pre_vote(state, message.source, response.vote_granted)
            return
        if not isinstance(state, CandidateState):
            return
        if response.vote_granted:
            state.granted.add(message.source)
            self._maybe_become_leader()
        else:
            state.rejected.add(message.source)
            if len(self.voters) - len(state.rejected) < self._majority() and not state.backing_off:
                # cannot win any more: back off now rather than wait for the election timeout
                state.backoff_until_ms = self.now_ms + self._election_backoff_ms(state.retries)

    def _majority(self) -> int:
        return len(self.voters) // 2 + 1

    def _maybe_become_leader(self) -> None:
        state = self.state
        if isinstance(state, CandidateState) and len(state.granted & self.voters) >= self._majority():
            self._become_leader()

    def _poll_candidate(self, state: CandidateState) -> None:
        """Kafka's ``pollCandidate``: back off after a lost election, then campaign again."""
        now = self.now_ms
        if not state.backing_off and now >= state.election_deadline_ms:
            state.backoff_until_ms = now + self._election_backoff_ms(state.retries)
        if state.backing_off:
            if now >= state.backoff_until_ms:
                self._become_prospective()
            return
        self._send_vote_requests(state, VoteRequest(state.epoch, self.node_id, self.log.last_epoch,
                                                    self.log.end_offset))

    def _send_vote_requests(self, state: CandidateState | ProspectiveState, request: VoteRequest) -> None:
        """Ask every voter that has not answered; again after quorum.request.timeout.ms."""
        now = self.now_ms
        for voter in sorted(self.voters):
            if voter == self.node_id or voter in state.granted or voter in state.rejected:
                continue
            sent = state.vote_sent.get(voter)
            if sent is not None:
                if now < sent[1] + self.config.request_timeout_ms:
                    continue
                self._pending.pop(sent[0], None)
            state.vote_sent[voter] = (self._send_request(voter, request), now)

    def _election_backoff_ms(self, retries: int) -> int:
        """Kafka's ``binaryExponentialElectionBackoffMs``."""
        spread = 2 << min(20, max(0, retries - 1))
        return min(RETRY_BACKOFF_BASE_MS * self.rng.randrange(spread), self.config.election_backoff_max_ms)

    # ------------------------------------------------------------------ epochs and leaders

    def _maybe_transition(self, leader_id: int, epoch: int) -> None:
        """Kafka's ``maybeTransition``: follow a newer epoch, or a leader of this epoch we did not know."""
        self._check_consistent_leader(leader_id, epoch)
        if epoch > self.epoch:
            if leader_id != NO_LEADER:
                self._become_follower(epoch, leader_id)
            else:
                self._become_unattached(epoch)
        elif epoch == self.epoch and leader_id != NO_LEADER and self.leader_id == NO_LEADER:
            self._become_follower(epoch, leader_id)

    def _check_consistent_leader(self, leader_id: int, epoch: int) -> None:
        """Kafka's ``hasConsistentLeader``: one epoch has one leader."""
        if epoch != self.epoch or leader_id == NO_LEADER:
            return
        if leader_id == self.node_id and not isinstance(self.state, (LeaderState, ResignedState)):
            raise RaftStateError(f"node {self.node_id}: told it leads epoch {epoch}, but it is {self.state!r}")
        if self.leader_id not in (NO_LEADER, leader_id):
            raise RaftStateError(f"node {self.node_id}: leader {leader_id} of epoch {epoch} "
                                 f"contradicts the known leader {self.leader_id}")

    # ------------------------------------------------------------------ BeginQuorumEpoch

    def _announcement_error(self, leader_id: int, leader_epoch: int) -> Errors | None:
        """Begin/EndQuorumEpoch from ``leader_id``: an error to answer, or None to accept (and
        follow the announced leader: ``_maybe_transition``)."""
        if leader_epoch < self.epoch:
            return Errors.FENCED_LEADER_EPOCH
        if leader_id not in self.voters or leader_id == self.node_id:
            return Errors.INVALID_REQUEST
        self._maybe_transition(leader_id, leader_epoch)
        return None

    def _acknowledged(self, message: Message, role: type[LeaderState | ResignedState]) -> None:
        """A Begin/EndQuorumEpoch answer: the voter has heard of the epoch, if we still hold ``role``."""
        if not self._take_pending(message):
            return
        response: BeginQuorumEpochResponse | EndQuorumEpochResponse = message.payload  # type: ignore[assignment]
        if self._handle_common_response(response.error, response.leader_id, response.leader_epoch):
            return
        state = self.state
        if isinstance(state, role):
            state.unacknowledged.discard(message.source)

    def _handle_begin_quorum_epoch_request(self, message: Message) -> None:
        request: BeginQuorumEpochRequest = message.payload  # type: ignore[assignment]
        error = self._announcement_error(request.leader_id, request.leader_epoch)
        self._respond(message, BeginQuorumEpochResponse(error or Errors.NONE, self.leader_id, self.epoch))

    def _handle_begin_quorum_epoch_response(self, message: Message) -> None:
        self._acknowledged(message, LeaderState)

    def _send_begin_quorum_epoch(self, state: LeaderState) -> None:
        """Tell the voters that have not acknowledged this epoch, every fetch timeout / 2."""
        if not state.unacknowledged or self.now_ms < state.begin_epoch_resend_ms:
            return
        request = BeginQuorumEpochRequest(self.node_id, state.epoch)
        for voter in sorted(state.unacknowledged):
            old = state.begin_sent.get(voter)
            if old is not None:
                self._pending.pop(old, None)
            state.begin_sent[voter] = self._send_request(voter, request)
        state.begin_epoch_resend_ms = self.now_ms + self.config.fetch_timeout_ms // 2

    # ------------------------------------------------------------------ EndQuorumEpoch

    def _handle_end_quorum_epoch_request(self, message: Message) -> None:
        request: EndQuorumEpochRequest = message.payload  # type: ignore[assignment]
        error = self._announcement_error(request.leader_id, request.leader_epoch)
        state = self.state
        if error is None and isinstance(state, FollowerState) and state.leader_id == request.leader_id \
                and self.is_voter:
            state.fetched_from_leader = False  # the leader is going: grant pre-votes (KIP-996)
            backoff = self._end_epoch_backoff_ms(request.preferred_successors)
            state.fetch_deadline_ms = min(state.fetch_deadline_ms, self.now_ms + backoff)
        self._respond(message, EndQuorumEpochResponse(error or Errors.NONE, self.leader_id, self.epoch))

    def _end_epoch_backoff_ms(self, preferred_successors: tuple[int, ...]) -> int:
        """Kafka's ``strictExponentialElectionBackoffMs``: the first preferred successor starts at
        once, the next ones wait longer, voters not in the list the longest."""
        backoff_max = self.config.election_backoff_max_ms
        total = len(preferred_successors)
        position = preferred_successors.index(self.node_id) if self.node_id in preferred_successors else total
        if position == 0:
            return 0
        if position >= total:
            return backoff_max
        return min(backoff_max, (backoff_max >> (total - 1)) << (position - 1))

    def _handle_end_quorum_epoch_response(self, message: Message) -> None:
        self._acknowledged(message, ResignedState)

    def _poll_resigned(self, state: ResignedState) -> None:
        if self.now_ms >= state.election_deadline_ms:
            if self.is_voter:
                self._become_candidate()
            else:
                self._become_unattached(state.epoch + 1)
            return
        self._send_end_quorum_epoch(state)

    def _election_deadline(self) -> int:
        """quorum.election.timeout.ms, randomized: timeout + random in [0, timeout)."""
        timeout = self.config.election_timeout_ms
        return self.now_ms + timeout + self.rng.randrange(timeout)

    def _send_end_quorum_epoch(self, state: ResignedState) -> None:
        now = self.now_ms
        request = EndQuorumEpochRequest(self.node_id, state.epoch, state.preferred_successors)
        for voter in sorted(state.unacknowledged):
            sent = state.end_sent.get(voter)
            if sent is not None:
                if now < sent[1] + self.config.request_timeout_ms:
                    continue
                self._pending.pop(sent[0], None)
            state.end_sent[voter] = (self._send_request(voter, request), now)
