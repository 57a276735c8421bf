"""AdminServer: the node's HTTP admin listener (``nodes[].admin_port`` on ``admin.bind.address``).

One request per connection, answered in JSON with ``Connection: close``. ``GET <path>`` of a
route answers 200 with what the route returns; an unknown path 404 (``{"error": …, "paths": […]}``),
another method on a known path 405 (``Allow: GET``); a head the strict parser refuses 400, 431 or
505 (``cluster.admin.http``); a head that is not complete within ``REQUEST_TIMEOUT_S`` of the
connection's start 408; a connection over ``MAX_CONNECTIONS`` 503; a route that fails 500 (logged).
A client that does not read its answer within ``REQUEST_TIMEOUT_S`` is cut off. Nothing a client
sends can stop the node or the other connections.

Concurrency: runs on the node's event loop; each connection is one task, tracked so that ``stop``
can cancel it; routes are synchronous (no await between reading and answering).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from cluster.admin.http import MAX_HEAD_BYTES, HttpError, error_response, json_response, parse_request_head

log = logging.getLogger(__name__)

#: Connections served at once; more are answered 503 and closed.
MAX_CONNECTIONS = 64
#: Seconds a connection has to send its whole request head, and then to take its answer.
REQUEST_TIMEOUT_S = 3.0
#: What a route is: a function returning a JSON-serialisable answer.
Route = Callable[[], Any]


class AdminServer:
    """An HTTP/1.1 listener serving ``GET`` on a fixed set of JSON routes."""

    def __init__(self, routes: Mapping[str, Route], max_connections: int = MAX_CONNECTIONS,
                 request_timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.routes = dict(routes)
        self.max_connections = max_connections
        self.request_timeout_s = request_timeout_s
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    @property
    def address(self) -> tuple[str, int] | None:
        """(host, port) it listens on once started (the port chosen when started on port 0)."""
        if self._server is None or not self._server.sockets:
            return None
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port."""
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD_BYTES,
                                                  reuse_address=True)
        log.info("admin listener on %s:%d (%s)", host, port, ", ".join(sorted(self.routes)))

    def stop(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if len(self._connections) > self.max_connections:
                answer = error_response(HTTPStatus.SERVICE_UNAVAILABLE, "too many admin connections")
            else:
                answer = await self._read_and_answer(reader)
            if answer is not None:
                writer.write(answer)
                await asyncio.wait_for(writer.drain(), self.request_timeout_s)
        except (OSError, TimeoutError) as exc:  # the client went away or does not read
            log.debug("admin connection dropped: %r", exc)
            writer.transport.abort()
        finally:
            self._connections.discard(task)
            writer.close()

    async def _read_and_answer(self, reader: asyncio.StreamReader) -> bytes | None:
        """The answer to the connection's request (None: the client closed before sending one)."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.request_timeout_s)
        except asyncio.IncompleteReadError as exc:
            return error_response(HTTPStatus.BAD_REQUEST, "incomplete request head") if exc.partial else None
        except asyncio.LimitOverrunError:
            return error_response(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                                  f"request head over {MAX_HEAD_BYTES} bytes")
        except TimeoutError:
            return error_response(HTTPStatus.REQUEST_TIMEOUT, f"no complete request within {self.request_timeout_s:g} s")
        return self.answer(head)

    def answer(self, head: bytes) -> bytes:
        """The complete HTTP answer to a request head."""
        try:
            request = parse_request_head(head)
        except HttpError as exc:
            return error_response(exc.status, str(exc))
        route = self.routes.get(request.path)
        if route is None:
            return json_response(HTTPStatus.NOT_FOUND, {"error": f"no such path: {request.path}",
                                                        "paths": sorted(self.routes)})
        if request.method != "GET":
            return error_response(HTTPStatus.METHOD_NOT_ALLOWED, f"{request.method} not allowed: use GET",
                                  (("Allow", "GET"),))
        try:
            return json_response(HTTPStatus.OK, route())
        except Exception:  # our bug: this request fails, the node goes on
            log.exception("admin route %s failed", request.path)
            return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "unexpected error; see the node's log")
