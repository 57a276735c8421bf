"""Hostile bytes on the broker port (specs/reliability.md §3): Kafka's answer, and the node lives.

Kafka closes the connection on anything it cannot parse (a bad size prefix, an unknown API key,
an unsupported version, a truncated body) and answers error codes for well-formed requests with
bad contents. After every case the SAME node must still serve ApiVersions + Produce + Fetch on a
new connection, and a connection opened before the bad input must be unaffected.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import time
from collections.abc import Callable, Iterator

import psutil
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from integration_helpers import (
    address,
    assert_node_serves,
    build_batch,
    create_topic,
    produce_raw,
    unique_topic,
    wire,
)
from pykafka_ops.client.wire import WireClient
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey
from cluster.pytest_plugin import RunningCluster

CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC_EXCEPTION = 17
INVALID_REQUIRED_ACKS = 21
UNSUPPORTED_VERSION = 35
#: How long a closed connection may take to show as closed, in seconds.
CLOSE_TIMEOUT_S = 5.0


# --- raw connections -----------------------------------------------------------------------------


def connect(cluster: RunningCluster) -> socket.socket:
    return socket.create_connection(address(cluster), timeout=CLOSE_TIMEOUT_S)


def header(api_key: int, version: int, correlation_id: int = 7, client_id: bytes = b"bad-input") -> bytes:
    """A request header v1 (key, version, correlation id, client id) — never flexible, so
    it can name any key and version."""
    return struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id


def framed(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def assert_closed(sock: socket.socket, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    """The broker closes the connection without answering anything."""
    sock.settimeout(timeout_s)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the connection is still open after {timeout_s:g} s (received {received[:60]!r})")
    assert received == b"", f"expected a close without an answer, got {received[:60]!r}"


def recv_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "the broker closed the connection"
            data += chunk
        return data

    (size,) = struct.unpack(">i", exactly(4))
    return exactly(size)


@pytest.fixture
def bystander(cluster: RunningCluster) -> Iterator[WireClient]:
    """A connection opened (and used) before the bad input; must work afterwards too."""
    with wire(cluster) as client:
        assert client.request(ApiKey.API_VERSIONS, 0, {}).error_code == 0
        yield client


@pytest.fixture
def still_serving(cluster: RunningCluster, bystander: WireClient) -> Iterator[None]:
    """After the test: the node serves a new connection and the bystander's."""
    yield
    assert_node_serves(cluster)
    assert bystander.request(ApiKey.API_VERSIONS, 0, {}).error_code == 0
    assert bystander.request(ApiKey.METADATA, 12, {"topics": None}).brokers


def node_rss(cluster: RunningCluster) -> int:
    (node,) = cluster.status()
    assert node.pid is not None
    return psutil.Process(node.pid).memory_info().rss


# --- framing -------------------------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("still_serving")


def test_size_prefix_larger_than_the_bytes_sent_then_close(cluster: RunningCluster) -> None:
    with connect(cluster) as sock:
        sock.sendall(struct.pack(">i", 1000) + header(ApiKey.API_VERSIONS, 0))
        # Kafka keeps reading a short frame: meanwhile the node serves everyone else
        assert_node_serves(cluster)


def test_negative_size_closes_the_connection(cluster: RunningCluster) -> None:
    with connect(cluster) as sock:
        sock.sendall(struct.pack(">i", -1) + header(ApiKey.API_VERSIONS, 0))
        assert_closed(sock)


def test_http_request_is_a_size_above_socket_request_max_bytes_and_closes(cluster: RunningCluster) -> None:
    rss_before = node_rss(cluster)
    with connect(cluster) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")  # size 0x47455420 ≈ 1.19 GB
        assert_closed(sock)
    assert node_rss(cluster) - rss_before < 50 * 2**20, "the declared size was allocated"


def test_unknown_api_key_closes_the_connection(cluster: RunningCluster) -> None:
    with connect(cluster) as sock:
        sock.sendall(framed(header(9999, 0) + b"\x00" * 8))
        assert_closed(sock)


def test_unsupported_metadata_version_closes_the_connection(cluster: RunningCluster) -> None:
    with connect(cluster) as sock:
        sock.sendall(framed(header(ApiKey.METADATA, 99) + b"\x00" * 8))
        assert_closed(sock)


