"""What no client can do to a node (issue "Safe decoding"; specs/reliability-probe.md §3.2, §3.4).

* A frame whose lengths lie is refused before anything is allocated for it. The node runs with
  its address space limited (RLIMIT_AS) to what it uses plus 1 GiB, so that a 34 GB allocation
  fails on any host, whatever its overcommit policy: without the bounds walk the node aborts.
* A compressed batch is never inflated past a bound: a 1 MB zstd batch that claims 31 GiB,
  stored and then read by ListOffsets-by-timestamp, which decompresses it, is refused.
* Announced sizes cost nothing until bytes arrive; what does arrive is bounded for the whole node
  by ``queued.max.request.bytes``; connections are capped (``max.connections``,
  ``max.connections.per.ip``) and closed when idle (``connections.max.idle.ms``).

Each test waits on conditions with deadlines (health checks, closes), never on sleeps, and
prints its figures as one JSON line.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from cluster.pytest_plugin import ClusterFactory, RunningCluster, start_cluster
from integration_helpers import (
    address,
    assert_node_serves,
    build_batch,
    create_topic,
    list_offset,
    node_log,
    fetch_raw,
    produce_raw,
    unique_topic,
    wait_until,
    wire,
)
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records.batch import CRC, HEADER_SIZE, LENGTH, LOG_OVERHEAD
from pykafka_ops.records.compression import Compression, compress

MiB = 1 << 20
#: Address space the node may add to what it uses when the test starts.
ADDRESS_SPACE_HEADROOM = 1 << 30
METADATA_V9_FRAME = bytes.fromhex("0000001a00030009000000010002667a00ffffffff0f03667a0000000000")
LIST_GROUPS_V4_FRAME = bytes.fromhex("00000013001000040000000100026" "67a00ffffffff0f00")
#: RSS the node may gain from 30 connections that each announce 100 MiB and send 64 KiB.
PREFIX_RSS_BOUND = 32 * MiB
#: RSS the node may gain beyond queued.max.request.bytes when those connections really send.
POOL_RSS_SLACK = 64 * MiB
CORRUPT_MESSAGE = 2


def _process(cluster: RunningCluster) -> psutil.Process:
    (node,) = cluster.status()
    assert node.pid is not None
    return psutil.Process(node.pid)


@pytest.fixture(scope="module")
def limited_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """A node with default limits whose address space is its own plus ADDRESS_SPACE_HEADROOM."""
    yaml = "cluster: {name: limits}\nnodes:\n  - {id: 1}\n"
    with start_cluster(yaml, tmp_path_factory.mktemp("limits")) as cluster:
        process = _process(cluster)
        limit = process.memory_info().vms + ADDRESS_SPACE_HEADROOM
        process.rlimit(psutil.RLIMIT_AS, (limit, limit))
        yield cluster


def _connect(cluster: RunningCluster) -> socket.socket:
    return socket.create_connection(address(cluster), timeout=10)


def _closed_without_answer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("frame", [METADATA_V9_FRAME, LIST_GROUPS_V4_FRAME], ids=["metadata-v9", "list-groups-v4"])
def test_an_array_length_of_4_billion_closes_the_connection_and_the_node_lives(
        limited_node: RunningCluster, frame: bytes) -> None:
    with _connect(limited_node) as sock:
        sock.sendall(frame)
        assert _closed_without_answer(sock)
    with wire(limited_node) as client:
        assert client.request(ApiKey.API_VERSIONS, 3, {"client_software_name": "t",
                                                       "client_software_version": "1"}).error_code == 0
    assert "malformed request body" in node_log(limited_node)


def _zstd_bomb_batch(gib: int) -> bytes:
    """A valid one-record zstd batch whose records section inflates to ``gib`` GiB of zeros."""
    from crc32c import crc32c

    header = bytearray(build_batch([b"x"], compression=Compression.ZSTD)[:HEADER_SIZE])
    batch = header + compress(Compression.ZSTD, bytes(1 << 30)) * gib
    struct.pack_into(">i", batch, LENGTH, len(batch) - LOG_OVERHEAD)
    struct.pack_into(">I", batch, CRC, crc32c(bytes(batch[CRC + 4 :])))
    return bytes(batch)


def test_a_compression_bomb_is_refused_when_the_node_decompresses_it(limited_node: RunningCluster) -> None:
    topic = unique_topic("bomb")
    create_topic(limited_node, topic, partitions=1)
    with wire(limited_node) as client:  # 31 GiB of zeros: produce walks the records, and stops at 256 MiB
        answer = produce_raw(client, topic, 0, _zstd_bomb_batch(31))
    assert answer.error_code == CORRUPT_MESSAGE
    assert "decompresses to more than 268435456 bytes" in answer.error_message
    assert list_offset(limited_node, topic, 0, 0).offset == -1  # nothing was stored
    assert_node_serves(limited_node)


def test_30_connections_announcing_100_mib_cost_no_memory_and_others_are_served(
        limited_node: RunningCluster) -> None:
    """The probe's §3.4: 30 × (100 MiB prefix + 64 KiB), then 10 MiB more on each."""
    process = _process(limited_node)
    rss_before = process.memory_info().rss
    socks = [_connect(limited_node) for _ in range(30)]
    senders: list[threading.Thread] = []
    try:
        for sock in socks:
            sock.sendall(struct.pack(">i", 100 * MiB) + bytes(64 * 1024))
        started = time.monotonic()
        assert_node_serves(limited_node)  # the node has read what came before this
        served_in_s = time.monotonic() - started
        rss_prefixes = process.memory_info().rss
        assert rss_prefixes - rss_before < PREFIX_RSS_BOUND

        # 600 MiB really sent (more than the kernel buffers and queued.max.request.bytes = 200 MiB),
        # from threads: the node stops reading while its pool is full and closes some senders
        senders += [threading.Thread(target=_send_quietly, args=(sock, bytes(20 * MiB))) for sock in socks]
        for sender in senders:
            sender.start()
        wait_until(lambda: "held by incomplete requests only" in node_log(limited_node), 60,
                   "the node to shed connections holding incomplete requests")
        assert_node_serves(limited_node)
        rss_sent = process.memory_info().rss
        assert rss_sent - rss_before < 200 * MiB + POOL_RSS_SLACK
    finally:
        for sock in socks:
            sock.close()
    for sender in senders:
        sender.join(30)
    log = node_log(limited_node)
    print(json.dumps({"test": "prefix-flood", "rss_before_mib": rss_before // MiB,
                      "rss_after_prefixes_mib": rss_prefixes // MiB, "rss_after_300_mib_sent_mib": rss_sent // MiB,
                      "health_check_s": round(served_in_s, 3),
                      "shed_connections": log.count("held by incomplete requests only")}))


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass  # closed by the node to free request memory, or by the test


