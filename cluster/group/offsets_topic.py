"""``__consumer_offsets``: which partition holds a group, and Kafka's record key/value formats.

A group lives in partition ``abs(groupId.hashCode()) % offsets.topic.num.partitions``, where
``hashCode`` is Java's ``String.hashCode`` (over UTF-16 code units, int32 overflow) and ``abs``
is Kafka's ``Utils.abs`` (INT32_MIN → 0): every Kafka tool computes the same partition, and
Python's per-process ``hash()`` must never be used.

Records (Kafka's ``group-coordinator/src/main/resources/common/message/*.json``; non-flexible
encoding: int16-length strings, -1 = null; int32-length bytes; int32-count arrays). Each key
starts with an int16 that says what the record is; each value with its schema version:

* key version 0 or 1 → OffsetCommitKey: group, topic, partition (int32). We write version 1.
  Value OffsetCommitValue: v0 offset, metadata, commitTimestamp; v1 adds expireTimestamp (only
  v1); v3 adds leaderEpoch after offset. We write v3 — or v1 when the commit asked for an
  expiry time (OffsetCommit v2-v4 ``retention_time``), as Kafka does — and read v0-v3.
* key version 2 → GroupMetadataKey: group. Value GroupMetadataValue: protocolType, generation,
  protocol (nullable), leader (nullable), v2+ currentStateTimestamp, then members
  [memberId, v3+ groupInstanceId (nullable), clientId, clientHost, v1+ rebalanceTimeout,
  sessionTimeout, subscription, assignment]. We write v3 and read v0-v3.
* a null value is a tombstone: the offset (or the group) was deleted; compaction removes both.

Flexible value versions (v4, KIP-915) are not read: nothing we run writes them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

OFFSETS_TOPIC = "__consumer_offsets"
#: Topic settings of ``__consumer_offsets`` (Kafka's ``offsets.topic.segment.bytes`` default).
OFFSETS_TOPIC_CONFIG = {"cleanup.policy": "compact", "segment.bytes": 104_857_600}

OFFSET_COMMIT_KEY_VERSION = 1
GROUP_METADATA_KEY_VERSION = 2
OFFSET_COMMIT_VALUE_VERSION = 3
OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY = 1
GROUP_METADATA_VALUE_VERSION = 3

#: A record's key and value (None: a tombstone).
OffsetsRecord = tuple[bytes, bytes | None]

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")


class CorruptOffsetsRecordError(ValueError):
    """A ``__consumer_offsets`` record that does not parse."""


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode``: ``s[0]*31^(n-1) + … + s[n-1]`` over UTF-16 code units, as int32."""
    units = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(group_id: str, num_partitions: int) -> int:
    """The ``__consumer_offsets`` partition of ``group_id`` (Kafka's ``partitionFor``)."""
    h = java_string_hash(group_id)
    return (0 if h == -(2**31) else abs(h)) % num_partitions


@dataclass(frozen=True)
class OffsetCommitKey:
    """Key of a committed offset."""

    group: str
    topic: str
    partition: int


@dataclass(frozen=True)
class OffsetCommitValue:
    """A committed offset (also the coordinator's cache entry). Times in ms since the epoch."""

    offset: int
    leader_epoch: int
    """-1 when the client did not send one."""
    metadata: str
    commit_timestamp: int
    expire_timestamp: int = -1
    """Only in v1 values (OffsetCommit v2-v4 retention_time); -1 otherwise."""


@dataclass(frozen=True)
class GroupMetadataKey:
    """Key of a group's metadata."""

    group: str


@dataclass(frozen=True)
class MemberMetadata:
    """One member as stored in GroupMetadataValue (timeouts in ms)."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout: int
    session_timeout: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True)
class GroupMetadataValue:
    """A group's generation, protocol, leader and members (with their assignments)."""

    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    current_state_timestamp: int
    members: tuple[MemberMetadata, ...]


# -- encoding ------------------------------------------------------------------------------


class _Writer:
    def __init__(self, version: int) -> None:
        self.out = bytearray(_INT16.pack(version))

    def int32(self, value: int) -> None:
        self.out += _INT32.pack(value)

    def int64(self, value: int) -> None:
        self.out += _INT64.pack(value)

    def string(self, value: str | None) -> None:
        if value is None:
            self.out += _INT16.pack(-1)
            return
        data = value.encode()
        self.out += _INT16.pack(len(data)) + data

    def bytes_(self, value: bytes) -> None:
        self.out += _INT32.pack(len(value)) + value


def encode_offset_commit_key(key: OffsetCommitKey) -> bytes:
    """OffsetCommitKey with key version 1."""
    w = _Writer(OFFSET_COMMIT_KEY_VERSION)
    w.string(key.group)
    w.string(key.topic)
    w.int32(key.partition)
    return bytes(w.out)


def encode_offset_commit_value(value: OffsetCommitValue) -> bytes:
    """OffsetCommitValue v3, or v1 (no leader epoch) when it has an expire timestamp."""
    if value.expire_timestamp >= 0:
        w = _Writer(OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY)
        w.int64(value.offset)
        w.string(value.metadata)
        w.int64(value.commit_timestamp)
        w.int64(value.expire_timestamp)
        return bytes(w.out)
    w = _Writer(OFFSET_COMMIT_VALUE_VERSION)
    w.int64(value.offset)
    w.int32(value.leader_epoch)
    w.string(value.metadata)
    w.int64(value.commit_timestamp)
    return bytes(w.out)


