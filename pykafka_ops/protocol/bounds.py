"""Bounds-checked walk of a message body, run before kio's native reader sees the bytes.

kio's native reader trusts length fields: an array that claims 4 294 967 294 elements makes it
reserve 34 GB before reading one, and the process aborts (specs/reliability-probe.md §3.2). So
no body reaches it before this walk has checked every length in the body against the bytes
left in the frame: strings, bytes and records (compact and legacy, nullable or not), arrays
(their element count times the smallest size an element can have), nullable structs and
tagged fields (count, size, and a known field that must fill exactly its declared size). The
walk allocates nothing but the Python ints it reads.

The walk is compiled once per schema from kio's own dataclasses, classified with kio's own
introspection (``kio.serial._introspect``, what its native schema compiler calls), so it reads
the same fields in the same order as kio does. It also refuses what kio would let through but
Kafka refuses: a null array where the schema does not allow one.

Unknown tagged fields are skipped here, as Kafka does; kio then refuses them, so such a body is
still answered as malformed (no client sends tags we do not know at the versions we advertise).

``length_fields`` walks the same way and reports where each length-bearing field sits, for the
protocol fuzzer that mutates them (tests/fuzz).

Stateless: compiled walkers are cached and safe to share.
"""

from __future__ import annotations

import struct
import types
import typing
from collections.abc import Callable
from dataclasses import fields
from functools import cache
from typing import Any, NamedTuple

from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveField,
    classify_field,
    get_field_tag,
    get_schema_field_type,
    is_optional,
)

__all__ = ["BoundsError", "LengthField", "check", "length_fields", "skip_tagged_fields"]

Buffer = bytes | bytearray | memoryview
#: A compiled walker: reads a field at ``pos`` and returns the position after it.
Walk = Callable[[Buffer, int], int]
#: Where ``length_fields`` records what it reads: (position, encoding, what).
Trace = list["LengthField"]

_I8 = struct.Struct(">b")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")

#: Bytes of each fixed-size Kafka type (kio's names).
FIXED_SIZES = {
    "int8": 1, "uint8": 1, "bool": 1,
    "int16": 2, "uint16": 2, "error_code": 2,
    "int32": 4, "uint32": 4, "timedelta_i32": 4,
    "int64": 8, "uint64": 8, "float64": 8, "timedelta_i64": 8, "datetime_i64": 8,
    "uuid": 16,
}


class BoundsError(ValueError):
    """A length in the body that the frame cannot hold, or a field that runs past its end."""


class LengthField(NamedTuple):
    """A length-bearing field found by ``length_fields``."""

    position: int
    """Offset of the length prefix (or null marker) in the buffer."""
    encoding: str
    """``uvarint`` (compact lengths, tagged-field counts and sizes), ``int16``, ``int32`` or ``int8``."""
    what: str
    """``string``, ``bytes``, ``array``, ``struct`` (a nullable struct's marker), ``tagged_count``
    or ``tagged_size``."""


def check(entity_type: type, buf: Buffer, offset: int) -> int:
    """Walk the body of ``entity_type`` (a kio dataclass) at ``offset``; return where it ends.

    Raises BoundsError for any length the frame cannot hold (nothing is allocated for it)."""
    try:
        end = _walker(entity_type)(buf, offset)
    except (IndexError, struct.error):
        raise BoundsError(f"{entity_type.__name__}: a field runs past the end of the frame") from None
    if end > len(buf):
        raise BoundsError(f"{entity_type.__name__}: the body runs past the end of the frame")
    return end


def length_fields(entity_type: type, buf: Buffer, offset: int) -> list[LengthField]:
    """Every length-bearing field of a well-formed body, in wire order (for the fuzzer)."""
    trace: Trace = []
    _compile_entity(entity_type, False, trace).walk(buf, offset)
    return trace


def skip_tagged_fields(buf: Buffer, pos: int) -> int:
    """Skip a tagged-field section none of whose tags we read (a request header v2's)."""
    try:
        return _tagged_fields(buf, pos, {}, "RequestHeader", None)
    except IndexError:
        raise BoundsError("RequestHeader: the tagged fields run past the end of the frame") from None


