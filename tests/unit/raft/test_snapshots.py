"""Snapshot rules (KIP-630), one by one: the leader's snapshot answer to a Fetch, FetchSnapshot in
chunks and its errors, a follower that installs the leader's snapshot and goes on, ``Ready.snapshot``,
and restarts from a snapshot."""

from __future__ import annotations

import pytest

from cluster.raft import (
    Entry,
    Errors,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    LeaderIdAndEpoch,
    Message,
    OffsetAndEpoch,
    QuorumStateData,
    RaftConfig,
    RaftStateError,
)
from cluster.raft.roles import FollowerState

from .helpers import Quorum, payloads, state_bytes

SMALL_CHUNKS = RaftConfig(fetch_snapshot_max_bytes=40)


def _leader_with_snapshot(quorum: Quorum, proposals: int = 4, trim: bool = True, lagging: int = 3) -> OffsetAndEpoch:
    """Node 1 leads epoch 1; ``proposals`` entries commit while node ``lagging`` hears nothing;
    node 1 then snapshots everything it applied (and trims its log)."""

    def keep(m: Message) -> bool:
        return lagging not in (m.source, m.destination)

    leader = quorum.elect(1, keep=keep)
    quorum.tick(quorum.now + 1, nodes=[n for n in quorum.voters if n not in (1, lagging)])
    quorum.deliver(keep=keep)
    for i in range(proposals):
        leader.propose([b"p%d" % i], quorum.now)
        quorum.drain(1)
        quorum.deliver(keep=keep)
    quorum.tick(quorum.now + quorum.config.fetch_max_wait_ms, nodes=[1])
    quorum.deliver(keep=keep)
    assert leader.high_watermark == proposals + 1
    quorum.sent.clear()
    return quorum.snapshot(1, trim=trim)


def _fetch(quorum: Quorum, source: int, offset: int, last_epoch: int, epoch: int = 1) -> FetchResponse:
    ready = quorum.step(Message(source, 1, FetchRequest(source, offset, last_epoch, epoch), correlation_id=7))
    (answer,) = [m.payload for m in ready.messages if m.correlation_id == 7]
    return answer  # type: ignore[return-value]


def _fetch_snapshot(quorum: Quorum, source: int, snapshot_id: OffsetAndEpoch, position: int,
                    max_bytes: int = 10, epoch: int = 1, destination: int = 1) -> FetchSnapshotResponse:
    request = FetchSnapshotRequest(source, epoch, snapshot_id, position, max_bytes)
    ready = quorum.step(Message(source, destination, request, correlation_id=8))
    (answer,) = [m.payload for m in ready.messages if m.correlation_id == 8]
    return answer  # type: ignore[return-value]


# ------------------------------------------------------------------------- the leader


def test_a_fetch_the_leaders_log_no_longer_holds_is_answered_with_the_snapshot_id() -> None:
    quorum = Quorum()
    snapshot = _leader_with_snapshot(quorum)
    assert snapshot == OffsetAndEpoch(5, 1)
    assert quorum.logs[1].start_offset == 5
    for offset, last_epoch in ((0, 0), (3, 1)):  # an empty follower; a fetch below the log start
        answer = _fetch(quorum, 3, offset, last_epoch)
        assert (answer.error, answer.snapshot_id, answer.entries, answer.diverging_epoch) == \
            (Errors.NONE, snapshot, (), None)
        assert answer.log_start_offset == 5
    # at the log start with the snapshot's epoch: entries, as usual
    quorum.nodes[1].propose([b"after"], quorum.now)
    quorum.drain(1)
    answer = _fetch(quorum, 3, 5, 1)
    assert answer.snapshot_id is None and payloads(answer.entries) == [b"after"]