def test_unsupported_api_versions_version_is_answered_in_v0(cluster: RunningCluster) -> None:
    """KIP-511: the broker answers in v0 with UNSUPPORTED_VERSION and its ranges; the client
    then picks a version it shares and goes on on the same connection."""
    with connect(cluster) as sock:
        sock.sendall(framed(header(ApiKey.API_VERSIONS, 99, correlation_id=4242) + b"\x01\x01\x00"))
        frame = recv_frame(sock)
        assert struct.unpack_from(">i", frame)[0] == 4242
        answer = codec.decode_response(ApiKey.API_VERSIONS, 0, frame, 4)
        assert answer.error_code == UNSUPPORTED_VERSION
        ranges = {k.api_key: (k.min_version, k.max_version) for k in answer.api_keys}
        assert ranges[ApiKey.API_VERSIONS][0] == 0 and ranges[ApiKey.API_VERSIONS][1] >= 3
        assert {ApiKey.PRODUCE, ApiKey.FETCH, ApiKey.METADATA} <= set(ranges)

        sock.sendall(framed(header(ApiKey.API_VERSIONS, 0, correlation_id=4243)))
        again = recv_frame(sock)
        assert struct.unpack_from(">i", again)[0] == 4243
        assert codec.decode_response(ApiKey.API_VERSIONS, 0, again, 4).error_code == 0


def test_api_versions_v4_as_java_4_sends_it(cluster: RunningCluster) -> None:
    """Kafka 4.0's ApiVersions v4 is answered as itself (no UNSUPPORTED_VERSION round trip)."""
    with wire(cluster) as client:
        answer = client.request(ApiKey.API_VERSIONS, 4, {"client_software_name": "apache-kafka-java",
                                                         "client_software_version": "4.1.0"})
    ranges = {k.api_key: (k.min_version, k.max_version) for k in answer.api_keys}
    assert answer.error_code == 0 and ranges[ApiKey.API_VERSIONS] == (0, 4)


def test_metadata_v13_has_a_top_level_error_code(cluster: RunningCluster) -> None:
    """KIP-1102's field, 0 unless the client must rebootstrap (never, as Kafka 4.0)."""
    topic = unique_topic("md13")
    create_topic(cluster, topic, partitions=2)
    with wire(cluster) as client:
        answer = client.request(ApiKey.METADATA, 13, {"topics": [{"name": topic, "topic_id": None}],
                                                      "allow_auto_topic_creation": False,
                                                      "include_topic_authorized_operations": False})
    (described,) = answer.topics
    assert (answer.error_code, described.error_code, len(described.partitions)) == (0, 0, 2)


def test_garbage_bytes_close_the_connection(cluster: RunningCluster) -> None:
    with connect(cluster) as sock:
        sock.sendall(framed(b"\xff\xfe" + bytes(random.Random(1).randrange(256) for _ in range(40))))
        assert_closed(sock)


def test_garbage_after_a_good_request_gets_the_answer_then_a_close(cluster: RunningCluster) -> None:
    with connect(cluster) as sock:
        sock.sendall(framed(header(ApiKey.API_VERSIONS, 0, correlation_id=1)) + framed(b"\xff" * 12))
        assert struct.unpack_from(">i", recv_frame(sock))[0] == 1
        assert_closed(sock)


def test_truncated_produce_body_closes_the_connection(cluster: RunningCluster) -> None:
    request = codec.encode_request(ApiKey.PRODUCE, 9, 5, "bad-input", {
        "transactional_id": None, "acks": -1, "timeout": 5000,
        "topic_data": [{"name": unique_topic("trunc"), "partition_data": [
            {"index": 0, "records": build_batch([b"x" * 100])}]}]})
    with connect(cluster) as sock:
        sock.sendall(framed(request[:-60]))  # the records field claims more bytes than follow
        assert_closed(sock)


def test_produce_body_cut_inside_the_topic_array_closes_the_connection(cluster: RunningCluster) -> None:
    request = codec.encode_request(ApiKey.PRODUCE, 9, 5, "bad-input", {
        "transactional_id": None, "acks": -1, "timeout": 5000, "topic_data": []})
    with connect(cluster) as sock:
        sock.sendall(framed(request[:-2] + b"\x05"))  # 4 topics announced, none follows
        assert_closed(sock)


# --- well-formed requests with bad contents ------------------------------------------------------


