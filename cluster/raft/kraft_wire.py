"""What every KRaft RPC mapping shares on the wire (``kraft_rpc``, ``kraft_fetch_rpc``): the
metadata log's names (``__cluster_metadata-0`` and its topic id), the absent KIP-853 directory id,
:class:`KraftRpcError` (a message the core cannot take, as the Kafka error it amounts to), and the
translation between the core's partition errors and the wire's error codes.

Concurrency: constants and plain functions.
"""

from __future__ import annotations

import uuid

from cluster.raft.messages import Errors
from pykafka_ops.protocol.codec import ErrorCode

__all__ = [
    "METADATA_PARTITION", "METADATA_TOPIC", "METADATA_TOPIC_ID", "NO_DIRECTORY_ID", "KraftRpcError",
    "error_from_wire", "error_to_wire",
]

#: The metadata log (Kafka's ``Topic.CLUSTER_METADATA_TOPIC_PARTITION``) and its topic id.
METADATA_TOPIC = "__cluster_metadata"
METADATA_PARTITION = 0
METADATA_TOPIC_ID = uuid.UUID(int=1)  # Uuid.METADATA_TOPIC_ID (ONE_UUID): AAAAAAAAAAAAAAAAAAAAAQ

#: ``ReplicaKey.NO_DIRECTORY_ID``: what Kafka sends for an unknown directory id (KIP-853).
NO_DIRECTORY_ID = uuid.UUID(int=0)


class KraftRpcError(ValueError):
    """A KRaft message the core cannot take: ``error`` is the Kafka error it amounts to."""

    def __init__(self, error: ErrorCode, detail: str) -> None:
        super().__init__(f"{error.name}: {detail}")
        self.error = error


def error_to_wire(error: Errors) -> ErrorCode:
    """The wire error code of a core partition error."""
    return ErrorCode(int(error))


def error_from_wire(code: ErrorCode) -> Errors:
    """The core partition error of a wire error code; KraftRpcError if the core does not know it."""
    try:
        return Errors(int(code))
    except ValueError:
        raise KraftRpcError(ErrorCode(code), "partition error the Raft core does not know") from None
