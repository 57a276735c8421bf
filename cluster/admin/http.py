"""A strict, minimal HTTP/1.1 request-head parser and the admin endpoint's JSON answers.

Only what the admin endpoint needs: a request is its head (request line and header fields, at most
``MAX_HEAD_BYTES`` ending with an empty line); bodies are refused. Anything RFC 9112 does not
allow, or that this endpoint does not take, raises ``HttpError`` with the status to answer:
a request line that is not ``METHOD SP /path SP HTTP/1.x``, bytes outside visible ASCII, a line
not ending in CRLF, obsolete line folding, a header field without a valid name, a missing or
repeated ``Host`` in HTTP/1.1 (400); an HTTP version other than 1.0 or 1.1 (505); a body
(``Content-Length`` other than 0, any ``Transfer-Encoding``: 400). Every answer closes the
connection (``Connection: close``). Pure functions, no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

#: Longest request head (request line + header fields + the empty line), in bytes.
MAX_HEAD_BYTES = 8192
#: Most header fields in one request.
MAX_HEADER_FIELDS = 64
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (/[\x21-\x7e]*) HTTP/(\d)\.(\d)")
_FIELD_VALUE = re.compile(rb"[\x20-\x7e\t]*")


class HttpError(Exception):
    """A request that gets an error answer (``status``) and a closed connection."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Request:
    """A parsed request head: method, path (without the query), query string and header fields
    (names lower-cased)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]


def parse_request_head(head: bytes) -> Request:
    """Parse a request head ending with ``\\r\\n\\r\\n``; raises ``HttpError`` (module docstring)."""
    if len(head) > MAX_HEAD_BYTES:
        raise HttpError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"request head over {MAX_HEAD_BYTES} bytes")
    if not head.endswith(b"\r\n\r\n"):
        raise HttpError(HTTPStatus.BAD_REQUEST, "request head does not end with an empty line")
    lines = head[:-4].split(b"\r\n")
    if any(b"\n" in line or b"\r" in line for line in lines):
        raise HttpError(HTTPStatus.BAD_REQUEST, "line not ending with CRLF")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise HttpError(HTTPStatus.BAD_REQUEST, "malformed request line")
    method, target, major, minor = match.groups()
    if (major, minor) not in ((b"1", b"1"), (b"1", b"0")):
        raise HttpError(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "only HTTP/1.1 and HTTP/1.0")
    if len(lines) - 1 > MAX_HEADER_FIELDS:
        raise HttpError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"more than {MAX_HEADER_FIELDS} header fields")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:  # also obsolete folding (a leading space)
            raise HttpError(HTTPStatus.BAD_REQUEST, "malformed header field")
        value = value.strip(b" \t")
        if _FIELD_VALUE.fullmatch(value) is None:
            raise HttpError(HTTPStatus.BAD_REQUEST, "header field value with control or non-ASCII bytes")
        key = name.decode("ascii").lower()
        if key == "host" and key in headers:
            raise HttpError(HTTPStatus.BAD_REQUEST, "more than one Host header field")
        headers[key] = value.decode("ascii") if key not in headers else f"{headers[key]}, {value.decode('ascii')}"
    if minor == b"1" and "host" not in headers:
        raise HttpError(HTTPStatus.BAD_REQUEST, "HTTP/1.1 request without a Host header field")
    if "transfer-encoding" in headers or headers.get("content-length", "0") != "0":
        raise HttpError(HTTPStatus.BAD_REQUEST, "this endpoint takes no request body")
    path, _, query = target.decode("ascii").partition("?")
    return Request(method.decode("ascii"), path, query, headers)


def json_response(status: HTTPStatus, body: Any, extra_headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A complete HTTP/1.1 answer with a JSON body, closing the connection."""
    payload = json.dumps(body, separators=(",", ":")).encode() + b"\n"
    head = [f"HTTP/1.1 {status.value} {status.phrase}", "Content-Type: application/json",
            f"Content-Length: {len(payload)}", "Connection: close", "Cache-Control: no-store",
            *(f"{name}: {value}" for name, value in extra_headers)]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + payload


def error_response(status: HTTPStatus, message: str, extra_headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """``json_response`` of ``{"error": message}``."""
    return json_response(status, {"error": message}, extra_headers)
