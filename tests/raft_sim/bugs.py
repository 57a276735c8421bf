"""Deliberately broken RaftNodes: each overrides one rule, so the simulation can show it notices.

They live in the tests, never in ``cluster/``: the production class has no bug switches, only small
rule methods a subclass can replace.
"""

from __future__ import annotations

from cluster.raft import RaftNode
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


BUGS: dict[str, type[RaftNode]] = {"double_vote": DoubleVoteNode, "figure8": Figure8Node}
