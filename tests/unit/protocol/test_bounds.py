"""The bounds walk that runs before kio's native reader (pykafka_ops/protocol/bounds.py).

Every length in a body must be checked against the bytes left in the frame before anything is
allocated for it: the probe's frames (specs/reliability-probe.md §3.2) made kio reserve 34 GB.
These tests pin each rule on hand-built bodies, and the walk's agreement with kio on real
encodings of every request and response schema kio knows.
"""

from __future__ import annotations

import importlib
import io
import random
import struct

import pytest
from kio.schema.index import schema_name_map
from kio.serial import entity_reader, entity_writer

from fuzz.examples import example
from pykafka_ops.protocol import bounds, codec
from pykafka_ops.protocol.api_keys import ApiKey

#: The probe's killer frames (size prefix included): Metadata v9 and ListGroups v4 whose
#: compact arrays claim 4 294 967 294 elements.
METADATA_V9_FRAME = bytes.fromhex("0000001a00030009000000010002667a00ffffffff0f03667a0000000000")
LIST_GROUPS_V4_FRAME = bytes.fromhex("00000013001000040000000100026" "67a00ffffffff0f00")


def _schemas() -> list[tuple[str, type]]:
    found = []
    for name, versions in sorted(schema_name_map.items()):
        for version, kinds in sorted(versions.items()):
            for kind, path in kinds.items():
                module, cls = path.split(":")
                if name != "request_header":  # kio reads its client id specially; codec parses headers itself
                    found.append((f"{name}-v{version}-{kind.name}", getattr(importlib.import_module(module), cls)))
    return found


SCHEMAS = _schemas()


def _encode(schema: type, value: object) -> bytes:
    out = io.BytesIO()
    entity_writer(schema)(out, value)
    return out.getvalue()


@pytest.mark.parametrize(("name", "schema"), SCHEMAS, ids=[n for n, _ in SCHEMAS])
def test_the_walk_ends_where_kio_ends_on_real_encodings(name: str, schema: type) -> None:
    for seed in range(3):
        data = _encode(schema, example(schema, random.Random(f"{name}-{seed}")))
        _value, kio_size = entity_reader(schema)(data, 0)
        assert bounds.check(schema, data, 0) == kio_size == len(data)


@pytest.mark.parametrize("frame", [METADATA_V9_FRAME, LIST_GROUPS_V4_FRAME], ids=["metadata-v9", "list-groups-v4"])
def test_the_probes_frames_are_malformed_not_allocated(frame: bytes) -> None:
    view = memoryview(bytearray(frame[4:]))
    header = codec.decode_request_header(view)
    with pytest.raises(codec.CodecError, match="cannot fit"):
        codec.decode_request(header.api_key, header.api_version, view, header.size)


# --- each rule on a hand-built body --------------------------------------------------------------


def _metadata_v9(topics: bytes, tail: bytes = b"\x01\x00\x00\x00") -> memoryview:
    """A MetadataRequest v9 body: compact topics array bytes, then the booleans and tags."""
    return memoryview(topics + tail)


def _decode(api_key: int, version: int, body: bytes) -> object:
    return codec.decode_request(api_key, version, memoryview(body), 0)


def test_a_compact_array_longer_than_the_frame_is_refused() -> None:
    with pytest.raises(codec.CodecError, match="array of 4294967294 elements cannot fit"):
        _decode(ApiKey.METADATA, 9, bytes(_metadata_v9(b"\xff\xff\xff\xff\x0f")))


def test_a_legacy_array_longer_than_the_frame_is_refused() -> None:
    body = struct.pack(">i", 2**31 - 1) + b"\x01"  # Metadata v4: topics int32 count, allow_auto
    with pytest.raises(codec.CodecError, match="array of 2147483647 elements cannot fit"):
        _decode(ApiKey.METADATA, 4, body)


def test_an_array_is_counted_at_the_smallest_size_of_its_elements() -> None:
    # 3 topics of Metadata v4 take at least 2 bytes each (an empty legacy string): 5 bytes cannot hold them
    body = struct.pack(">i", 3) + b"\x00\x00\x00\x00\x00"
    with pytest.raises(codec.CodecError, match="cannot fit in the 5 bytes left"):
        _decode(ApiKey.METADATA, 4, body)


def test_a_string_past_the_end_is_refused() -> None:
    body = struct.pack(">i", 1) + struct.pack(">h", 30_000) + b"abc" + b"\x01"
    with pytest.raises(codec.CodecError, match="string of 30000 bytes runs past"):
        _decode(ApiKey.METADATA, 4, body)


