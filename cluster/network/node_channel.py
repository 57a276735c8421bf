"""NodeChannel: requests from this node to other nodes by id — to the active controller on its
controller listener (Kafka's ``NodeToControllerChannelManager``: ``cluster.controller_requests``)
and to partition leaders on their broker listener (the replica fetchers,
``cluster.replication.replica_fetcher``).

One connection per node, opened on first use and again after it breaks; requests on it are
matched to answers by correlation id, so several may be in flight (a heartbeat beside a forwarded
CreateTopics). A request whose connection breaks, or that is not answered in time, fails with
``NodeUnreachableError`` (never anything else: callers retry on it, and an exception they do not
expect would end their loop); retrying (and finding the new leader) is the caller's choice.

Concurrency: owned by the node's event loop; every method runs on it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from collections.abc import Callable
from typing import Any

from pykafka_ops.protocol import codec

log = logging.getLogger(__name__)

_SIZE = struct.Struct(">i")
#: Bytes a connection's reader buffers before it stops reading from the socket: room for a whole
#: replica fetch answer (asyncio's 64 KiB default pauses and resumes the socket many times per MB).
READ_LIMIT = 4 * 1024 * 1024
#: Largest answer accepted from a node.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class NodeUnreachableError(ConnectionError):
    """The request got no answer: the node is down, unreachable or too slow."""


class _Connection:
    """One node's connection and the requests waiting for their answer on it."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pending: dict[int, asyncio.Future[bytes]] = {}
        self.reading: asyncio.Task[None] | None = None

    @property
    def usable(self) -> bool:
        return not self.writer.is_closing()

    def fail(self, reason: str) -> None:
        self.writer.close()
        for future in self.pending.values():
            if not future.done():
                future.set_exception(NodeUnreachableError(reason))
        self.pending.clear()


class NodeChannel:
    """Sends requests to other nodes by id and returns their answers."""

    def __init__(self, node_id: int, addresses: Callable[[int], tuple[str, int] | None]) -> None:
        self.node_id = node_id
        self.addresses = addresses
        """(host, port) of a node by id, looked up when a connection opens; None if unknown."""
        self._connections: dict[int, _Connection] = {}
        self._connecting: dict[int, asyncio.Lock] = {}
        self._correlation = itertools.count(1)

    async def send(self, target: int, api_key: int, version: int, body: Any,
                   timeout_s: float) -> tuple[Any, bytes]:
        """Send ``body`` (a dict, or a request decoded for ``version``) to ``target``; returns
        the decoded answer and its body bytes (what a forwarding broker passes on)."""
        try:
            connection = await asyncio.wait_for(self._connection(target), timeout_s)
        except TimeoutError:
            raise NodeUnreachableError(f"no connection to node {target} within {timeout_s:g} s") from None
        correlation_id = next(self._correlation) & 0x7FFFFFFF
        frame = codec.encode_request(api_key, version, correlation_id, f"broker-{self.node_id}", body)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        connection.pending[correlation_id] = future
        connection.writer.write(_SIZE.pack(len(frame)) + frame)
        try:
            answer = await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise NodeUnreachableError(f"node {target} did not answer within {timeout_s:g} s") from None
        finally:  # answered, timed out or cancelled: nobody waits for this correlation id any more
            connection.pending.pop(correlation_id, None)
        header = codec.response_header_size(api_key, version)
        try:
            return codec.decode_response(api_key, version, answer, header), answer[header:]
        except (codec.CodecError, ValueError) as exc:
            raise NodeUnreachableError(f"node {target} sent a malformed answer: {exc}") from None

    async def _connection(self, target: int) -> _Connection:
        address = self.addresses(target)
        if address is None:
            raise NodeUnreachableError(f"node {target} has no known address")
        lock = self._connecting.setdefault(target, asyncio.Lock())
        async with lock:
            connection = self._connections.get(target)
            if connection is not None and connection.usable:
                return connection
            try:
                reader, writer = await asyncio.open_connection(*address, limit=READ_LIMIT)
            except OSError as exc:
                raise NodeUnreachableError(f"cannot connect to node {target} at "
                                                 f"{address[0]}:{address[1]}: {exc.strerror or exc}") from None
            connection = self._connections[target] = _Connection(writer)
            connection.reading = asyncio.get_running_loop().create_task(self._read(target, connection, reader))
            return connection

    async def _read(self, target: int, connection: _Connection, reader: asyncio.StreamReader) -> None:
        reason = "connection closed"
        try:
            while True:
                (size,) = _SIZE.unpack(await reader.readexactly(4))
                if not 4 <= size <= MAX_RESPONSE_BYTES:
                    raise ValueError(f"answer of {size} bytes")
                frame = await reader.readexactly(size)
                (correlation_id,) = _SIZE.unpack_from(frame, 0)
                future = connection.pending.pop(correlation_id, None)
                if future is not None and not future.done():
                    future.set_result(frame)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            reason = f"connection to node {target} lost: {exc or type(exc).__name__}"
        finally:
            connection.fail(reason)

    def close(self) -> None:
        """Close every connection (the node is stopping)."""
        for connection in self._connections.values():
            connection.fail("the node is stopping")
            if connection.reading is not None:
                connection.reading.cancel()
        self._connections.clear()
