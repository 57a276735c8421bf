"""Replication rules, one by one: pull-based Fetch, diverging epochs, the high watermark,
check-quorum and the fetch purgatory."""

from __future__ import annotations

import pytest

from cluster.raft import (
    EndQuorumEpochRequest,
    Entry,
    Errors,
    FetchRequest,
    FetchResponse,
    LeaderIdAndEpoch,
    Message,
    NotLeaderError,
    OffsetAndEpoch,
    QuorumStateData,
    RaftNode,
    RaftStateError,
)
from cluster.raft.roles import LeaderState

from .helpers import CONFIG, Quorum, payloads


def _preload(quorum: Quorum, logs: dict[int, list[int]], epoch: int) -> None:
    """Give each node a log (entry i of node n has epoch logs[n][i]) and a persisted epoch."""
    for node_id, epochs in logs.items():
        quorum.logs[node_id].append([Entry(i, e, b"e%d-%d" % (e, i)) for i, e in enumerate(epochs)])
    for node_id in quorum.ids:
        quorum.stores[node_id].write(QuorumStateData(epoch, -1, -1))
        quorum.start(node_id)


def _fetch(quorum: Quorum, source: int, offset: int, last_epoch: int, epoch: int, wait: int = 0) -> FetchResponse | None:
    message = Message(source, 1, FetchRequest(source, offset, last_epoch, epoch, wait), correlation_id=7)
    ready = quorum.step(message)
    answers = [m.payload for m in ready.messages if m.destination == source and m.correlation_id == 7]
    return answers[0] if answers else None  # type: ignore[return-value]


def test_followers_replicate_and_every_node_applies_the_same_entries_in_order() -> None:
    quorum = Quorum()
    leader = quorum.elect(1)
    quorum.tick(quorum.now + 1, nodes=[2, 3])
    quorum.deliver()
    for batch in ([b"a"], [b"b", b"c"], [b"d"]):
        assert leader.propose(batch, quorum.now).epoch == leader.epoch
        quorum.drain(1)
        quorum.deliver()
    quorum.settle()
    for node_id in (1, 2, 3):
        assert payloads(quorum.applied[node_id]) == [b"a", b"b", b"c", b"d"], node_id
        assert quorum.applied[node_id][0].control  # the LeaderChangeMessage comes first, flagged
        assert quorum.nodes[node_id].high_watermark == 5
    assert quorum.logs[2].entries() == quorum.logs[1].entries()


def test_a_proposal_on_a_follower_names_the_leader() -> None:
    quorum = Quorum()
    quorum.elect(1)
    with pytest.raises(NotLeaderError) as error:
        quorum.nodes[2].propose([b"x"], quorum.now)
    assert (error.value.leader_id, error.value.epoch) == (1, 1)


def test_the_leader_answers_a_follower_whose_log_diverges_with_its_end_offset_for_that_epoch() -> None:
    quorum = Quorum()
    _preload(quorum, {1: [1, 1, 3], 2: [1, 1, 2, 2], 3: [1, 1]}, epoch=3)
    leader = quorum.elect(1)
    assert leader.epoch == 4
    quorum.sent.clear()
    # node 2 holds two entries of epoch 2 the leader never had: truncate to the end of epoch 1
    assert _fetch(quorum, 2, 4, 2, 4).diverging_epoch == OffsetAndEpoch(2, 1)
    # a fetch claiming more of epoch 3 than the leader holds: the end of epoch 3 in its log
    assert _fetch(quorum, 3, 5, 3, 4).diverging_epoch == OffsetAndEpoch(3, 3)
    # a position that matches: entries, no divergence
    answer = _fetch(quorum, 3, 2, 1, 4)
    assert answer is not None and answer.diverging_epoch is None
    assert [e.offset for e in answer.entries] == [2, 3]


def test_a_diverging_follower_truncates_and_converges_on_the_leaders_log() -> None:
    quorum = Quorum()
    _preload(quorum, {1: [1, 1, 3], 2: [1, 1, 2, 2], 3: [1, 1]}, epoch=3)
    leader = quorum.elect(1)
    leader.propose([b"new"], quorum.now)
    quorum.drain(1)
    quorum.tick(quorum.now + 1, nodes=[2, 3])
    quorum.deliver()
    for node_id in (2, 3):
        assert quorum.logs[node_id].entries() == quorum.logs[1].entries(), node_id
    assert [e.epoch for e in quorum.logs[2].entries()] == [1, 1, 3, 4, 4]
    assert payloads(quorum.applied[2])[-1] == b"new"


