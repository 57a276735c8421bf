"""``__consumer_offsets`` placement and record formats, against bytes laid out by hand from
Kafka's schemas (OffsetCommitKey/Value, GroupMetadataKey/Value JSON in group-coordinator/; kio
does not ship these), plus round trips."""

from __future__ import annotations

import pytest

from cluster.group.offsets_topic import (
    CorruptOffsetsRecordError,
    GroupMetadataKey,
    GroupMetadataValue,
    MemberMetadata,
    OffsetCommitKey,
    OffsetCommitValue,
    decode_group_metadata_value,
    decode_key,
    decode_offset_commit_value,
    encode_group_metadata_key,
    encode_group_metadata_value,
    encode_offset_commit_key,
    encode_offset_commit_value,
    java_string_hash,
    partition_for,
)

TS = 1_700_000_000_000  # 0x18BCFE56800


@pytest.mark.parametrize(("text", "expected"), [
    ("", 0),
    ("a", 97),
    ("abc", 96354),
    ("hello", 99162322),
    ("console-consumer-12345", 158455506),
    ("polygenelubricants", -(2**31)),  # Java's classic Integer.MIN_VALUE string
    ("é", 0xE9),
    ("😀", 0xD83D * 31 + 0xDE00),  # a surrogate pair counts as two UTF-16 code units
])
def test_java_string_hash_matches_java(text: str, expected: int) -> None:
    assert java_string_hash(text) == expected


def test_partition_for_uses_kafkas_abs_so_int32_min_maps_to_partition_zero() -> None:
    assert partition_for("polygenelubricants", 50) == 0
    assert partition_for("hello", 50) == 99162322 % 50
    assert partition_for("g", 50) == 103 % 50
    assert partition_for("console-consumer-12345", 7) == 158455506 % 7


def test_offset_commit_key_bytes() -> None:
    key = OffsetCommitKey("grp", "orders", 3)
    expected = bytes.fromhex("0001" "0003" "677270" "0006" "6f7264657273" "00000003")
    assert encode_offset_commit_key(key) == expected
    assert decode_key(expected) == key
    assert decode_key(bytes.fromhex("0000" "0003" "677270" "0006" "6f7264657273" "00000003")) == key  # key v0


def test_offset_commit_value_v3_bytes() -> None:
    value = OffsetCommitValue(offset=42, leader_epoch=5, metadata="m", commit_timestamp=TS)
    expected = bytes.fromhex("0003" "000000000000002a" "00000005" "0001" "6d" "0000018bcfe56800")
    assert encode_offset_commit_value(value) == expected
    assert decode_offset_commit_value(expected) == value


def test_offset_commit_value_with_an_expiry_is_written_as_v1() -> None:
    value = OffsetCommitValue(offset=7, leader_epoch=-1, metadata="", commit_timestamp=TS, expire_timestamp=TS + 1)
    expected = bytes.fromhex("0001" "0000000000000007" "0000" "0000018bcfe56800" "0000018bcfe56801")
    assert encode_offset_commit_value(value) == expected
    assert decode_offset_commit_value(expected) == value


def test_offset_commit_value_v0_decodes_without_epoch_or_expiry() -> None:
    data = bytes.fromhex("0000" "0000000000000009" "0002" "6869" "0000018bcfe56800")
    assert decode_offset_commit_value(data) == OffsetCommitValue(9, -1, "hi", TS)


def test_group_metadata_key_bytes() -> None:
    assert encode_group_metadata_key(GroupMetadataKey("grp")) == bytes.fromhex("0002" "0003" "677270")
    assert decode_key(bytes.fromhex("0002" "0003" "677270")) == GroupMetadataKey("grp")


MEMBER = MemberMetadata("m-1", "i-1", "c", "/h", 300000, 45000, b"\x01", b"\x02\x03")
GROUP = GroupMetadataValue("consumer", 7, "range", "m-1", TS, (MEMBER,))
GROUP_V3 = bytes.fromhex(
    "0003"  # version
    "0008" "636f6e73756d6572"  # protocolType "consumer"
    "00000007"  # generation
    "0005" "72616e6765"  # protocol "range"
    "0003" "6d2d31"  # leader "m-1"
    "0000018bcfe56800"  # currentStateTimestamp
    "00000001"  # members: 1
    "0003" "6d2d31" "0003" "692d31" "0001" "63" "0002" "2f68"  # memberId, groupInstanceId, clientId, clientHost
    "000493e0" "0000afc8"  # rebalanceTimeout 300000, sessionTimeout 45000
    "00000001" "01" "00000002" "0203"  # subscription, assignment
)


def test_group_metadata_value_v3_bytes() -> None:
    assert encode_group_metadata_value(GROUP) == GROUP_V3
    assert decode_group_metadata_value(GROUP_V3) == GROUP


def test_group_metadata_value_v0_takes_the_session_timeout_as_rebalance_timeout() -> None:
    data = bytes.fromhex("0000" "0008" "636f6e73756d6572" "00000001" "ffff" "ffff" "00000001"
                         "0003" "6d2d31" "0001" "63" "0002" "2f68" "00002710" "00000000" "00000000")
    value = decode_group_metadata_value(data)
    assert value == GroupMetadataValue("consumer", 1, None, None, -1,
                                       (MemberMetadata("m-1", None, "c", "/h", 10000, 10000, b"", b""),))


def test_an_empty_group_round_trips() -> None:
    empty = GroupMetadataValue("consumer", 3, None, None, TS, ())
    assert decode_group_metadata_value(encode_group_metadata_value(empty)) == empty


@pytest.mark.parametrize("data", [
    bytes.fromhex("0003" "000000000000002a"),  # truncated
    bytes.fromhex("0009" "000000000000002a" "00000005" "0000" "0000018bcfe56800"),  # unknown version
    bytes.fromhex("0003" "000000000000002a" "00000005" "0000" "0000018bcfe56800" "ff"),  # trailing byte
    bytes.fromhex("0003" "000000000000002a" "00000005" "ffff" "0000018bcfe56800"),  # null metadata
])
def test_malformed_values_raise(data: bytes) -> None:
    with pytest.raises(CorruptOffsetsRecordError):
        decode_offset_commit_value(data)


def test_an_unknown_key_version_raises() -> None:
    with pytest.raises(CorruptOffsetsRecordError):
        decode_key(bytes.fromhex("0004" "0003" "677270"))
