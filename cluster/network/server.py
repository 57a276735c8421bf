"""SocketServer: the node's listener, its connections, and what bounds them (Kafka's ``SocketServer``).

It owns the RequestMemoryPool (``queued.max.request.bytes``), the MapCache of large frames' buffers,
the ConnectionQuotas
(``max.connections``, ``max.connections.per.ip``) and the idle sweep that closes connections
with nothing in flight and no traffic for ``connections.max.idle.ms`` (negative: never), as
Kafka's selector does.

Concurrency: owned by the node's event loop; every method runs on it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from cluster.handlers import BROKER
from cluster.network.connection import KafkaConnection
from cluster.network.frame_reader import MapCache
from cluster.network.memory_pool import RequestMemoryPool
from cluster.network.quotas import ConnectionQuotas

if TYPE_CHECKING:
    from cluster.broker import Broker

log = logging.getLogger(__name__)

#: Bounds of the idle sweep's period, in seconds (a tenth of connections.max.idle.ms in between).
SWEEP_MIN_S = 0.1
SWEEP_MAX_S = 10.0


class SocketServer:
    """One listener of one node, with its connections."""

    def __init__(self, broker: Broker, listener: str = BROKER) -> None:
        config = broker.config
        self.broker = broker
        self.listener = listener
        """Which APIs it serves (``cluster.handlers``: ``broker`` for clients, ``controller``)."""
        self.pool = RequestMemoryPool(config["queued.max.request.bytes"])
        self.maps = MapCache()
        self.quotas = ConnectionQuotas(config["max.connections"], config["max.connections.per.ip"])
        self.idle_ms: int = config["connections.max.idle.ms"]
        self.connections: set[KafkaConnection] = set()
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (127.0.0.1 by default) for Kafka clients."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: KafkaConnection(self), host, port,
                                                reuse_address=True, backlog=1024)
        if self.idle_ms >= 0:
            self._sweeper = asyncio.create_task(self._sweep_idle())
        log.info("%s listener on %s:%d (max.connections %d, queued.max.request.bytes %d)", self.listener, host,
                 port, self.quotas.max_connections, self.pool.capacity)

    def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in list(self.connections):
            connection.close("broker shutting down")

    async def _sweep_idle(self) -> None:
        period = min(max(self.idle_ms / 10_000, SWEEP_MIN_S), SWEEP_MAX_S)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            deadline = loop.time() - self.idle_ms / 1000
            for connection in list(self.connections):
                since = connection.idle_since()
                if since is not None and since < deadline:
                    connection.close(f"idle for more than connections.max.idle.ms={self.idle_ms}")
