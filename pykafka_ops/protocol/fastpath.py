"""The zero-copy data path: Produce requests in, Produce and Fetch responses out.

kio copies record sets into ``bytes`` when parsing and again when serialising, and its writer
costs ~10-15 µs per message; that is fine for the control plane but not for the data path
(``specs/protocol.md`` §4b). Here:

* ``parse_produce_request`` keeps every partition's records as a ``memoryview`` slice of the
  request frame, so the broker can patch base offsets in place and write them to the log as is;
* ``encode_produce_response`` and ``FetchResponseWriter`` emit a list of buffers for
  ``transport.writelines`` — record bytes read from segment files are never joined or copied.

Layouts follow ProduceRequest.json / ProduceResponse.json (versions 3-10) and
FetchResponse.json (versions 4-12); flexible versions (Produce 9+, Fetch 12+) use compact
strings/arrays/bytes and empty tagged-field sections. Tests compare every byte with kio.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_PRODUCE_HEAD = struct.Struct(">hi")  # acks, timeout_ms

PRODUCE_VERSIONS = (3, 10)
FETCH_VERSIONS = (4, 12)
_PRODUCE_FIRST_FLEXIBLE = 9
_FETCH_FIRST_FLEXIBLE = 12


class ParseError(ValueError):
    """The frame is not a well-formed request of the version it claims."""


class ProducePartition(NamedTuple):
    """One partition's record set; ``records`` is a view into the request frame (or None)."""

    index: int
    records: memoryview | None


class ProduceTopic(NamedTuple):
    """One topic of a Produce request."""

    name: str
    partitions: list[ProducePartition]


class ProduceRequest(NamedTuple):
    """A parsed Produce request (versions 3-10)."""

    transactional_id: str | None
    acks: int
    timeout_ms: int
    topics: list[ProduceTopic]


class _Reader:
    """Sequential reads from a memoryview; every read checks bounds."""

    __slots__ = ("buf", "flexible", "pos")

    def __init__(self, buf: memoryview, pos: int, flexible: bool) -> None:
        self.buf = buf
        self.pos = pos
        self.flexible = flexible

    def _take(self, n: int) -> int:
        start = self.pos
        end = start + n
        if n < 0 or end > len(self.buf):
            raise ParseError("field runs past the end of the frame")
        self.pos = end
        return start

    def int16(self) -> int:
        return _I16.unpack_from(self.buf, self._take(2))[0]

    def int32(self) -> int:
        return _I32.unpack_from(self.buf, self._take(4))[0]

    def uvarint(self) -> int:
        value = shift = 0
        buf, pos = self.buf, self.pos
        while True:
            if pos >= len(buf):
                raise ParseError("varint runs past the end of the frame")
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                self.pos = pos
                return value
            shift += 7
            if shift > 28:
                raise ParseError("varint is too long")

    def length(self, legacy: int) -> int:
        """A length: compact (uvarint − 1) when flexible, else the legacy int16/int32 value."""
        return self.uvarint() - 1 if self.flexible else legacy

    def string(self) -> str | None:
        n = self.uvarint() - 1 if self.flexible else self.int16()
        if n < 0:
            return None
        start = self._take(n)
        try:
            return str(self.buf[start : start + n], "utf-8")
        except UnicodeDecodeError:
            raise ParseError("string is not valid UTF-8") from None

    def array_length(self) -> int:
        """A non-nullable array's length (Produce has no nullable arrays; Kafka closes on null)."""
        n = self.uvarint() - 1 if self.flexible else self.int32()
        if n < 0:
            raise ParseError(f"array length {n} where an array is required")
        if n > len(self.buf) - self.pos:  # each element takes at least one byte
            raise ParseError("array length exceeds the frame")
        return n

    def nullable_bytes(self) -> memoryview | None:
        n = self.uvarint() - 1 if self.flexible else self.int32()
        if n < 0:
            return None
        start = self._take(n)
        return self.buf[start : start + n]

    def skip_tagged_fields(self) -> None:
        if not self.flexible:
            return
        for _ in range(self.uvarint()):
            self.uvarint()
            self._take(self.uvarint())


