"""What topic operations of the controller take and answer: ``NewTopic``, ``TopicResult``,
``TopicError`` and Kafka's topic-name rules (``org.apache.kafka.common.internals.Topic``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cluster.controller.event_queue import MetadataCommitError
from pykafka_ops.errors import ErrorCode

LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_TOPIC_NAME = 249


@dataclass(frozen=True)
class NewTopic:
    """A topic to create (``-1`` = the broker default for partitions / replication factor)."""

    name: str
    partitions: int = -1
    replication_factor: int = -1
    assignments: Mapping[int, Sequence[int]] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicResult:
    """The answer for one topic of a create/delete/create-partitions call."""

    name: str
    error_code: ErrorCode = ErrorCode.none
    error_message: str | None = None
    topic_id: uuid.UUID | None = None
    partitions: int = -1
    replication_factor: int = -1


class TopicError(Exception):
    """A topic operation refused with a Kafka error code."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def validate_topic_name(name: str | None) -> None:
    """Kafka's `Topic.validate`: 1-249 chars of [a-zA-Z0-9._-], not '.' or '..'."""
    if not name:
        raise TopicError(ErrorCode.invalid_topic_exception, "topic name is empty")
    if name in (".", ".."):
        raise TopicError(ErrorCode.invalid_topic_exception, f"topic name cannot be {name!r}")
    if len(name) > MAX_TOPIC_NAME:
        raise TopicError(ErrorCode.invalid_topic_exception, f"topic name is longer than {MAX_TOPIC_NAME} characters")
    if not LEGAL_TOPIC.match(name):
        raise TopicError(ErrorCode.invalid_topic_exception,
                         f"topic name {name!r} has characters other than ASCII letters, digits, '.', '_' and '-'")


def not_written(result: TopicResult, exc: MetadataCommitError) -> TopicResult:
    """A result that was to succeed, answered with the commit's error: its records were not written."""
    if result.error_code != ErrorCode.none:
        return result
    return TopicResult(result.name, exc.error_code, str(exc))
