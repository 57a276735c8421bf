"""List, describe and delete consumer groups, and delete their committed offsets.

Every function takes a ``GroupAdmin`` (``pykafka_ops.client.admin``) and returns models; one
group's failure is reported on that group and never fails the others.
"""

from __future__ import annotations

from collections.abc import Iterable

from pykafka_ops.client.admin import ERROR_MESSAGES, AdminError, GroupAdmin
from pykafka_ops.models.groups import (
    GROUP_STATES,
    GroupDeletion,
    GroupDescription,
    GroupListing,
    OffsetDeleteResult,
    OffsetDeletion,
    TopicPartition,
)

#: Top-level OffsetDelete errors that Kafka reports with their own message (CGC ``deleteOffsets``).
GROUP_LEVEL_ERRORS = frozenset({"INVALID_GROUP_ID", "GROUP_ID_NOT_FOUND", "GROUP_AUTHORIZATION_FAILED", "NON_EMPTY_GROUP"})


class InvalidArgumentError(ValueError):
    """A bad argument value (Kafka's IllegalArgumentException: a usage error)."""


def parse_states(text: str) -> frozenset[str]:
    """``--state`` values (comma-separated, case-insensitive) → Kafka's state names."""
    by_lower = {s.lower(): s for s in GROUP_STATES}
    parsed = [s.strip().lower() for s in text.split(",")]
    if not all(s in by_lower for s in parsed):
        raise InvalidArgumentError(f"Invalid state list '{text}'. Valid states are: {', '.join(GROUP_STATES)}")
    return frozenset(by_lower[s] for s in parsed)


async def list_groups(admin: GroupAdmin, states: frozenset[str] = frozenset()) -> list[GroupListing]:
    """Consumer groups sorted by id, only those in ``states`` when it is not empty."""
    listings = sorted(await admin.list_groups(), key=lambda g: g.group_id)
    return [g for g in listings if not states or g.state in states]


async def group_ids(admin: GroupAdmin, groups: Iterable[str], all_groups: bool) -> list[str]:
    """The groups a command acts on: ``--all-groups`` lists them, else ``--group`` values in order."""
    if all_groups:
        return [g.group_id for g in await list_groups(admin)]
    return list(dict.fromkeys(groups))


async def describe_groups(admin: GroupAdmin, groups: Iterable[str]) -> list[GroupDescription]:
    """Descriptions sorted by group id; a group that could not be described carries ``error``."""
    answers = await admin.describe_groups(groups)
    return [_described(group_id, answer) for group_id, answer in sorted(answers.items())]


def _described(group_id: str, answer: GroupDescription | AdminError) -> GroupDescription:
    if isinstance(answer, AdminError):
        return GroupDescription(group_id, "Unknown", error=str(answer))
    return answer


async def delete_groups(admin: GroupAdmin, groups: Iterable[str]) -> list[GroupDeletion]:
    """DeleteGroups, one outcome per group in the order given."""
    answers = await admin.delete_groups(groups)
    return [GroupDeletion(g, None if error is None else str(error)) for g, error in answers.items()]


def parse_topic_arg(arg: str) -> tuple[str, tuple[int, ...] | None]:
    """``topic`` → (topic, None: all partitions); ``topic:0,1`` → (topic, (0, 1)) (Kafka's rules and messages)."""
    if ":" not in arg:
        return arg, None
    parts = arg.split(":")
    if len(parts) != 2:
        raise InvalidArgumentError(f"Invalid topic arg '{arg}', expected topic name and partitions")
    partitions = []
    for text in parts[1].split(","):
        try:
            partitions.append(int(text))
        except ValueError:
            raise InvalidArgumentError(f"Invalid partition '{text}' specified in topic arg '{arg}''") from None
    return parts[0], tuple(partitions)


async def resolve_topic_args(admin: GroupAdmin,
                             args: Iterable[str]) -> tuple[list[TopicPartition], dict[str, AdminError]]:
    """Partitions named by ``--topic`` args; bare topics are looked up (errors returned per topic)."""
    explicit: list[TopicPartition] = []
    bare: list[str] = []
    for arg in args:
        topic, partitions = parse_topic_arg(arg)
        if partitions is None:
            bare.append(topic)
        else:
            explicit.extend(TopicPartition(topic, p) for p in partitions)
    failed: dict[str, AdminError] = {}
    for topic, found in (await admin.topic_partitions(bare)).items():
        if isinstance(found, AdminError):
            failed[topic] = found
        else:
            explicit.extend(TopicPartition(topic, p) for p in found)
    return list(dict.fromkeys(explicit)), failed


async def delete_offsets(admin: GroupAdmin, group_id: str, topic_args: Iterable[str]) -> OffsetDeleteResult:
    """Delete the group's committed offsets for the ``--topic`` args (OffsetDelete, key 47).

    As Kafka's admin client does, a partition error with no top-level error becomes the
    top-level error, and a group-level error is reported on every partition.
    """
    partitions, failed_topics = await resolve_topic_args(admin, topic_args)
    rows = [OffsetDeletion(topic, None, str(error)) for topic, error in failed_topics.items()]
    if not partitions:
        return OffsetDeleteResult(group_id, "UNKNOWN_TOPIC_OR_PARTITION" if rows else None,
                                  ERROR_MESSAGES["UNKNOWN_TOPIC_OR_PARTITION"] if rows else None, tuple(rows))
    top, per_partition = await admin.delete_offsets(group_id, partitions)
    if top == "NONE":
        top = next((code for code in per_partition.values() if code != "NONE"), "NONE")
    for tp in partitions:
        code = top if top in GROUP_LEVEL_ERRORS else per_partition.get(tp, "NONE")
        rows.append(OffsetDeletion(tp.topic, tp.partition, None if code == "NONE" else ERROR_MESSAGES.get(code, code)))
    rows.sort(key=lambda r: f"{r.topic}{r.partition if r.partition is not None else -1}")
    return OffsetDeleteResult(group_id, None if top == "NONE" else top,
                              None if top == "NONE" else ERROR_MESSAGES.get(top, top), tuple(rows))


async def describe_all(admin: GroupAdmin, groups: Iterable[str], all_groups: bool) -> list[GroupDescription]:
    """``describe_groups`` of the ``--group`` values or of every group."""
    return await describe_groups(admin, await group_ids(admin, groups, all_groups))