@pytest.mark.parametrize("setting", ["max.connections", "max.connections.per.ip"])
def test_connections_over_the_cap_are_refused_and_logged(pko_cluster_factory: ClusterFactory, setting: str) -> None:
    cluster = pko_cluster_factory(**{setting: 5})
    held = [_connect(cluster) for _ in range(5)]
    wait_until(lambda: _refused(cluster), 10, f"a 6th connection to be refused ({setting}=5)")
    held.pop().close()
    with wait_until(lambda: _admitted(cluster), 10, "a connection once one of the 5 closed") as client:
        assert client.request(ApiKey.API_VERSIONS, 0, {}).error_code == 0
    for sock in held:
        sock.close()
    assert f"{setting}=5" in node_log(cluster)


def _refused(cluster: RunningCluster) -> bool:
    with _connect(cluster) as sock:
        sock.sendall(struct.pack(">i", 10) + struct.pack(">hhih", 18, 0, 1, 0))
        return _closed_without_answer(sock)


def _admitted(cluster: RunningCluster) -> object:
    client = wire(cluster, timeout=2)
    try:
        client.request(ApiKey.API_VERSIONS, 0, {})
    except ConnectionError:
        client.close()
        return None
    return client


def test_idle_connections_are_closed_and_busy_ones_are_not(pko_cluster_factory: ClusterFactory) -> None:
    cluster = pko_cluster_factory(connections_max_idle_ms=500)
    idle = _connect(cluster)
    stalled = _connect(cluster)
    stalled.sendall(struct.pack(">i", 1000) + bytes(100))  # then nothing: stalled inside a frame
    started = time.monotonic()
    with wire(cluster) as busy:
        while time.monotonic() - started < 1.5:  # three idle periods, one request every 100 ms
            assert busy.request(ApiKey.API_VERSIONS, 0, {}).error_code == 0
            time.sleep(0.1)
        assert _closed_without_answer(idle) and _closed_without_answer(stalled)
        closed_after_s = time.monotonic() - started
    idle.close()
    stalled.close()
    assert "connections.max.idle.ms=500" in node_log(cluster)
    print(json.dumps({"test": "idle-close", "connections.max.idle.ms": 500,
                      "idle_closed_within_s": round(closed_after_s, 2)}))


def test_a_fetch_response_is_capped_by_the_brokers_fetch_max_bytes(pko_cluster_factory: ClusterFactory) -> None:
    cluster = pko_cluster_factory(fetch_max_bytes=3000)
    topic = unique_topic("capped")
    create_topic(cluster, topic, partitions=1)
    with wire(cluster) as client:
        for _ in range(10):
            assert produce_raw(client, topic, 0, build_batch([bytes(900)])).error_code == 0
        answer = fetch_raw(client, topic, 0, 0, max_bytes=10 * MiB)
    batch_size = len(build_batch([bytes(900)]))
    assert len(answer.records) == 3 * batch_size  # whole batches up to 3000 bytes, of the 10 there are