def test_the_snapshot_answer_follows_kafkas_validate_offset_and_epoch() -> None:
    """Log start 5 after an entry of epoch 1: a follower at the start with another last epoch, or
    whose last epoch is older than that entry's, gets the snapshot id too."""
    quorum = Quorum()
    logs = {1: [1, 1, 2, 2, 3, 3], 2: [1, 1, 2, 2, 3, 3], 3: [1]}
    for node_id, epochs in logs.items():
        quorum.logs[node_id].append([Entry(i, e, b"e%d-%d" % (e, i)) for i, e in enumerate(epochs)])
    for node_id in quorum.ids:
        quorum.stores[node_id].write(QuorumStateData(3, -1, -1))
        quorum.start(node_id)
    quorum.logs[1].create_snapshot(OffsetAndEpoch(5, 3), state_bytes(quorum.logs[1].read(0, 5)))
    quorum.logs[1].trim_to(5)
    leader = quorum.elect(1, keep=lambda m: m.destination != 3)
    quorum.sent.clear()
    epoch = leader.epoch
    assert _fetch(quorum, 3, 5, 2, epoch).snapshot_id == OffsetAndEpoch(5, 3)  # at the start, other epoch
    assert _fetch(quorum, 3, 6, 2, epoch).snapshot_id == OffsetAndEpoch(5, 3)  # older epoch than the snapshot
    answer = _fetch(quorum, 2, 6, 3, epoch)
    assert answer.snapshot_id is None and answer.diverging_epoch is None  # a valid position
    assert _fetch(quorum, 2, 7, 3, epoch).diverging_epoch == OffsetAndEpoch(6, 3)


def test_fetch_snapshot_is_answered_in_chunks_of_max_bytes() -> None:
    quorum = Quorum()
    snapshot = _leader_with_snapshot(quorum)
    data = quorum.logs[1].read_snapshot(snapshot, 0, 1 << 20)
    received = b""
    while len(received) < len(data):
        answer = _fetch_snapshot(quorum, 3, snapshot, len(received), max_bytes=64)
        assert (answer.error, answer.snapshot_id, answer.size, answer.position) == \
            (Errors.NONE, snapshot, len(data), len(received))
        assert 0 < len(answer.data) <= 64
        received += answer.data
    assert received == data
    assert answer.current_leader == LeaderIdAndEpoch(1, 1)


@pytest.mark.parametrize(("change", "error"), [
    ({"position": -1}, Errors.POSITION_OUT_OF_RANGE),
    ({"position": "size"}, Errors.POSITION_OUT_OF_RANGE),
    ({"snapshot_id": OffsetAndEpoch(4, 1)}, Errors.SNAPSHOT_NOT_FOUND),
    ({"snapshot_id": OffsetAndEpoch(5, 2)}, Errors.SNAPSHOT_NOT_FOUND),
    ({"epoch": 0}, Errors.FENCED_LEADER_EPOCH),
    ({"epoch": 2}, Errors.UNKNOWN_LEADER_EPOCH),
    ({"max_bytes": 0}, Errors.INVALID_REQUEST),
    ({"destination": 2}, Errors.NOT_LEADER_OR_FOLLOWER),
])
def test_fetch_snapshot_errors(change: dict[str, object], error: Errors) -> None:
    quorum = Quorum()
    snapshot = _leader_with_snapshot(quorum)
    args: dict[str, object] = {"snapshot_id": snapshot, "position": 0, **change}
    if args["position"] == "size":
        args["position"] = quorum.logs[1].snapshot_size(snapshot)
    answer = _fetch_snapshot(quorum, 3, **args)  # type: ignore[arg-type]
    assert answer == FetchSnapshotResponse(error, LeaderIdAndEpoch(1, 1))


def test_an_empty_snapshot_is_read_from_position_zero() -> None:
    quorum = Quorum()
    _leader_with_snapshot(quorum, trim=False)
    empty = OffsetAndEpoch(3, 1)
    quorum.logs[1].create_snapshot(empty, b"")
    answer = _fetch_snapshot(quorum, 3, empty, 0)
    assert (answer.error, answer.size, answer.position, answer.data) == (Errors.NONE, 0, 0, b"")


def test_create_snapshot_only_at_an_applied_offset() -> None:
    quorum = Quorum()
    _leader_with_snapshot(quorum, trim=False)
    leader = quorum.nodes[1]
    leader.propose([b"uncommitted"], quorum.now)
    quorum.drain(1)
    with pytest.raises(ValueError):
        leader.create_snapshot(quorum.logs[1].end_offset, b"too far")
    with pytest.raises(ValueError):
        leader.snapshot_id(0)
    assert leader.snapshot_id(3) == OffsetAndEpoch(3, 1)


# ------------------------------------------------------------------------- the follower


