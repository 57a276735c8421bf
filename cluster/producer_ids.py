"""ProducerIdManager (Kafka's `RPCProducerIdManager`): producer ids for InitProducerId.

Ids are handed out from a block the active controller committed to the metadata log
(AllocateProducerIds), so no two brokers and no restarted node reuse an id (which would mix up
sequence state). Concurrency: event loop only;
concurrent callers share one block request.
"""

from __future__ import annotations

import asyncio

from cluster.controller_requests import ControllerRequests


class ProducerIdManager:
    """Hands out producer ids, fetching a new block when the current one runs out."""

    def __init__(self, requests: ControllerRequests) -> None:
        self.requests = requests
        self._next = 0
        self._end = 0
        self._lock = asyncio.Lock()

    async def next_id(self) -> int:
        """A producer id never handed out before in this cluster."""
        async with self._lock:
            if self._next >= self._end:
                first, size = await self.requests.allocate_producer_ids()
                self._next, self._end = first, first + size
            producer_id = self._next
            self._next += 1
            return producer_id