def test_old_epoch_entries_commit_only_with_an_entry_of_the_leaders_epoch_figure_8() -> None:
    """Node 1 leads epoch 4 with an entry of epoch 2 at offset 1 that node 2 also holds. A majority
    (1 and 2) holds offset 1, but no entry of epoch 4 yet: the high watermark must not move, or a
    voter with a longer epoch-3 log could still be elected and overwrite it (Raft's Figure 8)."""
    quorum = Quorum()
    _preload(quorum, {1: [1, 2], 2: [1, 2], 3: [1, 3]}, epoch=3)
    leader = quorum.elect(1, keep=lambda m: not isinstance(m.payload, FetchRequest))
    state = leader.state
    assert isinstance(state, LeaderState) and state.epoch_start_offset == 2
    quorum.sent.clear()
    _fetch(quorum, 2, 2, 2, 4)             # node 2 holds offsets 0-1 (the epoch-2 entry)
    assert leader.high_watermark == 0
    _fetch(quorum, 2, 3, 4, 4)             # and now the LeaderChangeMessage of epoch 4
    assert leader.high_watermark == 3


def test_a_leader_that_counts_replicas_alone_would_commit_the_old_entry() -> None:
    """The same scenario with the rule broken in a subclass: it commits — the rule above is what
    stops it (and the simulation's planted-bug test uses this subclass)."""

    class CountingLeader(RaftNode):
        def _may_commit(self, state: LeaderState, offset: int) -> bool:
            return True

    quorum = Quorum(node_class=CountingLeader)
    _preload(quorum, {1: [1, 2], 2: [1, 2], 3: [1, 3]}, epoch=3)
    leader = quorum.elect(1, keep=lambda m: not isinstance(m.payload, FetchRequest))
    quorum.sent.clear()
    _fetch(quorum, 2, 2, 2, 4)
    assert leader.high_watermark == 2


def test_fetch_errors_follow_kafkas_leader_only_validation() -> None:
    quorum = Quorum(observers=(4,))
    leader = quorum.elect(1)
    quorum.sent.clear()
    assert _fetch(quorum, 2, 0, 0, 0).error == Errors.FENCED_LEADER_EPOCH
    assert _fetch(quorum, 4, 0, 0, 2).error == Errors.UNKNOWN_LEADER_EPOCH  # an observer ahead
    assert _fetch(quorum, 2, 0, 2, 1).error == Errors.INVALID_REQUEST  # last fetched epoch > leader epoch
    message = Message(3, 2, FetchRequest(3, 0, 0, 1), correlation_id=9)
    (answer,) = quorum.step(message).messages
    assert answer.payload == FetchResponse(Errors.NOT_LEADER_OR_FOLLOWER, LeaderIdAndEpoch(1, 1))
    # a voter ahead (only a forged BeginQuorumEpoch gets one there): the leader steps down into its epoch
    assert _fetch(quorum, 2, 0, 0, 2) == FetchResponse(Errors.NOT_LEADER_OR_FOLLOWER, LeaderIdAndEpoch(-1, 2))
    assert leader.role == "Unattached" and leader.epoch == 2


def test_an_empty_fetch_waits_for_data_or_for_max_wait() -> None:
    quorum = Quorum()
    leader = quorum.elect(1)
    quorum.sent.clear()
    end = quorum.logs[1].end_offset
    assert _fetch(quorum, 2, end, 1, 1, wait=500) is None   # parked in the purgatory
    leader.propose([b"x"], quorum.now)
    (answer,) = [m for m in quorum.drain(1).messages if m.correlation_id == 7]
    assert [e.payload for e in answer.payload.entries] == [b"x"]
    # the next fetch moves the high watermark: answered at once, so the follower learns it
    assert _fetch(quorum, 2, end + 1, 1, 1, wait=500).high_watermark == end + 1  # type: ignore[union-attr]
    assert _fetch(quorum, 2, end + 1, 1, 1, wait=500) is None
    assert leader.next_deadline_ms() == quorum.now + 500
    quorum.tick(quorum.now + 500, nodes=[1])
    (answer,) = [m for m in quorum.readies[1][-1].messages if m.correlation_id == 7]
    assert answer.payload.entries == () and answer.payload.error == Errors.NONE