def test_a_follower_far_behind_installs_the_leaders_snapshot_and_goes_on() -> None:
    quorum = Quorum(config=SMALL_CHUNKS)
    snapshot = _leader_with_snapshot(quorum, proposals=6)
    follower = quorum.nodes[3]
    quorum.readies[3].clear()
    quorum.tick(quorum.now + 1, nodes=[3])  # it hears of the leader and fetches
    quorum.deliver()
    quorum.nodes[1].propose([b"after"], quorum.now)
    quorum.drain(1)
    quorum.settle()
    chunks = [m for r in quorum.readies[3] for m in r.messages if isinstance(m.payload, FetchSnapshotRequest)]
    assert len(chunks) == -(-quorum.logs[1].snapshot_size(snapshot) // SMALL_CHUNKS.fetch_snapshot_max_bytes)
    assert [m.payload.position for m in chunks] == sorted(m.payload.position for m in chunks)
    log = quorum.logs[3]
    assert (log.start_offset, log.latest_snapshot()) == (snapshot.offset, snapshot)
    assert log.read_snapshot(snapshot, 0, 1 << 20) == quorum.logs[1].read_snapshot(snapshot, 0, 1 << 20)
    assert log.entries() == quorum.logs[1].entries()  # and the entries after it
    # Ready.snapshot named it once; the state machine is the leader's, and continues after it
    assert [r.snapshot for r in quorum.readies[3] if r.snapshot is not None] == [snapshot]
    assert quorum.applied[3] == quorum.applied[1]
    assert payloads(quorum.applied[3])[-2:] == [b"p5", b"after"]
    assert follower.high_watermark == quorum.nodes[1].high_watermark == snapshot.offset + 1
    assert follower.role == "Follower"


def test_an_observer_loads_the_snapshot_too() -> None:
    quorum = Quorum(observers=(9,), config=SMALL_CHUNKS)
    snapshot = _leader_with_snapshot(quorum, lagging=9)
    for t in range(quorum.now + 1, quorum.now + 1000, 100):
        quorum.tick(t, nodes=[9])
        quorum.deliver()
    assert quorum.logs[9].latest_snapshot() == snapshot
    assert quorum.applied[9] == quorum.applied[1]
    assert quorum.nodes[9].role == "Follower" and not quorum.nodes[9].is_voter


def test_the_follower_starts_over_when_the_leader_no_longer_keeps_the_snapshot() -> None:
    quorum = Quorum(config=SMALL_CHUNKS)
    first = _leader_with_snapshot(quorum, proposals=6)
    quorum.tick(quorum.now + 1, nodes=[3])
    quorum.deliver(hold=lambda m: isinstance(m.payload, FetchSnapshotRequest))  # up to the first chunk
    (request,) = quorum.take(FetchSnapshotRequest)
    assert request.payload.snapshot_id == first and request.payload.position == 0
    leader = quorum.nodes[1]
    leader.propose([b"more"], quorum.now)
    quorum.drain(1)
    quorum.settle()
    quorum.sent = [m for m in quorum.sent if 3 not in (m.source, m.destination)]
    second = quorum.snapshot(1)  # the newer snapshot replaces the first one
    assert quorum.logs[1].snapshot_ids() == (second,)
    quorum.step(request)
    (answer,) = quorum.take(FetchSnapshotResponse)
    assert answer.payload.error == Errors.SNAPSHOT_NOT_FOUND
    quorum.step(answer)
    state = quorum.nodes[3].state
    assert isinstance(state, FollowerState) and state.snapshot_fetch is None
    quorum.settle()
    assert quorum.logs[3].latest_snapshot() == second
    assert quorum.applied[3] == quorum.applied[1]


def test_a_follower_loading_a_snapshot_campaigns_only_after_the_fetch_timeout() -> None:
    config = RaftConfig(fetch_snapshot_max_bytes=40, request_timeout_ms=500)
    quorum = Quorum(config=config)
    _leader_with_snapshot(quorum, proposals=6)
    follower = quorum.nodes[3]
    quorum.tick(quorum.now + 1, nodes=[3])
    quorum.deliver(hold=lambda m: isinstance(m.payload, FetchSnapshotRequest))
    start = quorum.now
    # every answer resets the fetch timeout: loading for longer than the timeout is fine
    for t in range(start + 400, start + 2 * config.fetch_timeout_ms, 400):
        quorum.tick(t, nodes=[3])
        quorum.deliver(rounds=1)
        assert follower.role == "Follower"
    state = follower.state
    assert isinstance(state, FollowerState) and state.snapshot_fetch is not None
    # unanswered FetchSnapshot requests are resent every request timeout, then it asks for pre-votes
    quorum.sent.clear()
    quorum.tick(quorum.now + config.request_timeout_ms, nodes=[3])
    assert [type(m.payload) for m in quorum.sent] == [FetchSnapshotRequest]
    quorum.tick(quorum.now + config.fetch_timeout_ms, nodes=[3])
    assert follower.role == "Prospective"


def test_a_stale_or_duplicated_chunk_is_ignored() -> None:
    quorum = Quorum(config=SMALL_CHUNKS)
    snapshot = _leader_with_snapshot(quorum, proposals=6)
    quorum.tick(quorum.now + 1, nodes=[3])
    quorum.deliver(hold=lambda m: isinstance(m.payload, FetchSnapshotRequest))
    (request,) = quorum.take(FetchSnapshotRequest)
    quorum.step(request)
    (answer,) = quorum.take(FetchSnapshotResponse)
    for _ in range(3):
        quorum.step(answer)
    state = quorum.nodes[3].state
    assert isinstance(state, FollowerState) and state.snapshot_fetch is not None
    assert len(state.snapshot_fetch.data) == SMALL_CHUNKS.fetch_snapshot_max_bytes
    (next_request,) = quorum.take(FetchSnapshotRequest)
    assert next_request.payload.position == SMALL_CHUNKS.fetch_snapshot_max_bytes
    assert next_request.payload.snapshot_id == snapshot


def test_a_snapshot_below_the_high_watermark_stops_the_follower() -> None:
    quorum = Quorum()
    _leader_with_snapshot(quorum, proposals=3, trim=False)
    follower = quorum.nodes[2]
    assert follower.high_watermark == 4
    fetch = [m for r in quorum.readies[2] for m in r.messages if isinstance(m.payload, FetchRequest)][-1]
    bogus = FetchResponse(Errors.NONE, LeaderIdAndEpoch(1, 1), 4, snapshot_id=OffsetAndEpoch(2, 1))
    with pytest.raises(RaftStateError, match="below the high watermark"):
        follower.step(Message(1, 2, bogus, fetch.correlation_id), quorum.now)


# ------------------------------------------------------------------------- restarts


def test_a_restart_from_the_latest_snapshot_replays_only_what_follows() -> None:
    quorum = Quorum()
    snapshot = _leader_with_snapshot(quorum, proposals=5)
    quorum.nodes[1].propose([b"after"], quorum.now)
    quorum.drain(1)
    quorum.settle()
    before = list(quorum.applied[1])
    quorum.readies[1].clear()
    node = quorum.start(1, from_snapshot=True)
    assert node.high_watermark == snapshot.offset
    assert quorum.applied[1] == before[:snapshot.offset]
    for t in range(quorum.now, quorum.now + 5000, 200):  # a new election, and the entry commits again
        quorum.tick(t)
        quorum.deliver()
    assert all(r.snapshot is None for r in quorum.readies[1])
    replayed = [e for r in quorum.readies[1] for e in r.committed]
    assert replayed[0].offset == snapshot.offset  # replay starts at the snapshot
    assert quorum.applied[1][:len(before)] == before


def test_a_restart_behind_the_log_start_is_told_to_load_the_snapshot() -> None:
    quorum = Quorum()
    snapshot = _leader_with_snapshot(quorum, proposals=5)
    before = list(quorum.applied[1])
    quorum.readies[1].clear()
    quorum.start(1)  # applied_offset=0, but the log starts at the snapshot
    (first, *rest) = quorum.readies[1]
    assert first.snapshot == snapshot and all(r.snapshot is None for r in rest)
    assert quorum.applied[1] == before[:snapshot.offset]
    quorum.settle()  # (node 2 may take over meanwhile: its LeaderChangeMessage may follow)
    assert quorum.applied[1][:len(before)] == before


def test_a_restart_with_an_untrimmed_snapshot_knows_its_entries_are_committed() -> None:
    quorum = Quorum()
    snapshot = _leader_with_snapshot(quorum, proposals=3, trim=False)
    quorum.readies[1].clear()
    node = quorum.start(1)  # replays from 0: the snapshot's entries are committed already
    assert node.high_watermark == snapshot.offset
    assert [e.offset for e in quorum.applied[1]] == list(range(snapshot.offset))
    assert all(r.snapshot is None for r in quorum.readies[1])
