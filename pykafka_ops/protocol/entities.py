"""Plain dicts → kio's dataclasses: the builders behind ``codec.encode_response`` and
``codec.encode_request``.

``entity_builder(entity_type)`` returns a function that fills a kio dataclass (one version of
one message, or a struct inside it) from a dict: keys the version lacks are ignored if some
other version of the message has them (a key no version has is a TypeError, so a typo does not
vanish), fields the dict omits are zero-filled (``zero_value``), nested structs and arrays are
built recursively, and millisecond ints become kio's timedelta/datetime types. Builders are
cached per type, so a handler's dict costs one pass over a precomputed plan.
"""

from __future__ import annotations

import datetime
import importlib
import types
import typing
import uuid
from collections.abc import Callable
from dataclasses import MISSING, fields, is_dataclass
from functools import cache
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.index import schema_name_map
from kio.static.primitive import TZAware, i32Timedelta, i64Timedelta

__all__ = ["Converter", "entity_builder", "zero_value"]

Converter = Callable[[Any], Any]


@cache
def entity_builder(entity_type: type) -> Converter:
    """A function turning a dict (or an instance already) into ``entity_type``."""
    hints = typing.get_type_hints(entity_type)
    plan: list[tuple[str, Converter, Callable[[], Any] | None]] = []
    for f in fields(entity_type):
        if not f.init:
            continue
        convert = _converter(hints[f.name])
        if f.default is not MISSING:
            default: Callable[[], Any] | None = None  # the dataclass fills it
        elif f.default_factory is not MISSING:
            default = None
        else:
            zero = zero_value(hints[f.name])
            default = lambda zero=zero: zero  # noqa: E731
        plan.append((f.name, convert, default))

    allowed = _field_names_in_any_version(entity_type)

    def build(value: Any) -> Any:
        if isinstance(value, entity_type):
            return value
        if not value.keys() <= allowed:  # a typo would otherwise vanish silently
            raise TypeError(f"{entity_type.__name__} has no field(s) {sorted(value.keys() - allowed)}")
        kwargs = {}
        for name, convert, default in plan:
            if name in value:
                kwargs[name] = convert(value[name])
            elif default is not None:
                kwargs[name] = default()
        return entity_type(**kwargs)

    return build


@cache
def _field_names_in_any_version(entity_type: type) -> frozenset[str]:
    """Field names of the same-named entity across every version of its message."""
    module = importlib.import_module(entity_type.__module__)
    parts = entity_type.__module__.split(".")  # kio.schema.<message>.v<N>.<kind>
    names: set[str] = set()
    for version in schema_name_map.get(parts[2], {0: None}):
        try:
            sibling = importlib.import_module(".".join([*parts[:3], f"v{version}", parts[4]]))
        except ImportError:
            continue
        cls = getattr(sibling, entity_type.__name__, None)
        if cls is not None:
            names.update(f.name for f in fields(cls))
    names.update(f.name for f in fields(getattr(module, entity_type.__name__)))
    return frozenset(names)


def _identity(value: Any) -> Any:
    return value


def _millis_to_timedelta(value: Any) -> datetime.timedelta:
    if isinstance(value, datetime.timedelta):
        return value
    return datetime.timedelta(milliseconds=value)


def _millis_to_datetime(value: Any) -> Any:
    if value is None or isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromtimestamp(value / 1000, tz=datetime.timezone.utc)


def _converter(tp: Any) -> Converter:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        convert = _converter(inner[0])
        return lambda v: None if v is None else convert(v)
    if origin is tuple:
        item = _converter(typing.get_args(tp)[0])
        if item is _identity:
            return lambda v: None if v is None else tuple(v)
        return lambda v: None if v is None else tuple(item(x) for x in v)
    if is_dataclass(tp):
        return entity_builder(tp)
    if isinstance(tp, type):
        if issubclass(tp, (i32Timedelta, i64Timedelta)):
            return _millis_to_timedelta
        if issubclass(tp, TZAware):
            return _millis_to_datetime
        if issubclass(tp, ErrorCode):
            return ErrorCode
    return _identity


def zero_value(tp: Any) -> Any:
    """The value a field of type ``tp`` takes when a dict omits it (None, (), 0, "" …)."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return None
    if origin is tuple:
        return ()
    if is_dataclass(tp):
        return entity_builder(tp)({})
    if isinstance(tp, type):
        if issubclass(tp, (i32Timedelta, i64Timedelta)):
            return datetime.timedelta(0)
        if issubclass(tp, TZAware):
            return datetime.datetime.fromtimestamp(0, tz=datetime.timezone.utc)
        if issubclass(tp, ErrorCode):
            return ErrorCode.none
        if issubclass(tp, bool):
            return False
        if issubclass(tp, int):
            return 0
        if issubclass(tp, float):
            return 0.0
        if issubclass(tp, str):
            return ""
        if issubclass(tp, bytes):
            return b""
        if issubclass(tp, uuid.UUID):
            return uuid.UUID(int=0)
    raise TypeError(f"no zero value for {tp!r}")

