"""Requests that used to raise inside a handler, or were wrongly accepted, get Kafka's answer.

Reliability-probe §3.6 and §3.7: each case once closed the connection with a traceback in the
node log; now the request is answered, the connection stays usable, and nothing else of the
request is applied twice. The protocol fuzzer's findings: batches Kafka's
``ProduceRequest.validateRecords`` and ``LogValidator.validateBatch`` refuse.
"""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c

from cluster.pytest_plugin import RunningCluster
from integration_helpers import build_batch, create_topic, list_offset, node_log, produce_raw, unique_topic, wire
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records.batch import Compression

INVALID_RECORD = 87
UNSUPPORTED_COMPRESSION_TYPE = 76
RECORDS_COUNT = 57
LAST_OFFSET_DELTA = 23

CORRUPT_MESSAGE = 2
INVALID_GROUP_ID = 24
INVALID_REQUEST = 42
ATTRIBUTES = 21  # record batch: int16 attributes, the first byte the CRC-32C covers
CRC = 17


def _patched(batch: bytes, offset: int, fmt: str, value: int) -> bytes:
    """``batch`` with one header field rewritten and its CRC-32C made valid again."""
    raw = bytearray(batch)
    struct.pack_into(fmt, raw, offset, value)
    struct.pack_into(">I", raw, CRC, crc32c(bytes(raw[ATTRIBUTES:])))
    return bytes(raw)


def _with_codec(batch: bytes, codec_id: int) -> bytes:
    return _patched(batch, ATTRIBUTES, ">h", codec_id)


@pytest.mark.parametrize("codec_id", [5, 6, 7])
def test_an_unknown_compression_codec_fails_its_partition_only(cluster: RunningCluster, codec_id: int) -> None:
    topic = unique_topic("codec")
    create_topic(cluster, topic, partitions=2)
    with wire(cluster) as client:
        response = client.request(ApiKey.PRODUCE, 9, {
            "transactional_id": None, "acks": -1, "timeout": 5000, "topic_data": [{"name": topic, "partition_data": [
                {"index": 0, "records": build_batch([b"good"])},
                {"index": 1, "records": _with_codec(build_batch([b"bad"]), codec_id)}]}]})
        answers = {p.index: p.error_code for p in response.responses[0].partition_responses}
        assert answers == {0: 0, 1: CORRUPT_MESSAGE}
        assert client.request(ApiKey.API_VERSIONS, 0, {}).error_code == 0  # still open
    assert list_offset(cluster, topic, 0, -1).offset == 1  # the good partition was written once
    assert list_offset(cluster, topic, 1, -1).offset == 0


@pytest.mark.parametrize("version", range(6))
def test_leave_group_with_an_invalid_group_id_is_answered(cluster: RunningCluster, version: int) -> None:
    body = {"group_id": "", "member_id": "m", "members": [{"member_id": "m", "group_instance_id": None}]}
    with wire(cluster) as client:
        response = client.request(ApiKey.LEAVE_GROUP, version, body)
        assert response.error_code == INVALID_GROUP_ID
        assert client.request(ApiKey.API_VERSIONS, 0, {}).error_code == 0


@pytest.mark.parametrize("version", [10, 11])
def test_metadata_before_v12_with_a_null_topic_name_is_invalid_request(cluster: RunningCluster, version: int) -> None:
    """KafkaApis: topic ids cannot be looked up before v12; the whole request is INVALID_REQUEST."""
    with wire(cluster) as client:
        response = client.request(ApiKey.METADATA, version, {"topics": [{"name": None}, {"name": "x"}]})
        assert [(t.name, t.error_code) for t in response.topics] == [("", INVALID_REQUEST), ("x", INVALID_REQUEST)]
        assert client.request(ApiKey.API_VERSIONS, 0, {}).error_code == 0
    assert "Unexpectedly received None" not in node_log(cluster)


@pytest.fixture(scope="module")
def topic(cluster: RunningCluster) -> str:
    name = unique_topic("validate")
    create_topic(cluster, name, partitions=1)
    return name


@pytest.mark.parametrize(("field", "fmt", "value"), [
    (RECORDS_COUNT, ">i", 2), (RECORDS_COUNT, ">i", 2**31 - 1), (LAST_OFFSET_DELTA, ">i", 2**31 - 1)],
    ids=["count-plus-one", "count-huge", "delta-huge"])
def test_a_compressed_batch_whose_count_and_offset_delta_disagree_is_invalid_record(
        cluster: RunningCluster, topic: str, field: int, fmt: str, value: int) -> None:
    before = list_offset(cluster, topic, 0, -1).offset
    batch = _patched(build_batch([b"x"], compression=Compression.GZIP), field, fmt, value)
    with wire(cluster) as client:
        assert produce_raw(client, topic, 0, batch).error_code == INVALID_RECORD
    assert list_offset(cluster, topic, 0, -1).offset == before  # the log end did not jump


def test_two_batches_in_one_partition_are_invalid_record(cluster: RunningCluster, topic: str) -> None:
    with wire(cluster) as client:
        answer = produce_raw(client, topic, 0, build_batch([b"a"]) + build_batch([b"b"]))
    assert answer.error_code == INVALID_RECORD


def test_an_empty_record_set_is_invalid_record(cluster: RunningCluster, topic: str) -> None:
    with wire(cluster) as client:
        assert produce_raw(client, topic, 0, b"").error_code == INVALID_RECORD


def test_a_producer_id_without_a_sequence_is_invalid_record(cluster: RunningCluster, topic: str) -> None:
    batch = build_batch([b"x"], producer_id=1000, producer_epoch=0, base_sequence=-1)
    with wire(cluster) as client:
        assert produce_raw(client, topic, 0, batch).error_code == INVALID_RECORD


@pytest.mark.parametrize("version", [3, 6, 7])
def test_zstd_needs_produce_v7(cluster: RunningCluster, topic: str, version: int) -> None:
    with wire(cluster) as client:
        answer = produce_raw(client, topic, 0, build_batch([b"z"], compression=Compression.ZSTD), version=version)
    assert answer.error_code == (0 if version >= 7 else UNSUPPORTED_COMPRESSION_TYPE)


def test_a_null_topic_array_in_produce_closes_the_connection(cluster: RunningCluster) -> None:
    import socket

    from integration_helpers import address

    body = struct.pack(">hhih", ApiKey.PRODUCE, 5, 7, 1) + b"c" + struct.pack(">hhii", -1, 1, 5000, -1)
    with socket.create_connection(address(cluster), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)  # transactional id null, acks 1, topics null
        assert sock.recv(1) == b""
