"""Burrow-style consumer status over a window of polls, per partition and rolled up per group.

Burrow (linkedin/Burrow ``evaluator``) judges a partition from its last N commits and their
timestamps. OffsetFetch gives no commit timestamps, so the monitor judges the last N *polls*
instead, with these rules (first match wins):

- ERR: the group's offsets or the partition's log-end offset could not be read;
- REWIND: the committed offset went back within the window;
- OK: no lag (or no committed offset yet), or fewer than N polls seen so far;
- STOP: lag > 0 at every poll, the committed offset unchanged, and no live member owns the
  partition (the group is Empty, or the partition is unassigned);
- STALL: the same while a member owns the partition;
- WARN: lag > 0 at every poll, it never decreased, and it grew within the window;
- OK otherwise.

A group's status is its worst partition's; its reason names that partition.
"""

from __future__ import annotations

from collections.abc import Sequence

from pykafka_ops.models.groups import PartitionLag
from pykafka_ops.models.monitor import PartitionView, Status
from pykafka_ops.services.history import PartitionTrack


def partition_status(track: PartitionTrack, window: int, row: PartitionLag, lag: int | None,
                     group_state: str) -> tuple[Status, str]:
    """The status of one group's partition after the poll recorded in ``track``, and why
    (``lag``: ``row.lag``, computed once by the caller)."""
    if row.current_offset is not None and row.log_end_offset is None:
        return Status.ERR, "log-end offset unknown (ListOffsets failed)"
    if track.since_rewind <= window - 2:
        return Status.REWIND, "committed offset went back (offsets reset, or reprocessing)"
    if lag is None:
        return Status.OK, "no committed offset yet"
    if lag <= 0:
        return Status.OK, "caught up"
    if track.polls < window:
        return Status.OK, f"lag {lag}, judging after {window} polls ({track.polls} so far)"
    if track.unmoved >= window - 1 and track.lagging >= window:
        if row.consumer_id is None:
            owner = f"group {group_state}" if group_state != "Stable" else "partition unassigned"
            return Status.STOP, f"no progress in {window} polls, lag {lag}, no owner ({owner})"
        return Status.STALL, f"{row.client_id or row.consumer_id} made no progress in {window} polls, lag {lag}"
    if track.lagging >= window and track.not_decreasing >= window - 1 and track.since_increase <= window - 2:
        return Status.WARN, f"lag never decreased in {window} polls, now {lag}"
    return Status.OK, "consuming"


def group_status(partitions: Sequence[PartitionView], error: str | None) -> tuple[Status, str]:
    """The worst partition status of a group and its reason (``error``: offsets unreadable → ERR)."""
    if error is not None:
        return Status.ERR, error
    if not partitions:
        return Status.OK, "no committed offsets"
    worst = max(partitions, key=lambda p: p.status)
    same = sum(1 for p in partitions if p.status == worst.status)
    if worst.status == Status.OK:
        return Status.OK, worst.reason if same == 1 else ("caught up" if all(p.lag == 0 for p in partitions)
                                                          else "consuming")
    more = f" (+{same - 1} more)" if same > 1 else ""
    return worst.status, f"{worst.topic}-{worst.partition}: {worst.reason}{more}"