def test_a_negative_legacy_string_length_other_than_null_is_refused() -> None:
    body = struct.pack(">i", 1) + struct.pack(">h", -2) + b"\x01"
    with pytest.raises(codec.CodecError, match="string length -2"):
        _decode(ApiKey.METADATA, 4, body)


def test_a_null_where_the_schema_forbids_it_is_refused() -> None:
    # CreateTopics v5 (flexible): topics is not nullable; compact length 0 means null
    with pytest.raises(codec.CodecError, match="non-null array"):
        _decode(ApiKey.CREATE_TOPICS, 5, b"\x00" + b"\x00" * 5 + b"\x00")


def test_compact_bytes_past_the_end_are_refused() -> None:
    # Produce v9 body through kio (the broker uses fastpath; our client decodes through kio too)
    body = b"\x00" + struct.pack(">hi", 1, 1000) + b"\x02" + b"\x02t" + b"\x02" + struct.pack(">i", 0)
    with pytest.raises(codec.CodecError, match="bytes of 999999 bytes runs past"):
        _decode(ApiKey.PRODUCE, 9, body + b"\xc0\x84\x3d" + b"x" * 10)


def test_a_varint_longer_than_5_bytes_is_refused() -> None:
    with pytest.raises(codec.CodecError, match="longer than 5 bytes"):
        _decode(ApiKey.METADATA, 9, b"\x80\x80\x80\x80\x80\x01" + b"\x01\x00\x00\x00")


def test_more_tagged_fields_than_the_frame_can_hold_are_refused() -> None:
    with pytest.raises(codec.CodecError, match="tagged fields cannot fit"):
        _decode(ApiKey.METADATA, 9, b"\x01\x01\x00\x00" + b"\xff\xff\xff\xff\x0f")


def test_a_tagged_field_past_the_end_is_refused() -> None:
    with pytest.raises(codec.CodecError, match="tagged field 7 of 100 bytes runs past"):
        _decode(ApiKey.METADATA, 9, b"\x01\x01\x00\x00" + b"\x01\x07\x64" + b"x" * 10)


def test_a_known_tagged_field_must_fill_its_declared_size() -> None:
    # FetchRequest v12's tag 0 is cluster_id (a compact string): 2 bytes declared, 3 held
    request = codec.encode_request(ApiKey.FETCH, 12, 1, "c", {
        "max_wait": 0, "min_bytes": 1, "topics": [], "forgotten_topics_data": [], "cluster_id": "ab"})
    view = memoryview(bytearray(request))
    header = codec.decode_request_header(view)
    size_at = len(request) - 4  # ... count=1, tag=0, size=3, then 0x03 "ab"
    assert request[size_at - 2 : size_at + 1] == b"\x01\x00\x03"
    view[size_at] = 2
    with pytest.raises(codec.CodecError, match="declares 2 bytes but holds 3"):
        codec.decode_request(ApiKey.FETCH, 12, view, header.size)


def test_a_nullable_struct_is_read_after_its_marker() -> None:
    from kio.schema.describe_topic_partitions.v0.request import DescribeTopicPartitionsRequest

    value = DescribeTopicPartitionsRequest(topics=(), response_partition_limit=1, cursor=None)
    data = _encode(DescribeTopicPartitionsRequest, value)
    assert bounds.check(DescribeTopicPartitionsRequest, data, 0) == len(data)
    fields = bounds.length_fields(DescribeTopicPartitionsRequest, data, 0)
    assert [f.what for f in fields] == ["array", "struct", "tagged_count"]
    assert data[fields[1].position] == 0xFF  # the null marker


def test_length_fields_lists_every_length_in_wire_order() -> None:
    body = codec.encode_request(ApiKey.METADATA, 4, 1, "c", {"topics": [{"name": "ab"}, {"name": "c"}]})[11:]
    fields = bounds.length_fields(codec.load_request_schema(ApiKey.METADATA, 4), body, 0)
    assert [(f.position, f.encoding, f.what) for f in fields] == [
        (0, "int32", "array"), (4, "int16", "string"), (8, "int16", "string")]


def test_a_response_from_a_hostile_broker_is_refused_too() -> None:
    body = b"\x00\x00" + struct.pack(">i", 2**31 - 1)  # ApiVersions v0: error 0, 2^31-1 api keys
    with pytest.raises(codec.CodecError, match="cannot fit"):
        codec.decode_response(ApiKey.API_VERSIONS, 0, body)


def test_consumer_subscription_metadata_with_a_lying_length_is_ignored() -> None:
    metadata = struct.pack(">hi", 0, 2**31 - 1)  # ConsumerProtocolSubscription v0: topics count
    assert codec.consumer_subscription_topics(metadata) is None
