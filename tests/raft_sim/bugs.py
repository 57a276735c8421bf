"""Deliberately broken RaftNodes: each overrides one rule, so the simulation can show it notices.

They live in the tests, never in ``cluster/``: the production class has no bug switches, only small
rule methods a subclass can replace.
"""

from __future__ import annotations

import dataclasses

from cluster.raft import Message, RaftNode
from cluster.raft.roles import LeaderState


class DoubleVoteNode(RaftNode):
    """A voter that forgets it already voted in this epoch (or that it is itself a candidate) and
    grants any candidate with an up-to-date log: two candidates can win the same epoch."""

    def _may_grant_vote(self, candidate_id: int, log_up_to_date: bool) -> bool:
        return self.is_voter and candidate_id in self.voters and log_up_to_date


class Figure8Node(RaftNode):
    """A leader that commits by counting replicas alone, without waiting for an entry of its own
    epoch to reach a majority — the commit rule Raft's Figure 8 shows to be unsafe."""

    def _may_commit(self, state: LeaderState, offset: int) -> bool:
        return True


class PreVoteAsVoteNode(RaftNode):
    """A voter that takes a pre-vote (KIP-996) for a real vote in the next epoch: it moves to that
    epoch and persists its vote — the churn pre-vote exists to prevent."""

    def _handle_vote_request(self, message: Message) -> None:
        request = message.payload
        if getattr(request, "pre_vote", False):
            real = dataclasses.replace(request, pre_vote=False,  # type: ignore[type-var]
                                       candidate_epoch=request.candidate_epoch + 1)  # type: ignore[union-attr]
            message = dataclasses.replace(message, payload=real)
        super()._handle_vote_request(message)


BUGS: dict[str, type[RaftNode]] = {"double_vote": DoubleVoteNode, "figure8": Figure8Node,
                                   "pre_vote_as_vote": PreVoteAsVoteNode}
