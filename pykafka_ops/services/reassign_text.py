"""Kafka's words for reassignment states, and their data form for ``--output json|yaml``.

The lines are ``ReassignPartitionsCommand``'s (``partitionReassignmentStatesToString``,
``replicaMoveStatesToString``, ``curReassignmentsToString``), kept beside the states they
describe so that unit tests pin them without a cluster; `pko reassign` prints them when piped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pykafka_ops.models.reassign import (
    COMPLETED,
    IN_PROGRESS,
    MOVE_ACTIVE,
    MOVE_CANCELLED,
    MOVE_COMPLETED,
    MOVE_MISSING_LOG_DIR,
    LogDirMoveStatus,
    OngoingReassignment,
    PartitionStatus,
    PartitionTarget,
    VerifyReport,
)


def _ids(brokers: Iterable[int]) -> str:
    return ",".join(map(str, brokers))


def partition_line(status: PartitionStatus) -> str:
    """One partition's state under --verify."""
    if status.state == COMPLETED:
        return f"Reassignment of partition {status.name} is completed."
    if status.state == IN_PROGRESS:
        return f"Reassignment of partition {status.name} is still in progress."
    return (f"There is no active reassignment of partition {status.name}, but replica set is "
            f"{_ids(status.current_replicas)} rather than {_ids(status.target_replicas)}.")


def move_line(move: LogDirMoveStatus) -> str:
    """One replica's log-dir move state under --verify."""
    partition = f"{move.topic}-{move.partition}"
    if move.state == MOVE_COMPLETED:
        return f"Reassignment of replica {move.name} completed successfully."
    if move.state == MOVE_ACTIVE:
        if move.future_dir == move.target_dir:
            return f"Reassignment of replica {move.name} is still in progress."
        return (f"Partition {partition} on broker {move.broker} is being moved to log dir {move.future_dir} "
                f"instead of {move.target_dir}.")
    if move.state == MOVE_CANCELLED:
        return (f"Partition {partition} on broker {move.broker} is not being moved from log dir {move.current_dir} "
                f"to {move.target_dir}.")
    if move.state == MOVE_MISSING_LOG_DIR:
        return (f"Partition {partition} is not found in any live log dir on broker {move.broker}. There is likely an "
                "offline log directory on the broker.")
    return f"Partition {partition} cannot be found in any live log directory on broker {move.broker}."


def verify_lines(report: VerifyReport) -> list[str]:
    """--verify's status lines: partitions by topic and partition, then log-dir moves by broker."""
    return (["Status of partition reassignment:"] + [partition_line(s) for s in report.partitions]
            + [move_line(m) for m in report.moves])


def list_lines(ongoing: Sequence[OngoingReassignment]) -> list[str]:
    """--list's lines: ``t-0: replicas: 1,2,3. adding: 3. removing: 1.``"""
    if not ongoing:
        return ["No partition reassignments found."]
    return ["Current partition reassignments:"] + [
        f"{r.name}: replicas: {_ids(r.replicas)}." + (f" adding: {_ids(r.adding)}." if r.adding else "")
        + (f" removing: {_ids(r.removing)}." if r.removing else "") for r in ongoing]


def reassignment_payload(targets: Iterable[PartitionTarget]) -> dict[str, Any]:
    """A reassignment JSON file's content as data (the same keys as the file)."""
    return {"version": 1, "partitions": [{"topic": t.topic, "partition": t.partition, "replicas": list(t.replicas),
                                          "log_dirs": list(t.log_dirs)} for t in targets]}


def verify_payload(report: VerifyReport) -> dict[str, Any]:
    """--verify as data: each partition's and log-dir move's state, whether anything still moves,
    and the throttles cleared (null when none were)."""
    cleared = report.cleared
    return {
        "partitions": [{"topic": s.topic, "partition": s.partition, "state": s.state,
                        "current_replicas": list(s.current_replicas), "target_replicas": list(s.target_replicas)}
                       for s in report.partitions],
        "log_dir_moves": [{"topic": m.topic, "partition": m.partition, "broker": m.broker, "state": m.state,
                           "current_log_dir": m.current_dir, "future_log_dir": m.future_dir,
                           "target_log_dir": m.target_dir} for m in report.moves],
        "reassignments_in_progress": report.partitions_ongoing,
        "log_dir_moves_in_progress": report.moves_ongoing,
        "throttles_cleared": None if cleared is None else {"brokers": list(cleared.brokers),
                                                           "topics": list(cleared.topics)},
    }
