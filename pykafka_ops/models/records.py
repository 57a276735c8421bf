"""Records as `pko produce` reads them and `pko consume` writes them, and what each run reports.

Keys, values and header values are bytes (``None`` = Kafka's null, e.g. a tombstone value);
header names are text, and a name may repeat, as in Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass

Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class ProducerRecord:
    """One record to send; ``partition``/``timestamp`` None = the partitioner / the producer's clock."""

    value: bytes | None
    key: bytes | None = None
    headers: Headers = ()
    partition: int | None = None
    timestamp: int | None = None


@dataclass(frozen=True)
class ConsumedRecord:
    """One record read back; ``timestamp_type`` is kcat's ``tstype``: create, logappend or unknown."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None
    timestamp_type: str
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    broker: int = -1
    """The partition's leader when the read started (kcat -J's ``broker``), -1 if unknown."""


@dataclass(frozen=True)
class ProduceReport:
    """How a produce run went: records handed to the producer, acknowledged, failed."""

    topic: str
    sent: int
    delivered: int
    failed: int
    first_error: str | None = None
    """The first delivery error, as ``NAME: description``."""
    input_error: str | None = None
    """Why reading the input stopped early (a line that does not parse), if it did."""
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """Every record read was delivered."""
        return self.failed == 0 and self.input_error is None and self.delivered == self.sent


@dataclass(frozen=True)
class PartitionEnd:
    """A partition that reached its end (kcat -e) at ``offset``, the next offset to read."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class ConsumeReport:
    """How a consume run ended: ``reason`` is ``eof`` (-e), ``count`` (-c), ``timeout``
    (--timeout-ms), ``stop-timestamp`` (e@), ``interrupted`` (Ctrl-C) or ``closed`` (output closed)."""

    count: int
    reason: str
