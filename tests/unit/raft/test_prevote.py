"""Pre-vote (KIP-996): a voter asks before it campaigns, and asking changes nobody's epoch or vote."""

from __future__ import annotations

from collections.abc import Callable

from cluster.raft import (
    BeginQuorumEpochRequest,
    Entry,
    Errors,
    Message,
    QuorumStateData,
    RaftNode,
    VoteRequest,
    VoteResponse,
)
from cluster.raft.roles import EpochState

from .helpers import CONFIG, Quorum


class _Recording(RaftNode):
    """Records the name of every state it enters."""

    def _transition(self, new_state: EpochState) -> None:
        self.__dict__.setdefault("history", []).append(new_state.name)
        super()._transition(new_state)


def _pre_vote(candidate: int, voter: int, epoch: int, last_epoch: int = 0, last_offset: int = 0) -> Message:
    return Message(candidate, voter, VoteRequest(epoch, candidate, last_epoch, last_offset, pre_vote=True),
                   correlation_id=5)


def _answer(quorum: Quorum, node: int) -> VoteResponse:
    (answer,) = [m.payload for m in quorum.readies[node][-1].messages if isinstance(m.payload, VoteResponse)]
    return answer


def _without(node_id: int) -> Callable[[Message], bool]:
    """Drop every message to or from ``node_id``."""
    return lambda m: node_id not in (m.source, m.destination)


def _run_for(quorum: Quorum, ms: int, nodes: list[int], keep: Callable[[Message], bool] = lambda m: True) -> None:
    end = quorum.now + ms
    while quorum.now < end:
        quorum.tick(quorum.now + 100, nodes=nodes)
        quorum.deliver(keep)


def test_a_resumed_voter_does_not_depose_a_live_leader() -> None:
    """A voter paused (SIGSTOP) or cut off past its fetch timeout asks for pre-votes; the voters still
    fetching from the leader reject them, so it follows the leader again: no epoch changes."""
    quorum = Quorum()
    leader = quorum.elect(1)
    quorum.settle()
    _run_for(quorum, CONFIG.fetch_timeout_ms + 500, nodes=[1, 2], keep=_without(3))  # node 3 is paused
    stores = {n: quorum.stores[n].state for n in (1, 2, 3)}
    resumed = quorum.nodes[3]
    quorum.tick(quorum.now, nodes=[3])  # it resumes: its fetch timer has long expired
    assert (resumed.role, resumed.epoch) == ("Prospective", 1)
    requests = [m for m in quorum.sent if isinstance(m.payload, VoteRequest)]
    assert {(m.destination, m.payload.pre_vote, m.payload.candidate_epoch) for m in requests} == {(1, True, 1),
                                                                                                  (2, True, 1)}
    quorum.deliver(hold=lambda m: isinstance(m.payload, VoteResponse))
    answers = {m.source: m.payload for m in quorum.sent if isinstance(m.payload, VoteResponse)}
    assert answers[2] == VoteResponse(Errors.NONE, 1, 1, False)  # node 2 still fetches from node 1
    assert answers[1] == VoteResponse(Errors.NONE, 1, 1, False)  # a leader never grants
    quorum.deliver()
    assert (resumed.role, resumed.leader_id, resumed.epoch) == ("Follower", 1, 1)
    assert leader.is_leader and leader.epoch == 1 and quorum.nodes[2].leader_id == 1
    assert {n: quorum.stores[n].state for n in (1, 2, 3)} == stores
    _run_for(quorum, 3 * CONFIG.fetch_timeout_ms, nodes=[1, 2, 3])  # and it goes on replicating
    leader.propose([b"after"], quorum.now)
    quorum.drain(1)
    quorum.settle()
    assert leader.is_leader and {n.epoch for n in quorum.nodes.values()} == {1}
    assert [e.payload for e in quorum.applied[3] if not e.control] == [b"after"]


def test_a_restarted_voter_does_not_depose_a_live_leader() -> None:
    quorum = Quorum(voters=(1, 2, 3, 4, 5))
    leader = quorum.elect(1)
    quorum.settle()
    _run_for(quorum, 2 * CONFIG.fetch_timeout_ms, nodes=[1, 2, 3, 4], keep=_without(5))  # node 5 is down
    restarted = quorum.start(5)
    _run_for(quorum, 3 * CONFIG.fetch_timeout_ms, nodes=[1, 2, 3, 4, 5])
    assert leader.is_leader and {n.epoch for n in quorum.nodes.values()} == {1}
    assert (restarted.role, restarted.leader_id) == ("Follower", 1)


