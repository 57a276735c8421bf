"""Requests that used to raise inside a handler now get Kafka's error code (reliability-probe §3.6, §3.7).

Each case once closed the connection with a traceback in the node log; now the request is
answered, the connection stays usable, and nothing else of the request is applied twice.
"""

from __future__ import annotations

import struct

import pytest
from crc32c import crc32c

from cluster.pytest_plugin import RunningCluster
from integration_helpers import build_batch, create_topic, list_offset, node_log, unique_topic, wire
from pykafka_ops.protocol.api_keys import ApiKey

CORRUPT_MESSAGE = 2
INVALID_GROUP_ID = 24
INVALID_REQUEST = 42
ATTRIBUTES = 21  # record batch: int16 attributes, the first byte the CRC-32C covers
CRC = 17


def _with_codec(batch: bytes, codec_id: int) -> bytes:
    raw = bytearray(batch)
    struct.pack_into(">h", raw, ATTRIBUTES, codec_id)
    struct.pack_into(">I", raw, CRC, crc32c(bytes(raw[ATTRIBUTES:])))
    return bytes(raw)


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
