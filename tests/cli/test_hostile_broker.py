"""A broken or hostile broker cannot kill `pko`: one line naming the bootstrap server, exit 1.

The broker here is a socket server that answers ApiVersions v0 (the first request of our own
wire client) with a chosen lie: an array of 2^31 - 1 elements, a 2 GB or negative response size,
a body cut short. `pko consumer-groups --delete-offsets` (OffsetDelete goes through our own
codec, not librdkafka) runs as a real process with its address space limited, so that an
allocation of what a lie claims fails on any host instead of depending on its overcommit policy.

Any other request is answered by closing the connection: the librdkafka AdminClient that `pko`
also creates sends ApiVersions v3, and librdkafka 2.16 aborts the whole process on some lying
ApiVersions v3 answers (a null compact array: ``rd_malloc: Assertion 'p' failed``) — a defect of
the client library that our code cannot catch, kept out of this test of our decoder.
"""

from __future__ import annotations

import resource
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

#: Address space of the `pko` process: enough for Python and librdkafka, far from a 16 GB lie.
PKO_ADDRESS_SPACE = 3 << 30
Answer = Callable[[bytes], bytes]


def _api_versions_v0(correlation_id: bytes, body: bytes) -> bytes:
    payload = correlation_id + body
    return struct.pack(">i", len(payload)) + payload


LIES: dict[str, Answer] = {
    "array of 2^31-1 api keys": lambda cid: _api_versions_v0(cid, b"\x00\x00" + struct.pack(">i", 2**31 - 1)),
    "2 GB response size": lambda cid: struct.pack(">i", 2**31 - 1) + cid + bytes(64),
    "negative response size": lambda cid: struct.pack(">i", -7) + cid,
    "body cut inside an api key": lambda cid: _api_versions_v0(cid, b"\x00\x00" + struct.pack(">i", 3) + b"\x00"),
    "response shorter than a correlation id": lambda cid: struct.pack(">i", 2) + b"\x00\x00",
}


@pytest.fixture
def hostile_broker(request: pytest.FixtureRequest) -> Iterator[tuple[str, Answer]]:
    """A listener on a free 127.0.0.1 port answering every request with ``request.param``'s lie."""
    answer = LIES[request.param]
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_answer_requests, args=(conn, answer), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}", answer
    stop.set()
    thread.join()
    server.close()


def _answer_requests(conn: socket.socket, answer: Answer) -> None:
    with conn:
        try:
            while head := conn.recv(4):
                (size,) = struct.unpack(">i", head)
                request = b""
                while len(request) < size:
                    request += conn.recv(size - len(request))
                if request[:4] != struct.pack(">hh", 18, 0):  # not our wire client's ApiVersions v0
                    return
                conn.sendall(answer(request[4:8]))
        except (OSError, struct.error):
            pass


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (PKO_ADDRESS_SPACE, PKO_ADDRESS_SPACE))


def _pko(*args: str) -> subprocess.CompletedProcess[str]:
    pko = Path(sys.executable).parent / "pko"
    return subprocess.run([str(pko), *args], capture_output=True, text=True, preexec_fn=_limited,
                          stdin=subprocess.DEVNULL, timeout=60)


@pytest.mark.parametrize("hostile_broker", LIES, indirect=True)
def test_pko_survives_a_lying_broker_with_one_line_and_exit_1(hostile_broker: tuple[str, Answer]) -> None:
    bootstrap, _answer = hostile_broker
    result = _pko("consumer-groups", "--bootstrap-server", bootstrap, "--delete-offsets", "--group", "g",
                  "--topic", "t:0", "--timeout", "1500")
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1 and bootstrap in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
