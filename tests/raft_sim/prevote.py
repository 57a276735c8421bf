"""Pre-vote (KIP-996) checks of the simulation, a mixin of ``Simulation``.

Every message is handed to its node here. A pre-vote request (``VoteRequest.pre_vote``) is counted
(``faults["pre_vote"]``) and checked: answering it must change neither the voter's epoch nor its
persisted quorum state — unless one of the voter's own timers was already due, and fired in the
same step (the sim ticks a node at its deadline, but a delivery at that instant may come first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cluster.raft import Message, RaftNode, VoteRequest

from .invariants import InvariantViolation

if TYPE_CHECKING:
    from .sim import Simulation

    _Base = Simulation
else:
    _Base = object


class PreVoteWatch(_Base):
    def _step_delivered(self, node: RaftNode, message: Message) -> None:
        dst = message.destination
        payload = message.payload
        watched = isinstance(payload, VoteRequest) and payload.pre_vote and node.next_deadline_ms() > self.now
        if isinstance(payload, VoteRequest) and payload.pre_vote:
            self.report.faults["pre_vote"] += 1
        before = (node.epoch, self.stores[dst].state)
        node.step(message, self.now)
        self._after(dst)
        after = (node.epoch, self.stores[dst].state)
        if watched and after != before:
            raise InvariantViolation(f"node {dst} answering a pre-vote from node {message.source} went from "
                                     f"(epoch, quorum state) {before} to {after}")
