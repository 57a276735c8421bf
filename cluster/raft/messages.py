"""The KRaft RPCs (KIP-595) as plain frozen values, free of any wire codec.

Each class is named after the Kafka request or response and carries the fields the Raft core
reads, under Kafka's field names (``candidate_epoch``, ``last_offset_epoch``, ``diverging_epoch``,
``current_leader``...). The single partition (``__cluster_metadata-0``), the cluster id and the
topic id of the real messages are the network layer's business: it maps these values to and from
the codec's Vote (52), BeginQuorumEpoch (53), EndQuorumEpoch (54), Fetch (1) and FetchSnapshot (59,
KIP-630) messages.

A :class:`Message` is the envelope the core emits and accepts: source and destination node ids,
the payload, and the correlation id that pairs a response with its request (a response echoes
the correlation id of the request it answers, as Kafka's request header does).

Error codes are Kafka's (``Errors.java``); their integer values equal the codec's ``ErrorCode``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from cluster.raft.log import Entry, OffsetAndEpoch

__all__ = [
    "NO_LEADER",
    "BeginQuorumEpochRequest",
    "BeginQuorumEpochResponse",
    "EndQuorumEpochRequest",
    "EndQuorumEpochResponse",
    "Errors",
    "FetchRequest",
    "FetchResponse",
    "FetchSnapshotRequest",
    "FetchSnapshotResponse",
    "LeaderIdAndEpoch",
    "Message",
    "Payload",
    "VoteRequest",
    "VoteResponse",
]

#: Kafka's sentinel for "no leader known" (leaderId -1 on the wire).
NO_LEADER = -1


class Errors(IntEnum):
    """The Kafka error codes the KRaft RPCs use (names and values of Kafka's ``Errors``)."""

    NONE = 0
    NOT_LEADER_OR_FOLLOWER = 6
    BROKER_NOT_AVAILABLE = 8
    INVALID_REQUEST = 42
    FENCED_LEADER_EPOCH = 74
    UNKNOWN_LEADER_EPOCH = 75
    SNAPSHOT_NOT_FOUND = 98
    POSITION_OUT_OF_RANGE = 99


class LeaderIdAndEpoch(NamedTuple):
    """``CurrentLeader`` of a FetchResponse: who leads in which epoch, as the responder knows."""

    leader_id: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class VoteRequest:
    """A candidate asks for a vote in ``candidate_epoch`` (Kafka's VoteRequest). With ``pre_vote``
    (Vote v2, KIP-996) a prospective asks, in its current epoch, whether the voter would vote for
    it: the voter answers without changing its epoch or its vote."""

    candidate_epoch: int
    candidate_id: int
    last_offset_epoch: int
    last_offset: int
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class VoteResponse:
    """The voter's answer, with its own view of the epoch and leader."""

    error: Errors
    leader_id: int
    leader_epoch: int
    vote_granted: bool


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochRequest:
    """A new leader announces itself to the voters."""

    leader_id: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class BeginQuorumEpochResponse:
    error: Errors
    leader_id: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class EndQuorumEpochRequest:
    """A leader that resigns (graceful shutdown, lost quorum) hands over: the voters in
    ``preferred_successors`` order (most caught-up first) start elections with shorter backoffs."""

    leader_id: int
    leader_epoch: int
    preferred_successors: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EndQuorumEpochResponse:
    error: Errors
    leader_id: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """A follower (voter or observer) pulls from the leader: it holds ``fetch_offset`` entries, the
    last of them written in ``last_fetched_epoch``; ``max_wait_ms`` lets the leader park the fetch
    until there is something new (Kafka's fetch purgatory)."""

    replica_id: int
    fetch_offset: int
    last_fetched_epoch: int
    current_leader_epoch: int
    max_wait_ms: int = 0


@dataclass(frozen=True, slots=True)
class FetchResponse:
    """The leader's answer: entries from ``fetch_offset`` and its high watermark; or a
    ``diverging_epoch`` (the end offset of the follower's last epoch in the leader's log,
    KIP-595's replacement for OffsetForLeaderEpoch) telling the follower to truncate and refetch;
    or a ``snapshot_id`` (KIP-630) telling a follower whose position the leader's log no longer
    holds to load that snapshot with FetchSnapshot. ``high_watermark`` is -1 when the responder is
    not the leader; ``log_start_offset`` is the leader's (-1 in an error answer)."""

    error: Errors
    current_leader: LeaderIdAndEpoch
    high_watermark: int = -1
    entries: tuple[Entry, ...] = ()
    diverging_epoch: OffsetAndEpoch | None = None
    snapshot_id: OffsetAndEpoch | None = None
    log_start_offset: int = -1


@dataclass(frozen=True, slots=True)
class FetchSnapshotRequest:
    """A follower loads the leader's snapshot ``snapshot_id`` in chunks: up to ``max_bytes`` bytes
    from byte ``position`` (what it already holds)."""

    replica_id: int
    current_leader_epoch: int
    snapshot_id: OffsetAndEpoch
    position: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class FetchSnapshotResponse:
    """A chunk of ``snapshot_id`` (``size`` bytes in all) from ``position``; or an error
    (SNAPSHOT_NOT_FOUND: the leader no longer keeps it; POSITION_OUT_OF_RANGE), with no snapshot."""

    error: Errors
    current_leader: LeaderIdAndEpoch
    snapshot_id: OffsetAndEpoch | None = None
    size: int = -1
    position: int = -1
    data: bytes = b""


Payload = (VoteRequest | VoteResponse | BeginQuorumEpochRequest | BeginQuorumEpochResponse
           | EndQuorumEpochRequest | EndQuorumEpochResponse | FetchRequest | FetchResponse
           | FetchSnapshotRequest | FetchSnapshotResponse)

REQUEST_TYPES = (VoteRequest, BeginQuorumEpochRequest, EndQuorumEpochRequest, FetchRequest, FetchSnapshotRequest)


@dataclass(frozen=True, slots=True)
class Message:
    """One RPC between two nodes; a response carries its request's ``correlation_id``."""

    source: int
    destination: int
    payload: Payload
    correlation_id: int

    @property
    def is_request(self) -> bool:
        return isinstance(self.payload, REQUEST_TYPES)
