"""encode_response_chunks: a response whose top-level array arrives pre-encoded is byte-identical
to the same response encoded whole (the Metadata handler caches each topic's entry)."""

from __future__ import annotations

import uuid

import pytest

from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey


def _topic(i: int, partitions: int) -> dict:
    return {"error_code": 0, "name": f"t{i}", "topic_id": uuid.UUID(int=i + 1), "is_internal": False,
            "partitions": [{"error_code": 0, "partition_index": p, "leader_id": 1, "leader_epoch": 3,
                            "replica_nodes": (1, 2), "isr_nodes": (1,), "offline_replicas": ()}
                           for p in range(partitions)],
            "topic_authorized_operations": -(2**31)}


@pytest.mark.parametrize("version", range(13))
@pytest.mark.parametrize("count", [0, 1, 200])  # 200 topics: a compact count of two bytes
def test_chunks_equal_the_whole_encoding(version: int, count: int) -> None:
    topics = [_topic(i, i % 4) for i in range(count)]
    body = {"throttle_time": 0, "brokers": [{"node_id": 1, "host": "h", "port": 9092, "rack": None}],
            "cluster_id": "c", "controller_id": 1, "cluster_authorized_operations": -(2**31)}
    whole = codec.encode_response_body(ApiKey.METADATA, version, {**body, "topics": topics})
    elements = [codec.encode_array_element(ApiKey.METADATA, version, ("topics",), t) for t in topics]
    chunks = codec.encode_response_chunks(ApiKey.METADATA, version, body, "topics", elements)
    assert b"".join(chunks) == whole


def test_an_array_followed_by_a_variable_field_is_refused() -> None:
    with pytest.raises(codec.CodecError):  # Fetch v16: node_endpoints (tagged) follows
        codec.encode_response_chunks(ApiKey.FETCH, 16, {"throttle_time": 0, "error_code": 0,
                                                        "session_id": 0}, "responses", [])


@pytest.mark.parametrize("version", range(13))
def test_a_topic_spliced_from_its_encoded_partitions_equals_the_whole_topic(version: int) -> None:
    topic = _topic(3, 300)
    whole = codec.encode_array_element(ApiKey.METADATA, version, ("topics",), topic)
    partitions = [codec.encode_array_element(ApiKey.METADATA, version, ("topics", "partitions"), p)
                  for p in topic["partitions"]]
    chunks = codec.encode_response_chunks(ApiKey.METADATA, version, {**topic, "partitions": ()}, "partitions",
                                          partitions, path=("topics",))
    assert b"".join(chunks) == whole
