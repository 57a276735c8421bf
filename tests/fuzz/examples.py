"""Example messages of any API and version, built from kio's schemas: well-formed, varied, seeded.

``example(entity_type, rng)`` fills every field of a kio dataclass with a value of its Kafka type:
small numbers, short names, one or two array elements, sometimes null where the schema allows it,
tagged fields sometimes set (so that they are on the wire), and a real v2 record batch in every
``records`` field. The fuzzer starts from these bodies; the codec tests round-trip them.
"""

from __future__ import annotations

import datetime
import random
import uuid
from dataclasses import fields
from typing import Any

from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveField,
    classify_field,
    get_field_tag,
    get_schema_field_type,
    is_optional,
)

from pykafka_ops.protocol import codec
from pykafka_ops.records.batch import Compression
from pykafka_ops.records.builder import RecordBatchBuilder

#: Names an example uses for strings: mostly topic-like, so handlers get past name checks.
NAMES = ("fuzz", "fuzz-topic", "g", "", "__consumer_offsets", "a.b_c-d", "ü")


def example(entity_type: type, rng: random.Random, depth: int = 0) -> Any:
    """A kio dataclass instance of ``entity_type`` with every field filled (see the module doc)."""
    values = {}
    for field in fields(entity_type):
        tagged = get_field_tag(field) is not None
        if tagged and _has_default(field) and rng.random() < 0.5:
            continue  # left at its default: not on the wire
        values[field.name] = _value(field, entity_type.__flexible__, tagged, rng, depth)
    return entity_type(**values)


def _has_default(field: Any) -> bool:
    from dataclasses import MISSING

    return field.default is not MISSING or field.default_factory is not MISSING


def _value(field: Any, flexible: bool, tagged: bool, rng: random.Random, depth: int) -> Any:
    kind = classify_field(field)
    nullable = is_optional(field)
    if isinstance(kind, EntityField):
        return None if nullable and rng.random() < 0.3 else example(kind.type_, rng, depth + 1)
    if isinstance(kind, EntityTupleField):
        if _null_array(field, rng):
            return None
        return tuple(example(kind.type_, rng, depth + 1) for _ in range(_count(rng, depth)))
    kafka_type = get_schema_field_type(field)
    if isinstance(kind, PrimitiveField):
        if nullable and not tagged and kafka_type in ("string", "bytes", "records") and rng.random() < 0.2:
            return None
        return _primitive(kafka_type, rng)
    if _null_array(field, rng):
        return None
    return tuple(_primitive(kafka_type, rng) for _ in range(_count(rng, depth)))


def _null_array(field: Any, rng: random.Random) -> bool:
    import types
    import typing

    return typing.get_origin(field.type) in (types.UnionType, typing.Union) and rng.random() < 0.2


def _count(rng: random.Random, depth: int) -> int:
    return rng.choice((0, 1, 1, 2) if depth < 3 else (0, 1))


def _primitive(kafka_type: str, rng: random.Random) -> Any:
    if kafka_type in ("int8", "int16", "int32", "int64"):
        return rng.choice((0, 1, -1, 3, 100))
    if kafka_type in ("uint8", "uint16", "uint32", "uint64"):
        return rng.choice((0, 1, 3, 100))
    if kafka_type == "error_code":
        return codec.ErrorCode(rng.choice((0, 3, 35)))
    if kafka_type == "bool":
        return rng.random() < 0.5
    if kafka_type == "float64":
        return rng.choice((0.0, 1.5))
    if kafka_type == "string":
        return rng.choice(NAMES)
    if kafka_type == "bytes":
        return rng.randbytes(rng.choice((0, 1, 8)))
    if kafka_type == "records":
        return record_batch(rng)
    if kafka_type == "uuid":
        return uuid.UUID(int=rng.getrandbits(128)) if rng.random() < 0.8 else None
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        return datetime.timedelta(milliseconds=rng.choice((0, 100, 5000)))
    if kafka_type == "datetime_i64":
        return datetime.datetime.fromtimestamp(rng.choice((0, 1_700_000_000)), tz=datetime.timezone.utc)
    raise TypeError(f"no example for Kafka type {kafka_type!r}")


def record_batch(rng: random.Random, compression: Compression | None = None) -> bytes:
    """A valid v2 record batch of 1-3 records (sometimes keyed, sometimes compressed)."""
    codec_choice = compression if compression is not None else rng.choice(
        (Compression.NONE, Compression.NONE, Compression.GZIP, Compression.ZSTD))
    builder = RecordBatchBuilder(compression=codec_choice)
    for i in range(rng.randint(1, 3)):
        builder.append(b"k%d" % i if rng.random() < 0.5 else None, rng.randbytes(rng.randint(0, 24)))
    return builder.build()
