"""The safety properties the simulation checks after every step, incrementally.

- **Election safety**: at most one leader per epoch, over the whole run (checked on every node that
  leads, and on every LeaderChangeMessage a log receives).
- **Log matching**: two entries with the same offset and epoch, on any nodes at any time, have
  identical prefixes. Every log keeps a hash chain over its entries (``SimLog``); the first chain
  hash seen for an (offset, epoch) is recorded and every later one must equal it.
- **Committed entries are never lost or changed**: the longest committed sequence seen so far is
  kept; every node's log below its high watermark must agree with it, and no log may be truncated
  below what that node had committed.
- **State machine safety**: every node applies a prefix of that committed sequence, in order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from cluster.raft import Entry, MemoryRaftLog


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
        """The node's entries [start, end) are committed: they must match the committed sequence."""
        committed = self.committed
        for offset in range(start, end):
            entry = log.entry(offset)
            if offset < len(committed):
                known = committed[offset]
                if (known.epoch, known.payload, known.control) != (entry.epoch, entry.payload, entry.control):
                    raise InvariantViolation(
                        f"committed entry changed at offset {offset}: {_show(known)} was committed, "
                        f"node {node_id} commits {_show(entry)}")
            else:
                committed.append(entry)
        log.committed_floor = max(log.committed_floor, end)

    def check_applied(self, node_id: int, applied: list[Entry], entries: Sequence[Entry]) -> None:
        for entry in entries:
            if entry.offset != len(applied):
                raise InvariantViolation(f"node {node_id} applies offset {entry.offset} after {len(applied)} entries")
            if entry.offset >= len(self.committed) or self.committed[entry.offset] != entry:
                raise InvariantViolation(f"node {node_id} applies {_show(entry)}, which is not the committed "
                                         f"entry at offset {entry.offset}")
            applied.append(entry)


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
        self.hashes: list[int] = []
        #: entries below this offset were committed on this node: never truncated
        self.committed_floor = 0

    def append(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            if entry.control:  # a LeaderChangeMessage names the leader of its epoch
                self.invariants.check_leader(json.loads(entry.payload)["leaderId"], entry.epoch)
        super().append(entries)
        chain, hashes = self.invariants.chain, self.hashes
        for entry in entries:
            previous = hashes[-1] if hashes else 0
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
        del self.hashes[offset:]