@pytest.fixture(scope="module")
def topic(cluster: RunningCluster) -> str:
    name = unique_topic("bad-input")
    create_topic(cluster, name, partitions=1)
    return name


def test_batch_with_a_wrong_crc_is_corrupt_message(topic: str, bystander: WireClient) -> None:
    batch = bytearray(build_batch([b"value-%d" % i for i in range(5)]))
    batch[-1] ^= 0x01  # a record byte: covered by the CRC-32C
    answer = produce_raw(bystander, topic, 0, bytes(batch))
    assert answer.error_code == CORRUPT_MESSAGE


def test_batch_above_topic_max_message_bytes_is_message_too_large(cluster: RunningCluster,
                                                                  bystander: WireClient) -> None:
    small = unique_topic("small-max")
    create_topic(cluster, small, partitions=1, config={"max.message.bytes": "1000"})
    assert produce_raw(bystander, small, 0, build_batch([b"x" * 500])).error_code == 0
    assert produce_raw(bystander, small, 0, build_batch([b"x" * 2000])).error_code == MESSAGE_TOO_LARGE


def test_2_mib_batch_with_default_limits_is_message_too_large(topic: str, bystander: WireClient) -> None:
    """Kafka checks max.message.bytes (1 MiB + 12 by default) before the segment size, so a
    batch above both is MESSAGE_TOO_LARGE, not RECORD_LIST_TOO_LARGE (UnifiedLog order)."""
    answer = produce_raw(bystander, topic, 0, build_batch([bytes(2 * 2**20)]))
    assert answer.error_code == MESSAGE_TOO_LARGE


def test_produce_to_an_internal_topic_is_invalid_topic_exception(bystander: WireClient) -> None:
    # clients may not write to __consumer_offsets (only the group coordinator does), as Kafka
    answer = produce_raw(bystander, "__consumer_offsets", 0, build_batch([b"x"]))
    assert answer.error_code == INVALID_TOPIC_EXCEPTION


def test_produce_with_acks_5_is_invalid_required_acks(topic: str, bystander: WireClient) -> None:
    answer = produce_raw(bystander, topic, 0, build_batch([b"x"]), acks=5)
    assert answer.error_code == INVALID_REQUIRED_ACKS


INVALID_NAMES = ["bad name!", "..", ".", "t" * 300, "slash/name"]


@pytest.mark.parametrize("name", INVALID_NAMES, ids=["space-bang", "dotdot", "dot", "300-chars", "slash"])
def test_invalid_topic_name_in_metadata_is_invalid_topic_exception(bystander: WireClient, name: str) -> None:
    answer = bystander.request(ApiKey.METADATA, 12, {"topics": [{"name": name}], "allow_auto_topic_creation": True})
    (topic_answer,) = answer.topics
    assert topic_answer.error_code == INVALID_TOPIC_EXCEPTION


@pytest.mark.parametrize("name", INVALID_NAMES, ids=["space-bang", "dotdot", "dot", "300-chars", "slash"])
def test_invalid_topic_name_in_create_topics_is_invalid_topic_exception(bystander: WireClient, name: str) -> None:
    answer = bystander.request(ApiKey.CREATE_TOPICS, 7, {"timeout": 5000, "validate_only": False, "topics": [
        {"name": name, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}]})
    (topic_answer,) = answer.topics
    assert topic_answer.error_code == INVALID_TOPIC_EXCEPTION


def test_invalid_topic_name_through_the_admin_client(cluster: RunningCluster) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    client = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    futures = client.create_topics([NewTopic("bad name!", 1, 1)], request_timeout=10)
    with pytest.raises(KafkaException) as failure:
        futures["bad name!"].result(timeout=15)
    assert failure.value.args[0].code() == INVALID_TOPIC_EXCEPTION


# --- fuzzing -------------------------------------------------------------------------------------

#: API keys worth aiming at: ours, Kafka ones we lack, and nonsense.
FUZZ_KEYS = st.one_of(st.sampled_from([0, 1, 2, 3, 18, 19, 20, 21, 22, 32, 37, 60, 10, 11, 50]),
                      st.integers(-32768, 32767))
FUZZ_VERSIONS = st.one_of(st.integers(0, 13), st.integers(-32768, 32767))


