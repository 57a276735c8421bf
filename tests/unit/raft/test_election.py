"""Election rules, one by one, on a hand-driven quorum with a fake clock."""

from __future__ import annotations

import json

from cluster.raft import (
    BeginQuorumEpochRequest,
    EndQuorumEpochRequest,
    Entry,
    Errors,
    Message,
    NotLeaderError,
    QuorumStateData,
    RaftConfig,
    VoteRequest,
    VoteResponse,
)

from .helpers import CONFIG, Quorum

SEED_WITH_BACKOFF = 1


def _vote(candidate: int, voter: int, epoch: int, last_epoch: int = 0, last_offset: int = 0) -> Message:
    return Message(candidate, voter, VoteRequest(epoch, candidate, last_epoch, last_offset), correlation_id=1)


def _answer(quorum: Quorum, node: int) -> VoteResponse:
    ready = quorum.readies[node][-1]
    (answer,) = [m.payload for m in ready.messages if isinstance(m.payload, VoteResponse)]
    return answer


def test_a_single_voter_elects_itself_and_commits_on_append() -> None:
    quorum = Quorum(voters=(1,))
    node = quorum.nodes[1]
    assert node.is_leader and node.epoch == 1
    offset = node.propose([b"a"], 5)
    assert offset == (1, 1)  # offset 0 holds the LeaderChangeMessage
    ready = quorum.drain(1)
    assert [e.payload for e in ready.committed if not e.control] == [b"a"]
    assert ready.high_watermark == 2


def test_the_election_timeout_is_randomized_between_one_and_two_timeouts() -> None:
    deadlines = {Quorum(seed=seed).nodes[1].next_deadline_ms() for seed in range(40)}
    assert all(CONFIG.election_timeout_ms <= d < 2 * CONFIG.election_timeout_ms for d in deadlines)
    assert len(deadlines) > 10


def test_a_candidate_persists_its_new_epoch_and_own_vote_in_the_ready_that_asks_for_votes() -> None:
    quorum = Quorum()
    node = quorum.nodes[1]
    quorum.tick(node.next_deadline_ms() - 1, nodes=[1])
    assert node.role == "Unattached"
    quorum.tick(node.next_deadline_ms(), nodes=[1])
    ready = quorum.readies[1][-1]
    assert node.role == "Prospective" and ready.quorum_state is None  # pre-vote: nothing persisted
    assert sorted(m.destination for m in ready.messages) == [2, 3]
    assert {m.payload for m in ready.messages} == {VoteRequest(0, 1, 0, 0, pre_vote=True)}
    (pre_vote,) = quorum.take(VoteRequest, destination=2)
    quorum.step(pre_vote)
    (grant,) = quorum.take(VoteResponse, destination=1)
    assert grant.payload == VoteResponse(Errors.NONE, -1, 0, True)
    assert quorum.stores[2].state is None  # answering a pre-vote persists nothing
    ready = quorum.step(grant)
    assert node.role == "Candidate"
    assert ready.quorum_state == QuorumStateData(leader_epoch=1, leader_id=-1, voted_id=1)
    assert sorted(m.destination for m in ready.messages) == [2, 3]
    assert {m.payload for m in ready.messages} == {VoteRequest(1, 1, 0, 0)}


