"""The node admin endpoint (issue 19 item 3): ``GET /v1/produce-clients`` lists real producers'
acks and idempotence, and bad input on the admin port gets an HTTP error or a close while the node
goes on serving Kafka and the endpoint."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from integration_helpers import assert_node_serves, unique_topic

from cluster.admin.server import MAX_CONNECTIONS, REQUEST_TIMEOUT_S
from cluster.pytest_plugin import RunningCluster, start_cluster

YAML = """\
cluster: {name: admin-endpoint}
nodes:
  - {id: 1}
broker:
  num.partitions: 1
  auto.create.topics.enable: true
"""
PATH = "/v1/produce-clients"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with start_cluster(YAML, tmp_path_factory.mktemp("admin-endpoint")) as running:
        yield running


def admin_address(cluster: RunningCluster) -> tuple[str, int]:
    port = cluster.config.node(1).admin_port
    assert port is not None, "the pytest plugin gives every node an admin port"
    return cluster.config.broker["admin.bind.address"], port


def get(cluster: RunningCluster, path: str = PATH) -> tuple[int, Any]:
    host, port = admin_address(cluster)
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as answer:
            assert answer.headers["Content-Type"] == "application/json"
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def raw(cluster: RunningCluster, data: bytes) -> bytes:
    """Send ``data``, read until the server closes (b"" if it reset the connection)."""
    with socket.create_connection(admin_address(cluster), timeout=5) as sock:
        try:
            sock.sendall(data)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            return received
        except (ConnectionResetError, BrokenPipeError):
            return b""


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer else 0


def produce(cluster: RunningCluster, config: dict[str, Any], topics: list[str], count: int) -> None:
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 0, **config})
    for topic in topics:
        for i in range(count):
            producer.produce(topic, b"v%d" % i)
            producer.flush(10)   # one request per record: counts are exact
    assert producer.flush(10) == 0


def test_lists_acks_and_idempotence_per_client_and_topic(node: RunningCluster) -> None:
    orders, payments = unique_topic("orders"), unique_topic("payments")
    produce(node, {"client.id": "loose", "acks": 1, "enable.idempotence": False}, [orders, payments], 3)
    produce(node, {"client.id": "safe", "acks": "all", "enable.idempotence": True}, [orders, payments], 2)
    transactional = Producer({"bootstrap.servers": node.bootstrap_servers, "client.id": "txn",
                              "transactional.id": unique_topic("txn")})
    transactional.init_transactions(10)
    transactional.begin_transaction()
    transactional.produce(orders, b"in a transaction")
    transactional.commit_transaction(10)
    status, body = get(node)
    assert status == 200 and body["node_id"] == 1 and body["window_ms"] == 300_000 and body["evicted"] == 0
    entries = {(c["client_id"], c["topic"]): c for c in body["clients"] if c["topic"] in (orders, payments)}
    assert set(entries) == {("loose", orders), ("loose", payments), ("safe", orders), ("safe", payments),
                            ("txn", orders)}
    assert entries["txn", orders]["transactional"] and entries["txn", orders]["idempotent"]
    assert entries["txn", orders]["acks"] == {"-1": 1}
    now_ms = time.time() * 1000
    for topic in (orders, payments):
        loose, safe = entries["loose", topic], entries["safe", topic]
        assert loose["acks"] == {"1": 3} and loose["requests"] == 3
        assert not loose["idempotent"] and not loose["transactional"]
        assert safe["acks"] == {"-1": 2} and safe["requests"] == 2
        assert safe["idempotent"] and safe["idempotent_requests"] == 2 and not safe["transactional"]
        assert now_ms - 60_000 < safe["last_seen_ms"] <= now_ms + 1_000


def test_bound_to_loopback_only(node: RunningCluster) -> None:
    host, port = admin_address(node)
    assert host == "127.0.0.1"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", port), timeout=2).close()


def test_bad_input_gets_errors_and_the_node_goes_on(node: RunningCluster) -> None:
    # half a request, then silence: answered 408 after REQUEST_TIMEOUT_S (checked at the end)
    silent = socket.create_connection(admin_address(node), timeout=REQUEST_TIMEOUT_S + 5)
    silent.sendall(b"GET /v1/produce-clients HTTP/1.1\r\nHost: loc")
    started = time.monotonic()
    assert status_of(raw(node, b"\x00\x00\x00\x1c\x00\x12\x00\x03garbage\xff\xfe\r\n\r\n")) == 400
    assert status_of(raw(node, b"\x16\x03\x01\x02\x00" + bytes(512))) in (0, 408)  # a TLS hello: no head ever
    assert status_of(raw(node, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")) in (0, 431)
    assert get(node, "/v1/nothing-here")[0] == 404
    post = raw(node, b"POST /v1/produce-clients HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    assert status_of(post) in (400, 405)   # a body is refused before the method is looked at
    assert status_of(raw(node, b"POST /v1/produce-clients HTTP/1.1\r\nHost: x\r\n\r\n")) == 405
    assert status_of(raw(node, b"DELETE /v1/produce-clients HTTP/1.0\r\n\r\n")) == 405
    many = [socket.create_connection(admin_address(node), timeout=5) for _ in range(200)]
    try:
        refused = 0
        for sock in many[MAX_CONNECTIONS + 1:]:   # one slot is the silent client's
            try:
                refused += sock.recv(4096).startswith(b"HTTP/1.1 503 ")
            except (ConnectionResetError, TimeoutError):
                pass
        assert refused > 0, "connections past the cap are answered 503"
    finally:
        for sock in many:
            sock.close()
    assert_node_serves(node)
    assert get(node)[0] == 200
    silent.settimeout(max(0.1, REQUEST_TIMEOUT_S + 3 - (time.monotonic() - started)))
    with silent:
        assert silent.recv(4096).startswith(b"HTTP/1.1 408 ")
    assert get(node)[0] == 200
