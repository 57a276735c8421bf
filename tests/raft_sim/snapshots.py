"""The simulated state machines' snapshots (KIP-630): taken every few applied entries, the log
trimmed to them; loaded on restart and when the core names one (``Ready.snapshot``).

A mixin of :class:`tests.raft_sim.sim.Simulation`; the state machine of a node is the list of
entries it applied, and a snapshot is that list, pickled.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING

from cluster.raft import Entry, OffsetAndEpoch, RaftNode

if TYPE_CHECKING:
    from .sim import Simulation

    _Base = Simulation
else:
    _Base = object


class SnapshotTaking(_Base):
    """Per node: ``snapshot_every`` applied entries make a snapshot; the log keeps
    ``snapshots_kept`` of them (trimmed to the latest, or to the one before)."""

    #: whether state machines take snapshots (a subclass whose logs cannot keep them turns it off)
    take_snapshots = True

    def _maybe_snapshot(self, node: RaftNode, applied: list[Entry]) -> None:
        """Every few applied entries: a snapshot of the state machine, and the log trimmed to it
        (or to the snapshot before, keeping two)."""
        node_id = node.node_id
        log = self.logs[node_id]
        latest = log.latest_snapshot()
        if (not self.take_snapshots
                or len(applied) - (latest.offset if latest is not None else 0) < self.snapshot_every[node_id]):
            return
        node.create_snapshot(len(applied), encode_state(applied), trim=False)
        self.report.faults["snapshot_taken"] += 1
        kept = log.snapshot_ids()
        log.trim_to(kept[-min(len(kept), self.snapshots_kept[node_id])].offset)

    def _load_snapshot(self, node_id: int, snapshot_id: OffsetAndEpoch) -> None:
        """Replace the node's state machine with a snapshot (it must be a committed prefix)."""
        log = self.logs[node_id]
        entries = decode_state(log.read_snapshot(snapshot_id, 0, log.snapshot_size(snapshot_id)))
        self.invariants.check_snapshot(node_id, snapshot_id, entries)
        self.applied[node_id] = entries


def encode_state(applied: list[Entry]) -> bytes:
    """A snapshot of the simulated state machine: every entry it applied."""
    return pickle.dumps([(e.offset, e.epoch, e.payload, e.control) for e in applied])


def decode_state(data: bytes) -> list[Entry]:
    return [Entry(*fields) for fields in pickle.loads(data)]
