"""One client connection: size-prefixed frames in, responses out in request order.

Reading uses ``asyncio.BufferedProtocol`` through a FrameReader, whose buffers grow with what
arrives (a large Produce request is read straight into its own buffer and never copied before
it reaches the log). Every frame's bytes are charged to the node's RequestMemoryPool until the
request no longer needs them: right after decoding, or after the handler for raw (zero-copy)
handlers, whose results may be views of the frame.

Bad input (Kafka's answers, specs/reliability.md §3): a negative size or one above
``socket.request.max.bytes`` closes the connection before anything is allocated; a header that
does not parse, an unknown API key, or an unsupported version of any API but ApiVersions closes
it; an unsupported ApiVersions version is answered in v0 with UNSUPPORTED_VERSION. An exception
inside a handler, or while encoding its response, closes only this connection (logged with the
API's name).

Responses are queued per request and written in request order (a parked Fetch holds back the
responses after it, as Kafka's muted channels do). Reading pauses while the transport's write
buffer is full, too many requests are in flight, or the node's request memory is exhausted.

Concurrency: one instance per connection, all on the node's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from typing import TYPE_CHECKING, Any

from cluster.handlers import REGISTRY, Body, CloseConnection, Handler
from cluster.network.frame_reader import Frame, FrameError, FrameReader
from cluster.network.request import RequestContext
from pykafka_ops.protocol import codec, fastpath
from pykafka_ops.protocol.api_keys import ApiKey

if TYPE_CHECKING:
    from cluster.broker import Broker
    from cluster.network.server import SocketServer

log = logging.getLogger(__name__)

_SIZE = struct.Struct(">i")
MAX_IN_FLIGHT = 100


class _Slot:
    """A response waiting for its turn."""

    __slots__ = ("buffers", "ready")

    def __init__(self) -> None:
        self.buffers: list[bytes | memoryview] | None = None
        self.ready = False


class KafkaConnection(asyncio.BufferedProtocol):
    """Protocol instance for one TCP connection."""

    def __init__(self, server: SocketServer) -> None:
        self.server = server
        self.broker: Broker = server.broker
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self._ip: str | None = None
        self._reader = FrameReader(self.broker.config["socket.request.max.bytes"], server.pool, server.maps, self)
        self._slots: deque[_Slot] = deque()
        self._write_paused = False
        self._memory_wait = False
        self._reading_paused = False
        self._closed = False
        self.last_active = 0.0
        """Event-loop time of the last byte read or response written (for connections.max.idle.ms)."""

    # -- asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.last_active = asyncio.get_running_loop().time()
        ip = peer[0] if peer else "?"
        if not self.server.quotas.admit(ip):
            self._closed = True
            transport.abort()
            return
        self._ip = ip
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._release_all()

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._reader.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.last_active = asyncio.get_running_loop().time()
        try:
            for frame in self._reader.frames(nbytes):
                if self._closed:
                    self._release(frame)
                    return
                self._on_frame(frame)
        except FrameError as exc:
            self.close(str(exc))
            return
        if self.server.pool.exhausted and not self._closed:
            self._memory_wait = True
            self._update_reading()
            self.server.pool.wait(self)

    def eof_received(self) -> bool:
        return False

    def memory_available(self) -> None:
        """The request memory pool has room again (RequestMemoryPool calls this)."""
        self._memory_wait = False
        self._update_reading()

    def idle_since(self) -> float | None:
        """When traffic last moved, or None while a request is in flight. A sender stalled inside
        a frame is idle too: Kafka's selector expires connections by their last traffic."""
        return None if self._slots else self.last_active

    # -- requests --------------------------------------------------------------------------

    def _on_frame(self, frame: Frame) -> None:
        try:
            header = codec.decode_request_header(frame.view)  # no local view: the map must be free to recycle
        except codec.CodecError as exc:
            self._release(frame)
            self.close(f"unparseable request header: {exc}")
            return
        handler = REGISTRY[self.server.listener].get(header.api_key)
        if handler is None or not handler.min_version <= header.api_version <= handler.max_version:
            self._release(frame)
            if header.api_key == ApiKey.API_VERSIONS:
                self._queue_ready(self._unsupported_api_versions(header.correlation_id))
                return
            name = ApiKey(header.api_key).name if header.api_key in ApiKey._value2member_map_ else header.api_key
            self.close(f"unsupported request {name} v{header.api_version}")
            return
        ctx = RequestContext(header.api_key, header.api_version, header.correlation_id, header.client_id,
                             self.peer, self.broker, asyncio.get_running_loop().time(), self.server.listener)
        slot = _Slot()
        self._slots.append(slot)
        self._update_reading()
        try:
            result = self._call(handler, ctx, frame, header.size)
        except Exception as exc:
            self._handler_failed(ctx, exc)
            return
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            task = asyncio.ensure_future(result)
            task.add_done_callback(lambda t, s=slot, c=ctx, f=frame: self._task_done(t, s, c, f))
        else:
            self._release(frame)
            self._fill(slot, ctx, result)

    def _call(self, handler: Handler, ctx: RequestContext, frame: Frame, body_offset: int) -> Any:
        """Run the handler; a decoded (non-raw) request lets go of its frame bytes first."""
        if handler.raw:
            try:
                return handler.fn(ctx, frame.view, body_offset)
            except BaseException:
                self._release(frame)
                raise
        try:
            request = codec.decode_request(ctx.api_key, ctx.api_version, frame.view, body_offset)
        except codec.CodecError as exc:
            raise CloseConnection(f"malformed request body: {exc}") from None
        finally:
            self._release(frame)
        return handler.fn(ctx, request)

    def _release(self, frame: Frame) -> None:
        """Give the frame's bytes back to the memory pool, and its map to the cache (once)."""
        if frame.size:
            self.server.pool.release(frame.size)
            frame.size = 0
            frame.view = memoryview(b"")
            if frame.mapping is not None:
                self.server.maps.give(frame.mapping)
                frame.mapping = None

    def _task_done(self, task: asyncio.Future[Body], slot: _Slot, ctx: RequestContext, frame: Frame) -> None:
        self._release(frame)
        if task.cancelled():
            self.close("request cancelled")
            return
        exc = task.exception()
        if exc is not None:
            self._handler_failed(ctx, exc)
            return
        self._fill(slot, ctx, task.result())

    def _handler_failed(self, ctx: RequestContext, exc: BaseException) -> None:
        if isinstance(exc, (CloseConnection, fastpath.ParseError)):
            self.close(f"{_api_name(ctx)} v{ctx.api_version}: {exc}")
        else:
            log.error("%s v%d from %s failed; closing the connection", _api_name(ctx), ctx.api_version,
                      self.peer, exc_info=exc)
            self.close("handler error")

    def _fill(self, slot: _Slot, ctx: RequestContext, body: Body) -> None:
        try:
            if body is not None:
                head = codec.response_header(ctx.api_key, ctx.api_version, ctx.correlation_id)
                if isinstance(body, dict):
                    payload = codec.encode_response_body(ctx.api_key, ctx.api_version, body)
                    slot.buffers = [_SIZE.pack(len(head) + len(payload)) + head, payload]
                else:
                    size = len(head) + sum(len(b) for b in body)
                    slot.buffers = [_SIZE.pack(size) + head, *body]
        except Exception as exc:  # a response we cannot encode is our bug: this connection only
            log.error("%s v%d from %s: cannot encode the response; closing the connection", _api_name(ctx),
                      ctx.api_version, self.peer, exc_info=exc)
            self.close("response encoding error")
            return
        slot.ready = True
        self._flush()

    def _queue_ready(self, payload: bytes) -> None:
        slot = _Slot()
        slot.buffers = [_SIZE.pack(len(payload)), payload]
        slot.ready = True
        self._slots.append(slot)
        self._flush()

    def _flush(self) -> None:
        while self._slots and self._slots[0].ready:
            slot = self._slots.popleft()
            if slot.buffers and not self._closed and self.transport is not None:
                self.transport.writelines(slot.buffers)
                self.last_active = asyncio.get_running_loop().time()
        self._update_reading()

    def _unsupported_api_versions(self, correlation_id: int) -> bytes:
        """KIP-511: answer an unknown ApiVersions version in v0 with our ApiVersions range."""
        from cluster.handlers.api_versions import api_version_entries

        return codec.encode_response(ApiKey.API_VERSIONS, 0, correlation_id, {
            "error_code": codec.ErrorCode.unsupported_version,
            "api_keys": api_version_entries(self.server.listener),
        })

    def _update_reading(self) -> None:
        if self.transport is None or self._closed:
            return
        should_pause = self._write_paused or self._memory_wait or len(self._slots) >= MAX_IN_FLIGHT
        if should_pause and not self._reading_paused:
            self.transport.pause_reading()
            self._reading_paused = True
        elif not should_pause and self._reading_paused:
            self.transport.resume_reading()
            self._reading_paused = False

    def close(self, reason: str) -> None:
        """Close the connection (Kafka closes on anything it cannot parse)."""
        if self._closed:
            return
        self._closed = True
        log.info("closing connection from %s: %s", self.peer, reason)
        if self.transport is not None:
            self.transport.close()
        self._release_all()

    def _release_all(self) -> None:
        """Closed: the pool forgets the partial frame, the quotas the connection (once)."""
        self._reader.discard()
        self.server.pool.drop(self)
        self.server.connections.discard(self)
        if self._ip is not None:
            self.server.quotas.release(self._ip)
            self._ip = None


def _api_name(ctx: RequestContext) -> str:
    return ApiKey(ctx.api_key).name
