"""Listeners: one ``asyncio`` server per listener, each connection a KafkaConnection."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from cluster.network.connection import KafkaConnection

if TYPE_CHECKING:
    from cluster.broker import Broker


async def start_listener(broker: Broker, host: str, port: int) -> asyncio.Server:
    """Listen on host:port (127.0.0.1 by default) for Kafka clients."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: KafkaConnection(broker), host, port, reuse_address=True, backlog=1024)
