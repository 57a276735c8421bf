"""ISR shrinks and expands per node, counted from the metadata log — the source `pko cluster
status` uses for Kafka's IsrShrinksPerSec / IsrExpandsPerSec idea.

Why the metadata log: every ISR change the cluster commits is a record there — a leader's
AlterPartition (shrink or expand) and the controller's own changes (a fenced broker removed from
every ISR) alike — and the log is on disk in each node's data dir, which `pko cluster status`
already reads the state file from. Nothing has to be added to the node, no counter is lost when
a node restarts, and the figures are the cluster's committed truth, not one node's opinion.

What is counted, per node: **shrinks** = committed ISR changes that removed it from a
partition's ISR, **expands** = those that added it. Unlike Kafka's metrics, which the *leader*
counts, a change is counted on the replica that left or joined: the node that keeps falling out
is the one with shrinks. The window is the log kept since the node's latest metadata snapshot
(KIP-630; older records are in the snapshot only as state), so the counts can go back to zero
after a snapshot; a partition created by a record in the window starts with its ISR, which is
not counted as an expansion.

Read-only and offline, as ``services.quorum.read_node_metadata``: works while the node runs or
after it stopped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pykafka_ops.models.replication import IsrChangeCounts
from pykafka_ops.services.quorum import (
    METADATA_LOG_DIR,
    MetadataLogError,
    latest_snapshot,
    metadata_records,
)

if TYPE_CHECKING:
    from pykafka_ops.config.cluster import ClusterConfig

#: A partition of the metadata: (topic id as text, partition index).
PartitionKey = tuple[str, int]


def count_isr_changes(records: Iterable[tuple[int, Mapping[str, Any]]],
                      initial: Mapping[PartitionKey, tuple[int, ...]] | None = None) -> dict[int, IsrChangeCounts]:
    """Per node id, the ISR shrinks that removed it and the expansions that added it, over
    metadata ``records`` ((offset, record) pairs, in order) replayed onto ``initial`` ISRs."""
    isr: dict[PartitionKey, tuple[int, ...]] = dict(initial or {})
    shrinks: Counter[int] = Counter()
    expands: Counter[int] = Counter()
    for _offset, record in records:
        kind = record.get("type")
        if kind == "PartitionRecord":
            isr[(str(record["topic_id"]), record["partition"])] = tuple(record["isr"])
        elif kind == "PartitionChangeRecord" and "isr" in record:
            key = (str(record["topic_id"]), record["partition"])
            new = tuple(record["isr"])
            old = isr.get(key)
            isr[key] = new
            if old is not None:
                shrinks.update(set(old) - set(new))
                expands.update(set(new) - set(old))
    return {node: IsrChangeCounts(shrinks[node], expands[node]) for node in sorted(shrinks.keys() | expands.keys())}


def _snapshot_isrs(path: Path, offset: int) -> dict[PartitionKey, tuple[int, ...]]:
    from cluster.controller.metadata_snapshot import decode_snapshot

    image = decode_snapshot(path.read_bytes(), offset)
    return {(str(topic.topic_id), number): tuple(p.isr)
            for topic in image.topics.values() for number, p in topic.partitions.items()}


def read_isr_changes(directory: Path) -> dict[int, IsrChangeCounts]:
    """``count_isr_changes`` over the metadata log at ``directory`` (a node's
    ``__cluster_metadata-0``): its latest snapshot's ISRs, then the records after it."""
    if not directory.is_dir():
        raise MetadataLogError(f"no metadata log at {directory}")
    snapshot = latest_snapshot(directory)
    start = snapshot[0] if snapshot is not None else 0
    initial = _snapshot_isrs(snapshot[1], start) if snapshot is not None else {}
    return count_isr_changes(((o, r) for o, r in metadata_records(directory) if o >= start), initial)


def cluster_isr_changes(config: ClusterConfig, node_ids: Iterable[int]) -> dict[int, IsrChangeCounts] | None:
    """The counts from the first of ``node_ids`` whose metadata log can be read (put the node
    most likely to be up to date first: the quorum leader); None when none can."""
    for node_id in node_ids:
        try:
            return read_isr_changes(config.node_dir(node_id) / METADATA_LOG_DIR)
        except (OSError, MetadataLogError, KeyError, TypeError, ValueError):
            continue
    return None