def test_a_fetch_is_not_parked_while_its_replica_has_not_been_told_the_high_watermark() -> None:
    """KIP-1166: once follower 2's fetch has moved the high watermark, follower 3 (which holds the
    same entries, but whose last answer had the old high watermark) must learn it at once, not
    after fetch_max_wait_ms — else an idle quorum leaves it a commit behind for that long."""
    quorum = Quorum()
    leader = quorum.elect(1)
    quorum.sent.clear()
    end = quorum.logs[1].end_offset
    leader.propose([b"x"], quorum.now)
    quorum.drain(1)
    for follower in (2, 3):  # both fetch the new entry; the high watermark does not cover it yet
        answer = _fetch(quorum, follower, end, 1, 1, wait=500)
        assert answer is not None and [e.payload for e in answer.entries] == [b"x"]
    moved = _fetch(quorum, 2, end + 1, 1, 1, wait=500)  # follower 2 moves it
    assert moved is not None and moved.high_watermark == end + 1
    told = _fetch(quorum, 3, end + 1, 1, 1, wait=500)  # answered at once: it did not know
    assert told is not None and told.high_watermark == end + 1 and told.entries == ()
    assert _fetch(quorum, 3, end + 1, 1, 1, wait=500) is None  # now it knows: parked


def test_a_duplicated_or_stale_fetch_response_is_ignored() -> None:
    quorum = Quorum()
    leader = quorum.elect(1)
    quorum.tick(quorum.now + 1, nodes=[2, 3])
    quorum.deliver()
    leader.propose([b"a", b"b"], quorum.now)
    quorum.drain(1)
    responses = quorum.take(FetchResponse, destination=2)
    assert len(responses) == 1
    for _ in range(3):  # delivered three times: appended once
        quorum.step(responses[0])
    assert payloads(quorum.logs[2].entries()) == [b"a", b"b"]


def test_a_follower_never_truncates_below_its_high_watermark() -> None:
    quorum = Quorum()
    leader = quorum.elect(1)
    quorum.tick(quorum.now + 1, nodes=[2, 3])
    quorum.deliver()
    leader.propose([b"a"], quorum.now)
    quorum.drain(1)
    quorum.settle()
    follower = quorum.nodes[2]
    assert follower.high_watermark == 2
    fetch = [m for ready in quorum.readies[2] for m in ready.messages if isinstance(m.payload, FetchRequest)][-1]
    bogus = FetchResponse(Errors.NONE, LeaderIdAndEpoch(1, 1), 2, (), OffsetAndEpoch(1, 1))
    with pytest.raises(RaftStateError, match="below the high watermark"):
        follower.step(Message(1, 2, bogus, fetch.correlation_id), quorum.now)


def test_a_follower_that_hears_nothing_from_its_leader_asks_for_pre_votes_after_the_fetch_timeout() -> None:
    quorum = Quorum()
    quorum.elect(1)
    follower = quorum.nodes[2]
    assert follower.role == "Follower"
    quorum.sent.clear()
    quorum.tick(quorum.now + CONFIG.fetch_timeout_ms - 10, nodes=[2])
    assert follower.role == "Follower"
    quorum.tick(quorum.now + 20, nodes=[2])
    assert follower.role == "Prospective" and follower.epoch == 1  # pre-vote first (KIP-996)


def test_check_quorum_a_leader_without_fetches_from_a_majority_resigns() -> None:
    quorum = Quorum()
    leader = quorum.elect(1)
    quorum.sent.clear()
    check = int(CONFIG.fetch_timeout_ms * 1.5)
    start = quorum.now
    for t in range(start + 500, start + check, 500):  # node 2 keeps fetching: a majority with the leader
        quorum.now = t
        _fetch(quorum, 2, quorum.logs[1].end_offset, 1, 1)
        quorum.tick(t, nodes=[1])
    assert leader.is_leader
    quorum.tick(quorum.now + check, nodes=[1])  # then nobody fetches for 1.5 x fetch timeout
    assert leader.role == "Resigned"
    assert {m.destination for m in quorum.take(EndQuorumEpochRequest)} == {2, 3}


def test_next_deadline_is_always_after_now() -> None:
    quorum = Quorum(voters=(1, 2, 3), observers=(9,))
    for t in range(0, 20_000, 37):
        quorum.tick(t)
        quorum.deliver(keep=lambda m: m.destination != 3)
        for node in quorum.nodes.values():
            assert node.next_deadline_ms() > node.now_ms


def test_describe_quorum_on_the_leader() -> None:
    quorum = Quorum(voters=(1, 2, 3), observers=(9,))
    leader = quorum.elect(1)
    quorum.tick(quorum.now + 50, nodes=[2, 3, 9])
    quorum.deliver()
    description = leader.describe_quorum()
    assert (description.leader_id, description.leader_epoch, description.high_watermark) == (1, 1, 1)
    assert [(r.replica_id, r.log_end_offset) for r in description.voters] == [(1, 1), (2, 1), (3, 1)]
    assert [r.replica_id for r in description.observers] == [9]
    assert quorum.nodes[2].describe_quorum().voters == ()


def test_error_codes_are_kafkas() -> None:
    from pykafka_ops.protocol.codec import ErrorCode

    for error in Errors:
        assert int(ErrorCode[error.name.lower()]) == error.value
