"""ChaosProxy: a loopback TCP proxy between Kafka clients and one node that injects faults.

Clients bootstrap to the proxy. Broker addresses in Metadata, FindCoordinator and
DescribeCluster answers are rewritten to the proxy's own, so every later connection of a client
goes through it too. The faults are seeded (``Faults.seed``) and apply to the answers of the APIs
in ``Faults.apis`` (Produce by default):

* ``drop_response``: the request reached the node, its answer never reaches the client, whose
  connection is closed instead (Kafka's "response lost" case for idempotent retries, T6);
* ``reset``: the same, but the client connection is reset (RST) rather than closed;
* ``delay_s``: every answer waits this long first;
* ``cut_after``: a client connection is closed once this many answer bytes went through it.

And one fault on *requests*, of the APIs in ``Faults.hold_apis`` (EndTxn by default):

* ``delay_request_s``: the request is held this long, then sent to the node on a connection of its
  own, even if the client's connection has closed meanwhile (a late packet, as in T7b). Its answer
  goes to the client if its connection is still open, else it is discarded; either way it is
  recorded in ``proxy.late``. Only the first ``hold_requests`` such requests are held (None: all);
  the other requests on the connection go on meanwhile.

``proxy.faults`` may be replaced while the proxy runs (``dataclasses.replace``): the next frame sees
the new faults, e.g. ``hold_requests`` raised by one to hold the next EndTxn.

``with ChaosProxy(("127.0.0.1", port), Faults(drop_response=0.05)) as proxy:`` runs it on a free
127.0.0.1 port in a thread of its own; ``proxy.bootstrap`` is what clients connect to and
``proxy.stats`` counts what it did.

Concurrency: the proxy's connections run on its own event loop thread; ``stats`` is read after
the traffic (or approximately during it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey

_SIZE = struct.Struct(">i")
_HEADER = struct.Struct(">hhi")
#: Answers that carry broker addresses, rewritten to the proxy's.
_ADDRESS_APIS = frozenset({ApiKey.METADATA, ApiKey.FIND_COORDINATOR, ApiKey.DESCRIBE_CLUSTER})


@dataclass(frozen=True)
class Faults:
    """What the proxy does to the answers of ``apis`` (see the module docstring)."""

    drop_response: float = 0.0
    reset: float = 0.0
    delay_s: float = 0.0
    cut_after: int | None = None
    apis: frozenset[int] = frozenset({ApiKey.PRODUCE})
    seed: int = 0
    delay_request_s: float = 0.0
    hold_apis: frozenset[int] = frozenset({ApiKey.END_TXN})
    hold_requests: int | None = None


@dataclass
class LateRequest:
    """A request held by ``delay_request_s`` (its frame, without the size prefix): when it was
    held and forwarded (event loop time = ``time.monotonic()``), and the node's answer."""

    api_key: int
    version: int
    frame: bytes
    held_at: float
    forwarded_at: float | None = None
    error_code: int | None = None
    delivered: bool = False


