r"""Records → output bytes: kcat's ``-f`` format strings and the console consumer's layout.

kcat tokens (`format.c`): ``%s`` value, ``%S`` value length (-1 = null), ``%R`` value length as a
big-endian int32, ``%k`` key, ``%K`` key length, ``%t`` topic, ``%p`` partition, ``%o`` offset,
``%T`` timestamp (ms, -1 = none), ``%h`` headers ``n=v,n2=v2`` (null as ``NULL``), ``%%``; escapes
``\n \r \t \\ \xXX``. Ours: ``%F``, the timestamp in ISO 8601 UTC with milliseconds
(``2024-05-01T12:00:00.000Z``; kcat#189). An unknown token is refused, as kcat does.

The console consumer (`DefaultMessageFormatter`): ``CreateTime:ts``, ``Partition:p``,
``Offset:o``, headers ``k:v,k2:v2`` (or ``NO_HEADERS``), key, value — each when asked — joined by
``key.separator`` and ended by ``line.separator``; a null prints ``null.literal``.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

from pykafka_ops.models.records import ConsumedRecord
from pykafka_ops.services.record_codec import to_json, unescape

Formatter = Callable[[ConsumedRecord], bytes]
_TOKEN = re.compile(r"%(.?)|[^%]+", re.S)


def readable_time(ts: int | None) -> str:
    """``ts`` (ms since the epoch) as ISO 8601 UTC with milliseconds; empty when unknown."""
    if ts is None:
        return ""
    moment = dt.datetime.fromtimestamp(ts / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts % 1000:03d}Z"


def _length(raw: bytes | None) -> bytes:
    return str(-1 if raw is None else len(raw)).encode()


def _kcat_headers(r: ConsumedRecord) -> bytes:
    return b",".join(name.encode() + b"=" + (b"NULL" if value is None else value) for name, value in r.headers)


_TOKENS: dict[str, Formatter] = {
    "s": lambda r: r.value or b"",
    "S": lambda r: _length(r.value),
    "R": lambda r: struct.pack(">i", -1 if r.value is None else len(r.value)),
    "k": lambda r: r.key or b"",
    "K": lambda r: _length(r.key),
    "t": lambda r: r.topic.encode(),
    "p": lambda r: str(r.partition).encode(),
    "o": lambda r: str(r.offset).encode(),
    "T": lambda r: str(-1 if r.timestamp is None else r.timestamp).encode(),
    "F": lambda r: readable_time(r.timestamp).encode(),
    "h": _kcat_headers,
    "%": lambda r: b"%",
}


def compile_format(fmt: str) -> Formatter:
    """A kcat ``-f`` format string → a formatter (ValueError ``Unsupported formatter: %x``)."""
    parts: list[bytes | Formatter] = []
    for match in _TOKEN.finditer(fmt):
        if not match.group(0).startswith("%"):
            parts.append(unescape(match.group(0)))
        elif match.group(1) in _TOKENS:
            parts.append(_TOKENS[match.group(1)])
        else:
            raise ValueError(f"Unsupported formatter: %{match.group(1)}")
    return lambda r: b"".join(p if isinstance(p, bytes) else p(r) for p in parts)


@dataclass(frozen=True)
class ConsoleLayout:
    """The console consumer's ``print.*`` formatter properties."""

    print_timestamp: bool = False
    print_partition: bool = False
    print_offset: bool = False
    print_headers: bool = False
    print_key: bool = False
    print_value: bool = True
    key_separator: bytes = b"\t"
    line_separator: bytes = b"\n"
    headers_separator: bytes = b","
    null_literal: bytes = b"null"

    def _or_null(self, raw: bytes | None) -> bytes:
        return self.null_literal if raw is None else raw

    def format(self, r: ConsumedRecord) -> bytes:
        """One record in the console consumer's layout."""
        fields = []
        if self.print_timestamp:
            kind = {"create": "CreateTime", "logappend": "LogAppendTime"}.get(r.timestamp_type)
            fields.append(f"{kind}:{r.timestamp}".encode() if kind else b"NO_TIMESTAMP")
        if self.print_partition:
            fields.append(f"Partition:{r.partition}".encode())
        if self.print_offset:
            fields.append(f"Offset:{r.offset}".encode())
        if self.print_headers:
            fields.append(self.headers_separator.join(name.encode() + b":" + self._or_null(value)
                                                      for name, value in r.headers) or b"NO_HEADERS")
        if self.print_key:
            fields.append(self._or_null(r.key))
        if self.print_value:
            fields.append(self._or_null(r.value))
        return self.key_separator.join(fields) + self.line_separator


def json_line(r: ConsumedRecord) -> bytes:
    """kcat -J's envelope, one object per line."""
    return to_json(r).encode() + b"\n"