def test_a_majority_of_votes_makes_a_leader_that_announces_itself_and_writes_a_leader_change() -> None:
    quorum = Quorum()
    quorum.tick(quorum.nodes[1].next_deadline_ms(), nodes=[1])
    quorum.deliver(keep=lambda m: not isinstance(m.payload, BeginQuorumEpochRequest) or m.destination == 2)
    leader = quorum.nodes[1]
    assert leader.is_leader and leader.epoch == 1
    assert quorum.stores[1].state == QuorumStateData(1, 1, 1)
    first = quorum.logs[1].entry(0)
    assert first.control and first.epoch == 1
    assert json.loads(first.payload) == {"version": 0, "leaderId": 1, "voters": [1, 2, 3], "grantingVoters": [1, 2]}
    # BeginQuorumEpoch to node 3 was lost: the leader sends it again after fetch.timeout / 2
    quorum.tick(quorum.now + CONFIG.fetch_timeout_ms // 2 + 1, nodes=[1])
    assert [m.destination for m in quorum.take(BeginQuorumEpochRequest)] == [3]


def test_a_voter_grants_one_vote_per_epoch_and_persists_it_before_answering() -> None:
    quorum = Quorum()
    ready = quorum.step(_vote(2, 1, epoch=1))
    assert ready.quorum_state == QuorumStateData(leader_epoch=1, leader_id=-1, voted_id=2)
    assert _answer(quorum, 1) == VoteResponse(Errors.NONE, -1, 1, True)
    quorum.step(_vote(3, 1, epoch=1))
    assert _answer(quorum, 1).vote_granted is False  # another candidate, same epoch
    quorum.step(_vote(2, 1, epoch=1))
    assert _answer(quorum, 1).vote_granted is True   # the same candidate asking again


def test_a_candidate_whose_log_is_behind_gets_no_vote() -> None:
    quorum = Quorum()
    quorum.logs[1].append([Entry(0, 1, b"a"), Entry(1, 2, b"b")])
    quorum.step(_vote(2, 1, epoch=3, last_epoch=1, last_offset=5))   # older last epoch, longer log
    assert _answer(quorum, 1).vote_granted is False
    quorum.step(_vote(3, 1, epoch=4, last_epoch=2, last_offset=1))   # same last epoch, shorter log
    assert _answer(quorum, 1).vote_granted is False
    quorum.step(_vote(3, 1, epoch=5, last_epoch=2, last_offset=2))   # as up to date: granted
    assert _answer(quorum, 1).vote_granted is True


def test_a_vote_request_from_an_older_epoch_is_fenced_and_an_invalid_one_refused() -> None:
    quorum = Quorum()
    quorum.step(_vote(2, 1, epoch=3))
    quorum.step(_vote(3, 1, epoch=2))
    assert _answer(quorum, 1) == VoteResponse(Errors.FENCED_LEADER_EPOCH, -1, 3, False)
    quorum.step(_vote(3, 1, epoch=4, last_epoch=4))
    assert _answer(quorum, 1).error == Errors.INVALID_REQUEST


def test_a_leader_steps_down_on_a_newer_epoch() -> None:
    quorum = Quorum()
    leader = quorum.elect(1)
    quorum.step(_vote(2, 1, epoch=leader.epoch + 1, last_epoch=leader.epoch, last_offset=quorum.logs[1].end_offset))
    assert leader.role == "Unattached" and leader.epoch == 2
    assert _answer(quorum, 1).vote_granted is True
    try:
        leader.propose([b"x"], quorum.now)
    except NotLeaderError as error:
        assert error.error == Errors.NOT_LEADER_OR_FOLLOWER
    else:
        raise AssertionError("a former leader accepted a proposal")


def test_a_voter_sent_ahead_by_a_forged_announcement_rejoins_the_quorum() -> None:
    """A BeginQuorumEpoch from no real leader (the protocol fuzzer sent one naming node 2 leader of
    an epoch it never led) put voter 1 ahead of the quorum; the leader steps down when that voter
    fetches in the newer epoch, and the quorum elects a leader of a still newer one."""
    quorum = Quorum()
    leader = quorum.elect(2)
    quorum.settle()
    forged_epoch = leader.epoch + 9
    quorum.step(Message(2, 1, BeginQuorumEpochRequest(2, forged_epoch), correlation_id=99))
    assert (quorum.nodes[1].epoch, quorum.nodes[1].leader_id) == (forged_epoch, 2)
    _until_one_leader_above(quorum, forged_epoch)


def test_a_voter_stranded_in_a_newer_epoch_by_a_forged_vote_rejoins_the_quorum() -> None:
    """A Vote in a far newer epoch from no real candidate (the protocol fuzzer sent one) left voter
    2 unattached ahead of the quorum; when its pre-votes are refused by voters of the older leader,
    it probes that leader with a Fetch in its epoch, the leader steps down, and a leader above it
    is elected that every voter follows."""
    quorum = Quorum()
    leader = quorum.elect(1)
    quorum.settle()
    forged_epoch = leader.epoch + 20
    quorum.step(Message(3, 2, VoteRequest(forged_epoch, 3, 0, 0), correlation_id=98))  # log behind: refused
    assert (quorum.nodes[2].epoch, quorum.nodes[2].leader_id) == (forged_epoch, -1)
    quorum.take(VoteResponse)
    _until_one_leader_above(quorum, forged_epoch)


def _until_one_leader_above(quorum: Quorum, epoch: int) -> None:
    for _ in range(200):  # fetches, step-downs, pre-votes and votes, on the fake clock
        quorum.deliver()
        quorum.tick(quorum.now + 100)
        leaders = [n for n in quorum.nodes.values() if n.is_leader]
        if leaders and leaders[0].epoch > epoch and all(n.leader_id == leaders[0].node_id
                                                         for n in quorum.nodes.values()):
            return
    raise AssertionError({n: (node.role, node.epoch, node.leader_id) for n, node in quorum.nodes.items()})


def test_a_candidate_rejected_by_a_majority_backs_off_then_campaigns_in_the_next_epoch() -> None:
    quorum = Quorum(seed=SEED_WITH_BACKOFF)  # a seed whose first backoff is not 0 ms (it is 0 or 100 ms)
    candidate = quorum.nodes[1]
    quorum.tick(candidate.next_deadline_ms(), nodes=[1])
    quorum.deliver(rounds=2)  # the pre-votes are granted
    assert (candidate.role, candidate.epoch) == ("Candidate", 1)
    quorum.step(_vote(3, 2, epoch=1))  # meanwhile 2 and 3 vote for each other in epoch 1
    quorum.step(_vote(2, 3, epoch=1))
    quorum.take(VoteResponse)
    quorum.deliver(rounds=2)  # both rejections arrive
    assert candidate.epoch == 1 and candidate.state.backing_off  # type: ignore[attr-defined]
    assert quorum.take(VoteRequest) == []  # no more requests while backing off
    backoff_end = candidate.next_deadline_ms()
    assert 0 < backoff_end - quorum.now <= CONFIG.election_backoff_max_ms
    quorum.tick(backoff_end, nodes=[1])
    assert (candidate.role, candidate.epoch) == ("Prospective", 1)  # pre-vote again (KIP-996)
    assert {(m.destination, m.payload.pre_vote) for m in quorum.sent} == {(2, True), (3, True)}
    quorum.deliver(rounds=2)  # 2 and 3 voted in epoch 1, yet grant the pre-vote: no leader there
    assert candidate.role == "Candidate" and candidate.epoch == 2
    assert {m.destination for m in quorum.take(VoteRequest)} == {2, 3}


def test_unattached_voters_keep_their_election_timer_when_a_losing_candidate_bumps_the_epoch() -> None:
    """Kafka's transitionToUnattached: otherwise a candidate with a stale log, retrying faster than
    the election timeout, would hold off every other voter's election for ever."""
    quorum = Quorum()
    voter = quorum.nodes[2]
    quorum.logs[2].append([Entry(0, 1, b"a")])
    quorum.stores[2].write(QuorumStateData(1, -1, -1))
    voter = quorum.start(2)
    deadline = voter.next_deadline_ms()
    for epoch in range(2, 6):
        quorum.now += 100
        quorum.step(_vote(1, 2, epoch=epoch))  # stale log: rejected, but the epoch moves
        assert voter.epoch == epoch and voter.next_deadline_ms() == deadline
    quorum.tick(deadline, nodes=[2])
    assert voter.role == "Prospective"


def test_an_observer_never_votes_and_never_campaigns() -> None:
    quorum = Quorum(voters=(1, 2, 3), observers=(9,))
    observer = quorum.nodes[9]
    quorum.step(_vote(1, 9, epoch=1))
    assert _answer(quorum, 9).vote_granted is False
    for t in range(0, 60_000, 500):
        quorum.tick(t, nodes=[9])
        quorum.take(object)  # its Fetch requests go nowhere
        assert observer.role in ("Unattached", "Follower")
    assert quorum.stores[9].state is None or quorum.stores[9].state.voted_id == -1


def test_an_observer_finds_the_leader_through_any_voter_and_replicates() -> None:
    quorum = Quorum(voters=(1, 2, 3), observers=(9,))
    leader = quorum.elect(1)
    leader.propose([b"a", b"b"], quorum.now)
    quorum.drain(1)
    quorum.tick(quorum.now + CONFIG.retry_backoff_ms, nodes=[9])  # its first try found no leader
    quorum.deliver()
    observer = quorum.nodes[9]
    assert observer.role == "Follower" and observer.leader_id == 1
    assert [e.payload for e in quorum.applied[9] if not e.control] == [b"a", b"b"]


def test_a_vote_survives_a_restart() -> None:
    quorum = Quorum()
    quorum.step(_vote(2, 1, epoch=4))
    restarted = quorum.start(1)
    assert (restarted.role, restarted.epoch) == ("Unattached", 4)
    quorum.step(_vote(3, 1, epoch=4))
    assert _answer(quorum, 1).vote_granted is False


def test_a_restarted_leader_comes_back_resigned_and_a_candidate_as_candidate() -> None:
    quorum = Quorum()
    quorum.elect(1)
    assert quorum.start(1).role == "Resigned"
    assert quorum.nodes[1].epoch == 1
    # a resigned leader tells the voters with EndQuorumEpoch and never votes in its epoch
    assert {m.destination for m in quorum.take(EndQuorumEpochRequest)} == {2, 3}
    quorum.stores[2].write(QuorumStateData(5, -1, 2))
    node = quorum.start(2)
    assert (node.role, node.epoch) == ("Candidate", 5)


def test_a_log_ahead_of_the_state_file_wins_the_epoch() -> None:
    quorum = Quorum()
    quorum.logs[1].append([Entry(0, 6, b"a")])
    node = quorum.start(1)
    assert (node.role, node.epoch) == ("Unattached", 6)
    assert quorum.stores[1].state == QuorumStateData(6, -1, -1)


def test_a_resigning_leader_hands_over_to_its_most_caught_up_voter_at_once() -> None:
    quorum = Quorum(voters=(1, 2, 3, 4, 5))
    leader = quorum.elect(1)
    quorum.tick(quorum.now + 1, nodes=[2, 3, 4, 5])
    quorum.deliver()
    leader.propose([b"x"], quorum.now)
    quorum.drain(1)
    quorum.deliver(keep=lambda m: m.destination != 5 and m.source != 5)  # node 5 falls behind
    leader.resign(quorum.now)
    quorum.drain(1)
    assert leader.role == "Resigned"
    requests = quorum.take(EndQuorumEpochRequest)
    successors = requests[0].payload.preferred_successors
    assert successors[-1] == 5 and len(successors) == 4
    for message in requests:
        quorum.step(message)
    first = quorum.nodes[successors[0]]
    assert first.role == "Prospective"  # backoff 0 for the first preferred successor
    # the others still follow the resigned leader, but grant the pre-vote: it told them it goes
    assert all(quorum.nodes[n].role == "Follower" for n in successors[1:])
    quorum.deliver()
    assert first.is_leader


def test_a_faster_config_is_honoured() -> None:
    config = RaftConfig(election_timeout_ms=100)
    deadline = Quorum(config=config).nodes[1].next_deadline_ms()
    assert 100 <= deadline < 200