@dataclass
class _Connection:
    """One client connection and its upstream connection to the node."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    pending: dict[int, tuple[int, int]] = field(default_factory=dict)
    answered_bytes: int = 0


class ChaosProxy:
    """A fault-injecting proxy in front of ``upstream`` (host, port) of one node."""

    def __init__(self, upstream: tuple[str, int], faults: Faults = Faults()) -> None:
        self.upstream = upstream
        self.faults = faults
        self.stats: Counter[str] = Counter()
        self.late: list[LateRequest] = []
        self._late_tasks: set[asyncio.Task[None]] = set()
        self._random = random.Random(faults.seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaos-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    @property
    def bootstrap(self) -> str:
        """``host:port`` for a client's ``bootstrap.servers``."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> ChaosProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc_info: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # -- one connection ------------------------------------------------------------------

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        connection = _Connection(client_writer, upstream_writer)
        self.stats["connections"] += 1
        try:
            await asyncio.gather(self._requests(client_reader, connection),
                                 self._answers(upstream_reader, connection))
        except (OSError, asyncio.IncompleteReadError, _Closed, asyncio.CancelledError):  # cancelled: the proxy stops
            pass
        finally:
            for writer in (client_writer, upstream_writer):
                writer.close()

    async def _requests(self, reader: asyncio.StreamReader, connection: _Connection) -> None:
        while True:
            frame = await _read_frame(reader)
            if len(frame) >= _HEADER.size:
                api_key, version, correlation_id = _HEADER.unpack_from(frame, 0)
                if self._holds(api_key):
                    self._hold(frame, api_key, version, connection)
                    continue
                connection.pending[correlation_id] = (api_key, version)
            connection.upstream.write(_SIZE.pack(len(frame)) + frame)
            await connection.upstream.drain()

    async def _answers(self, reader: asyncio.StreamReader, connection: _Connection) -> None:
        faults = self.faults
        while True:
            frame = await _read_frame(reader)
            (correlation_id,) = _SIZE.unpack_from(frame, 0)
            api_key, version = connection.pending.pop(correlation_id, (-1, -1))
            if api_key in _ADDRESS_APIS:
                frame = self._rewrite(api_key, version, correlation_id, frame)
            if api_key in faults.apis:
                self.stats["answers"] += 1
                if faults.delay_s:
                    await asyncio.sleep(faults.delay_s)
                draw = self._random.random()
                if draw < faults.drop_response:
                    self.stats["dropped"] += 1
                    raise _Closed
                if draw < faults.drop_response + faults.reset:
                    self.stats["reset"] += 1
                    _reset(connection.client)
                    raise _Closed
            connection.client.write(_SIZE.pack(len(frame)) + frame)
            await connection.client.drain()
            connection.answered_bytes += 4 + len(frame)
            if faults.cut_after is not None and connection.answered_bytes >= faults.cut_after:
                self.stats["cut"] += 1
                raise _Closed

    def _holds(self, api_key: int) -> bool:
        faults = self.faults
        return (faults.delay_request_s > 0 and api_key in faults.hold_apis
                and (faults.hold_requests is None or self.stats["held"] < faults.hold_requests))

    def _hold(self, frame: bytes, api_key: int, version: int, connection: _Connection) -> None:
        """Send ``frame`` to the node ``delay_request_s`` from now, on a connection of its own."""
        self.stats["held"] += 1
        late = LateRequest(api_key, version, frame, self._loop.time())
        self.late.append(late)
        task = asyncio.create_task(self._send_late(frame, late, connection, self.faults.delay_request_s))
        self._late_tasks.add(task)
        task.add_done_callback(self._late_tasks.discard)

    async def _send_late(self, frame: bytes, late: LateRequest, connection: _Connection, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        try:
            reader, writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self.stats["late_failed"] += 1
            return
        try:
            writer.write(_SIZE.pack(len(frame)) + frame)
            await writer.drain()
            late.forwarded_at = self._loop.time()
            self.stats["late_forwarded"] += 1
            answer = await _read_frame(reader)
        except (OSError, asyncio.IncompleteReadError):
            self.stats["late_failed"] += 1
            return
        finally:
            writer.close()
        body = codec.decode_response(late.api_key, late.version, answer,
                                     codec.response_header_size(late.api_key, late.version))
        late.error_code = getattr(body, "error_code", None)
        if not connection.client.is_closing():
            connection.client.write(_SIZE.pack(len(answer)) + answer)
            late.delivered = True
        self.stats["late_answered" if late.delivered else "late_discarded"] += 1

    def _rewrite(self, api_key: int, version: int, correlation_id: int, frame: bytes) -> bytes:
        """The answer with every broker address replaced by the proxy's."""
        body = codec.decode_response(api_key, version, frame, codec.response_header_size(api_key, version))
        self.stats["rewritten"] += 1
        return codec.encode_response(api_key, version, correlation_id, _readdressed(body, self.port))


class _Closed(Exception):
    """The proxy ends this connection (a fault)."""


def _readdressed(entity: Any, port: int) -> Any:
    """A copy of a kio response entity with every (host, port) pair pointing at the proxy."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(entity):
        value = getattr(entity, f.name)
        if isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            changes[f.name] = tuple(_readdressed(item, port) for item in value)
    names = {f.name for f in dataclasses.fields(entity)}
    if {"host", "port"} <= names and getattr(entity, "host", None):
        changes.update(host="127.0.0.1", port=port)
    return dataclasses.replace(entity, **changes) if changes else entity


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST instead of a FIN (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = _SIZE.unpack(await reader.readexactly(4))
    return await reader.readexactly(size)
