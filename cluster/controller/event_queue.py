"""The active controller's event queue (Kafka's ``QuorumController`` runs every operation as an
event on one queue): operations take turns validating against the current image and committing,
and what a commit that did not happen raises.

Concurrency: the queue is an asyncio lock on the node's event loop.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pykafka_ops.errors import ErrorCode

T = TypeVar("T")


class MetadataCommitError(Exception):
    """Records that were not committed, with the Kafka error the request gets: the log could not
    be written (KAFKA_STORAGE_ERROR), a record does not apply (UNKNOWN_SERVER_ERROR: our bug), or
    the batch is over the metadata log's limit (MESSAGE_TOO_LARGE), this node does not lead the
    quorum (NOT_CONTROLLER) or the quorum did not commit in time (REQUEST_TIMED_OUT)."""

    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def queued(operation: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Kafka's QuorumController event queue: one operation at a time validates against the
    current image and commits; the listener then applies the result, outside the queue (so a
    broker creating 10 000 partition logs does not hold up the next operation)."""

    @functools.wraps(operation)
    async def run(self: Any, *args: Any, **kwargs: Any) -> T:
        async with self._queue:
            result = await operation(self, *args, **kwargs)
        await self.on_image(self.image)
        return result

    return run
