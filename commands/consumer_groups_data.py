"""``pko consumer-groups`` as data: Rich/CSV tables (Kafka's column names) and JSON/YAML payloads.

Every payload is ``{"version": 1, …}``; the schema is documented in README.md ("pko
consumer-groups") and pinned by golden tests. Keys are snake_case forms of Kafka's column names;
unknown values are ``null`` (``-`` in text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from commands._render import Table
from commands.consumer_groups_text import assignment_text, coordinator_text, offsets_header
from pykafka_ops.models.groups import (
    GroupDeletion,
    GroupDescription,
    GroupLag,
    GroupListing,
    OffsetDeleteResult,
    ResetPlan,
)

SCHEMA_VERSION = 1
_NUMERIC = frozenset({"PARTITION", "LEADER-EPOCH", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "LAG-SECONDS",
                      "#PARTITIONS", "#MEMBERS", "NEW-OFFSET"})


def _node(group: GroupDescription) -> dict[str, Any] | None:
    node = group.coordinator
    return None if node is None else {"id": node.id, "host": node.host, "port": node.port}


def _group(group: GroupDescription, error: str | None = None) -> dict[str, Any]:
    return {"group": group.group_id, "state": group.state, "error": group.error or error}


def offsets_table(groups: Sequence[GroupLag], time_lag: bool, verbose: bool) -> Table:
    """``--describe --offsets`` rows of every group in one table."""
    rows: list[Sequence[Any]] = []
    for lag in groups:
        for r in lag.partitions:
            rows.append([lag.group_id, r.topic, r.partition, *([r.leader_epoch] if verbose else []),
                         r.current_offset, r.log_end_offset, r.lag,
                         *([None if r.lag_seconds is None else round(r.lag_seconds, 3)] if time_lag else []),
                         r.consumer_id, r.host, r.client_id])
    return Table(offsets_header(time_lag, verbose), rows, numeric=_NUMERIC)


def offsets_payload(groups: Sequence[GroupLag]) -> dict[str, Any]:
    """``--describe --offsets`` as JSON."""
    return {"version": SCHEMA_VERSION, "groups": [
        {**_group(lag.description, lag.error), "coordinator": _node(lag.description), "total_lag": lag.total_lag,
         "partitions": [{"topic": r.topic, "partition": r.partition, "current_offset": r.current_offset,
                         "log_end_offset": r.log_end_offset, "lag": r.lag, "leader_epoch": r.leader_epoch,
                         "lag_seconds": r.lag_seconds, "lag_seconds_note": r.lag_seconds_note,
                         "consumer_id": r.consumer_id, "host": r.host, "client_id": r.client_id}
                        for r in lag.partitions]}
        for lag in groups]}


def members_table(groups: Sequence[GroupDescription], verbose: bool) -> Table:
    """``--describe --members`` rows of every group in one table."""
    rows: list[Sequence[Any]] = [[g.group_id, m.consumer_id, m.group_instance_id, m.host, m.client_id, len(m.assignment),
             *([assignment_text(g, i)] if verbose else [])]
            for g in groups for i, m in enumerate(g.members)]
    columns = ["GROUP", "CONSUMER-ID", "GROUP-INSTANCE-ID", "HOST", "CLIENT-ID", "#PARTITIONS"]
    return Table(columns + (["CURRENT-ASSIGNMENT"] if verbose else []), rows, numeric=_NUMERIC)


def members_payload(groups: Sequence[GroupDescription]) -> dict[str, Any]:
    """``--describe --members`` as JSON."""
    return {"version": SCHEMA_VERSION, "groups": [
        {**_group(g), "members": [
            {"consumer_id": m.consumer_id, "group_instance_id": m.group_instance_id, "host": m.host,
             "client_id": m.client_id, "partitions": len(m.assignment),
             "assignment": [{"topic": tp.topic, "partition": tp.partition} for tp in m.assignment]}
            for m in g.members]}
        for g in groups]}


def state_table(groups: Sequence[GroupDescription]) -> Table:
    """``--describe --state``: one row per group."""
    rows: list[Sequence[Any]] = [[g.group_id, coordinator_text(g) if g.coordinator else None, g.partition_assignor or None, g.state,
             len(g.members)] for g in groups if g.error is None and g.exists]
    return Table(["GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"], rows, numeric=_NUMERIC)


def state_payload(groups: Sequence[GroupDescription]) -> dict[str, Any]:
    """``--describe --state`` as JSON."""
    return {"version": SCHEMA_VERSION, "groups": [
        {**_group(g), "coordinator": _node(g), "assignment_strategy": g.partition_assignor or None,
         "members": len(g.members)} for g in groups]}


def list_table(listings: Sequence[GroupListing]) -> Table:
    """``--list``: GROUP and STATE."""
    return Table(["GROUP", "STATE"], [[g.group_id, g.state] for g in listings])


def list_payload(listings: Sequence[GroupListing]) -> dict[str, Any]:
    """``--list`` as JSON."""
    return {"version": SCHEMA_VERSION, "groups": [{"group": g.group_id, "state": g.state} for g in listings]}


def reset_table(plans: Sequence[ResetPlan]) -> Table:
    """A reset plan: GROUP TOPIC PARTITION NEW-OFFSET, plus the committed offset it replaces."""
    rows: list[Sequence[Any]] = [[p.group_id, r.topic, r.partition, r.current_offset, r.new_offset] for p in plans for r in p.partitions]
    return Table(["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"], rows, numeric=_NUMERIC)


def reset_payload(plans: Sequence[ResetPlan], execute: bool) -> dict[str, Any]:
    """A reset plan as JSON; ``executed`` per group says whether it was committed."""
    return {"version": SCHEMA_VERSION, "execute": execute, "groups": [
        {"group": p.group_id, "state": p.state, "error": p.error, "executed": p.executed,
         "partitions": [{"topic": r.topic, "partition": r.partition, "current_offset": r.current_offset,
                         "new_offset": r.new_offset, "requested_offset": r.requested_offset, "clamped": r.clamped}
                        for r in p.partitions],
         "empty_partitions": [{"topic": tp.topic, "partition": tp.partition} for tp in p.empty_partitions]}
        for p in plans]}


def delete_table(deletions: Sequence[GroupDeletion]) -> Table:
    """``--delete``: GROUP STATUS."""
    return Table(["GROUP", "STATUS"], [[d.group_id, "Deleted" if d.error is None else f"Error: {d.error}"]
                                       for d in deletions])


def delete_payload(deletions: Sequence[GroupDeletion]) -> dict[str, Any]:
    """``--delete`` as JSON."""
    return {"version": SCHEMA_VERSION, "groups": [{"group": d.group_id, "deleted": d.error is None, "error": d.error}
                                                  for d in deletions]}


def delete_offsets_table(result: OffsetDeleteResult) -> Table:
    """``--delete-offsets``: TOPIC PARTITION STATUS."""
    return Table(["TOPIC", "PARTITION", "STATUS"],
                 [[r.topic, r.partition, "Successful" if r.error is None else f"Error: {r.error}"]
                  for r in result.partitions], numeric=_NUMERIC)


def delete_offsets_payload(result: OffsetDeleteResult) -> dict[str, Any]:
    """``--delete-offsets`` as JSON."""
    return {"version": SCHEMA_VERSION, "group": result.group_id, "error": result.error,
            "error_message": result.error_message,
            "partitions": [{"topic": r.topic, "partition": r.partition, "deleted": r.error is None, "error": r.error}
                           for r in result.partitions]}