@st.composite
def frames(draw: Callable[..., object]) -> tuple[bytes, int | None]:
    """(bytes to send, correlation id or None when the size prefix lies)."""
    correlation_id = draw(st.integers(0, 2**31 - 1))
    client_id = draw(st.binary(max_size=12))
    body = draw(st.one_of(
        st.binary(max_size=200),
        # a real request's body with a few bytes flipped or cut off
        st.builds(lambda data, cut, flips: _mutate(data, cut, flips),
                  st.sampled_from(_SAMPLE_BODIES), st.integers(0, 40), st.lists(st.integers(0, 10_000), max_size=3)),
    ))
    payload = header(draw(FUZZ_KEYS), draw(FUZZ_VERSIONS), correlation_id, client_id) + body  # type: ignore[arg-type]
    size_lie = draw(st.sampled_from([0, 0, 0, 0, 1, -1, 1000, -10**9, 2**31 - 1]))
    if size_lie:
        return struct.pack(">i", max(-(2**31), min(2**31 - 1, len(payload) + size_lie))) + payload, None
    return framed(payload), correlation_id  # type: ignore[return-value]


def _mutate(data: bytes, cut: int, flips: list[int]) -> bytes:
    out = bytearray(data[: max(len(data) - cut, 0)])
    for flip in flips:
        if out:
            out[flip % len(out)] ^= 0xFF
    return bytes(out)


def _body(api_key: int, version: int, body: dict[str, object]) -> bytes:
    """A real request body: the encoded request without its header (v1, or v2 when flexible)."""
    header_size = 2 + 2 + 4 + 2 + len("s") + (1 if codec.is_flexible(api_key, version) else 0)
    return codec.encode_request(api_key, version, 0, "s", body)[header_size:]


_SAMPLE_BODIES = [
    _body(ApiKey.PRODUCE, 9, {
        "transactional_id": None, "acks": 1, "timeout": 1000,
        "topic_data": [{"name": "fuzz", "partition_data": [{"index": 0, "records": build_batch([b"f"])}]}]}),
    _body(ApiKey.METADATA, 12, {"topics": [{"name": "fuzz-meta"}], "allow_auto_topic_creation": False}),
    _body(ApiKey.FETCH, 12, {
        "max_wait": 0, "min_bytes": 1, "max_bytes": 1000, "topics": [{"topic": "fuzz-never-created", "partitions": [
            {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1000}]}]}),
]


#: Wall-clock budget of the fuzzer, in seconds: examples past it are skipped (200 take ~3 s).
FUZZ_BUDGET_S = 30.0


def test_fuzzed_frames_get_an_answer_or_a_close_and_the_node_keeps_serving(cluster: RunningCluster) -> None:
    examples = {"count": 0, "answered": 0, "closed": 0}
    deadline = time.monotonic() + FUZZ_BUDGET_S

    @seed(20250101)
    @settings(max_examples=200, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(frames())
    def one_frame(example: tuple[bytes, int | None]) -> None:
        if time.monotonic() > deadline:
            return
        data, correlation_id = example
        with connect(cluster) as sock:
            with contextlib.suppress(ConnectionError):
                sock.sendall(data)
            if correlation_id is not None:
                outcome = _answer_or_close(sock, correlation_id)
                examples[outcome] += 1
        examples["count"] += 1
        if examples["count"] % 50 == 0:
            assert_node_serves(cluster)

    one_frame()
    assert examples["count"] >= 100, examples
    assert examples["closed"] > 0


def _answer_or_close(sock: socket.socket, correlation_id: int) -> str:
    """Read until the answer to ``correlation_id`` arrives ("answered") or the broker closes
    ("closed"); anything else (a wrong correlation id, silence) fails."""
    sock.settimeout(CLOSE_TIMEOUT_S)
    try:
        head = sock.recv(4)
        if not head:
            return "closed"
        while len(head) < 4:
            more = sock.recv(4 - len(head))
            assert more, "closed inside a response size"
            head += more
        (size,) = struct.unpack(">i", head)
        frame = b""
        while len(frame) < min(size, 4):
            more = sock.recv(size - len(frame))
            assert more, "closed inside a response"
            frame += more
        assert struct.unpack_from(">i", frame)[0] == correlation_id, "an answer with the wrong correlation id"
        return "answered"
    except ConnectionResetError:
        return "closed"
    except TimeoutError:
        pytest.fail(f"no answer and no close within {CLOSE_TIMEOUT_S:g} s")