def test_when_the_leader_is_gone_a_prospective_becomes_candidate_then_leader() -> None:
    quorum = Quorum(node_class=_Recording)
    quorum.elect(1)
    quorum.settle()
    crashed_at = quorum.now
    for _ in range(200):  # node 1 crashed: nobody hears from it again
        quorum.tick(quorum.now + 50, nodes=[2, 3])
        quorum.deliver(_without(1), advance_ms=1)
        if quorum.nodes[2].is_leader or quorum.nodes[3].is_leader:
            break
    (winner,) = [quorum.nodes[n] for n in (2, 3) if quorum.nodes[n].is_leader]
    assert winner.epoch >= 2  # (2 unless both campaigned at once and split the vote)
    assert winner.history[-3:] == ["Prospective", "Candidate", "Leader"]  # type: ignore[attr-defined]
    assert quorum.now - crashed_at < CONFIG.fetch_timeout_ms + 3 * CONFIG.election_timeout_ms


def test_answering_a_pre_vote_never_persists_a_vote_nor_moves_the_epoch() -> None:
    quorum = Quorum()
    voter = quorum.nodes[1]
    ready = quorum.step(_pre_vote(2, 1, epoch=5))  # a newer epoch: granted, yet the voter stays in 0
    assert _answer(quorum, 1) == VoteResponse(Errors.NONE, -1, 0, True)
    assert ready.quorum_state is None and voter.epoch == 0 and quorum.stores[1].state is None
    quorum.step(_pre_vote(3, 1, epoch=0))  # and it grants another one: it cast no vote
    assert _answer(quorum, 1).vote_granted is True and quorum.stores[1].state is None
    # a voter that voted in its epoch grants a pre-vote but keeps its vote (and its timer)
    quorum.stores[2].write(QuorumStateData(3, -1, 3))
    voted = quorum.start(2)
    deadline = voted.next_deadline_ms()
    ready = quorum.step(_pre_vote(1, 2, epoch=3))
    assert _answer(quorum, 2) == VoteResponse(Errors.NONE, -1, 3, True)
    assert ready.quorum_state is None and quorum.stores[2].state == QuorumStateData(3, -1, 3)
    assert voted.next_deadline_ms() == deadline and voted.state.voted_id == 3
    # stale: an older epoch is fenced, a shorter log rejected — still nothing changes
    quorum.logs[2].append([Entry(0, 2, b"a")])
    quorum.step(_pre_vote(1, 2, epoch=2, last_epoch=2, last_offset=1))
    assert _answer(quorum, 2) == VoteResponse(Errors.FENCED_LEADER_EPOCH, -1, 3, False)
    quorum.step(_pre_vote(1, 2, epoch=3, last_epoch=1, last_offset=9))
    assert _answer(quorum, 2).vote_granted is False
    assert quorum.stores[2].state == QuorumStateData(3, -1, 3) and voted.epoch == 3


def test_a_prospective_persists_nothing_until_a_majority_grants() -> None:
    quorum = Quorum()
    node = quorum.nodes[1]
    quorum.tick(node.next_deadline_ms(), nodes=[1])
    assert node.role == "Prospective" and quorum.stores[1].state is None
    quorum.deliver(keep=lambda m: m.source == 1)  # nobody answers
    quorum.tick(node.next_deadline_ms(), nodes=[1])  # its election timeout: unattached again
    assert (node.role, node.epoch) == ("Unattached", 0) and quorum.stores[1].state is None
    assert all(quorum.stores[n].state is None for n in (2, 3))


def test_a_prospective_that_hears_of_the_leader_follows_it() -> None:
    quorum = Quorum()
    quorum.elect(1)
    quorum.settle()
    node = quorum.nodes[3]
    quorum.sent.clear()
    quorum.tick(quorum.now + CONFIG.fetch_timeout_ms + 1, nodes=[3])
    assert node.role == "Prospective"
    quorum.take(VoteRequest)
    quorum.step(Message(1, 3, VoteResponse(Errors.NONE, 1, 1, False), correlation_id=-1))  # unsolicited: ignored
    assert node.role == "Prospective"
    quorum.step(Message(1, 3, BeginQuorumEpochRequest(1, 1), correlation_id=9))  # the leader speaks
    assert (node.role, node.leader_id, node.epoch) == ("Follower", 1, 1)


def test_a_real_vote_from_an_older_version_is_still_a_vote() -> None:
    """A Vote v0/v1 request decodes with ``pre_vote`` False: it bumps the epoch and persists the vote."""
    quorum = Quorum()
    ready = quorum.step(Message(2, 1, VoteRequest(1, 2, 0, 0), correlation_id=1))
    assert ready.quorum_state == QuorumStateData(1, -1, 2) and _answer(quorum, 1).vote_granted is True
