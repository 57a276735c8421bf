"""GetOffsetShell: the offset of each partition for a time spec (earliest, latest, max-timestamp
or a timestamp in ms), through ListOffsets.

Unlike GetOffsetShell, results are sorted by topic and then partition **number** (Kafka sorts the
string ``topic-partition``, so ``t-10`` comes before ``t-2``).
"""

from __future__ import annotations

from collections.abc import Sequence

from pykafka_ops.client.admin import AdminError, KafkaAdmin
from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.models.groups import TopicPartition
from pykafka_ops.models.topics import PartitionOffset
from pykafka_ops.services.topics import list_topics

#: GetOffsetShell's --time names and numbers → ListOffsets specs.
TIME_SPECS = {"latest": "latest", "-1": "latest", "earliest": "earliest", "-2": "earliest",
              "max-timestamp": "max_timestamp", "-3": "max_timestamp"}


class NoPartitionsError(LookupError):
    """No topic-partition matched the filters (GetOffsetShell's message)."""


def time_spec(text: str) -> str | int:
    """``--time`` → ``earliest``/``latest``/``max_timestamp`` or a timestamp in ms (ValueError otherwise)."""
    if text in TIME_SPECS:
        return TIME_SPECS[text]
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"--time must be latest (-1), earliest (-2), max-timestamp (-3) or a timestamp in ms, "
                         f"got {text!r}")
    return value


async def get_offsets(settings: ClientSettings, pattern: str | None, spec: str | int,
                      partitions: Sequence[int] = (), exclude_internal: bool = False) -> list[PartitionOffset]:
    """The offset for ``spec`` of every partition of the topics matching ``pattern`` (all partitions,
    or those numbered in ``partitions``), sorted by topic then partition number."""
    names = await list_topics(settings, pattern, exclude_internal)
    admin = KafkaAdmin(settings)
    found = await admin.topic_partitions(names)
    wanted = [TopicPartition(topic, p) for topic, ids in found.items() if not isinstance(ids, AdminError)
              for p in ids if not partitions or p in partitions]
    if not wanted:
        raise NoPartitionsError("Could not match any topic-partitions with the specified filters")
    listed = await admin.list_offsets(wanted, spec)
    result = []
    for tp in sorted(wanted):
        answer = listed[tp]
        if isinstance(answer, AdminError):
            result.append(PartitionOffset(tp.topic, tp.partition, -1, error=f"{answer.code}: {answer}"))
        else:
            result.append(PartitionOffset(tp.topic, tp.partition, answer.offset,
                                          answer.timestamp if answer.timestamp >= 0 else None))
    return result
