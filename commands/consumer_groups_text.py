"""kafka-consumer-groups' own plain-text layouts, byte for byte (Kafka 4.x ``ConsumerGroupCommand``).

Java's ``%-Ns`` pads to N without truncating; most views start every line with ``\\n`` (so the
output opens with a blank line) and end with one more newline. Widths are ``max(15, longest
value)`` for GROUP, TOPIC, CONSUMER-ID and HOST, as Kafka computes them per group.

Deliberate differences, each an improvement: rows of a reset plan are sorted (Kafka prints them
in HashMap order); ``--describe --members`` of a group that does not exist prints only the error
(Kafka also prints an empty header); LAG-SECONDS (``--time-lag``) is an extra column after LAG.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from commands._render import cell
from pykafka_ops.models.groups import (
    REBALANCING_STATES,
    GroupDeletion,
    GroupDescription,
    GroupLag,
    GroupListing,
    OffsetDeleteResult,
    ResetPlan,
)
from pykafka_ops.services.groups import GROUP_LEVEL_ERRORS

T = TypeVar("T")


def line(values: Sequence[str], widths: Sequence[int | None]) -> str:
    """Java's ``%-Ns %-Ms …``: each value left-aligned in its width (None = unpadded), space-separated."""
    return " ".join(value if width is None else value.ljust(width) for value, width in zip(values, widths))


def width(values: Sequence[str], minimum: int = 15) -> int:
    """Kafka's column width: the longest value, at least ``minimum``."""
    return max([minimum, *(len(v) for v in values)])


def seconds(value: float | None) -> str:
    """LAG-SECONDS text: milliseconds precision, ``-`` when unknown."""
    return "-" if value is None else f"{value:.3f}"


def problem(description: GroupDescription, error: str | None = None) -> str | None:
    """The ``Error:`` text Kafka prints on stdout instead of a group's table, if any."""
    if description.error is not None:
        return description.error
    if not description.exists:
        return f"Consumer group '{description.group_id}' does not exist."
    return error


def notice(description: GroupDescription) -> str | None:
    """The stderr line Kafka prints before an Empty or rebalancing group's table (``shouldPrintMemberState``)."""
    if description.error is not None or not description.exists:
        return None
    if description.state == "Empty":
        return f"\nConsumer group '{description.group_id}' has no active members."
    if description.state in REBALANCING_STATES:
        return f"\nWarning: Consumer group '{description.group_id}' is rebalancing."
    return None


def each_group(groups: Sequence[T], error_of: Callable[[T], str | None], body: Callable[[T], str]) -> str:
    """``body(group)`` for each group, or Kafka's ``Error:`` line (on stdout) for a group that has one."""
    return "".join(f"\nError: {error}\n" if (error := error_of(g)) is not None else body(g) for g in groups)


def time_lag_notes(groups: Sequence[GroupLag]) -> list[str]:
    """Why LAG-SECONDS is ``-`` on a partition that lags (stderr; the other ``-`` speak for themselves)."""
    return [f"LAG-SECONDS of group '{lag.group_id}' on {r.topic}-{r.partition} is unknown: {r.lag_seconds_note}"
            for lag in groups for r in lag.partitions
            if r.lag_seconds is None and r.lag_seconds_note is not None and r.lag is not None and r.lag > 0]


def offsets_rows(lag: GroupLag, time_lag: bool, verbose: bool) -> list[list[str]]:
    """The cells of one group's ``--describe --offsets`` rows (header excluded)."""
    rows = []
    for r in lag.partitions:
        row = [lag.group_id, r.topic, str(r.partition)]
        row += [cell(r.leader_epoch)] if verbose else []
        row += [cell(r.current_offset), cell(r.log_end_offset), cell(r.lag)]
        row += [seconds(r.lag_seconds)] if time_lag else []
        rows.append(row + [cell(r.consumer_id), cell(r.host), cell(r.client_id)])
    return rows


