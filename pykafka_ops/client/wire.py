"""A minimal blocking Kafka wire client: one TCP connection, one request at a time.

Used where confluent-kafka has no call (OffsetDelete, raw ApiVersions), by the launcher's
readiness probe, and by protocol tests. Requests and responses go through our codec.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

from pykafka_ops.protocol import codec

_SIZE = struct.Struct(">i")


class WireError(ConnectionError):
    """The connection failed, closed, or answered something unexpected."""


class WireClient:
    """A blocking connection to one broker (``timeout`` in seconds applies to every call)."""

    def __init__(self, host: str, port: int, timeout: float = 5.0, client_id: str = "pko") -> None:
        self.address = f"{host}:{port}"
        self.client_id = client_id
        self._correlation_id = 0
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
        self._correlation_id += 1
        correlation_id = self._correlation_id
        self.send_raw(codec.encode_request(api_key, version, correlation_id, self.client_id, body))
        frame = self.recv_frame()
        (got,) = _SIZE.unpack_from(frame, 0)
        if got != correlation_id:
            raise WireError(f"{self.address} answered correlation id {got}, expected {correlation_id}")
        header_size = len(codec.response_header(api_key, version, 0))
        return codec.decode_response(api_key, version, frame, header_size)

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
        return self._recv_exactly(size)

    def _recv_exactly(self, n: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < n:
            try:
                chunk = self._sock.recv(n - len(chunks))
            except OSError as exc:
                raise WireError(f"{self.address}: receive failed: {exc.strerror or exc}") from None
            if not chunk:
                raise WireError(f"{self.address} closed the connection")
            chunks += chunk
        return bytes(chunks)