def parse_produce_request(buf: memoryview, offset: int, version: int) -> ProduceRequest:
    """Parse a Produce request body starting at ``offset`` (after the request header)."""
    r = _Reader(buf, offset, version >= _PRODUCE_FIRST_FLEXIBLE)
    transactional_id = r.string()
    acks, timeout_ms = _PRODUCE_HEAD.unpack_from(buf, r._take(6))
    topics: list[ProduceTopic] = []
    for _ in range(r.array_length()):
        name = r.string()
        if name is None:
            raise ParseError("null topic name")
        partitions: list[ProducePartition] = []
        for _ in range(r.array_length()):
            index = r.int32()
            partitions.append(ProducePartition(index, r.nullable_bytes()))
            r.skip_tagged_fields()
        topics.append(ProduceTopic(name, partitions))
        r.skip_tagged_fields()
    r.skip_tagged_fields()
    return ProduceRequest(transactional_id, acks, timeout_ms, topics)


# --- writers ----------------------------------------------------------------------------------


def uvarint(value: int) -> bytes:
    """Unsigned varint (used for compact lengths: length + 1)."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(value: str | None, flexible: bool) -> bytes:
    if value is None:
        return b"\x00" if flexible else _I16.pack(-1)
    data = value.encode()
    return (uvarint(len(data) + 1) if flexible else _I16.pack(len(data))) + data


def _array_len(n: int, flexible: bool) -> bytes:
    return uvarint(n + 1) if flexible else _I32.pack(n)


class ProducePartitionResult(NamedTuple):
    """What the broker answers for one partition of a Produce request."""

    index: int
    error_code: int
    base_offset: int
    log_append_time_ms: int
    log_start_offset: int
    error_message: str | None = None
    current_leader: tuple[int, int] | None = None
    """(leader id, leader epoch) sent with NOT_LEADER_OR_FOLLOWER from v10 (KIP-951)."""
    record_errors: Sequence[tuple[int, str | None]] = ()
    """(batch_index, batch_index_error_message) of each record at fault, from v8 (KIP-467)."""


_PRODUCE_PARTITION = struct.Struct(">ihqq")  # index, error_code, base_offset, log_append_time_ms
_LEADER_ID_AND_EPOCH = struct.Struct(">ii")
#: Produce v10 partition tag 0 and Fetch v12 partition tag 1 (KIP-951, KIP-595): CurrentLeader.
_PRODUCE_CURRENT_LEADER_TAG, _FETCH_CURRENT_LEADER_TAG = 0, 1
#: The first Produce version whose answers name the current leader (KIP-951).
PRODUCE_CURRENT_LEADER_VERSION = 10


class NodeEndpoint(NamedTuple):
    """A broker named by a current-leader field (Produce v10 ``node_endpoints``, KIP-951)."""

    node_id: int
    host: str
    port: int
    rack: str | None = None


def _current_leader_tag(tag: int, leader: tuple[int, int]) -> bytes:
    """A partition's tagged fields holding just CurrentLeader {leader_id, leader_epoch}."""
    return bytes((1, tag, 9)) + _LEADER_ID_AND_EPOCH.pack(*leader) + b"\x00"


def _node_endpoints_tag(endpoints: Sequence[NodeEndpoint]) -> bytes:
    """A Produce v10 response's tagged fields holding ``node_endpoints`` (tag 0)."""
    data = bytearray(_array_len(len(endpoints), True))
    for e in endpoints:
        data += _I32.pack(e.node_id) + _string(e.host, True) + _I32.pack(e.port) + _string(e.rack, True) + b"\x00"
    return b"\x01\x00" + uvarint(len(data)) + bytes(data)