@cache
def _walker(entity_type: type) -> Walk:
    return _compile_entity(entity_type, False, None).walk


# --- primitives -------------------------------------------------------------------------------


def _uvarint(buf: Buffer, pos: int) -> tuple[int, int]:
    """An unsigned varint of at most 5 bytes (Kafka's ``ByteUtils.readUnsignedVarint``)."""
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    value = byte & 0x7F
    for shift in (7, 14, 21, 28):
        pos += 1
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos + 1
    raise BoundsError("a varint is longer than 5 bytes")


def _note(trace: Trace | None, pos: int, encoding: str, what: str) -> None:
    if trace is not None:
        trace.append(LengthField(pos, encoding, what))


def _null_or_negative(n: int, nullable: bool, what: str) -> None:
    if n != -1 or not nullable:
        raise BoundsError(f"{what} length {n} where a non-null {what} is expected")


def _sized(flexible: bool, legacy: struct.Struct, nullable: bool, what: str, trace: Trace | None) -> Walk:
    """A string or bytes field: a length (compact: uvarint length + 1; legacy: int16 or int32,
    -1 for null), then that many bytes, which must be in the frame."""
    width = legacy.size

    def compact(buf: Buffer, pos: int) -> int:
        if trace is not None:
            _note(trace, pos, "uvarint", what)
        n, pos = _uvarint(buf, pos)
        if n == 0:
            _null_or_negative(-1, nullable, what)
            return pos
        end = pos + n - 1
        if end > len(buf):
            raise BoundsError(f"{what} of {n - 1} bytes runs past the end of the frame")
        return end

    def fixed_width(buf: Buffer, pos: int) -> int:
        if trace is not None:
            _note(trace, pos, f"int{width * 8}", what)
        (n,) = legacy.unpack_from(buf, pos)
        pos += width
        if n < 0:
            _null_or_negative(n, nullable, what)
            return pos
        end = pos + n
        if end > len(buf):
            raise BoundsError(f"{what} of {n} bytes runs past the end of the frame")
        return end

    return compact if flexible else fixed_width


def _primitive(kafka_type: str, flexible: bool, nullable: bool, trace: Trace | None) -> Walk | int:
    """A fixed-size type as its size, or a walker for a string/bytes/records field."""
    if kafka_type in FIXED_SIZES:
        return FIXED_SIZES[kafka_type]
    if kafka_type == "string":
        return _sized(flexible, _I16, nullable, "string", trace)
    if kafka_type in ("bytes", "records"):
        return _sized(flexible, _I32, nullable, "bytes", trace)
    raise TypeError(f"no bounds rule for Kafka type {kafka_type!r}")


def _array(element: Walk | int, min_element: int, flexible: bool, nullable: bool, trace: Trace | None) -> Walk:
    """An array: a count (compact: uvarint count + 1; legacy: int32, -1 for null) that the
    frame can hold at ``min_element`` bytes each, then the elements."""
    if min_element < 1:
        raise TypeError("an array element that can take no bytes has no bound")
    fixed_element = element if type(element) is int else 0

    def walk(buf: Buffer, pos: int) -> int:
        if trace is not None:
            _note(trace, pos, "uvarint" if flexible else "int32", "array")
        if flexible:
            n, pos = _uvarint(buf, pos)
            n -= 1
        else:
            (n,) = _I32.unpack_from(buf, pos)
            pos += 4
        if n < 0:
            _null_or_negative(n, nullable, "array")
            return pos
        if n * min_element > len(buf) - pos:
            raise BoundsError(f"array of {n} elements cannot fit in the {len(buf) - pos} bytes left")
        if fixed_element:
            return pos + n * fixed_element
        for _ in range(n):
            pos = element(buf, pos)  # type: ignore[operator]
        return pos

    return walk


# --- structs ----------------------------------------------------------------------------------


