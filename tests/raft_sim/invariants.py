"""The safety properties the simulation checks after every step, incrementally.

- **Election safety**: at most one leader per epoch, over the whole run (checked on every node that
  leads, and on every LeaderChangeMessage a log receives).
- **Log matching**: two entries with the same offset and epoch, on any nodes at any time, have
  identical prefixes. Every log keeps a hash chain over its entries (``SimLog``); the first chain
  hash seen for an (offset, epoch) is recorded and every later one must equal it. A log that
  starts after 0 (trimmed to a snapshot, or replaced by one) chains on from the hash of the entry
  before its start, which some log held: entries are compared across snapshots too.
- **Committed entries are never lost or changed**: the longest committed sequence seen so far is
  kept; every node's log below its high watermark must agree with it where it still holds the
  entries (below its start offset they live in a snapshot), and no log may be truncated, or
  replaced by a snapshot, below what that node had committed.
- **State machine safety**: every node applies a prefix of that committed sequence, in order; a
  snapshot it loads (its own after a restart, or the leader's) is such a prefix too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from cluster.raft import Entry, MemoryRaftLog, OffsetAndEpoch


class InvariantViolation(AssertionError):
    """A safety property does not hold."""


class Invariants:
    """The cluster-wide records the checks compare against."""

    def __init__(self) -> None:
        self.leaders: dict[int, int] = {}                # epoch -> the one leader
        self.chain: dict[tuple[int, int], int] = {}      # (offset, epoch) -> chain hash
        self.committed: list[Entry] = []                 # the longest committed sequence

    def check_leader(self, node_id: int, epoch: int) -> None:
        leader = self.leaders.setdefault(epoch, node_id)
        if leader != node_id:
            raise InvariantViolation(f"two leaders in epoch {epoch}: nodes {leader} and {node_id}")

    def check_committed(self, node_id: int, log: SimLog, start: int, end: int) -> None:
        """The node's entries [start, end) are committed: they must match the committed sequence
        (those it still holds: below its log start offset they were checked before the trim, or
        arrived in a snapshot)."""
        committed = self.committed
        for offset in range(max(start, log.start_offset), end):
            entry = log.entry(offset)
            if offset > len(committed):
                raise InvariantViolation(f"node {node_id} commits offset {offset}, but offsets from "
                                         f"{len(committed)} were never seen committed")
            if offset < len(committed):
                known = committed[offset]
                if (known.epoch, known.payload, known.control) != (entry.epoch, entry.payload, entry.control):
                    raise InvariantViolation(
                        f"committed entry changed at offset {offset}: {_show(known)} was committed, "
                        f"node {node_id} commits {_show(entry)}")
            else:
                committed.append(entry)
        log.committed_floor = max(log.committed_floor, end)

    def check_snapshot(self, node_id: int, snapshot_id: OffsetAndEpoch, entries: Sequence[Entry]) -> None:
        """A snapshot a node loads holds exactly the committed entries below its end offset."""
        offset, epoch = snapshot_id
        if len(entries) != offset or offset > len(self.committed) or (entries and entries[-1].epoch != epoch):
            raise InvariantViolation(f"node {node_id} loads snapshot {tuple(snapshot_id)} of {len(entries)} "
                                     f"entries; {len(self.committed)} are committed")
        for entry, known in zip(entries, self.committed, strict=False):
            if entry != known:
                raise InvariantViolation(f"node {node_id} loads snapshot {tuple(snapshot_id)} holding "
                                         f"{_show(entry)}, not the committed {_show(known)}")

    def check_applied(self, node_id: int, applied: list[Entry], entries: Sequence[Entry]) -> None:
        for entry in entries:
            if entry.offset != len(applied):
                raise InvariantViolation(f"node {node_id} applies offset {entry.offset} after {len(applied)} entries")
            if entry.offset >= len(self.committed) or self.committed[entry.offset] != entry:
                raise InvariantViolation(f"node {node_id} applies {_show(entry)}, which is not the committed "
                                         f"entry at offset {entry.offset}")
            applied.append(entry)

    def check_logs(self, logs: Mapping[int, SimLog], leader_id: int | None, leader_epoch: int) -> None:
        """Recheck from scratch: every log against the chain registry and the committed sequence,
        and the newest leader's log holds every committed entry."""
        committed = self.committed
        for node_id, log in logs.items():
            for entry, digest in zip(log.entries(), log.hashes, strict=True):
                if self.chain[(entry.offset, entry.epoch)] != digest:
                    raise InvariantViolation(f"log matching broken on node {node_id} at offset {entry.offset}")
            if log.end_offset < log.committed_floor:
                raise InvariantViolation(f"node {node_id} lost committed entries")
        if leader_id is not None:
            log = logs[leader_id]
            held = log.entries()[:max(0, len(committed) - log.start_offset)]
            if log.end_offset < len(committed) or held != tuple(committed[log.start_offset:]):
                raise InvariantViolation(f"leader {leader_id} of epoch {leader_epoch} does not hold "
                                         "every committed entry")


