"""Exceptions of the Raft core."""

from __future__ import annotations

from cluster.raft.messages import NO_LEADER, Errors

__all__ = ["NotLeaderError", "RaftStateError"]


class NotLeaderError(Exception):
    """A proposal on a node that does not lead (NOT_LEADER_OR_FOLLOWER), with what it knows."""

    error = Errors.NOT_LEADER_OR_FOLLOWER

    def __init__(self, leader_id: int, epoch: int) -> None:
        super().__init__(f"NOT_LEADER_OR_FOLLOWER: the leader of epoch {epoch} is "
                         f"{leader_id if leader_id != NO_LEADER else 'unknown'}")
        self.leader_id = leader_id
        self.epoch = epoch


class RaftStateError(Exception):
    """A message that contradicts this node's state in a way a correct quorum never produces (two
    leaders in one epoch, a truncation below the high watermark): the node stops, as Kafka's
    ``KafkaRaftClient`` throws ``IllegalStateException`` / ``KafkaException``."""