class _Field(NamedTuple):
    walk: Walk | int
    min_size: int


def _compile_field(field: Any, flexible: bool, tagged: bool, trace: Trace | None) -> _Field:
    """One field, classified exactly as kio's native schema compiler does (``build_field_schema``)."""
    kind = classify_field(field)
    if isinstance(kind, EntityField):
        return _compile_entity(kind.type_, is_optional(field), trace)
    if isinstance(kind, EntityTupleField):
        element = _compile_entity(kind.type_, False, trace)
    else:
        kafka_type = get_schema_field_type(field)
        is_array = not isinstance(kind, PrimitiveField)
        nullable = is_optional(field) and not tagged and not is_array
        walk = _primitive(kafka_type, flexible, nullable, trace)
        min_size = walk if type(walk) is int else 1 if flexible else 2 if kafka_type == "string" else 4
        element = _Field(walk, min_size)  # type: ignore[arg-type]
        if not is_array:
            return element
    array_nullable = typing.get_origin(field.type) in (types.UnionType, typing.Union)
    return _Field(_array(element.walk, element.min_size, flexible, array_nullable, trace), 1 if flexible else 4)


def _compile_entity(entity_type: type, nullable: bool, trace: Trace | None) -> _Field:
    """A struct: its fields in declaration order, tagged fields after them when flexible,
    preceded by an int8 marker (-1 = null) when the struct is nullable (KIP-893)."""
    flexible: bool = entity_type.__flexible__
    steps: list[tuple[int, Walk]] = []  # (fixed bytes to skip first, then a variable field)
    fixed = 0
    min_size = 1 if flexible else 0  # fixed fields, empty variable ones, an empty tag section
    tagged: dict[int, Walk | int] = {}
    for field in fields(entity_type):
        tag = get_field_tag(field)
        compiled = _compile_field(field, flexible, tag is not None, trace)
        if tag is not None:
            tagged[int(tag)] = compiled.walk
            continue
        min_size += compiled.min_size
        if type(compiled.walk) is int:
            fixed += compiled.walk
        else:
            steps.append((fixed, compiled.walk))  # type: ignore[arg-type]
            fixed = 0
    tail = fixed
    name = entity_type.__name__

    def walk(buf: Buffer, pos: int) -> int:
        if nullable:
            if trace is not None:
                _note(trace, pos, "int8", "struct")
            (marker,) = _I8.unpack_from(buf, pos)
            pos += 1
            if marker == -1:
                return pos
        for skip, field_walk in steps:
            pos = field_walk(buf, pos + skip)
        pos += tail
        if flexible:
            pos = _tagged_fields(buf, pos, tagged, name, trace)
        return pos

    return _Field(walk, 1 if nullable else min_size)


def _tagged_fields(buf: Buffer, pos: int, known: dict[int, Walk | int], name: str, trace: Trace | None) -> int:
    """KIP-482 tagged fields: a count, then (tag, size, bytes) each; a known field must fill
    exactly its size, an unknown one is skipped."""
    if trace is not None:
        _note(trace, pos, "uvarint", "tagged_count")
    count, pos = _uvarint(buf, pos)
    if not count:
        return pos
    if count * 2 > len(buf) - pos:
        raise BoundsError(f"{name}: {count} tagged fields cannot fit in the {len(buf) - pos} bytes left")
    for _ in range(count):
        tag, pos = _uvarint(buf, pos)
        if trace is not None:
            _note(trace, pos, "uvarint", "tagged_size")
        size, pos = _uvarint(buf, pos)
        end = pos + size
        if end > len(buf):
            raise BoundsError(f"{name}: tagged field {tag} of {size} bytes runs past the end of the frame")
        field_walk = known.get(tag)
        if field_walk is not None:
            read_to = pos + field_walk if type(field_walk) is int else field_walk(buf, pos)  # type: ignore[operator]
            if read_to != end:
                raise BoundsError(f"{name}: tagged field {tag} declares {size} bytes but holds {read_to - pos}")
        pos = end
    return pos
