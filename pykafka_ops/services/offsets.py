"""``--reset-offsets``: plan new committed offsets for inactive groups and, with execute, commit them.

Semantics are Kafka's (``ConsumerGroupCommand.resetOffsets`` and ``GroupOffsetsResetter``):

- only groups in state Empty or Dead (unknown) are reset; an active group gets Kafka's message
  and an empty plan;
- scope: ``--all-topics`` = every partition with a committed offset; ``--topic t`` = all of t's
  partitions; ``--topic t:0,1`` = those; ``--from-file`` = the file's partitions for the group;
- ``to-offset``, ``shift-by`` and ``from-file`` are clamped to [log-start, log-end], each clamp
  recorded on the partition so the caller can warn; ``to-earliest/-latest/-datetime`` and
  ``by-duration`` take the broker's answer; a timestamp past the last record falls back to the
  log-end offset (recorded in ``empty_partitions``); ``to-current`` keeps the committed offset
  and uses the log-end offset where there is none.

Also the text formats: ``--to-datetime`` values, ``--by-duration`` (ISO-8601 like Java's
``Duration.parse``) and the ``--export`` / ``--from-file`` CSV shapes.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from pykafka_ops.client.admin import AdminError, GroupAdmin, ListedOffset
from pykafka_ops.models.groups import (
    INACTIVE_STATES,
    GroupDescription,
    PartitionReset,
    ResetPlan,
    ResetScenario,
    TopicPartition,
)
from pykafka_ops.services.groups import InvalidArgumentError, describe_groups, resolve_topic_args

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DURATION = re.compile(r"([-+]?)P(?:([-+]?\d+)D)?(T(?:([-+]?\d+)H)?(?:([-+]?\d+)M)?(?:([-+]?\d+)(?:[.,](\d{0,9}))?S)?)?",
                       re.IGNORECASE)


def parse_datetime(text: str) -> int:
    """``--to-datetime`` → epoch ms. Kafka's ``yyyy-MM-ddTHH:mm:ss.SSS[Z|±hh[:mm]]`` and also:
    no or other fractional digits, any ISO-8601 offset, and plain epoch milliseconds. No zone = UTC."""
    value = text.strip()
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if "T" not in value:
        raise InvalidArgumentError("Error parsing timestamp. It does not contain a 'T' according to ISO8601 format")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgumentError(
            f"Error parsing timestamp '{text}': expected yyyy-MM-ddTHH:mm:ss[.SSS][Z|+hh:mm] or epoch milliseconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def parse_duration(text: str) -> int:
    """``--by-duration`` (Java ``Duration.parse``: ``PnDTnHnMn.nS``, e.g. ``PT1M``, ``P1DT2H``) → ms."""
    match = _DURATION.fullmatch(text.strip())
    if not match or match.group(3) == "T" or not any(match.group(i) for i in (2, 4, 5, 6)):
        raise InvalidArgumentError(f"Text cannot be parsed to a Duration: '{text}'")
    sign, days, _t, hours, minutes, seconds, fraction = match.groups()
    total = timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
                      seconds=int(seconds or 0))
    if fraction:
        nanos = int(fraction.ljust(9, "0"))
        total += timedelta(microseconds=(-nanos if (seconds or "").startswith("-") else nanos) / 1000)
    millis = total // timedelta(milliseconds=1)
    return -millis if sign == "-" else millis


def parse_reset_csv(text: str, groups: Sequence[str]) -> dict[str, dict[TopicPartition, int]]:
    """A ``--from-file`` plan: ``topic,partition,offset`` when exactly one group is given and the first
    line has three columns, else ``group,topic,partition,offset`` (Kafka's ``parseResetPlan``)."""
    lines = [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text)), start=1) if row]
    three_columns = len(groups) == 1 and bool(lines) and len(lines[0][1]) == 3
    plan: dict[str, dict[TopicPartition, int]] = {}
    for number, row in lines:
        expected = 3 if three_columns else 4
        fields = [groups[0], *row] if three_columns else row
        try:
            if len(row) != expected:
                raise ValueError
            group, topic, partition, offset = fields
            value, index = int(offset), int(partition)
            if not -(2**63) <= value < 2**63 or not 0 <= index < 2**31:  # a LONG offset, an INT partition
                raise ValueError
            plan.setdefault(group, {})[TopicPartition(topic, index)] = value
        except ValueError:
            shape = "topic,partition,offset" if three_columns else "group,topic,partition,offset"
            raise InvalidArgumentError(f"line {number}: expected {shape}, got {','.join(row)!r}") from None
    return plan


