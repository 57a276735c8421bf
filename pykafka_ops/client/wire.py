"""A minimal blocking Kafka wire client: one TCP connection, one request at a time.

Used where confluent-kafka has no call (OffsetDelete, raw ApiVersions), by the launcher's
readiness probe, and by protocol tests. Requests and responses go through our codec.

A broken or hostile broker cannot hurt the caller: a response size above ``MAX_RESPONSE_BYTES``
(librdkafka's ``receive.message.max.bytes`` default) or below the 4 bytes of a correlation id is
refused before reading it, a response is read in chunks that grow with what arrives, and a body
that does not decode (every length is bounds-checked first) is a WireError like any other.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from pykafka_ops.protocol import codec

_SIZE = struct.Struct(">i")
#: Largest response frame we read (librdkafka's receive.message.max.bytes default, 100 MB).
MAX_RESPONSE_BYTES = 100_000_000
#: Most bytes asked of the socket at once.
_RECV_CHUNK = 1 << 20


def bootstrap_addresses(bootstrap_servers: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` (IPv6 hosts in brackets) as (host, port) pairs."""
    result = []
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        result.append((host.strip("[]") or "localhost", int(port)))
    return result


class WireError(ConnectionError):
    """The connection failed, closed, or answered something unexpected."""


class WireClient:
    """A blocking connection to one broker (``timeout`` in seconds applies to every call)."""

    def __init__(self, host: str, port: int, timeout: float = 5.0, client_id: str = "pko") -> None:
        self.address = f"{host}:{port}"
        self.client_id = client_id
        self._correlation_id = 0
        self._versions: dict[int, int] | None = None
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise WireError(f"cannot connect to {self.address}: {exc.strerror or exc}") from None
        self._sock.settimeout(timeout)

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._sock.close()

    def request(self, api_key: int, version: int, body: dict[str, Any]) -> Any:
        """Send one request and return the decoded response body (a kio dataclass)."""
        frame, header_size = self.request_frame(api_key, version, body)
        try:
            return codec.decode_response(api_key, version, frame, header_size)
        except codec.CodecError as exc:
            raise WireError(f"{self.address} sent a malformed response: {exc}") from None

    def request_frame(self, api_key: int, version: int, body: dict[str, Any]) -> tuple[bytes, int]:
        """Send one request; return the response frame undecoded and where its body starts (for
        a response our codec cannot decode, e.g. a -1 timestamp kio refuses)."""
        self._correlation_id += 1
        correlation_id = self._correlation_id
        self.send_raw(codec.encode_request(api_key, version, correlation_id, self.client_id, body))
        frame = self.recv_frame()
        (got,) = _SIZE.unpack_from(frame, 0)
        if got != correlation_id:
            raise WireError(f"{self.address} answered correlation id {got}, expected {correlation_id}")
        return frame, len(codec.response_header(api_key, version, 0))

    def api_versions(self) -> dict[int, int]:
        """API key → the highest version both the broker and our codec speak (ApiVersions v0,
        asked once per connection)."""
        if self._versions is None:
            response = self.request(18, 0, {})
            self._versions = {}
            for entry in response.api_keys:
                ours = codec.known_versions(entry.api_key)
                if ours is not None and entry.min_version <= ours[1] and ours[0] <= entry.max_version:
                    self._versions[int(entry.api_key)] = min(entry.max_version, ours[1])
        return self._versions

    def send_raw(self, payload: bytes) -> None:
        """Send ``payload`` with an int32 size prefix (``payload`` = header + body)."""
        self.send_bytes(_SIZE.pack(len(payload)) + payload)

    def send_bytes(self, data: bytes) -> None:
        """Send bytes exactly as given (for protocol tests that lie about sizes)."""
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise WireError(f"{self.address}: send failed: {exc.strerror or exc}") from None

    def recv_frame(self) -> bytes:
        """Read one size-prefixed response frame and return it without the prefix."""
        (size,) = _SIZE.unpack(self._recv_exactly(4))
        if not 4 <= size <= MAX_RESPONSE_BYTES:
            raise WireError(f"{self.address} sent a response size of {size} bytes "
                            f"(accepted: 4 to {MAX_RESPONSE_BYTES})")
        return self._recv_exactly(size)

    def _recv_exactly(self, n: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < n:
            try:
                chunk = self._sock.recv(min(n - len(chunks), _RECV_CHUNK))
            except OSError as exc:
                raise WireError(f"{self.address}: receive failed: {exc.strerror or exc}") from None
            if not chunk:
                raise WireError(f"{self.address} closed the connection")
            chunks += chunk
        return bytes(chunks)
