"""Snapshot rules of ``RaftNode`` (KIP-630): a follower too far behind loads the leader's snapshot.

A mixin of :class:`cluster.raft.core.RaftNode`. The rules, as Kafka's ``KafkaRaftClient`` applies them:

- the state machine writes a snapshot at an offset it applied (committed), and the log before it
  may be deleted (``create_snapshot`` here, or the log's ``create_snapshot`` and ``trim_to``);
- the leader answers a Fetch with the id of its latest snapshot instead of entries when its log no
  longer holds the follower's position (``ReplicatedLog.validateOffsetAndEpoch`` →
  ``ValidOffsetAndEpoch.Kind.SNAPSHOT``): the fetch offset is below the log start offset, or at it
  with another last epoch than the entry before the start, or the follower's last epoch is older
  than that entry's; and, as Kafka does, whenever a follower with an empty log fetches from 0;
- the follower then sends FetchSnapshot instead of Fetch (one in flight, resent after
  quorum.request.timeout.ms, every answer resetting its fetch timeout as a Fetch answer does)
  from the byte position it holds; the leader answers up to ``max_bytes`` from ``position`` and
  the snapshot's total ``size`` (SNAPSHOT_NOT_FOUND for a snapshot it no longer keeps,
  POSITION_OUT_OF_RANGE outside it). On either error the follower fetches again and learns the
  leader's newest snapshot;
- once every byte is in, the follower replaces its log with the snapshot (``install_snapshot``,
  Kafka's ``truncateToLatestSnapshot``), takes its end offset as high watermark, tells the caller
  (``Ready.snapshot``) to reload the state machine from it, and fetches on from its end offset.

One difference from Kafka: Kafka truncates only when the snapshot is ahead of the follower's log
end (by epoch, then offset) and stops otherwise; here the snapshot replaces the log whenever it
does not end below the follower's high watermark. A follower whose uncommitted entries just below
the leader's log start belong to a later epoch than the leader's entry there (a deposed leader's
suffix) is also answered with the snapshot (fetch offset at the start, another epoch), and its
log is not behind the snapshot by Kafka's order: dropping that suffix is the truncation it needs.

Concurrency: not thread-safe; part of a ``RaftNode`` driven by one caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cluster.raft.errors import RaftStateError
from cluster.raft.log import LogError, OffsetAndEpoch
from cluster.raft.messages import (
    Errors,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    LeaderIdAndEpoch,
    Message,
)
from cluster.raft.roles import FollowerState, LeaderState, SnapshotFetch

if TYPE_CHECKING:
    from cluster.raft.core import RaftNode

    _Base = RaftNode
else:
    _Base = object

#: FetchSnapshot answers that make the follower give the snapshot up and fetch again.
_RESTART_ERRORS = (Errors.SNAPSHOT_NOT_FOUND, Errors.POSITION_OUT_OF_RANGE)


class SnapshotRules(_Base):
    """Snapshots on both sides: the leader's snapshot answers, FetchSnapshot, installation."""

    # ------------------------------------------------------------------ the caller's interface

    def snapshot_id(self, offset: int) -> OffsetAndEpoch:
        """The id of a snapshot after the entries below ``offset``: (offset, epoch of the entry at
        ``offset - 1``). ``offset`` must be applied already (0 < offset <= what ``Ready.committed``
        handed out, and at or above the log start offset)."""
        if not 0 < offset <= self._applied:
            raise ValueError(f"a snapshot at {offset}: the state machine has applied up to {self._applied}")
        return OffsetAndEpoch(offset, self.log.epoch_of(offset - 1))

    def create_snapshot(self, offset: int, data: bytes, trim: bool = True) -> OffsetAndEpoch:
        """Keep ``data``, the state machine's image after the entries below ``offset``, as a
        snapshot (``log.create_snapshot``) and, if ``trim``, delete the log before it
        (``log.trim_to``). Returns the snapshot id. Call it between two ``Ready`` calls, at an offset the
        state machine applied; followers too far behind will be sent this snapshot."""
        snapshot_id = self.snapshot_id(offset)
        self.log.create_snapshot(snapshot_id, data)
        if trim:
            self.log.trim_to(offset)
        return snapshot_id

    # ------------------------------------------------------------------ leader side

    def _fetch_snapshot_id(self, request: FetchRequest) -> OffsetAndEpoch | None:
        """The latest snapshot if the follower must load it instead of fetching entries (Kafka's
        ``validateOffsetAndEpoch`` SNAPSHOT answer, and its empty-follower shortcut), else None."""
        latest = self.log.latest_snapshot()
        start = self.log.start_offset
        if latest is None:
            if start > 0:
                raise RaftStateError(f"node {self.node_id}: the log starts at {start} but keeps no snapshot")
            return None
        if request.fetch_offset == 0:
            return latest  # an empty follower: the snapshot is always cheaper than the entries
        if start == 0:
            return None
        start_epoch = self.log.epoch_of(start - 1)
        if (request.fetch_offset < start
                or (request.fetch_offset == start and request.last_fetched_epoch != start_epoch)
                or request.last_fetched_epoch < start_epoch):
            return latest
        return None

    def _answer_fetch_with_snapshot(self, state: LeaderState, message: Message, snapshot_id: OffsetAndEpoch) -> None:
        self._respond(message, FetchResponse(Errors.NONE, LeaderIdAndEpoch(self.node_id, state.epoch),
                                             self.high_watermark, snapshot_id=snapshot_id,
                                             log_start_offset=self.log.start_offset))

    def _handle_fetch_snapshot_request(self, message: Message) -> None:
        """Kafka's ``handleFetchSnapshotRequest``."""
        request: FetchSnapshotRequest = message.payload  # type: ignore[assignment]
        if request.replica_id != message.source or request.replica_id == self.node_id or request.max_bytes <= 0:
            self._answer_fetch_snapshot_error(message, Errors.INVALID_REQUEST)
            return
        error = self._leader_only_error(request.current_leader_epoch)
        if error is not None:
            self._answer_fetch_snapshot_error(message, error)
            return
        state: LeaderState = self.state  # type: ignore[assignment]
        try:
            size = self.log.snapshot_size(request.snapshot_id)
        except LogError:
            self._answer_fetch_snapshot_error(message, Errors.SNAPSHOT_NOT_FOUND)
            return
        if not self._snapshot_position_valid(request.position, size):
            self._answer_fetch_snapshot_error(message, Errors.POSITION_OUT_OF_RANGE)
            return
        data = self.log.read_snapshot(request.snapshot_id, request.position, request.max_bytes)
        state.note_voter_fetch(request.replica_id, self.now_ms)
        self._respond(message, FetchSnapshotResponse(Errors.NONE, LeaderIdAndEpoch(self.node_id, state.epoch),
                                                     OffsetAndEpoch(*request.snapshot_id), size,
                                                     request.position, data))

    def _snapshot_position_valid(self, position: int, size: int) -> bool:
        """A position inside the snapshot; an empty snapshot is read from 0 (Kafka's are never
        empty: they hold a header and a footer record)."""
        return 0 <= position < size or position == size == 0

    def _answer_fetch_snapshot_error(self, message: Message, error: Errors) -> None:
        self._respond(message, FetchSnapshotResponse(error, LeaderIdAndEpoch(self.leader_id, self.epoch)))

    # ------------------------------------------------------------------ follower side

    def _start_snapshot_fetch(self, state: FollowerState, snapshot_id: OffsetAndEpoch) -> None:
        """A Fetch answered with a snapshot id: load that snapshot before fetching entries again."""
        if snapshot_id.offset <= 0 or snapshot_id.epoch < 0:
            return  # not a snapshot id (Kafka logs it and fetches again)
        if snapshot_id.offset < self.high_watermark:
            raise RaftStateError(f"node {self.node_id}: the leader sends snapshot {tuple(snapshot_id)}, "
                                 f"below the high watermark {self.high_watermark}")
        state.snapshot_fetch = SnapshotFetch(OffsetAndEpoch(*snapshot_id))

    def _fetch_snapshot_request(self, snapshot: SnapshotFetch) -> FetchSnapshotRequest:
        return FetchSnapshotRequest(self.node_id, self.epoch, snapshot.snapshot_id, len(snapshot.data),
                                    self.config.fetch_snapshot_max_bytes)

    def _handle_fetch_snapshot_response(self, message: Message) -> None:
        """Kafka's ``handleFetchSnapshotResponse``: append the chunk; install once complete."""
        fetch = self._fetch
        if (fetch is None or fetch.correlation_id != message.correlation_id or fetch.destination != message.source
                or fetch.snapshot_position < 0):
            return  # not the request in flight
        self._pending.pop(fetch.correlation_id, None)
        self._fetch = None
        response: FetchSnapshotResponse = message.payload  # type: ignore[assignment]
        before = self.state
        leader_id, epoch = response.current_leader
        common_error = Errors.NONE if response.error in _RESTART_ERRORS else response.error
        if self._handle_common_response(common_error, leader_id, epoch):
            if common_error != Errors.NONE and self.state is before:
                self._next_fetch_ms = self.now_ms + self.config.retry_backoff_ms
            return
        state = self.state
        if not isinstance(state, FollowerState) or state.leader_id != message.source or state.snapshot_fetch is None:
            return
        snapshot = state.snapshot_fetch
        if response.error != Errors.NONE or response.snapshot_id is None:
            state.snapshot_fetch = None  # the leader no longer keeps it: fetch again, learn the newest
        elif response.snapshot_id != snapshot.snapshot_id or response.position != fetch.snapshot_position:
            return  # not the chunk asked for
        else:
            self._append_snapshot_chunk(state, snapshot, response)
        state.heard_from_leader(self.now_ms, self.config.fetch_timeout_ms)

    def _append_snapshot_chunk(self, state: FollowerState, snapshot: SnapshotFetch,
                               response: FetchSnapshotResponse) -> None:
        snapshot.data += response.data
        snapshot.size = response.size
        if len(snapshot.data) > snapshot.size:
            state.snapshot_fetch = None  # more bytes than the snapshot has: start over
        elif len(snapshot.data) == snapshot.size:
            state.snapshot_fetch = None
            self._install_snapshot(snapshot.snapshot_id, bytes(snapshot.data))

    def _install_snapshot(self, snapshot_id: OffsetAndEpoch, data: bytes) -> None:
        """Replace the log with the leader's snapshot (Kafka's ``truncateToLatestSnapshot``); it is
        committed, so it is the high watermark at least, and the state machine reloads from it."""
        if snapshot_id.offset < self.high_watermark:
            raise RaftStateError(f"node {self.node_id}: installing snapshot {tuple(snapshot_id)} would lose "
                                 f"entries below the high watermark {self.high_watermark}")
        self.log.install_snapshot(snapshot_id, data)
        self._log_dirty = True
        self.high_watermark = max(self.high_watermark, snapshot_id.offset)
        self._load_snapshot(snapshot_id)

    def _load_snapshot(self, snapshot_id: OffsetAndEpoch) -> None:
        """Tell the caller (``Ready.snapshot``) to reload its state machine from ``snapshot_id``;
        what is applied next continues after it."""
        self._snapshot_to_load = snapshot_id
        self._applied = snapshot_id.offset

    def _catch_up_with_log_start(self) -> None:
        """Entries below the log start offset exist only in a snapshot: a state machine behind it
        (a restart that passed a smaller ``applied_offset``) reloads from the latest snapshot."""
        if self._applied >= self.log.start_offset:
            return
        latest = self.log.latest_snapshot()
        if latest is None or latest.offset < self.log.start_offset:
            raise RaftStateError(f"node {self.node_id}: the log starts at {self.log.start_offset}, "
                                 f"the state machine applied up to {self._applied}, and no snapshot covers the gap")
        self.high_watermark = max(self.high_watermark, latest.offset)
        self._load_snapshot(latest)
