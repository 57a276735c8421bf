"""Our codec interface over kio: decode and encode requests, responses and their headers.

kio is generated from Kafka's JSON message schemas and knows every API and version, in both
directions. It is pre-1.0 with one maintainer, so it is pinned in pyproject.toml and reached
only through this package: this module (the interface the rest of the code uses), ``entities``
(dicts → kio dataclasses) and ``bounds`` (length checks compiled from kio's schemas). Swapping
it means changing those three files.

Requests are decoded into kio's frozen dataclasses (handlers read attributes; a field that an
older version lacks is read with ``getattr(req, name, default)``). Responses are *built from
plain dicts*: ``encode_response`` fills a version's dataclass from the dict, ignoring keys the
version does not have and zero-filling fields the dict omits (``entities.entity_builder``), so a
handler writes one dict for all versions of its API. ``encode_response_chunks`` splices
pre-encoded array elements into a response, for a broker caching what has not changed.
"""

from __future__ import annotations

import importlib
import io
import struct
import typing
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from functools import cache
from typing import Any, NamedTuple

from kio.index import load_request_schema as _load_request_schema
from kio.index import load_response_schema as _load_response_schema
from kio.schema.errors import ErrorCode
from kio.schema.index import api_key_map, schema_name_map
from kio.serial import entity_reader, entity_writer

from pykafka_ops.protocol import bounds, fastpath
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.entities import entity_builder

__all__ = [
    "ErrorCode",
    "RequestHeader",
    "CodecError",
    "decode_request_header",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "encode_response_body",
    "is_flexible",
    "known_versions",
    "response_header",
    "consumer_subscription_topics",
]

# kio resolves schemas by dotted name on every call; ours are cached per (api key, version).
load_request_schema = cache(_load_request_schema)
load_response_schema = cache(_load_response_schema)

_INT16_INT16_INT32 = struct.Struct(">hhi")
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


class CodecError(ValueError):
    """Bytes that do not parse as the message they claim to be."""


