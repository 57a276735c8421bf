"""Per-partition lag of consumer groups: what ``kafka-consumer-groups --describe`` shows, plus time lag.

Rows follow Kafka's ``ConsumerGroupCommand.collectGroupsOffsets``: members that own partitions,
most partitions first (a stable sort, so ties keep the broker's order), each member's partitions
by topic then partition; then partitions with a committed offset and no owner, by topic then
partition. Members without an assignment get no row. LAG is LOG-END-OFFSET − CURRENT-OFFSET
(Kafka's ``getLag``); either being unknown makes it ``None``.

Time lag (``time_lag=True``): for each partition that lags, the timestamp of the record at the
committed offset (the next one the group will read) against the timestamp of the newest record,
in seconds, never negative. Partitions that do not lag have a time lag of 0 without any read;
when it cannot be known, ``lag_seconds`` is None and ``lag_seconds_note`` says why.

All groups are described at once and their committed offsets fetched concurrently; the log-end
offsets of every partition of every group are one ListOffsets call. A group whose offsets cannot
be read (or a partition of a deleted topic) is reported on that group (row) only.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable

from pykafka_ops.client.admin import AdminError, GroupAdmin, ListedOffset
from pykafka_ops.models.groups import GroupDescription, GroupLag, MemberDescription, PartitionLag, TopicPartition
from pykafka_ops.services.groups import describe_groups

Committed = dict[TopicPartition, tuple[int, int | None]]


async def describe_group_lag(admin: GroupAdmin, groups: Iterable[str], time_lag: bool = False) -> list[GroupLag]:
    """One ``GroupLag`` per group, sorted by group id (Kafka prints groups in that order)."""
    drafts = await group_offsets(admin, groups)
    partitions = {TopicPartition(r.topic, r.partition) for lag in drafts for r in lag.partitions}
    result = with_log_end(drafts, await admin.list_offsets(partitions, "latest"))
    return await with_time_lag(admin, result) if time_lag else result


async def group_offsets(admin: GroupAdmin, groups: Iterable[str]) -> list[GroupLag]:
    """Each group's description and rows with committed offsets and owners, no log-end offsets yet
    (fetch those after the committed offsets, as Kafka's tool does, so lag is never understated)."""
    ids = list(dict.fromkeys(groups))
    descriptions, committed = await asyncio.gather(
        describe_groups(admin, ids), asyncio.gather(*(_committed(admin, g) for g in ids)))
    committed_by_group = dict(zip(ids, committed))
    return [_draft(d, committed_by_group[d.group_id]) for d in descriptions]


def with_log_end(drafts: list[GroupLag], log_end: dict[TopicPartition, ListedOffset | AdminError]) -> list[GroupLag]:
    """``group_offsets`` rows completed with the log-end offsets of a ListOffsets(latest) answer."""
    return [dataclasses.replace(lag, partitions=tuple(_with_log_end(r, log_end) for r in lag.partitions))
            for lag in drafts]


async def _committed(admin: GroupAdmin, group_id: str) -> Committed | AdminError:
    try:
        return await admin.committed_offsets(group_id)
    except AdminError as exc:
        return exc


def _draft(description: GroupDescription, committed: Committed | AdminError) -> GroupLag:
    """The group's rows with committed offsets and owners; log-end offsets come later."""
    if description.error is not None or not description.exists:
        return GroupLag(description)
    if isinstance(committed, AdminError):
        return GroupLag(description, error=str(committed))
    owners: list[tuple[TopicPartition, MemberDescription | None]] = []
    members = sorted((m for m in description.members if m.assignment), key=lambda m: -len(m.assignment))
    for owner in members:
        owners.extend((tp, owner) for tp in sorted(owner.assignment))
    owned = {tp for tp, _member in owners}
    owners.extend((tp, None) for tp in sorted(committed.keys() - owned))
    rows = []
    for tp, member in owners:
        offset, epoch = committed.get(tp, (None, None))
        rows.append(PartitionLag(tp.topic, tp.partition, offset, None,
                                 member.consumer_id if member else None, member.host if member else None,
                                 member.client_id if member else None, epoch))
    return GroupLag(description, tuple(rows))


def _with_log_end(row: PartitionLag, log_end: dict[TopicPartition, ListedOffset | AdminError]) -> PartitionLag:
    answer = log_end.get(TopicPartition(row.topic, row.partition))
    offset = answer.offset if isinstance(answer, ListedOffset) and answer.offset >= 0 else None
    return dataclasses.replace(row, log_end_offset=offset)


async def with_time_lag(admin: GroupAdmin, groups: list[GroupLag]) -> list[GroupLag]:
    """``groups`` with ``lag_seconds`` (or a note) on every row; records are read for lagging rows only."""
    lagging = [position for g in groups for r in g.partitions if (position := _lagging(r)) is not None]
    at_committed, newest = await asyncio.gather(
        _read_rounds(admin, {(tp, committed) for tp, committed, _end in lagging}),
        admin.record_timestamps({tp: log_end - 1 for tp, _committed, log_end in lagging}))
    return [dataclasses.replace(g, partitions=tuple(_time_lag_of(r, at_committed, newest) for r in g.partitions))
            for g in groups]


def _lagging(row: PartitionLag) -> tuple[TopicPartition, int, int] | None:
    """(partition, committed offset, log-end offset) of a row that lags, else None."""
    if row.current_offset is None or row.log_end_offset is None or row.log_end_offset <= row.current_offset:
        return None
    return TopicPartition(row.topic, row.partition), row.current_offset, row.log_end_offset


async def _read_rounds(admin: GroupAdmin,
                       positions: set[tuple[TopicPartition, int]]) -> dict[tuple[TopicPartition, int], int | str]:
    """Record timestamps at (partition, offset) pairs; a partition wanted at several offsets (by
    several groups) is read once per offset, in successive rounds."""
    by_partition: dict[TopicPartition, list[int]] = {}
    for tp, offset in sorted(positions):
        by_partition.setdefault(tp, []).append(offset)
    result: dict[tuple[TopicPartition, int], int | str] = {}
    for round_index in range(max((len(v) for v in by_partition.values()), default=0)):
        wanted = {tp: offsets[round_index] for tp, offsets in by_partition.items() if round_index < len(offsets)}
        for tp, stamp in (await admin.record_timestamps(wanted)).items():
            result[(tp, wanted[tp])] = stamp
    return result


def _time_lag_of(row: PartitionLag, at_committed: dict[tuple[TopicPartition, int], int | str],
                 newest: dict[TopicPartition, int | str]) -> PartitionLag:
    lag = row.lag
    if lag is None:
        note = "no committed offset" if row.current_offset is None else "log-end offset unknown"
        return dataclasses.replace(row, lag_seconds_note=note)
    if lag < 0:
        return dataclasses.replace(row, lag_seconds_note="committed offset is past the log-end offset")
    if lag == 0:
        return dataclasses.replace(row, lag_seconds=0.0)
    tp = TopicPartition(row.topic, row.partition)
    committed_stamp = at_committed.get((tp, row.current_offset if row.current_offset is not None else -1))
    newest_stamp = newest.get(tp)
    if isinstance(committed_stamp, str) or committed_stamp is None:
        return dataclasses.replace(row, lag_seconds_note=f"record at the committed offset: {committed_stamp}")
    if isinstance(newest_stamp, str) or newest_stamp is None:
        return dataclasses.replace(row, lag_seconds_note=f"newest record: {newest_stamp}")
    return dataclasses.replace(row, lag_seconds=max(0, newest_stamp - committed_stamp) / 1000)