def encode_produce_response(
    version: int, topics: Sequence[tuple[str, Sequence[ProducePartitionResult]]], throttle_time_ms: int = 0,
    node_endpoints: Sequence[NodeEndpoint] = (),
) -> bytes:
    """A Produce response body (versions 3-10), without the response header; from v10 a
    partition's ``current_leader`` and the brokers it names go in tagged fields (KIP-951)."""
    flexible = version >= _PRODUCE_FIRST_FLEXIBLE
    tagged = b"\x00" if flexible else b""
    out = [_array_len(len(topics), flexible)]
    for name, partitions in topics:
        out.append(_string(name, flexible))
        out.append(_array_len(len(partitions), flexible))
        for p in partitions:
            out.append(_PRODUCE_PARTITION.pack(p.index, p.error_code, p.base_offset, p.log_append_time_ms))
            if version >= 5:
                out.append(_I64.pack(p.log_start_offset))
            if version >= 8:
                out.append(_array_len(len(p.record_errors), flexible))
                for batch_index, message in p.record_errors:
                    out.append(_I32.pack(batch_index) + _string(message, flexible) + tagged)
                out.append(_string(p.error_message, flexible))
            if p.current_leader is not None and version >= PRODUCE_CURRENT_LEADER_VERSION:
                out.append(_current_leader_tag(_PRODUCE_CURRENT_LEADER_TAG, p.current_leader))
            else:
                out.append(tagged)
        out.append(tagged)
    out.append(_I32.pack(throttle_time_ms))
    if node_endpoints and version >= PRODUCE_CURRENT_LEADER_VERSION:
        out.append(_node_endpoints_tag(node_endpoints))
    else:
        out.append(tagged)
    return b"".join(out)


class AbortedTransaction(NamedTuple):
    """A transaction aborted within a fetched range (read_committed consumers skip it)."""

    producer_id: int
    first_offset: int


class FetchPartitionResult(NamedTuple):
    """One partition of a Fetch response; ``records`` are buffers sent as they are."""

    index: int
    error_code: int
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    aborted_transactions: Sequence[AbortedTransaction] | None
    records: Sequence[bytes | memoryview]
    records_size: int
    current_leader: tuple[int, int] | None = None
    """(leader id, leader epoch) sent with NOT_LEADER_OR_FOLLOWER / FENCED_LEADER_EPOCH (v12+)."""


_FETCH_PARTITION = struct.Struct(">ihqq")  # index, error_code, high_watermark, last_stable_offset
_FETCH_TOP = struct.Struct(">ihi")  # throttle_time_ms, error_code, session_id
_ABORTED = struct.Struct(">qq")


def encode_fetch_response(
    version: int,
    topics: Sequence[tuple[str, Sequence[FetchPartitionResult]]],
    error_code: int = 0,
    session_id: int = 0,
    throttle_time_ms: int = 0,
) -> list[bytes | memoryview]:
    """A Fetch response body (versions 4-12) as a buffer list; record buffers are not copied."""
    flexible = version >= _FETCH_FIRST_FLEXIBLE
    tagged = b"\x00" if flexible else b""
    head = bytearray()
    if version >= 7:
        head += _FETCH_TOP.pack(throttle_time_ms, error_code, session_id)
    else:
        head += _I32.pack(throttle_time_ms)
    head += _array_len(len(topics), flexible)
    out: list[bytes | memoryview] = []
    for name, partitions in topics:
        head += _string(name, flexible)
        head += _array_len(len(partitions), flexible)
        for p in partitions:
            head += _FETCH_PARTITION.pack(p.index, p.error_code, p.high_watermark, p.last_stable_offset)
            if version >= 5:
                head += _I64.pack(p.log_start_offset)
            if p.aborted_transactions is None:
                head += b"\x00" if flexible else _I32.pack(-1)
            else:
                head += _array_len(len(p.aborted_transactions), flexible)
                for txn in p.aborted_transactions:
                    head += _ABORTED.pack(txn.producer_id, txn.first_offset)
                    head += tagged
            if version >= 11:
                head += _I32.pack(-1)  # preferred_read_replica: none
            head += uvarint(p.records_size + 1) if flexible else _I32.pack(p.records_size)
            if p.records_size:
                out.append(bytes(head))
                out.extend(p.records)
                head = bytearray()
            if p.current_leader is not None and flexible:
                head += _current_leader_tag(_FETCH_CURRENT_LEADER_TAG, p.current_leader)
            else:
                head += tagged
        head += tagged
    head += tagged
    out.append(bytes(head))
    return out