class RequestHeader(NamedTuple):
    """Request header v1/v2 fields (v0 has no client id and is not accepted by Kafka 4.x)."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    size: int
    """Bytes the header occupies, tagged fields included."""


@cache
def known_versions(api_key: int) -> tuple[int, int] | None:
    """The (min, max) versions kio can encode and decode for ``api_key``, or None."""
    name = api_key_map.get(api_key)
    if name is None:
        return None
    versions = sorted(schema_name_map[name])
    return versions[0], versions[-1]


@cache
def is_flexible(api_key: int, version: int) -> bool:
    """Whether (api_key, version) uses KIP-482 flexible encoding (compact types, tagged fields)."""
    return bool(load_request_schema(api_key, version).__flexible__)


def response_header(api_key: int, version: int, correlation_id: int) -> bytes:
    """Response header bytes: v1 (tagged fields) for flexible versions, else v0.

    ApiVersions always answers with header v0, even in its flexible versions, so that a client
    can parse the answer before it knows the broker's versions (ApiVersionsResponse.json).
    """
    if api_key != ApiKey.API_VERSIONS and is_flexible(api_key, version):
        return _INT32.pack(correlation_id) + b"\x00"
    return _INT32.pack(correlation_id)


def peek_api(buf: memoryview) -> tuple[int, int, int]:
    """(api_key, api_version, correlation_id) of a request frame, without parsing more."""
    if len(buf) < 8:
        raise CodecError("request header is shorter than 8 bytes")
    return _INT16_INT16_INT32.unpack_from(buf, 0)


def decode_request_header(buf: memoryview) -> RequestHeader:
    """Parse a request header (v1, or v2 when the API version is flexible).

    The client id is a legacy int16-length string in both versions (KIP-482 kept it so that a
    broker can always read it); v2 then adds a tagged-field section.
    """
    api_key, api_version, correlation_id = peek_api(buf)
    if len(buf) < 10:
        raise CodecError("request header has no client id")
    (length,) = _INT16.unpack_from(buf, 8)
    pos = 10
    client_id = None
    if length >= 0:
        if pos + length > len(buf):
            raise CodecError("client id runs past the end of the frame")
        client_id = bytes(buf[pos : pos + length]).decode("utf-8", "replace")
        pos += length
    elif length != -1:
        raise CodecError(f"invalid client id length {length}")
    if known_versions(api_key) and _in_range(api_key, api_version) and is_flexible(api_key, api_version):
        try:
            pos = bounds.skip_tagged_fields(buf, pos)
        except bounds.BoundsError as exc:
            raise CodecError(str(exc)) from None
    return RequestHeader(api_key, api_version, correlation_id, client_id, pos)


def _in_range(api_key: int, version: int) -> bool:
    known = known_versions(api_key)
    return known is not None and known[0] <= version <= known[1]


def decode_request(api_key: int, version: int, buf: memoryview, offset: int) -> Any:
    """Decode a request body at ``offset`` into kio's dataclass for (api_key, version).

    Every length in the body is checked against the frame first (``bounds``): kio's native
    reader would otherwise allocate what a lying length claims."""
    return _decode(load_request_schema(api_key, version), version, buf, offset)


def decode_response(api_key: int, version: int, buf: bytes | memoryview, offset: int = 0) -> Any:
    """Decode a response body (after its header) into kio's dataclass, bounds-checked first:
    a broken or hostile broker gets a CodecError, never an allocation of what it claims."""
    return _decode(load_response_schema(api_key, version), version, buf, offset)


_reader = cache(entity_reader)


def _decode(schema: type, version: int, buf: bytes | bytearray | memoryview, offset: int) -> Any:
    if not isinstance(buf, bytes) and not (isinstance(buf, memoryview) and buf.readonly):
        buf = memoryview(buf).toreadonly()  # kio's native reader accepts read-only buffers only
    try:
        bounds.check(schema, buf, offset)
        value, _size = _reader(schema)(buf, offset)
    except Exception as exc:  # BoundsError, or one of kio's several types for malformed input
        raise CodecError(f"malformed {schema.__name__} v{version}: {exc}") from exc
    return value


def consumer_subscription_topics(metadata: bytes) -> tuple[str, ...] | None:
    """The topics of a consumer's JoinGroup metadata (ConsumerProtocolSubscription), or None if
    it does not parse. A version above the newest known is read as the newest, as Kafka's
    ``ConsumerProtocol.deserializeSubscription`` does (new versions only append fields)."""
    if len(metadata) < 2:
        return None
    (version,) = _INT16.unpack_from(metadata, 0)
    versions = schema_name_map["consumer_protocol_subscription"]
    if version < min(versions):
        return None
    module = importlib.import_module(f"kio.schema.consumer_protocol_subscription.v{min(version, max(versions))}.data")
    try:
        value = _decode(module.ConsumerProtocolSubscription, version, metadata, 2)
    except CodecError:
        return None
    return tuple(value.topics)


def response_header_size(api_key: int, version: int) -> int:
    """Bytes of the response header for (api_key, version): 4, or 5 with empty tagged fields."""
    return len(response_header(api_key, version, 0))


def encode_response_body(api_key: int, version: int, body: Mapping[str, Any]) -> bytes:
    """Serialise a response body from a plain dict (see the module docstring)."""
    schema = load_response_schema(api_key, version)
    return _write(schema, entity_builder(schema)(body))


def encode_response(api_key: int, version: int, correlation_id: int, body: Mapping[str, Any]) -> bytes:
    """Header plus body of a response, without the int32 size prefix."""
    return response_header(api_key, version, correlation_id) + encode_response_body(api_key, version, body)


def encode_array_element(api_key: int, version: int, path: tuple[str, ...], element: Mapping[str, Any]) -> bytes:
    """One element of a response's array at ``path`` (``("topics",)``, or ``("topics",
    "partitions")`` for an element of a nested array), encoded on its own (for
    ``encode_response_chunks``: a broker caches the encoding of what has not changed)."""
    element_type = _entity_type(api_key, version, path)
    return _write(element_type, entity_builder(element_type)(element))


def encode_response_chunks(api_key: int, version: int, body: Mapping[str, Any], array_field: str,
                           elements: list[bytes], path: tuple[str, ...] = ()) -> list[bytes]:
    """A response body — or, with ``path``, one element of its arrays — whose array
    ``array_field`` is given as encoded ``elements``.

    The rest is encoded with an empty array, which is then replaced by the count and the
    elements. Only arrays followed by fixed-size fields (and the tagged fields) are supported: a
    Metadata response's ``topics`` is one, and so is a topic's ``partitions``.
    """
    entity = _entity_type(api_key, version, path)
    raw = _write(entity, entity_builder(entity)({**body, array_field: ()}))
    flexible = is_flexible(api_key, version)
    empty = b"\x01" if flexible else b"\x00\x00\x00\x00"
    cut = len(raw) - _tail_size(entity, array_field, flexible) - len(empty)
    if raw[cut : cut + len(empty)] != empty:
        raise CodecError(f"{entity.__name__}: {array_field} is not where its schema puts it")
    count = fastpath.uvarint(len(elements) + 1) if flexible else struct.pack(">i", len(elements))
    return [raw[:cut], count, *elements, raw[cut + len(empty):]]


def _entity_type(api_key: int, version: int, path: tuple[str, ...]) -> type:
    entity = load_response_schema(api_key, version)
    for name in path:
        entity = _array_element_type(entity, name)
    return entity


@cache
def _array_element_type(schema: type, array_field: str) -> type:
    element_type = typing.get_args(typing.get_type_hints(schema)[array_field])[0]
    if not is_dataclass(element_type):
        raise CodecError(f"{schema.__name__}.{array_field} is not an array of structs")
    return element_type


@cache
def _tail_size(schema: type, array_field: str, flexible: bool) -> int:
    """Bytes after ``array_field``: fixed-size fields, then an empty tagged-field section."""
    names = [f.name for f in fields(schema)]
    size = 1 if flexible else 0
    for f in fields(schema)[names.index(array_field) + 1:]:
        kafka_type = f.metadata.get("kafka_type")
        if kafka_type not in bounds.FIXED_SIZES or f.metadata.get("tag") is not None:
            raise CodecError(f"{schema.__name__}.{f.name} after {array_field} has no fixed size")
        size += bounds.FIXED_SIZES[kafka_type]
    return size


def encode_request(
    api_key: int, version: int, correlation_id: int, client_id: str | None, body: Mapping[str, Any] | Any
) -> bytes:
    """Header plus body of a request, without the size prefix (used by our admin client, tests and
    the broker forwarding a decoded request to the controller): ``body`` is a dict, or a request
    kio decoded for this very version."""
    schema = load_request_schema(api_key, version)
    header_type = schema.__header_schema__
    header = header_type(
        request_api_key=api_key,
        request_api_version=version,
        correlation_id=correlation_id,
        client_id=client_id,
    )
    entity = body if isinstance(body, schema) else entity_builder(schema)(body)
    return _write(header_type, header) + _write(schema, entity)


def _write(schema: type, value: Any) -> bytes:
    out = io.BytesIO()
    entity_writer(schema)(out, value)
    return out.getvalue()
