"""``__transaction_state``: which partition holds a transactional id, and Kafka's record formats.

A transactional id lives in partition ``abs(transactionalId.hashCode()) %
transaction.state.log.num.partitions`` (Kafka's ``TransactionStateManager.partitionFor``): the
same Java ``String.hashCode`` and ``Utils.abs`` as ``__consumer_offsets`` uses for groups, so
``offsets_topic.partition_for`` is reused.

Records (Kafka's ``transaction-coordinator/src/main/resources/common/message/TransactionLog*.json``,
read as ``kafka.coordinator.transaction.TransactionLog`` does). Key and value each start with an
int16 version:

* key version 0 → TransactionLogKey: TransactionalId (int16-length string).
* value version 0 (non-flexible) → ProducerId int64, ProducerEpoch int16, TransactionTimeoutMs
  int32, TransactionStatus int8 (``TransactionState.id``), TransactionPartitions (nullable int32
  count of [Topic string, PartitionIds int32-count int32s]), TransactionLastUpdateTimestampMs
  int64, TransactionStartTimestampMs int64.
* value version 1 (flexible, KIP-915/KIP-890): the same fields with compact strings/arrays and
  tagged fields (0 PreviousProducerId, 1 NextProducerId, 2 ClientTransactionVersion) — read, never
  written: with transaction version 1 Kafka writes version 0.
* a null value is a tombstone: the transactional id expired (``transactional.id.expiration.ms``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from cluster.group.offsets_topic import partition_for as _java_hash_partition

TRANSACTION_STATE_TOPIC = "__transaction_state"
#: Kafka's transaction.state.log.segment.bytes default; compacted like ``__consumer_offsets``.
TRANSACTION_STATE_SEGMENT_BYTES = 104_857_600

KEY_VERSION = 0
VALUE_VERSION = 0
#: ``TransactionState.EMPTY.id`` (its partitions are written as null).
EMPTY_STATE_ID = 0

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")

TopicPartition = tuple[str, int]


class CorruptTransactionLogRecordError(ValueError):
    """A ``__transaction_state`` record that does not parse."""


def partition_for(transactional_id: str, num_partitions: int) -> int:
    """The ``__transaction_state`` partition of ``transactional_id``."""
    return _java_hash_partition(transactional_id, num_partitions)


def topic_config(min_isr: int) -> dict[str, object]:
    """Settings ``__transaction_state`` is created with (Kafka's ``transactionTopicConfigs``)."""
    return {"cleanup.policy": "compact", "segment.bytes": TRANSACTION_STATE_SEGMENT_BYTES,
            "min.insync.replicas": min_isr}


@dataclass(frozen=True)
class TransactionLogValue:
    """One transactional id's stored state (``TxnTransitMetadata`` as written)."""

    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state_id: int
    partitions: frozenset[TopicPartition] = field(default_factory=frozenset)
    last_update_timestamp_ms: int = -1
    start_timestamp_ms: int = -1
    previous_producer_id: int = -1
    """Only in version 1 values (tag 0); -1 otherwise."""
    next_producer_id: int = -1
    """Only in version 1 values (tag 1); -1 otherwise."""


# -- encoding ------------------------------------------------------------------------------


def _string(value: str) -> bytes:
    data = value.encode()
    return _I16.pack(len(data)) + data


def encode_key(transactional_id: str) -> bytes:
    """TransactionLogKey, version 0."""
    return _I16.pack(KEY_VERSION) + _string(transactional_id)


def by_topic(partitions: Iterable[TopicPartition]) -> dict[str, list[int]]:
    """Partitions grouped by topic, sorted (the log value's and DescribeTransactions' layout)."""
    topics: dict[str, list[int]] = {}
    for topic, index in sorted(partitions):
        topics.setdefault(topic, []).append(index)
    return topics


def encode_value(value: TransactionLogValue) -> bytes:
    """TransactionLogValue, version 0 (what Kafka writes with transaction version 1)."""
    out = bytearray(_I16.pack(VALUE_VERSION))
    out += _I64.pack(value.producer_id) + _I16.pack(value.producer_epoch) + _I32.pack(value.timeout_ms)
    out += _I8.pack(value.state_id)
    topics = by_topic(value.partitions)
    # Kafka's TransactionLog.valueToBytes: an Empty transaction has null partitions, not an empty list
    out += _I32.pack(-1 if value.state_id == EMPTY_STATE_ID else len(topics))
    for topic, indexes in topics.items():
        out += _string(topic) + _I32.pack(len(indexes))
        out += b"".join(_I32.pack(i) for i in indexes)
    out += _I64.pack(value.last_update_timestamp_ms) + _I64.pack(value.start_timestamp_ms)
    return bytes(out)


# -- decoding ------------------------------------------------------------------------------


class _Reader:
    """Bounds-checked reads over one record's key or value."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def _fixed(self, fmt: struct.Struct) -> int:
        if self.pos + fmt.size > len(self.data):
            raise CorruptTransactionLogRecordError(f"{self.what} ends inside a field at byte {len(self.data)}")
        (value,) = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return int(value)

    def i8(self) -> int:
        return self._fixed(_I8)

    def i16(self) -> int:
        return self._fixed(_I16)

    def i32(self) -> int:
        return self._fixed(_I32)

    def i64(self) -> int:
        return self._fixed(_I64)

    def uvarint(self) -> int:
        value = shift = 0
        while True:
            if self.pos >= len(self.data) or shift > 28:
                raise CorruptTransactionLogRecordError(f"{self.what}: a broken varint")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7

    def raw(self, length: int) -> bytes:
        if length < 0 or self.pos + length > len(self.data):
            raise CorruptTransactionLogRecordError(f"{self.what}: a field of {length} bytes runs past the end")
        chunk = self.data[self.pos:self.pos + length]
        self.pos += length
        return chunk

    def string(self, compact: bool) -> str:
        length = self.uvarint() - 1 if compact else self.i16()
        if length < 0:
            raise CorruptTransactionLogRecordError(f"{self.what}: a non-nullable string is null")
        return self.raw(length).decode()

    def count(self, compact: bool) -> int:
        """An array's element count; -1 for null."""
        n = self.uvarint() - 1 if compact else self.i32()
        if n > len(self.data) - self.pos:  # every element takes at least one byte
            raise CorruptTransactionLogRecordError(f"{self.what}: an array of {n} elements runs past the end")
        return max(n, -1)

    def tagged_fields(self) -> dict[int, bytes]:
        return {self.uvarint(): self.raw(self.uvarint()) for _ in range(self.uvarint())}

    def done(self) -> None:
        if self.pos != len(self.data):
            raise CorruptTransactionLogRecordError(f"{self.what}: {len(self.data) - self.pos} bytes left over")


def decode_key(data: bytes) -> str:
    """The transactional id of a TransactionLogKey (version 0)."""
    r = _Reader(data, "TransactionLogKey")
    version = r.i16()
    if version != KEY_VERSION:
        raise CorruptTransactionLogRecordError(f"TransactionLogKey version {version} is not supported")
    transactional_id = r.string(compact=False)
    r.done()
    return transactional_id


def decode_value(data: bytes) -> TransactionLogValue:
    """TransactionLogValue version 0 or 1."""
    r = _Reader(data, "TransactionLogValue")
    version = r.i16()
    if version not in (0, 1):
        raise CorruptTransactionLogRecordError(f"TransactionLogValue version {version} is not supported")
    flexible = version >= 1
    producer_id, producer_epoch, timeout_ms, state_id = r.i64(), r.i16(), r.i32(), r.i8()
    partitions: set[TopicPartition] = set()
    for _ in range(r.count(flexible)):
        topic = r.string(flexible)
        partitions.update((topic, r.i32()) for _ in range(r.count(flexible)))
        if flexible:
            r.tagged_fields()
    last_update, start = r.i64(), r.i64()
    tags = r.tagged_fields() if flexible else {}
    r.done()
    return TransactionLogValue(producer_id, producer_epoch, timeout_ms, state_id, frozenset(partitions),
                               last_update, start, _tag_i64(tags, 0), _tag_i64(tags, 1))


def _tag_i64(tags: dict[int, bytes], tag: int) -> int:
    raw = tags.get(tag)
    if raw is None:
        return -1
    if len(raw) != _I64.size:
        raise CorruptTransactionLogRecordError(f"TransactionLogValue: tag {tag} has {len(raw)} bytes, not 8")
    return int(_I64.unpack(raw)[0])