def offsets_header(time_lag: bool, verbose: bool) -> list[str]:
    """Column names of ``--describe --offsets`` (LEADER-EPOCH with --verbose, LAG-SECONDS with --time-lag)."""
    return (["GROUP", "TOPIC", "PARTITION"] + (["LEADER-EPOCH"] if verbose else [])
            + ["CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"] + (["LAG-SECONDS"] if time_lag else [])
            + ["CONSUMER-ID", "HOST", "CLIENT-ID"])


def describe_offsets(groups: Sequence[GroupLag], time_lag: bool = False, verbose: bool = False) -> str:
    """``--describe [--offsets]`` (CGC ``printOffsets``)."""
    def body(lag: GroupLag) -> str:
        rows = offsets_rows(lag, time_lag, verbose)
        if not rows:
            return ""
        columns = list(zip(*rows))
        widths: list[int | None] = [width(columns[0]), width(columns[1]), 10]
        widths += [15] * (3 + verbose + time_lag) + [width(columns[-3]), width(columns[-2]), None]
        return "".join("\n" + line(r, widths) for r in [offsets_header(time_lag, verbose), *rows]) + "\n"

    return each_group(groups, lambda lag: problem(lag.description, lag.error), body)


def assignment_text(description: GroupDescription, index: int) -> str:
    """Kafka 4.x ``getAssignmentString``: ``t1:0,1;t2:3`` (``-`` when empty)."""
    by_topic: dict[str, list[int]] = {}
    for tp in description.members[index].assignment:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    text = ";".join(sorted(f"{t}:{','.join(map(str, sorted(ps)))}" for t, ps in by_topic.items()))
    return text or "-"


def describe_members(groups: Sequence[GroupDescription], verbose: bool = False) -> str:
    """``--describe --members [--verbose]`` (CGC ``printMembers``; classic groups have no epochs: ``-``)."""
    def body(group: GroupDescription) -> str:
        instance = any(m.group_instance_id for m in group.members)
        rows = []
        for i, m in enumerate(group.members):
            row = [group.group_id, m.consumer_id] + ([m.group_instance_id or ""] if instance else [])
            rows.append((row + [m.host, m.client_id, str(len(m.assignment))],
                         ["-", assignment_text(group, i), "-", "-"]))
        header = ["GROUP", "CONSUMER-ID"] + (["GROUP-INSTANCE-ID"] if instance else []) + ["HOST", "CLIENT-ID", "#PARTITIONS"]
        columns = list(zip(*(r for r, _v in rows))) or [()] * len(header)
        widths: list[int | None] = [width(c, 17 if name == "GROUP-INSTANCE-ID" else 15)
                                    for c, name in zip(columns[:-1], header)]
        widths.append(15)
        verbose_widths: list[int | None] = [15, width([v[1] for _r, v in rows], 20), 15, 20]
        verbose_header = ["CURRENT-EPOCH", "CURRENT-ASSIGNMENT", "TARGET-EPOCH", "TARGET-ASSIGNMENT"]
        lines = [(header, verbose_header)] + rows
        return "\n" + "".join(line(r, widths) + " " + (line(v, verbose_widths) if verbose else "") + "\n"
                              for r, v in lines)

    return each_group(groups, problem, body)


def coordinator_text(group: GroupDescription) -> str:
    """``host:port  (id)``, as Kafka writes the coordinator (two spaces)."""
    node = group.coordinator
    return "-" if node is None else f"{node.host}:{node.port}  ({node.id})"


def describe_state(groups: Sequence[GroupDescription]) -> str:
    """``--describe --state`` (CGC ``printStates``: the header repeats for each group)."""
    def body(group: GroupDescription) -> str:
        coordinator = coordinator_text(group)
        widths: list[int | None] = [width([group.group_id]), width([coordinator], 25), 20, 20, None]
        row = [group.group_id, coordinator, group.partition_assignor or "-", group.state, str(len(group.members))]
        header = ["GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"]
        return "\n" + line(header, widths) + "\n" + line(row, widths) + "\n"

    return each_group(groups, problem, body)


