"""What the node must do with the bytes of a fuzz case, worked out as the node reads them.

``plan(data, advertised)`` cuts ``data`` into frames exactly as the node's framing does (an int32
size, then that many bytes) and says, for each frame, what may come back: an answer carrying its
correlation id, a close, or — for a Produce with acks=0 only — nothing (acks read as the
node's fast path reads it); and how long a legal
long poll may hold it (Fetch ``max_wait``, JoinGroup/SyncGroup rebalance timeouts). The plan
ends ``idle`` (every byte framed: the runner appends a sentinel request to learn that nothing
is left unanswered), ``refused`` (a negative size or one above ``socket.request.max.bytes``:
the node must close), or ``partial`` (a size larger than the bytes sent: the node legitimately
waits for the rest, so the runner closes its side).

A frame "reaches the body decoder" when its header parses and its (key, version) is one the
node advertises: then the node hands the body to its decoder (kio behind ``bounds``, or the
Produce fast path). The local decode here is bounds-checked first (``bounds.check``), so that
the fuzzer itself never hands a lying length to kio's native reader.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from fuzz.mutations import MAX_REQUEST_BYTES, read_uvarint
from pykafka_ops.client.txn_requests import describe_transactions_entries
from pykafka_ops.protocol import bounds, codec
from pykafka_ops.protocol.api_keys import ApiKey

Pair = tuple[int, int]
_I32 = struct.Struct(">i")
#: Seconds a parked JoinGroup/SyncGroup may wait beyond the rebalance timeouts it carries.
GROUP_SLACK_S = 2.0


@dataclass
class NodeFrame:
    """One frame as the node sees it."""

    payload: bytes
    correlation_id: int | None = None
    """None when the header does not parse (the node must close)."""
    api_key: int | None = None
    api_version: int | None = None
    reaches_decoder: bool = False
    request: Any = None
    """The decoded request when the local decode succeeds."""
    silent_ok: bool = False
    """No answer is legal (Produce with acks=0)."""
    park_s: float = 0.0
    """How long a legal long poll may hold the answer back."""

    @property
    def pair(self) -> Pair | None:
        """(key, version) when the header parses."""
        return None if self.api_key is None else (self.api_key, self.api_version)  # type: ignore[return-value]


@dataclass
class Plan:
    """The frames of a case and how the byte stream ends (``idle``, ``refused``, ``partial``)."""

    frames: list[NodeFrame] = field(default_factory=list)
    end: str = "idle"

    @property
    def park_s(self) -> float:
        """The longest legal hold of any frame (they are answered in order)."""
        return sum(f.park_s for f in self.frames)


def plan(data: bytes, advertised: dict[int, tuple[int, int]], max_request: int = MAX_REQUEST_BYTES) -> Plan:
    """Cut ``data`` into frames as the node does and describe each (see the module doc)."""
    result = Plan()
    pos = 0
    while len(data) - pos >= 4:
        (size,) = _I32.unpack_from(data, pos)
        if size < 0 or size > max_request:
            result.end = "refused"
            return result
        if len(data) - pos - 4 < size:
            result.end = "partial"
            return result
        result.frames.append(describe(data[pos + 4: pos + 4 + size], advertised))
        pos += 4 + size
    if pos < len(data):
        result.end = "partial"
    return result


def describe(payload: bytes, advertised: dict[int, tuple[int, int]]) -> NodeFrame:
    """One frame: header, whether it reaches the body decoder, its local decode."""
    frame = NodeFrame(payload)
    try:
        header = codec.decode_request_header(memoryview(payload))
    except codec.CodecError:
        return frame
    frame.correlation_id, frame.api_key, frame.api_version = header.correlation_id, header.api_key, header.api_version
    known = advertised.get(header.api_key)
    if known is None or not known[0] <= header.api_version <= known[1]:
        return frame
    frame.reaches_decoder = True
    frame.request = decode_request(header.api_key, header.api_version, payload, header.size)
    _legal_silence(frame, header.size)
    return frame


def decode_request(key: int, version: int, payload: bytes, offset: int) -> Any:
    """The request decoded by our codec, or None; lengths are checked before kio reads them."""
    try:
        bounds.check(codec.load_request_schema(key, version), payload, offset)
        return codec.decode_request(key, version, memoryview(payload), offset)
    except (codec.CodecError, bounds.BoundsError):
        return None


def _produce_acks(payload: bytes, offset: int, flexible: bool) -> int | None:
    """The acks of a Produce body, read as the node's fast path reads it (the rest of the
    body may still be refused), or None when the body is too short to hold it."""
    try:
        if flexible:
            length, used = read_uvarint(payload, offset)
            offset += used + max(length - 1, 0)
        else:
            (length,) = struct.unpack_from(">h", payload, offset)
            offset += 2 + max(length, 0)
        if offset + 2 > len(payload):
            return None
        return struct.unpack_from(">h", payload, offset)[0]
    except (IndexError, struct.error):  # the body ends first
        return None


def _legal_silence(frame: NodeFrame, offset: int) -> None:
    request = frame.request
    if frame.api_key == ApiKey.PRODUCE:  # Kafka sends nothing back to acks=0
        flexible = codec.is_flexible(frame.api_key, frame.api_version)  # type: ignore[arg-type]
        frame.silent_ok = _produce_acks(frame.payload, offset, flexible) == 0
    if request is None:
        return
    if frame.api_key == ApiKey.FETCH:
        frame.park_s = max(request.max_wait.total_seconds(), 0.0)
    elif frame.api_key in (ApiKey.JOIN_GROUP, ApiKey.SYNC_GROUP):
        frame.park_s = GROUP_SLACK_S  # plus the group's rebalance timeout: see group_park_s


def rebalance_timeout_s(frame: NodeFrame) -> float:
    """The rebalance timeout a JoinGroup asks for (v0: its session timeout), else 0."""
    if frame.api_key != ApiKey.JOIN_GROUP or frame.request is None:
        return 0.0
    timeout = getattr(frame.request, "rebalance_timeout", None) or frame.request.session_timeout
    return max(timeout.total_seconds(), 0.0)


# --- answers ---------------------------------------------------------------------------------


def response_key_version(frame: NodeFrame, advertised: dict[int, tuple[int, int]]) -> Pair | None:
    """The (key, version) an answer to ``frame`` is encoded in (KIP-511: ApiVersions out of
    range is answered in v0), or None when the node should not answer it at all."""
    if frame.reaches_decoder:
        return frame.pair
    if frame.api_key == ApiKey.API_VERSIONS:
        return (ApiKey.API_VERSIONS, 0)
    return None


def error_codes(key: int, version: int, response: bytes) -> list[int] | None:
    """Every ``error_code`` at any depth of a response frame (correlation id included), or
    None if the response does not decode as (key, version)."""
    offset = codec.response_header_size(key, version)
    if key == ApiKey.DESCRIBE_TRANSACTIONS:  # kio refuses the -1 start time Kafka (and we) send
        try:
            return [code for code, _description in describe_transactions_entries(response, offset)]
        except ValueError:
            return None
    try:
        bounds.check(codec.load_response_schema(key, version), response, offset)
        body = codec.decode_response(key, version, response, offset)
    except (codec.CodecError, bounds.BoundsError):
        return None
    found: list[int] = []
    _collect(body, found)
    return found


def _collect(value: Any, found: list[int]) -> None:
    if is_dataclass(value):
        for f in fields(value):
            item = getattr(value, f.name)
            if f.name == "error_code" and item is not None:
                found.append(int(item))
            else:
                _collect(item, found)
    elif isinstance(value, tuple):
        for item in value:
            _collect(item, found)
