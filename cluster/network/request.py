"""RequestContext: what a handler knows about the request besides its body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cluster.broker import Broker


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Header fields, the client's address and the broker serving the request."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    client_address: str
    broker: Broker
    received_at: float
    """Event-loop time (seconds) when the whole frame had arrived."""
    listener: str = "broker"
    """The listener the request came in on (``broker`` or ``controller``, cluster.handlers)."""
