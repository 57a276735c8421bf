"""A response that cannot be encoded closes only its connection, logged with the API's name.

Proven in-process with a fake transport: no real request makes our encoder fail today (the one
that did, Metadata v10 with a null name, is answered INVALID_REQUEST now, see
tests/integration/test_handler_errors.py).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

import pytest

from cluster.handlers import load_handlers
from cluster.network.connection import KafkaConnection
from cluster.network.frame_reader import MapCache
from cluster.network.memory_pool import RequestMemoryPool
from cluster.network.quotas import ConnectionQuotas
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 5555) if name == "peername" else None

    def writelines(self, buffers: list[bytes]) -> None:
        self.written.append(b"".join(bytes(b) for b in buffers))

    def close(self) -> None:
        self.closed = True

    abort = close

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class Server:
    def __init__(self) -> None:
        self.broker = type("Broker", (), {"config": {"socket.request.max.bytes": 1 << 20}})()
        self.pool = RequestMemoryPool(1 << 24)
        self.maps = MapCache()
        self.quotas = ConnectionQuotas(10, 10)
        self.connections: set[KafkaConnection] = set()
        self.listener = "broker"


def _api_versions_frame() -> bytes:
    payload = codec.encode_request(ApiKey.API_VERSIONS, 3, 9, "t", {"client_software_name": "t",
                                                                      "client_software_version": "1"})
    return struct.pack(">i", len(payload)) + payload


async def _send(frame: bytes) -> tuple[Transport, Server]:
    load_handlers()
    server, transport = Server(), Transport()
    connection = KafkaConnection(server)  # type: ignore[arg-type]
    connection.connection_made(transport)
    buf = connection.get_buffer(-1)
    buf[: len(frame)] = frame
    connection.buffer_updated(len(frame))
    return transport, server


def test_a_response_is_written_when_it_encodes() -> None:
    transport, server = asyncio.run(_send(_api_versions_frame()))
    assert len(transport.written) == 1 and not transport.closed
    assert server.pool.used == 0


def test_an_encoding_failure_closes_only_that_connection(monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_args: Any) -> bytes:
        raise TypeError("Unexpectedly received None value")

    monkeypatch.setattr(codec, "encode_response_body", broken)
    with caplog.at_level(logging.ERROR, logger="cluster.network.connection"):
        transport, server = asyncio.run(_send(_api_versions_frame()))
    assert transport.closed and transport.written == []
    assert "API_VERSIONS v3 from 127.0.0.1:5555: cannot encode the response" in caplog.text
    assert server.pool.used == 0 and server.quotas.total == 0
