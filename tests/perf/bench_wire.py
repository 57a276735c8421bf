"""Wire benchmark: the broker's request path alone, with pre-built requests, before and after a change.

Not a test: run it by hand and read the figures.

    python tests/perf/bench_wire.py                      # this tree's node
    python tests/perf/bench_wire.py --baseline e10efc9   # and a node of that commit, same run

A client built on plain sockets (no librdkafka, so client-side batching cannot vary) sends the
same Produce requests (one partition, one batch of 1 KiB records per request — ``--compression``
and ``--record-bytes`` change that — acks=1, ``--in-flight`` pipelined) and then reads the partition back with Fetch requests of
1 MiB, one at a time. Per phase: MB/s and the node's CPU seconds per GB, each the median of
``--rounds`` rounds on the same node. The write into the page cache is most of a Produce's cost,
so dirty pages are synced before each node starts, and with ``--baseline`` the two nodes take
turns (``--turns`` each, baseline first then last alternately) so that neither always runs second. Produce measures framing, the memory pool,
parsing, validation and the write; Fetch measures decoding (bounds walk + kio) and the
zero-copy response.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import baseline_node, create_topic, our_node  # noqa: E402
from pykafka_ops.protocol import codec  # noqa: E402
from pykafka_ops.protocol.api_keys import ApiKey  # noqa: E402
from pykafka_ops.records.builder import RecordBatchBuilder  # noqa: E402
from pykafka_ops.records.compression import Compression  # noqa: E402

TOPIC = "wire"
_SIZE = struct.Struct(">i")


def _framed(payload: bytes) -> bytes:
    return _SIZE.pack(len(payload)) + payload


def produce_request(records: int, record_bytes: int = 1000, compression: str = "none") -> bytes:
    """One Produce v9 request: acks=1, partition 0, one batch of ``records`` records. Compressed
    batches carry records half random, half zeros (about 2:1, as real payloads), so the node's
    decompression and record walk cost what they would."""
    builder = RecordBatchBuilder(compression=Compression[compression.upper()])
    for _ in range(records):
        value = bytes(record_bytes) if compression == "none" else (
            os.urandom(record_bytes // 2) + bytes(record_bytes - record_bytes // 2))
        builder.append(None, value)
    return _framed(codec.encode_request(ApiKey.PRODUCE, 9, 1, "wire", {
        "transactional_id": None, "acks": 1, "timeout": 30000,
        "topic_data": [{"name": TOPIC, "partition_data": [{"index": 0, "records": builder.build()}]}]}))


def fetch_request(offset: int) -> bytes:
    """One Fetch v12 request for 1 MiB of partition 0 from ``offset``."""
    return _framed(codec.encode_request(ApiKey.FETCH, 12, 2, "wire", {
        "replica_id": -1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
        "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
        "topics": [{"topic": TOPIC, "partitions": [{"partition": 0, "current_leader_epoch": -1, "fetch_offset": offset,
                                                    "last_fetched_epoch": -1, "log_start_offset": -1,
                                                    "partition_max_bytes": 1 << 20}]}]}))


def _read_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = sock.recv(min(n - len(data), 1 << 20))
            if not chunk:
                raise ConnectionError("the node closed the connection")
            data += chunk
        return bytes(data)

    (size,) = _SIZE.unpack(exactly(4))
    return exactly(size)


def produce_round(address: tuple[str, int], request: bytes, count: int, in_flight: int) -> None:
    """Send ``count`` copies of ``request`` with up to ``in_flight`` unanswered."""
    with socket.create_connection(address) as sock:
        sent = answered = 0
        while answered < count:
            while sent < count and sent - answered < in_flight:
                sock.sendall(request)
                sent += 1
            _read_frame(sock)
            answered += 1


def fetch_round(address: tuple[str, int], end_offset: int) -> int:
    """Fetch partition 0 from offset 0 to ``end_offset``; returns the record bytes read."""
    from pykafka_ops.records.batch import iter_batches

    total, offset = 0, 0
    with socket.create_connection(address) as sock:
        while offset < end_offset:
            sock.sendall(fetch_request(offset))
            frame = _read_frame(sock)
            answer = codec.decode_response(ApiKey.FETCH, 12, frame, codec.response_header_size(ApiKey.FETCH, 12))
            records = answer.responses[0].partitions[0].records or b""
            last = [h for _pos, h in iter_batches(records)][-1]
            offset = last.base_offset + last.last_offset_delta + 1
            total += len(records)
    return total


def measure(label: str, node: AbstractContextManager[tuple[str, psutil.Process]], args: argparse.Namespace,
            workdir: Path) -> dict[str, float]:
    """Median MB/s and node CPU-s/GB of the produce and fetch rounds on one node."""
    request = produce_request(args.batch_kib, args.record_bytes, args.compression)
    results: dict[str, list[tuple[float, float]]] = {"produce": [], "fetch": []}
    os.sync()  # the previous node's dirty pages must not be written back during this one
    with node as (bootstrap, proc):
        host, port = bootstrap.rsplit(":", 1)
        address = (host, int(port))
        create_topic(bootstrap, TOPIC)
        for _ in range(args.rounds):
            cpu0, t0 = sum(proc.cpu_times()[:2]), time.perf_counter()
            produce_round(address, request, args.requests, args.in_flight)
            seconds, cpu = time.perf_counter() - t0, sum(proc.cpu_times()[:2]) - cpu0
            results["produce"].append((len(request) * args.requests / seconds / 1e6, cpu / (len(request) * args.requests / 1e9)))
        end = args.rounds * args.requests * args.batch_kib
        cpu0, t0 = sum(proc.cpu_times()[:2]), time.perf_counter()
        read = fetch_round(address, end)
        seconds, cpu = time.perf_counter() - t0, sum(proc.cpu_times()[:2]) - cpu0
        results["fetch"].append((read / seconds / 1e6, cpu / (read / 1e9)))
    figures = {}
    for phase, values in results.items():
        figures[f"{phase}_mb_per_s"] = statistics.median(v[0] for v in values)
        figures[f"{phase}_cpu_s_per_gb"] = statistics.median(v[1] for v in values)
    print(f"{label:<16} produce {figures['produce_mb_per_s']:7.1f} MB/s {figures['produce_cpu_s_per_gb']:5.2f} CPU-s/GB"
          f"   fetch {figures['fetch_mb_per_s']:7.1f} MB/s {figures['fetch_cpu_s_per_gb']:5.2f} CPU-s/GB", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", metavar="REF", help="also measure a node of this git commit (first)")
    parser.add_argument("--rounds", type=int, default=5, help="produce rounds per node (the median is shown)")
    parser.add_argument("--requests", type=int, default=300, help="Produce requests per round")
    parser.add_argument("--batch-kib", type=int, default=1000, help="records per Produce request")
    parser.add_argument("--record-bytes", type=int, default=1000, help="bytes per record value")
    parser.add_argument("--compression", default="none", choices=[c.name.lower() for c in Compression],
                        help="codec of the produced batches (the node decompresses them to check the records)")
    parser.add_argument("--in-flight", type=int, default=5, help="pipelined Produce requests (librdkafka's default)")
    parser.add_argument("--turns", type=int, default=2, help="with --baseline: runs of each node, alternating")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pko-wire-"))
    try:
        for turn in range(args.turns if args.baseline else 1):
            order = ["before", "now"] if turn % 2 == 0 else ["now", "before"]
            for which in order if args.baseline else ["now"]:
                directory = workdir / f"{which}-{turn}"
                node = baseline_node(directory, args.baseline) if which == "before" else our_node(directory)
                measure(f"pko@{args.baseline}" if which == "before" else "pko", node, args, workdir)
                shutil.rmtree(directory, ignore_errors=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
