"""One client connection: size-prefixed frames in, responses out in request order.

Reading uses ``asyncio.BufferedProtocol``: small frames are read into a reusable 64 KiB buffer
and copied out; a frame too big for it gets its own ``bytearray`` that the socket reads into
directly, so a large Produce request is never copied in user space before it reaches the log.

Bad input (Kafka's answers, specs/reliability.md §3): a negative size or one above
``socket.request.max.bytes`` closes the connection before anything is allocated; a header that
does not parse, an unknown API key, or an unsupported version of any API but ApiVersions closes
it; an unsupported ApiVersions version is answered in v0 with UNSUPPORTED_VERSION. An exception
inside a handler closes only this connection.

Responses are queued per request and written in request order (a parked Fetch holds back the
responses after it, as Kafka's muted channels do). Reading pauses while the transport's write
buffer is full or too many requests are in flight.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from typing import TYPE_CHECKING, Any

from cluster.handlers import REGISTRY, Body, CloseConnection, Handler
from cluster.network.request import RequestContext
from pykafka_ops.protocol import codec, fastpath
from pykafka_ops.protocol.api_keys import ApiKey

if TYPE_CHECKING:
    from cluster.broker import Broker

log = logging.getLogger(__name__)

_SIZE = struct.Struct(">i")
READ_BUFFER_SIZE = 64 * 1024
MAX_IN_FLIGHT = 100


class _Slot:
    """A response waiting for its turn."""

    __slots__ = ("buffers", "ready")

    def __init__(self) -> None:
        self.buffers: list[bytes | memoryview] | None = None
        self.ready = False


class KafkaConnection(asyncio.BufferedProtocol):
    """Protocol instance for one TCP connection."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.max_request_size: int = broker.config["socket.request.max.bytes"]
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self._buf = bytearray(READ_BUFFER_SIZE)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._big: bytearray | None = None
        self._big_filled = 0
        self._slots: deque[_Slot] = deque()
        self._write_paused = False
        self._reading_paused = False
        self._closed = False

    # -- asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.broker.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.broker.connections.discard(self)

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._big is not None:
            return memoryview(self._big)[self._big_filled :]
        if self._end == len(self._buf):
            self._compact()
        return self._view[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        if self._big is not None:
            self._big_filled += nbytes
            if self._big_filled == len(self._big):
                frame, self._big = self._big, None
                self._on_frame(frame)
            return
        self._end += nbytes
        self._parse_frames()

    def eof_received(self) -> bool:
        return False

    # -- framing ---------------------------------------------------------------------------

    def _compact(self) -> None:
        pending = self._end - self._start
        self._buf[:pending] = self._buf[self._start : self._end]
        self._start, self._end = 0, pending

    def _parse_frames(self) -> None:
        while not self._closed and self._end - self._start >= 4:
            (size,) = _SIZE.unpack_from(self._buf, self._start)
            if size < 0 or size > self.max_request_size:
                self.close(f"invalid request size {size} (socket.request.max.bytes={self.max_request_size})")
                return
            begin = self._start + 4
            available = self._end - begin
            if available >= size:
                frame = bytearray(self._view[begin : begin + size])
                self._start = begin + size
                self._on_frame(frame)
                continue
            if 4 + size > len(self._buf):
                self._big = bytearray(size)
                self._big[:available] = self._view[begin : self._end]
                self._big_filled = available
                self._start = self._end = 0
                return
            if begin + size > len(self._buf):
                self._compact()
            return
        if self._start == self._end:
            self._start = self._end = 0

    # -- requests --------------------------------------------------------------------------

    def _on_frame(self, frame: bytearray) -> None:
        if self._closed:
            return
        view = memoryview(frame)
        try:
            header = codec.decode_request_header(view)
        except codec.CodecError as exc:
            self.close(f"unparseable request header: {exc}")
            return
        handler = REGISTRY.get(header.api_key)
        if handler is None or not handler.min_version <= header.api_version <= handler.max_version:
            if header.api_key == ApiKey.API_VERSIONS:
                self._queue_ready(self._unsupported_api_versions(header.correlation_id))
                return
            name = ApiKey(header.api_key).name if header.api_key in ApiKey._value2member_map_ else header.api_key
            self.close(f"unsupported request {name} v{header.api_version}")
            return
        ctx = RequestContext(header.api_key, header.api_version, header.correlation_id, header.client_id,
                             self.peer, self.broker, asyncio.get_running_loop().time())
        slot = _Slot()
        self._slots.append(slot)
        self._update_reading()
        try:
            result = self._call(handler, ctx, view, header.size)
        except Exception as exc:
            self._handler_failed(ctx, exc)
            return
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            task = asyncio.ensure_future(result)
            task.add_done_callback(lambda t, s=slot, c=ctx: self._task_done(t, s, c))
        else:
            self._fill(slot, ctx, result)

    def _call(self, handler: Handler, ctx: RequestContext, view: memoryview, body_offset: int) -> Any:
        if handler.raw:
            return handler.fn(ctx, view, body_offset)
        try:
            request = codec.decode_request(ctx.api_key, ctx.api_version, view, body_offset)
        except codec.CodecError as exc:
            raise CloseConnection(f"malformed request body: {exc}") from None
        return handler.fn(ctx, request)

    def _task_done(self, task: asyncio.Future[Body], slot: _Slot, ctx: RequestContext) -> None:
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
            self.close(f"{ApiKey(ctx.api_key).name} v{ctx.api_version}: {exc}")
        else:
            log.error("%s v%d from %s failed; closing the connection", ApiKey(ctx.api_key).name,
                      ctx.api_version, self.peer, exc_info=exc)
            self.close("handler error")

    def _fill(self, slot: _Slot, ctx: RequestContext, body: Body) -> None:
        if body is not None:
            head = codec.response_header(ctx.api_key, ctx.api_version, ctx.correlation_id)
            if isinstance(body, dict):
                payload = codec.encode_response_body(ctx.api_key, ctx.api_version, body)
                slot.buffers = [_SIZE.pack(len(head) + len(payload)) + head, payload]
            else:
                size = len(head) + sum(len(b) for b in body)
                slot.buffers = [_SIZE.pack(size) + head, *body]
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
        self._update_reading()

    def _unsupported_api_versions(self, correlation_id: int) -> bytes:
        """KIP-511: answer an unknown ApiVersions version in v0 with our ApiVersions range."""
        from cluster.handlers.api_versions import api_version_entries

        return codec.encode_response(ApiKey.API_VERSIONS, 0, correlation_id, {
            "error_code": codec.ErrorCode.unsupported_version,
            "api_keys": api_version_entries(),
        })

    def _update_reading(self) -> None:
        if self.transport is None or self._closed:
            return
        should_pause = self._write_paused or len(self._slots) >= MAX_IN_FLIGHT
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