def _show(entry: Entry) -> str:
    return f"(offset {entry.offset}, epoch {entry.epoch}, {entry.payload[:24]!r})"


class SimLog(MemoryRaftLog):
    """The in-memory log plus a hash chain for the log-matching check; it survives crashes (the
    simulation's durability model: what was appended is what was flushed, because a node's
    ``Ready`` is carried out completely before anything else happens)."""

    def __init__(self, node_id: int, invariants: Invariants) -> None:
        super().__init__()
        self.node_id = node_id
        self.invariants = invariants
        #: the chain hash of each entry held (from the start offset) and of the entry before it
        self.hashes: list[int] = []
        self.base_hash = 0
        #: entries below this offset were committed on this node: never truncated
        self.committed_floor = 0
        self.installs = 0

    def append(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            if entry.control:  # a LeaderChangeMessage names the leader of its epoch
                self.invariants.check_leader(json.loads(entry.payload)["leaderId"], entry.epoch)
        super().append(entries)
        chain, hashes = self.invariants.chain, self.hashes
        for entry in entries:
            previous = hashes[-1] if hashes else self.base_hash
            digest = hash((previous, entry.epoch, entry.payload, entry.control))
            hashes.append(digest)
            known = chain.setdefault((entry.offset, entry.epoch), digest)
            if known != digest:
                raise InvariantViolation(
                    f"log matching: node {self.node_id} holds offset {entry.offset} of epoch {entry.epoch} "
                    f"with a prefix or payload different from another node's")

    def truncate_to(self, offset: int) -> None:
        if offset < self.committed_floor:
            raise InvariantViolation(f"node {self.node_id} truncates to {offset}, losing committed entries "
                                     f"below {self.committed_floor}")
        super().truncate_to(offset)
        del self.hashes[offset - self.start_offset:]

    def trim_to(self, offset: int) -> None:
        start = self.start_offset
        super().trim_to(offset)
        if offset > start:
            self.base_hash = self.hashes[offset - start - 1]
            del self.hashes[:offset - start]

    def install_snapshot(self, snapshot_id: OffsetAndEpoch, data: bytes) -> None:
        offset, epoch = snapshot_id
        if offset < self.committed_floor:
            raise InvariantViolation(f"node {self.node_id} replaces its log with snapshot {tuple(snapshot_id)}, "
                                     f"losing committed entries below {self.committed_floor}")
        base = self.invariants.chain.get((offset - 1, epoch))
        if base is None:
            raise InvariantViolation(f"node {self.node_id} installs snapshot {tuple(snapshot_id)}, but no log "
                                     f"ever held offset {offset - 1} in epoch {epoch}")
        super().install_snapshot(snapshot_id, data)
        self.hashes, self.base_hash = [], base
        self.installs += 1
