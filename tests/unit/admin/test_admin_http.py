"""The admin endpoint's strict HTTP/1.1 head parser and its server, in-process: bad input gets an
HTTP error or a close, and the server goes on answering."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus

import pytest

from cluster.admin.http import MAX_HEAD_BYTES, MAX_HEADER_FIELDS, HttpError, json_response, parse_request_head
from cluster.admin.server import AdminServer

GOOD = b"GET /v1/produce-clients HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n"


def test_parses_a_good_request() -> None:
    request = parse_request_head(b"GET /v1/x?verbose=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a:  2 \r\n\r\n")
    assert (request.method, request.path, request.query) == ("GET", "/v1/x", "verbose=1")
    assert request.headers == {"host": "h", "x-a": "1, 2"}
    assert parse_request_head(b"GET / HTTP/1.0\r\n\r\n").path == "/"  # HTTP/1.0 needs no Host


@pytest.mark.parametrize(("head", "status"), [
    (b"\x00\x00\x00\x10garbage\r\n\r\n", HTTPStatus.BAD_REQUEST),
    (b"GET /v1/x\r\n\r\n", HTTPStatus.BAD_REQUEST),                          # HTTP/0.9 style
    (b"GET  /v1/x HTTP/1.1\r\nHost: h\r\n\r\n", HTTPStatus.BAD_REQUEST),      # two spaces
    (b"GET v1/x HTTP/1.1\r\nHost: h\r\n\r\n", HTTPStatus.BAD_REQUEST),        # not origin-form
    (b"GET http://h/v1/x HTTP/1.1\r\nHost: h\r\n\r\n", HTTPStatus.BAD_REQUEST),
    (b"GET /v1/\xff HTTP/1.1\r\nHost: h\r\n\r\n", HTTPStatus.BAD_REQUEST),    # non-ASCII target
    (b"G(T /v1/x HTTP/1.1\r\nHost: h\r\n\r\n", HTTPStatus.BAD_REQUEST),       # not a token
    (b"GET /v1/x HTTP/2.0\r\nHost: h\r\n\r\n", HTTPStatus.HTTP_VERSION_NOT_SUPPORTED),
    (b"GET /v1/x HTTP/1.1\r\n\r\n", HTTPStatus.BAD_REQUEST),                  # no Host
    (b"GET /v1/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HTTPStatus.BAD_REQUEST),
    (b"GET /v1/x HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", HTTPStatus.BAD_REQUEST),
    (b"GET /v1/x HTTP/1.1\r\nHost h\r\n\r\n", HTTPStatus.BAD_REQUEST),        # no colon
    (b"GET /v1/x HTTP/1.1\r\nHo st: h\r\n\r\n", HTTPStatus.BAD_REQUEST),
    (b"GET /v1/x HTTP/1.1\r\nHost: h\x01\r\n\r\n", HTTPStatus.BAD_REQUEST),   # control byte in a value
    (b"GET /v1/x HTTP/1.1\nHost: h\r\n\r\n", HTTPStatus.BAD_REQUEST),         # bare LF
    (b"GET /v1/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", HTTPStatus.BAD_REQUEST),
    (b"GET /v1/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", HTTPStatus.BAD_REQUEST),
    (b"GET /v1/x HTTP/1.1\r\nHost: h\r\n", HTTPStatus.BAD_REQUEST),           # no empty line
    (b"GET /v1/x HTTP/1.1\r\nHost: h\r\n" + b"X: y\r\n" * MAX_HEADER_FIELDS + b"\r\n",
     HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE),
    (b"GET /v1/x HTTP/1.1\r\nHost: h\r\nX: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n",
     HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE),
])
def test_refuses_bad_heads(head: bytes, status: HTTPStatus) -> None:
    with pytest.raises(HttpError) as caught:
        parse_request_head(head)
    assert caught.value.status == status


def test_json_response_is_complete_and_closes() -> None:
    answer = json_response(HTTPStatus.OK, {"a": 1})
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: application/json" in head and b"Connection: close" in head
    assert f"Content-Length: {len(body)}".encode() in head and json.loads(body) == {"a": 1}


# --- the server, in-process ----------------------------------------------------------------------

def _status_and_body(answer: bytes) -> tuple[int, dict | None]:
    if not answer:
        return 0, None
    head, body = answer.split(b"\r\n\r\n", 1)
    return int(head.split(b" ", 2)[1]), json.loads(body)


async def _exchange(port: int, data: bytes, half_close: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        if half_close:
            writer.write_eof()
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


def _with_server(test: Callable[[AdminServer, int], Awaitable[None]], **kwargs: float) -> None:
    def failing() -> dict:
        raise RuntimeError("boom")

    async def main() -> None:
        server = AdminServer({"/v1/ok": lambda: {"ok": True}, "/v1/fail": failing}, **kwargs)
        await server.start("127.0.0.1", 0)
        address = server.address
        assert address is not None
        try:
            await test(server, address[1])
            assert _status_and_body(await _exchange(address[1], GOOD.replace(b"produce-clients", b"ok"))) == (
                200, {"ok": True}), "the server still answers"
        finally:
            server.stop()

    asyncio.run(main())


def test_server_answers_and_refuses() -> None:
    async def test(server: AdminServer, port: int) -> None:
        ok = GOOD.replace(b"produce-clients", b"ok")
        assert _status_and_body(await _exchange(port, ok)) == (200, {"ok": True})
        status, body = _status_and_body(await _exchange(port, GOOD))
        assert status == 404 and body is not None and body["paths"] == ["/v1/fail", "/v1/ok"]
        answer = await _exchange(port, ok.replace(b"GET", b"POST"))
        assert _status_and_body(answer)[0] == 405 and b"\r\nAllow: GET\r\n" in answer
        assert _status_and_body(await _exchange(port, b"\x16\x03\x01garbage\r\n\r\n"))[0] == 400
        assert _status_and_body(await _exchange(port, b"GET /v1/ok HTT", half_close=True))[0] == 400
        assert await _exchange(port, b"", half_close=True) == b""
        big = b"GET /v1/ok HTTP/1.1\r\nHost: h\r\nX: " + b"a" * (4 * MAX_HEAD_BYTES)
        assert _status_and_body(await _exchange(port, big))[0] in (0, 431)   # 431, or reset while sending
        assert _status_and_body(await _exchange(port, GOOD.replace(b"produce-clients", b"fail")))[0] == 500

    _with_server(test)


def test_server_times_out_slow_clients() -> None:
    async def test(server: AdminServer, port: int) -> None:
        status, body = _status_and_body(await _exchange(port, b"GET /v1/ok HTTP/1.1\r\nHo"))
        assert status == 408 and body is not None and "error" in body

    _with_server(test, request_timeout_s=0.2)


def test_server_caps_connections() -> None:
    async def test(server: AdminServer, port: int) -> None:
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.05)
        assert _status_and_body(await _exchange(port, GOOD))[0] in (0, 503)
        for _reader, writer in idle:
            writer.close()
        await asyncio.sleep(0.05)   # the server sees them close and frees their slots

    _with_server(test, max_connections=3)


def test_stop_drops_open_connections() -> None:
    async def main() -> None:
        server = AdminServer({"/v1/ok": dict})
        await server.start("127.0.0.1", 0)
        address = server.address
        assert address is not None
        reader, writer = await asyncio.open_connection(*address)
        await asyncio.sleep(0.05)
        server.stop()
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()

    asyncio.run(main())