def offset_commit_record(group: str, tp: tuple[str, int], value: OffsetCommitValue | None) -> OffsetsRecord:
    """The record of a committed offset of ``group`` for (topic, partition) ``tp``; None: its tombstone."""
    key = encode_offset_commit_key(OffsetCommitKey(group, tp[0], tp[1]))
    return key, None if value is None else encode_offset_commit_value(value)


def encode_group_metadata_key(key: GroupMetadataKey) -> bytes:
    """GroupMetadataKey (key version 2)."""
    w = _Writer(GROUP_METADATA_KEY_VERSION)
    w.string(key.group)
    return bytes(w.out)


def encode_group_metadata_value(value: GroupMetadataValue) -> bytes:
    """GroupMetadataValue v3."""
    w = _Writer(GROUP_METADATA_VALUE_VERSION)
    w.string(value.protocol_type)
    w.int32(value.generation)
    w.string(value.protocol)
    w.string(value.leader)
    w.int64(value.current_state_timestamp)
    w.int32(len(value.members))
    for m in value.members:
        w.string(m.member_id)
        w.string(m.group_instance_id)
        w.string(m.client_id)
        w.string(m.client_host)
        w.int32(m.rebalance_timeout)
        w.int32(m.session_timeout)
        w.bytes_(m.subscription)
        w.bytes_(m.assignment)
    return bytes(w.out)


# -- decoding ------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def _take(self, fmt: struct.Struct) -> int:
        if self.pos + fmt.size > len(self.data):
            raise CorruptOffsetsRecordError(f"{self.what} ends at byte {len(self.data)}, inside a field")
        (value,) = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return int(value)

    def int16(self) -> int:
        return self._take(_INT16)

    def int32(self) -> int:
        return self._take(_INT32)

    def int64(self) -> int:
        return self._take(_INT64)

    def _raw(self, length: int) -> bytes:
        if length < 0 or self.pos + length > len(self.data):
            raise CorruptOffsetsRecordError(f"{self.what}: a field of {length} bytes runs past the end")
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw

    def nullable_string(self) -> str | None:
        length = self.int16()
        return None if length == -1 else self._raw(length).decode()

    def string(self) -> str:
        value = self.nullable_string()
        if value is None:
            raise CorruptOffsetsRecordError(f"{self.what}: a non-nullable string is null")
        return value

    def bytes_(self) -> bytes:
        return self._raw(self.int32())

    def version(self, supported: range) -> int:
        version = self.int16()
        if version not in supported:
            raise CorruptOffsetsRecordError(f"{self.what} version {version} is not supported")
        return version

    def done(self) -> None:
        if self.pos != len(self.data):
            raise CorruptOffsetsRecordError(f"{self.what}: {len(self.data) - self.pos} bytes left over")


def decode_key(data: bytes) -> OffsetCommitKey | GroupMetadataKey:
    """Decode a record key: an offset commit (key versions 0-1) or a group (key version 2)."""
    r = _Reader(data, "__consumer_offsets key")
    version = r.version(range(0, 3))
    key: OffsetCommitKey | GroupMetadataKey
    if version == GROUP_METADATA_KEY_VERSION:
        key = GroupMetadataKey(r.string())
    else:
        key = OffsetCommitKey(r.string(), r.string(), r.int32())
    r.done()
    return key


def decode_offset_commit_value(data: bytes) -> OffsetCommitValue:
    """Decode OffsetCommitValue v0-v3."""
    r = _Reader(data, "OffsetCommitValue")
    version = r.version(range(0, 4))
    offset = r.int64()
    leader_epoch = r.int32() if version >= 3 else -1
    metadata = r.string()
    commit_timestamp = r.int64()
    expire_timestamp = r.int64() if version == 1 else -1
    r.done()
    return OffsetCommitValue(offset, leader_epoch, metadata, commit_timestamp, expire_timestamp)


def decode_group_metadata_value(data: bytes) -> GroupMetadataValue:
    """Decode GroupMetadataValue v0-v3."""
    r = _Reader(data, "GroupMetadataValue")
    version = r.version(range(0, 4))
    protocol_type = r.string()
    generation = r.int32()
    protocol = r.nullable_string()
    leader = r.nullable_string()
    current_state_timestamp = r.int64() if version >= 2 else -1
    members = []
    for _ in range(r.int32()):
        member_id = r.string()
        group_instance_id = r.nullable_string() if version >= 3 else None
        client_id, client_host = r.string(), r.string()
        rebalance_timeout = r.int32() if version >= 1 else None
        session_timeout = r.int32()
        # v0 had one timeout for both (Kafka's GroupMetadataManager reads it so).
        members.append(MemberMetadata(member_id, group_instance_id, client_id, client_host,
                                      session_timeout if rebalance_timeout is None else rebalance_timeout,
                                      session_timeout, r.bytes_(), r.bytes_()))
    r.done()
    return GroupMetadataValue(protocol_type, generation, protocol, leader, current_state_timestamp, tuple(members))
