"""Replication rules of ``RaftNode``: KRaft's pull-based Fetch and the high watermark.

A mixin of :class:`cluster.raft.core.RaftNode`. The rules, as Kafka's ``KafkaRaftClient`` and
``LeaderState`` apply them:

- followers (voters and observers) send ``Fetch(fetch_offset, last_fetched_epoch)`` to the
  leader, one at a time; an empty fetch waits in the leader's purgatory for up to
  ``fetch_max_wait_ms`` and is answered as soon as the leader appends or its high watermark moves
  (a fetch from a replica not yet told the current high watermark is answered at once);
- the leader checks the follower's position against its own log (``validateOffsetAndEpoch``): if
  the follower's last epoch does not end where the follower thinks it does, the answer is a
  ``diverging_epoch`` (the leader's end offset for that epoch) and the follower truncates
  (``truncateToEndOffset``) and fetches again; a valid fetch records the follower's end offset;
- the high watermark is the largest offset a majority of voters holds (the leader counting its
  own log), and it moves only past the start of the leader's epoch (its LeaderChangeMessage), so
  an entry of an older epoch is never committed by counting replicas alone (Raft's "Figure 8");
- a follower takes the leader's high watermark, capped at its own log end offset; nothing at or
  below the high watermark is ever truncated (a request to do so stops the node);
- check-quorum: a leader that has not heard a Fetch from a majority of the voters for 1.5 x
  quorum.fetch.timeout.ms resigns (a partitioned leader stops believing it leads);
- a follower whose position the leader's log no longer holds (below its log start offset) is
  answered with a snapshot id and loads that snapshot (``snapshots.py``).

Not implemented: fetch size limits in bytes.

Concurrency: not thread-safe; part of a ``RaftNode`` driven by one caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cluster.raft.config import QuorumDescription, ReplicaDescription
from cluster.raft.errors import RaftStateError
from cluster.raft.log import Entry, OffsetAndEpoch
from cluster.raft.messages import (
    NO_LEADER,
    Errors,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    LeaderIdAndEpoch,
    Message,
)
from cluster.raft.roles import FollowerState, LeaderState, UnattachedState

if TYPE_CHECKING:
    from cluster.raft.core import RaftNode

    _Base = RaftNode
else:
    _Base = object


@dataclass(slots=True)
class FetchInFlight:
    """The one Fetch (or FetchSnapshot) a follower has in flight, and the log position it was sent
    from; ``snapshot_position`` >= 0 marks a FetchSnapshot from that byte."""

    correlation_id: int
    destination: int
    sent_ms: int
    fetch_offset: int
    last_fetched_epoch: int
    snapshot_position: int = -1


class ReplicationRules(_Base):
    """Fetch handling on both sides, the fetch purgatory and the high watermark."""

    # ------------------------------------------------------------------ leader side

    def _handle_fetch_request(self, message: Message) -> None:
        request: FetchRequest = message.payload  # type: ignore[assignment]
        if (request.fetch_offset < 0 or request.last_fetched_epoch < 0
                or request.last_fetched_epoch > request.current_leader_epoch
                or request.replica_id != message.source or request.replica_id == self.node_id):
            self._answer_fetch_error(message, Errors.INVALID_REQUEST)
            return
        if request.current_leader_epoch > self.epoch and request.replica_id in self.voters:
            # A voter fetching in a newer epoch names this node the leader of an epoch it never
            # led: only a forged BeginQuorumEpoch gets a voter there. Kafka answers
            # UNKNOWN_LEADER_EPOCH and leaves that voter ahead of the quorum for good (its
            # pre-votes are refused while the others hear from the leader); Raft's rule instead
            # (a newer epoch wins): step down into it and answer NOT_LEADER_OR_FOLLOWER, so that
            # the voter forgets its leader and the quorum elects one of a still newer epoch.
            self._maybe_transition(NO_LEADER, request.current_leader_epoch)
        error = self._leader_only_error(request.current_leader_epoch)
        if error is not None:
            self._answer_fetch_error(message, error)
            return
        state: LeaderState = self.state  # type: ignore[assignment]
        state.parked.pop(request.replica_id, None)  # a newer fetch replaces a parked one
        state.note_voter_fetch(request.replica_id, self.now_ms)
        snapshot_id = self._fetch_snapshot_id(request)
        if snapshot_id is not None:
            self._answer_fetch_with_snapshot(state, message, snapshot_id)
            return
        end = self.log.end_offset_for_epoch(request.last_fetched_epoch)
        if self._fetch_diverges(request, end):
            self._respond(message, FetchResponse(Errors.NONE, LeaderIdAndEpoch(self.node_id, state.epoch),
                                                 self.high_watermark, (), end,
                                                 log_start_offset=self.log.start_offset))
            return
        moved = self._update_replica(state, request)
        # park only a fetch with nothing to tell: no entries, and a high watermark the replica knows
        # (another replica's fetch may have moved it since this one's last answer: KIP-1166)
        told = state.replica(request.replica_id).sent_high_watermark >= self.high_watermark
        if request.max_wait_ms > 0 and request.fetch_offset >= self.log.end_offset and not moved and told:
            state.parked[request.replica_id] = (message, self.now_ms + request.max_wait_ms)
            return
        self._answer_fetch(state, message)

    def _leader_only_error(self, request_epoch: int) -> Errors | None:
        """Kafka's ``validateLeaderOnlyRequest``."""
        if request_epoch < self.epoch:
            return Errors.FENCED_LEADER_EPOCH
        if request_epoch > self.epoch:
            return Errors.UNKNOWN_LEADER_EPOCH
        if not isinstance(self.state, LeaderState):
            return Errors.NOT_LEADER_OR_FOLLOWER
        return None

    def _fetch_diverges(self, request: FetchRequest, end: OffsetAndEpoch) -> bool:
        """Kafka's ``validateOffsetAndEpoch``: the follower's log diverges from ours unless our log
        has its last epoch and that epoch does not end before the follower's end offset."""
        return end.epoch != request.last_fetched_epoch or end.offset < request.fetch_offset

    def _update_replica(self, state: LeaderState, request: FetchRequest) -> bool:
        """Record a valid fetch (Kafka's ``updateReplicaState``); True if the high watermark moved."""
        replica = state.replica(request.replica_id)
        replica.end_offset = request.fetch_offset
        replica.last_fetch_ms = self.now_ms
        if request.fetch_offset >= self.log.end_offset:
            replica.last_caught_up_ms = self.now_ms
        return request.replica_id in self.voters and self._update_high_watermark(state)

    def _majority_end_offset(self, state: LeaderState) -> int:
        """The largest offset a majority of the voters holds (the leader counts its own log)."""
        offsets = sorted((self.log.end_offset if voter == self.node_id else state.replica(voter).end_offset
                          for voter in self.voters), reverse=True)
        return offsets[len(offsets) // 2]

    def _may_commit(self, state: LeaderState, offset: int) -> bool:
        """KRaft's commit rule: a majority must hold an entry of the leader's own epoch (the
        LeaderChangeMessage at ``epoch_start_offset``) before anything up to ``offset`` commits."""
        return offset > state.epoch_start_offset

    def _update_high_watermark(self, state: LeaderState) -> bool:
        """Kafka's ``maybeUpdateHighWatermark``; the high watermark never goes back."""
        offset = self._majority_end_offset(state)
        if offset <= self.high_watermark or not self._may_commit(state, offset):
            return False
        self.high_watermark = offset
        self._complete_parked(state)
        return True

    def _append_as_leader(self, state: LeaderState, entries: Sequence[Entry]) -> None:
        self.log.append(entries)
        self._log_dirty = True
        self._update_high_watermark(state)
        self._complete_parked(state)

    def _answer_fetch(self, state: LeaderState, request_message: Message) -> None:
        request: FetchRequest = request_message.payload  # type: ignore[assignment]
        if request.fetch_offset < self.log.start_offset:  # trimmed while the fetch was parked
            self._answer_fetch_with_snapshot(state, request_message, self.log.latest_snapshot())  # type: ignore[arg-type]
            return
        entries = self.log.read(request.fetch_offset, self.config.max_fetch_entries)
        state.replica(request.replica_id).sent_high_watermark = self.high_watermark
        self._respond(request_message, FetchResponse(Errors.NONE, LeaderIdAndEpoch(self.node_id, state.epoch),
                                                     self.high_watermark, entries,
                                                     log_start_offset=self.log.start_offset))

    def _answer_fetch_error(self, request_message: Message, error: Errors) -> None:
        self._respond(request_message, FetchResponse(error, LeaderIdAndEpoch(self.leader_id, self.epoch)))

    def _complete_parked(self, state: LeaderState) -> None:
        """Answer every parked fetch (new entries, or a new high watermark to tell)."""
        if state.parked:
            parked, state.parked = state.parked, {}
            for request_message, _ in parked.values():
                self._answer_fetch(state, request_message)

    def _poll_leader(self, state: LeaderState) -> None:
        """Kafka's ``pollLeader``: check-quorum, purgatory expiry, BeginQuorumEpoch resends."""
        now = self.now_ms
        if len(self.voters) > 1 and now >= state.check_quorum_deadline_ms:
            self._become_resigned(state.preferred_successors())
            return
        if state.parked:
            for replica_id in [r for r, (_, deadline) in state.parked.items() if deadline <= now]:
                request_message, _ = state.parked.pop(replica_id)
                self._answer_fetch(state, request_message)
        self._send_begin_quorum_epoch(state)

    def describe_quorum(self) -> QuorumDescription:
        """DescribeQuorum (key 55) as this node can answer it."""
        state = self.state
        if not isinstance(state, LeaderState):
            return QuorumDescription(self.leader_id, self.epoch, -1)

        def rows(ids: Iterable[int]) -> tuple[ReplicaDescription, ...]:
            out = []
            for replica_id in sorted(ids):
                if replica_id == self.node_id:
                    out.append(ReplicaDescription(replica_id, self.log.end_offset, self.now_ms, self.now_ms))
                else:
                    r = state.replica(replica_id)
                    out.append(ReplicaDescription(replica_id, r.end_offset, r.last_fetch_ms, r.last_caught_up_ms))
            return tuple(out)

        return QuorumDescription(self.node_id, state.epoch, self.high_watermark,
                                 rows(self.voters), rows(state.observers))

    # ------------------------------------------------------------------ follower side

    def _poll_unattached(self, state: UnattachedState) -> None:
        if self.is_voter:
            if self.now_ms >= state.election_deadline_ms:
                self._become_prospective()
        else:
            self._maybe_send_fetch(self._any_voter())  # an observer looks for the leader

    def _poll_follower(self, state: FollowerState) -> None:
        if self.now_ms >= state.fetch_deadline_ms:
            if self.is_voter:
                self._become_prospective()
            else:
                self._become_unattached(state.epoch)  # observers ask the voters again
            return
        self._maybe_send_fetch(state.leader_id)

    def _any_voter(self) -> int:
        others = sorted(self.voters - {self.node_id})
        return self.rng.choice(others) if others else self.node_id

    def _maybe_send_fetch(self, destination: int | None) -> None:
        """Keep one Fetch in flight to ``destination`` (None: any voter, for an observer looking
        for the leader); a Fetch unanswered within quorum.request.timeout.ms is sent again."""
        fetch = self._fetch
        now = self.now_ms
        if fetch is not None:
            if now < fetch.sent_ms + self.config.request_timeout_ms:
                return
            self._pending.pop(fetch.correlation_id, None)
            self._fetch = None
        if now < self._next_fetch_ms:
            return
        if destination is None:
            destination = self._any_voter()
        if destination == self.node_id:
            return
        state = self.state
        request: FetchRequest | FetchSnapshotRequest
        if isinstance(state, FollowerState) and state.snapshot_fetch is not None:
            request = self._fetch_snapshot_request(state.snapshot_fetch)
            position = request.position
        else:
            request = FetchRequest(self.node_id, self.log.end_offset, self.log.last_epoch, self.epoch,
                                   self.config.fetch_max_wait_ms)
            position = -1
        correlation_id = self._send_request(destination, request)
        self._fetch = FetchInFlight(correlation_id, destination, now, self.log.end_offset, self.log.last_epoch,
                                    position)

    def _handle_fetch_response(self, message: Message) -> None:
        fetch = self._fetch
        if (fetch is None or fetch.correlation_id != message.correlation_id or fetch.destination != message.source
                or fetch.snapshot_position >= 0):
            self._take_pending(message)  # an election's probe (``_probe_older_leader``) is answered here
            return  # not the fetch in flight: stale, duplicated, or from before a transition
        self._pending.pop(fetch.correlation_id, None)
        self._fetch = None
        response: FetchResponse = message.payload  # type: ignore[assignment]
        before = self.state
        leader_id, epoch = response.current_leader
        if self._disowned(message.source, response.error, leader_id, epoch):
            return
        if self._handle_common_response(response.error, leader_id, epoch):
            if response.error != Errors.NONE and self.state is before:
                self._next_fetch_ms = self.now_ms + self.config.retry_backoff_ms
            return
        state = self.state
        if not isinstance(state, FollowerState) or state.leader_id != message.source:
            return
        if (fetch.fetch_offset, fetch.last_fetched_epoch) != (self.log.end_offset, self.log.last_epoch):
            return  # the log changed since the request (cannot happen with one fetch in flight)
        if response.diverging_epoch is not None:
            self._truncate_to_diverging(response.diverging_epoch)
        elif response.snapshot_id is not None:
            self._start_snapshot_fetch(state, response.snapshot_id)
        else:
            entries = response.entries
            if entries:
                if entries[0].offset != self.log.end_offset:
                    return
                self.log.append(entries)
                self._log_dirty = True
            self._update_follower_high_watermark(response.high_watermark)
        state.heard_from_leader(self.now_ms, self.config.fetch_timeout_ms)

    def _disowned(self, source: int, error: Errors, leader_id: int, epoch: int) -> bool:
        """Whether the leader we follow answered that it leads no one in our epoch (it stepped
        down into an epoch a forged announcement made up: ``_handle_fetch_request``); then it is
        forgotten (our vote of the epoch kept) and the election timer runs."""
        state = self.state
        if not (error == Errors.NOT_LEADER_OR_FOLLOWER and leader_id == NO_LEADER and epoch == self.epoch
                and isinstance(state, FollowerState) and state.leader_id == source):
            return False
        self._become_unattached_voted(state.voted_id)
        return True

    def _update_follower_high_watermark(self, leader_high_watermark: int) -> None:
        """The leader's high watermark, capped at our end offset; it never goes back."""
        offset = min(leader_high_watermark, self.log.end_offset)
        self.high_watermark = max(self.high_watermark, offset)

    def _truncate_to_diverging(self, diverging: OffsetAndEpoch) -> None:
        """Kafka's ``ReplicatedLog.truncateToEndOffset``; never below the high watermark."""
        if diverging.offset < self.high_watermark:
            raise RaftStateError(f"node {self.node_id}: the leader asks to truncate to {diverging.offset}, "
                                 f"below the high watermark {self.high_watermark}")
        if diverging.epoch == 0:
            offset = min(diverging.offset, self.log.end_offset)
        else:
            local = self.log.end_offset_for_epoch(diverging.epoch)
            offset = min(local.offset, diverging.offset) if local.epoch == diverging.epoch else local.offset
        if offset < self.high_watermark:
            raise RaftStateError(f"node {self.node_id}: truncation to {offset} would lose entries below "
                                 f"the high watermark {self.high_watermark}")
        self.log.truncate_to(offset)
        self._log_dirty = True
