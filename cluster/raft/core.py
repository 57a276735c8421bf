"""``RaftNode``: the KRaft state machine of one node, free of sockets, disks and clocks.

It plays the part of Kafka's ``KafkaRaftClient`` with its ``QuorumState``, in etcd raft's shape:
the caller feeds it events and asks what to do.

Driving it (one caller, one thread or event loop)::

    node = RaftNode(node_id, voters, log, store, random.Random(seed), now_ms)
    loop:
        node.step(message, now_ms)        # every message received for this node
        node.tick(now_ms)                 # whenever now_ms >= node.next_deadline_ms()
        node.propose([payload], now_ms)   # on the leader; NotLeaderError elsewhere
        ready = node.ready()              # after any of the above, then, in this order:
        1. ready.quorum_state: store.write(it) if not None (a vote or a new epoch must be durable
           before any message that depends on it leaves: persist before send)
        2. ready.flush_log: log.flush() if True (appends and truncations made by the core)
        3. ready.messages: send each; the network may lose, delay or duplicate them
        4. ready.snapshot: if not None, replace the state machine with the snapshot of that id
           (``log.read_snapshot(ready.snapshot, 0, log.snapshot_size(ready.snapshot))``): a
           follower installed the leader's snapshot (KIP-630), or the state machine was behind
           the log start offset
        5. ready.committed: apply to the state machine, in order (entries up to the high
           watermark, continuing after ``ready.snapshot`` if there is one; skip ``entry.control``
           records)

``Ready.quorum_state`` is the latest state only: a vote cast in an epoch the same step already
left is covered by the newer epoch (a node never votes in an epoch older than the one it stored).
The caller carries out each ``Ready`` completely before the next ``step``/``tick``/``propose``.

Snapshots (KIP-630, ``snapshots.py``): the caller takes them itself, between two ``Ready`` calls, at
an offset its state machine applied — ``node.create_snapshot(offset, data)`` (the log's
``create_snapshot`` and, by default, ``trim_to``: the entries below are deleted). The leader sends
its latest snapshot to followers its log no longer serves; they fetch it with FetchSnapshot and
install it, and their next ``Ready.snapshot`` names it.

On restart, build a new ``RaftNode`` from the same store and log: it resumes in the epoch it
persisted (Kafka's ``QuorumState.initialize``). The high watermark is not persisted; it is learnt
again (it starts at the latest snapshot's end offset, which is committed). ``applied_offset`` tells
the node which entries the state machine already has: load the state machine from
``log.latest_snapshot()`` if there is one and pass its offset (replay is then bounded by the
snapshot); entries are handed out from there. A smaller ``applied_offset`` below the log start
offset makes the first ``Ready.snapshot`` name the latest snapshot instead (entries below the
start offset are never handed out).

Subclass hooks: every rule is one small method (``_may_grant_vote``, ``_may_grant_pre_vote``,
``_may_commit``, ``_fetch_diverges``...), so a test can plant a broken rule in a subclass.

Concurrency: not thread-safe; driven by one caller / event loop.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence

from cluster.raft.config import QuorumDescription, RaftConfig, Ready
from cluster.raft.election import ElectionRules
from cluster.raft.errors import NotLeaderError, RaftStateError
from cluster.raft.log import Entry, OffsetAndEpoch, RaftLog
from cluster.raft.messages import (
    NO_LEADER,
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    Errors,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    Message,
    Payload,
    VoteRequest,
    VoteResponse,
)
from cluster.raft.prevote import PreVoteRules
from cluster.raft.quorum_state import QuorumStateData, QuorumStateStore
from cluster.raft.replication import FetchInFlight, ReplicationRules
from cluster.raft.roles import (
    CHECK_QUORUM_TIMEOUT_FACTOR,
    CandidateState,
    EpochState,
    FollowerState,
    LeaderState,
    ProspectiveState,
    ResignedState,
    UnattachedState,
)
from cluster.raft.snapshots import SnapshotRules

__all__ = ["NotLeaderError", "QuorumDescription", "RaftConfig", "RaftNode", "RaftStateError", "Ready"]


class RaftNode(ElectionRules, PreVoteRules, ReplicationRules, SnapshotRules):
    """One voter or observer of the metadata quorum."""

    def __init__(self, node_id: int, voters: Iterable[int], log: RaftLog, store: QuorumStateStore,
                 rng: random.Random, now_ms: int, config: RaftConfig | None = None,
                 applied_offset: int = 0) -> None:
        """Resume from ``store`` and ``log`` (Kafka's ``QuorumState.initialize``). ``applied_offset``:
        entries below it are already applied (from the latest snapshot, if loaded, and after)."""
        self.node_id = node_id
        self.voters: frozenset[int] = frozenset(voters)
        if not self.voters:
            raise ValueError("a quorum needs at least one voter")
        self.log = log
        self.config = config or RaftConfig()
        self.rng = rng
        self.now_ms = now_ms
        latest_snapshot = log.latest_snapshot()
        self.high_watermark = latest_snapshot.offset if latest_snapshot is not None else 0
        self._applied = applied_offset
        self._snapshot_to_load: OffsetAndEpoch | None = None
        self._outbox: list[Message] = []
        self._log_dirty = False
        self._pending: dict[int, tuple[int, type]] = {}
        self._next_correlation = rng.randrange(1 << 30)
        self._fetch: FetchInFlight | None = None
        self._next_fetch_ms = now_ms
        persisted = store.read() or QuorumStateData()
        self._persisted = persisted
        self._state_dirty = False
        self.state: EpochState = self._initial_state(persisted)
        if self.voters == {node_id} and not isinstance(self.state, LeaderState):
            self._become_candidate()  # the only voter elects itself (KafkaRaftClient.initialize)
        self._poll()

    # ----------------------------------------------------------------- the caller's interface

    @property
    def is_voter(self) -> bool:
        return self.node_id in self.voters

    @property
    def role(self) -> str:
        """Unattached, Prospective, Candidate, Leader, Follower or Resigned."""
        return self.state.name

    @property
    def epoch(self) -> int:
        return self.state.epoch

    @property
    def leader_id(self) -> int:
        """The leader of the current epoch, -1 if unknown."""
        return self.state.leader_id

    @property
    def is_leader(self) -> bool:
        return isinstance(self.state, LeaderState)

    def step(self, message: Message, now_ms: int) -> None:
        """Handle one message addressed to this node."""
        self.now_ms = max(self.now_ms, now_ms)
        if message.destination != self.node_id:
            return
        handler = _HANDLERS.get(type(message.payload))
        if handler is None:
            raise TypeError(f"not a Raft message: {message.payload!r}")
        getattr(self, handler)(message)
        self._poll()

    def tick(self, now_ms: int) -> None:
        """Let time pass: election, fetch, check-quorum and resend timers fire here."""
        self.now_ms = max(self.now_ms, now_ms)
        self._poll()

    def propose(self, payloads: Sequence[bytes], now_ms: int) -> OffsetAndEpoch:
        """Append ``payloads`` as the leader; returns the offset and epoch of the last one (it is
        committed once an entry with that offset *and* epoch is handed out in ``Ready.committed``).
        Raises :class:`NotLeaderError` on any other node."""
        self.now_ms = max(self.now_ms, now_ms)
        state = self.state
        if not isinstance(state, LeaderState):
            raise NotLeaderError(self.leader_id, self.epoch)
        if not payloads:
            raise ValueError("nothing to propose")
        start = self.log.end_offset
        self._append_as_leader(state, [Entry(start + i, state.epoch, bytes(p)) for i, p in enumerate(payloads)])
        self._poll()
        return OffsetAndEpoch(self.log.end_offset - 1, state.epoch)

    def resign(self, now_ms: int) -> None:
        """Graceful shutdown of a leader: give up the epoch and send EndQuorumEpoch to the voters,
        most caught-up first, so one of them takes over without waiting for a fetch timeout."""
        self.now_ms = max(self.now_ms, now_ms)
        state = self.state
        if isinstance(state, LeaderState):
            self._become_resigned(state.preferred_successors())
            self._poll()

    def ready(self) -> Ready:
        """Drain what the caller must persist, send, load and apply (in that order)."""
        quorum_state = self._persisted if self._state_dirty else None
        self._state_dirty = False
        flush, self._log_dirty = self._log_dirty, False
        messages, self._outbox = self._outbox, []
        self._catch_up_with_log_start()
        snapshot, self._snapshot_to_load = self._snapshot_to_load, None
        committed: list[Entry] = []
        if self.high_watermark > self._applied:
            committed = list(self.log.read(self._applied, self.high_watermark - self._applied))
            self._applied += len(committed)
        return Ready(quorum_state, flush, messages, committed, self.high_watermark, snapshot)

    def next_deadline_ms(self) -> int:
        """When ``tick`` must be called next (Kafka's ``poll`` timeout)."""
        state = self.state
        now, request_timeout = self.now_ms, self.config.request_timeout_ms
        deadlines: list[int] = []
        if isinstance(state, LeaderState):
            if len(self.voters) > 1:
                deadlines.append(state.check_quorum_deadline_ms)
            deadlines.extend(deadline for _, deadline in state.parked.values())
            if state.unacknowledged:
                deadlines.append(state.begin_epoch_resend_ms)
        elif isinstance(state, (CandidateState, ProspectiveState)):
            if state.backing_off:
                deadlines.append(state.backoff_until_ms)
            else:
                deadlines.append(state.election_deadline_ms)
                for voter in self.voters:
                    if voter not in state.granted and voter not in state.rejected:
                        sent = state.vote_sent.get(voter)
                        deadlines.append(now if sent is None else sent[1] + request_timeout)
        elif isinstance(state, ResignedState):
            deadlines.append(state.election_deadline_ms)
            deadlines.extend(state.end_sent[v][1] + request_timeout if v in state.end_sent else now
                             for v in state.unacknowledged)
        else:
            if isinstance(state, FollowerState):
                deadlines.append(state.fetch_deadline_ms)
            elif self.is_voter:
                deadlines.append(state.election_deadline_ms)  # type: ignore[attr-defined]
            if isinstance(state, FollowerState) or not self.is_voter:
                fetch = self._fetch
                deadlines.append(self._next_fetch_ms if fetch is None else fetch.sent_ms + request_timeout)
        return max(now, min(deadlines)) if deadlines else now + self.config.election_timeout_ms

    # ----------------------------------------------------------------- start-up

    def _initial_state(self, persisted: QuorumStateData) -> EpochState:
        """Kafka's ``QuorumState.initialize``: resume in the persisted epoch."""
        epoch = persisted.leader_epoch
        if epoch < self.log.last_epoch:
            # the log is ahead of the state file: never reuse an epoch the log has seen
            self._persist(self.log.last_epoch, NO_LEADER, NO_LEADER)
            return UnattachedState(self.log.last_epoch, NO_LEADER, self._election_deadline())
        if persisted.leader_id == self.node_id:
            # a former leader comes back resigned in its epoch: it must not vote in it, and
            # (offset, epoch) must stay unique even if unflushed entries were lost
            return ResignedState(epoch, self.node_id, self._election_deadline(), (),
                                 set(self.voters) - {self.node_id})
        if persisted.voted_id == self.node_id and persisted.leader_id == NO_LEADER and self.is_voter:
            return CandidateState(epoch, self.node_id, self._election_deadline(), 1, granted={self.node_id})
        if persisted.leader_id != NO_LEADER:
            return FollowerState(epoch, persisted.leader_id, persisted.voted_id,
                                 self.now_ms + self.config.fetch_timeout_ms)
        return UnattachedState(epoch, persisted.voted_id, self._election_deadline())

    # ----------------------------------------------------------------- transitions (QuorumState)

    def _persist(self, epoch: int, leader_id: int, voted_id: int) -> None:
        data = QuorumStateData(epoch, leader_id, voted_id)
        if data != self._persisted:
            self._persisted = data
            self._state_dirty = True

    def _transition(self, new_state: EpochState) -> None:
        """Enter ``new_state``: forget requests in flight (Kafka's ``resetConnections``) and answer
        the fetches a former leader had parked."""
        old = self.state
        self.state = new_state
        self._pending.clear()
        self._fetch = None
        self._next_fetch_ms = self.now_ms
        if isinstance(old, LeaderState) and old.parked:
            for request, _ in old.parked.values():
                self._answer_fetch_error(request, Errors.NOT_LEADER_OR_FOLLOWER)

    def _become_unattached(self, epoch: int) -> None:
        """A newer epoch without a known leader. An unattached node, prospective or candidate keeps its
        election timer (Kafka's ``transitionToUnattached``): a candidate that keeps losing must
        not hold the other voters' elections off by resetting their timers with each epoch."""
        old = self.state
        if isinstance(old, (UnattachedState, CandidateState, ProspectiveState)):
            deadline = old.election_deadline_ms
        else:
            deadline = self._election_deadline()
        self._persist(epoch, NO_LEADER, NO_LEADER)
        self._transition(UnattachedState(epoch, NO_LEADER, deadline))

    def _become_unattached_voted(self, candidate_id: int) -> None:
        """Record the vote of this epoch (persisted before the VoteResponse leaves)."""
        epoch = self.state.epoch
        self._persist(epoch, NO_LEADER, candidate_id)
        self._transition(UnattachedState(epoch, candidate_id, self._election_deadline()))

    def _become_candidate(self) -> None:
        old = self.state
        retries = old.retries + 1 if isinstance(old, (CandidateState, ProspectiveState)) else 1
        epoch = old.epoch + 1
        self._persist(epoch, NO_LEADER, self.node_id)
        self._transition(CandidateState(epoch, self.node_id, self._election_deadline(), retries,
                                        granted={self.node_id}))
        self._maybe_become_leader()

    def _become_follower(self, epoch: int, leader_id: int) -> None:
        voted = self._persisted.voted_id if epoch == self._persisted.leader_epoch else NO_LEADER
        self._persist(epoch, leader_id, voted)
        self._transition(FollowerState(epoch, leader_id, voted, self.now_ms + self.config.fetch_timeout_ms))

    def _become_leader(self) -> None:
        epoch = self.state.epoch
        timeout = int(self.config.fetch_timeout_ms * CHECK_QUORUM_TIMEOUT_FACTOR)
        granted = sorted(self.state.granted) if isinstance(self.state, CandidateState) else [self.node_id]
        state = LeaderState(epoch, self.node_id, self.log.end_offset, self.voters, timeout,
                            self.now_ms + timeout, unacknowledged=set(self.voters) - {self.node_id},
                            begin_epoch_resend_ms=self.now_ms)
        self._persist(epoch, self.node_id, self.node_id)
        self._transition(state)
        # Kafka's LeaderChangeMessage: an entry of the new epoch, so the epoch can commit at once
        record = {"version": 0, "leaderId": self.node_id, "voters": sorted(self.voters),
                  "grantingVoters": granted}
        control = Entry(self.log.end_offset, epoch, json.dumps(record).encode(), control=True)
        self._append_as_leader(state, [control])

    def _become_resigned(self, preferred_successors: tuple[int, ...]) -> None:
        state = self.state
        self._transition(ResignedState(state.epoch, self.node_id, self._election_deadline(),
                                       preferred_successors, set(self.voters) - {self.node_id}))

    # ----------------------------------------------------------------- timers and sending

    def _poll(self) -> None:
        """Kafka's ``pollCurrentState``: fire due timers and send what the state calls for."""
        for _ in range(4):  # a transition may make the new state due at once
            state = self.state
            if isinstance(state, LeaderState):
                self._poll_leader(state)
            elif isinstance(state, CandidateState):
                self._poll_candidate(state)
            elif isinstance(state, ProspectiveState):
                self._poll_prospective(state)
            elif isinstance(state, FollowerState):
                self._poll_follower(state)
            elif isinstance(state, ResignedState):
                self._poll_resigned(state)
            elif isinstance(state, UnattachedState):
                self._poll_unattached(state)
            if self.state is state:
                return

    def _send_request(self, destination: int, payload: Payload) -> int:
        correlation_id = self._next_correlation
        self._next_correlation += 1
        self._pending[correlation_id] = (destination, type(payload))
        self._outbox.append(Message(self.node_id, destination, payload, correlation_id))
        return correlation_id

    def _respond(self, request: Message, payload: Payload) -> None:
        self._outbox.append(Message(self.node_id, request.source, payload, request.correlation_id))

    def _take_pending(self, message: Message) -> bool:
        """Whether ``message`` answers a request this node has in flight (each answer once)."""
        pending = self._pending.get(message.correlation_id)
        if pending is None or pending[0] != message.source:
            return False
        del self._pending[message.correlation_id]
        return True

    def _handle_common_response(self, error: Errors, leader_id: int, epoch: int) -> bool:
        """Kafka's ``maybeHandleCommonResponse``: True if the response was dealt with here (stale,
        or it taught us a newer epoch or leader); False to let the specific handler go on."""
        if epoch < self.epoch or error == Errors.UNKNOWN_LEADER_EPOCH:
            return True
        if epoch > self.epoch or error in (Errors.FENCED_LEADER_EPOCH, Errors.NOT_LEADER_OR_FOLLOWER):
            self._maybe_transition(leader_id, epoch)
            return True
        if leader_id != NO_LEADER and self.leader_id == NO_LEADER:
            self._maybe_transition(leader_id, epoch)
            return error != Errors.NONE
        self._check_consistent_leader(leader_id, epoch)
        return error != Errors.NONE


#: payload type -> handler method name (looked up on the instance, so subclasses can override)
_HANDLERS: dict[type, str] = {
    VoteRequest: "_handle_vote_request",
    VoteResponse: "_handle_vote_response",
    BeginQuorumEpochRequest: "_handle_begin_quorum_epoch_request",
    BeginQuorumEpochResponse: "_handle_begin_quorum_epoch_response",
    EndQuorumEpochRequest: "_handle_end_quorum_epoch_request",
    EndQuorumEpochResponse: "_handle_end_quorum_epoch_response",
    FetchRequest: "_handle_fetch_request",
    FetchResponse: "_handle_fetch_response",
    FetchSnapshotRequest: "_handle_fetch_snapshot_request",
    FetchSnapshotResponse: "_handle_fetch_snapshot_response",
}