def list_groups(listings: Sequence[GroupListing], with_state: bool) -> str:
    """``--list`` (bare ids) or ``--list --state`` (CGC ``printGroupInfo``: GROUP is max(15, longest) + 10 wide)."""
    if not with_state:
        return "".join(f"{g.group_id}\n" for g in listings)
    widths = [width([g.group_id for g in listings]) + 10, 20]
    return "".join(line(r, widths) + "\n" for r in [["GROUP", "STATE"], *([g.group_id, g.state] for g in listings)])


def reset_plan(plans: Sequence[ResetPlan]) -> str:
    """``--reset-offsets`` stdout: Kafka's per-group errors and empty-partition warnings, then the plan
    (``printOffsetsToReset``; 4.x widths)."""
    out = []
    for plan in plans:
        if plan.error is not None:
            out.append(f"\nError: {plan.error}\n")
        for tp in plan.empty_partitions:
            out.append(f"\nWarn: Partition {tp.partition} from topic {tp.topic} is empty. "
                       "Falling back to latest known offset.\n")
    widths: list[int | None] = [width([p.group_id for p in plans]),
                                width([r.topic for p in plans for r in p.partitions]), 10, None]
    rows = [[p.group_id, r.topic, str(r.partition), str(r.new_offset)] for p in plans for r in p.partitions]
    if plans:
        out.append("".join("\n" + line(r, widths) for r in [["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], *rows]))
    return "".join(out) + "\n"


def clamp_warnings(plans: Sequence[ResetPlan]) -> list[str]:
    """Kafka's (log4j, stderr) warnings for offsets clamped into [log-start, log-end]."""
    warnings = []
    for plan in plans:
        for r in plan.partitions:
            if r.clamped is not None:
                side = "higher than latest" if r.clamped == "log_end" else "lower than earliest"
                warnings.append(f"WARN: New offset ({r.requested_offset}) is {side} offset for topic partition "
                                f"{r.topic}-{r.partition}. Value will be set to {r.new_offset}.")
    return warnings


def delete_groups(deletions: Sequence[GroupDeletion]) -> str:
    """``--delete`` (CGC ``deleteGroups``, 4.x quoting)."""
    ok = ", ".join(f"'{d.group_id}'" for d in deletions if d.error is None)
    failed = [d for d in deletions if d.error is not None]
    if not failed:
        return f"Deletion of requested consumer groups ({ok}) was successful.\n"
    text = "\nError: Deletion of some consumer groups failed:\n"
    text += "".join(f"* Group '{d.group_id}' could not be deleted due to: {d.error}\n" for d in failed)
    return text + (f"\nThese consumer groups were deleted successfully: {ok}\n" if ok else "")


#: Top-level OffsetDelete errors for which Kafka points at the per-partition rows (CGC ``deleteOffsets``).
_PARTITION_LEVEL = frozenset({"GROUP_SUBSCRIBED_TO_TOPIC", "TOPIC_AUTHORIZATION_FAILED", "UNKNOWN_TOPIC_OR_PARTITION"})


def delete_offsets(result: OffsetDeleteResult) -> str:
    """``--delete-offsets``: a status line, then TOPIC PARTITION STATUS rows."""
    if result.error is None:
        text = f"Request succeeded for deleting offsets from group {result.group_id}.\n"
    elif result.error in _PARTITION_LEVEL:
        text = "\nError: Encountered some partition-level error, see the follow-up details.\n"
    elif result.error in GROUP_LEVEL_ERRORS:
        text = f"\nError: {result.error_message}\n"
    else:
        text = f"\nError: Encountered some unknown error: {result.error}\n"
    widths: list[int | None] = [width([r.topic for r in result.partitions]), 10, 15]
    rows = [[r.topic, cell(r.partition), "Successful" if r.error is None else f"Error: {r.error}"]
            for r in result.partitions]
    return text + "".join("\n" + line(r, widths) for r in [["TOPIC", "PARTITION", "STATUS"], *rows]) + "\n"
