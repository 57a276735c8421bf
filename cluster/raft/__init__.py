"""A sans-io KRaft core (KIP-595): the metadata quorum's Raft, as a deterministic state machine.

``RaftNode`` (``core.py``) takes messages, ticks and proposals and hands back what to persist, send
and apply (``Ready``); the caller owns sockets, disks and timers. ``messages.py`` holds the RPCs,
``log.py`` the log abstraction (entries and snapshots) and an in-memory log, ``snapshots.py`` the
KIP-630 rules (FetchSnapshot), ``quorum_state.py`` the persisted election
state (Kafka's ``quorum-state`` file). The simulation that checks it lives in ``tests/raft_sim/``.
"""

from cluster.raft.core import QuorumDescription, RaftConfig, RaftNode, Ready
from cluster.raft.errors import NotLeaderError, RaftStateError
from cluster.raft.log import Entry, LogError, MemoryRaftLog, OffsetAndEpoch, RaftLog
from cluster.raft.messages import (
    NO_LEADER,
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    Errors,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    LeaderIdAndEpoch,
    Message,
    VoteRequest,
    VoteResponse,
)
from cluster.raft.quorum_state import (
    FileQuorumStateStore,
    MemoryQuorumStateStore,
    QuorumStateData,
    QuorumStateError,
    QuorumStateStore,
)

__all__ = [
    "NO_LEADER", "BeginQuorumEpochRequest", "BeginQuorumEpochResponse", "EndQuorumEpochRequest",
    "EndQuorumEpochResponse", "Entry", "Errors", "FetchRequest", "FetchResponse", "FetchSnapshotRequest",
    "FetchSnapshotResponse",
    "FileQuorumStateStore", "LeaderIdAndEpoch", "LogError", "MemoryQuorumStateStore", "MemoryRaftLog", "Message",
    "NotLeaderError", "OffsetAndEpoch", "QuorumDescription", "QuorumStateData", "QuorumStateError",
    "QuorumStateStore", "RaftConfig", "RaftLog", "RaftNode", "RaftStateError", "Ready", "VoteRequest",
    "VoteResponse",
]
