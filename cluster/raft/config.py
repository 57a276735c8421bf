"""What a caller passes to a ``RaftNode`` (``RaftConfig``) and gets back from it (``Ready``,
``QuorumDescription``): plain values, no behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster.raft.log import Entry, OffsetAndEpoch
from cluster.raft.messages import Message
from cluster.raft.quorum_state import QuorumStateData

__all__ = ["QuorumDescription", "RaftConfig", "Ready", "ReplicaDescription"]


@dataclass(frozen=True, slots=True)
class RaftConfig:
    """Timers, with the names and defaults of Kafka's ``controller.quorum.*`` settings."""

    election_timeout_ms: int = 1000       # controller.quorum.election.timeout.ms
    fetch_timeout_ms: int = 2000          # controller.quorum.fetch.timeout.ms
    election_backoff_max_ms: int = 1000   # controller.quorum.election.backoff.max.ms
    request_timeout_ms: int = 2000        # controller.quorum.request.timeout.ms
    retry_backoff_ms: int = 20            # controller.quorum.retry.backoff.ms
    fetch_max_wait_ms: int = 500          # how long the leader parks an empty Fetch
    max_fetch_entries: int = 1000         # entries per FetchResponse
    fetch_snapshot_max_bytes: int = 8 * 1024 * 1024  # bytes per FetchSnapshot chunk (MAX_FETCH_SIZE_BYTES)


@dataclass(slots=True)
class Ready:
    """What the caller must do now, in this order: persist ``quorum_state`` (if not None), flush
    the log (if ``flush_log``), send ``messages``, reload the state machine from the log's
    snapshot ``snapshot`` (if not None: a snapshot was installed, or the state machine is behind
    the log start offset), then apply ``committed`` (which continues after that snapshot) — see
    ``cluster.raft.core``."""

    quorum_state: QuorumStateData | None
    flush_log: bool
    messages: list[Message]
    committed: list[Entry]
    high_watermark: int
    snapshot: OffsetAndEpoch | None = None


@dataclass(frozen=True, slots=True)
class ReplicaDescription:
    """One row of DescribeQuorum (Kafka's ``ReplicaState`` as the leader reports it)."""

    replica_id: int
    log_end_offset: int
    last_fetch_timestamp: int
    last_caught_up_timestamp: int


@dataclass(frozen=True, slots=True)
class QuorumDescription:
    """DescribeQuorum's answer; replica rows only on the leader."""

    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: tuple[ReplicaDescription, ...] = ()
    observers: tuple[ReplicaDescription, ...] = ()