def export_csv(plans: Iterable[ResetPlan], with_group: bool) -> str:
    """The ``--export`` CSV: one line per partition, no header, quoting only where needed (as Jackson)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for plan in plans:
        for p in plan.partitions:
            writer.writerow([plan.group_id, p.topic, p.partition, p.new_offset] if with_group
                            else [p.topic, p.partition, p.new_offset])
    return out.getvalue()


async def reset_offsets(admin: GroupAdmin, groups: Sequence[str], scenario: ResetScenario,
                        topic_args: Sequence[str] = (), execute: bool = False) -> list[ResetPlan]:
    """Plan (and with ``execute`` commit) a reset for each group, sorted by group id.

    ``topic_args`` are ``--topic`` values; empty means ``--all-topics`` (unused with from-file).
    Unknown bare topics raise ``AdminError``; anything else is reported on the group's plan.
    """
    scope: list[TopicPartition] | None = None
    if topic_args and scenario.name != "from-file":
        scope, failed = await resolve_topic_args(admin, topic_args)
        if failed:
            raise next(iter(failed.values()))
    descriptions = await describe_groups(admin, groups)
    return list(await asyncio.gather(*(_reset_group(admin, d, scenario, scope, execute) for d in descriptions)))


async def _reset_group(admin: GroupAdmin, description: GroupDescription, scenario: ResetScenario,
                       scope: list[TopicPartition] | None, execute: bool) -> ResetPlan:
    group, state = description.group_id, description.state
    if description.error is not None:
        return ResetPlan(group, state, error=description.error)
    if state not in INACTIVE_STATES:
        return ResetPlan(group, state, error=f"Assignments can only be reset if the group '{group}' is inactive, "
                                             f"but the current state is {state}.")
    try:
        committed = {tp: offset for tp, (offset, _epoch) in (await admin.committed_offsets(group)).items()}
        if scenario.name == "from-file":
            if group not in scenario.plan:
                return ResetPlan(group, state, error=f"No reset plan for group {group} found.")
            partitions = sorted(scenario.plan[group])
        else:
            partitions = sorted(committed) if scope is None else scope
        await _check_partitions_exist(admin, partitions)
        resets, empty = await _new_offsets(admin, group, scenario, partitions, committed)
        if execute and resets:
            await admin.alter_offsets(group, {TopicPartition(r.topic, r.partition): r.new_offset for r in resets})
    except (AdminError, InvalidArgumentError) as exc:
        return ResetPlan(group, state, error=str(exc))
    return ResetPlan(group, state, tuple(resets), executed=execute and bool(resets), empty_partitions=tuple(empty))


async def _check_partitions_exist(admin: GroupAdmin, partitions: Iterable[TopicPartition]) -> None:
    """Kafka's ``checkAllTopicPartitionsValid``: every partition must exist."""
    wanted = list(partitions)
    known = await admin.topic_partitions({tp.topic for tp in wanted})
    missing = [tp for tp in wanted if tp.partition not in _partition_ids(known[tp.topic])]
    if missing:
        raise AdminError("UNKNOWN_TOPIC_OR_PARTITION",
                         f'The partitions "{",".join(str(tp) for tp in missing)}" do not exist')


def _partition_ids(found: tuple[int, ...] | AdminError) -> tuple[int, ...]:
    return () if isinstance(found, AdminError) else found


async def _offsets(admin: GroupAdmin, partitions: list[TopicPartition], spec: str | int) -> dict[TopicPartition, int]:
    answers = await admin.list_offsets(partitions, spec)
    for tp, answer in answers.items():
        if isinstance(answer, AdminError):
            raise AdminError(answer.code, f"Error getting offsets of topic partition {tp}: {answer}")
    return {tp: answer.offset for tp, answer in answers.items() if isinstance(answer, ListedOffset)}


async def _new_offsets(admin: GroupAdmin, group: str, scenario: ResetScenario, partitions: list[TopicPartition],
                       committed: Mapping[TopicPartition, int]) -> tuple[list[PartitionReset], list[TopicPartition]]:
    """The new offset of each partition for ``scenario``, and the partitions where a time matched no record."""
    earliest, latest = await asyncio.gather(_offsets(admin, partitions, "earliest"), _offsets(admin, partitions, "latest"))
    name, value = scenario.name, scenario.value or 0
    empty: list[TopicPartition] = []
    requested: dict[TopicPartition, int]
    clamp = name in ("to-offset", "shift-by", "from-file")
    if name == "to-earliest":
        requested = earliest
    elif name == "to-latest":
        requested = latest
    elif name == "to-current":
        requested = {tp: committed.get(tp, latest[tp]) for tp in partitions}
    elif name == "to-offset":
        requested = {tp: value for tp in partitions}
    elif name == "shift-by":
        for tp in partitions:
            if tp not in committed:
                raise InvalidArgumentError(f"Cannot shift offset for partition {tp} since there is no current committed offset")
        requested = {tp: committed[tp] + value for tp in partitions}
    elif name in ("to-datetime", "by-duration"):
        timestamp = value if name == "to-datetime" else int(time.time() * 1000) - value
        by_time = {tp: answer.offset if isinstance(answer, ListedOffset) else -1
                   for tp, answer in (await admin.list_offsets(partitions, timestamp)).items()}
        empty = [tp for tp in partitions if by_time[tp] < 0]
        requested = {tp: latest[tp] if tp in empty else by_time[tp] for tp in partitions}
    elif name == "from-file":
        requested = dict(scenario.plan[group])
    else:
        raise InvalidArgumentError(f"unknown reset scenario {name!r}")
    return [_reset(tp, committed.get(tp), requested[tp], earliest[tp], latest[tp], clamp) for tp in partitions], empty


def _reset(tp: TopicPartition, current: int | None, requested: int, log_start: int, log_end: int,
           clamp: bool) -> PartitionReset:
    """Kafka's ``checkOffsetsRange``: above the log end → log end, below the log start → log start."""
    if clamp and requested > log_end:
        return PartitionReset(tp.topic, tp.partition, current, log_end, requested, "log_end")
    if clamp and requested < log_start:
        return PartitionReset(tp.topic, tp.partition, current, log_start, requested, "log_start")
    return PartitionReset(tp.topic, tp.partition, current, requested)
