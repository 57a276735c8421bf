"""Text ↔ records: the console producer's line grammar and the JSON envelope of kcat -J.

Lines (Kafka's `LineMessageReader`): ``[h1:v1,h2:v2<headers.delimiter>][key<key.separator>]value``,
each separator split at its **first** occurrence, so a value may contain it. A field equal to
``null.marker`` becomes null; with ``empty_as_null`` (kcat -Z) an empty key or value does.

JSON (one object per line): kcat -J's envelope ``topic, partition, offset, tstype, ts, broker,
headers, key, payload``; ``headers`` is a map (a name that repeats maps to the list of its
values). Binary-safe: a key, value or header value that is not UTF-8 is written as
``{"base64": "…"}``. Reading accepts the same, plus ``value`` for ``payload``, ``timestamp`` for
``ts``, kcat's flat header array ``["k1","v1",…]`` and ``[[k, v], …]``; any other JSON value
(number, object, list) is sent as its compact JSON text.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from pykafka_ops.models.records import ConsumedRecord, Headers, ProducerRecord

_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|.)", re.S)
_SIMPLE_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"0": b"\0", b"\\": b"\\"}


class InputError(ValueError):
    """A line that does not follow the input grammar; the message names the line number."""


def unescape(text: str) -> bytes:
    r"""A separator as typed on the command line → bytes (``\t``, ``\n``, ``\r``, ``\\``, ``\xXX``)."""

    def replace(match: re.Match[bytes]) -> bytes:
        token = match.group(1)
        if token.startswith(b"x") and len(token) == 3:
            return bytes([int(token[1:], 16)])
        return _SIMPLE_ESCAPES.get(token, b"\\" + token)

    return _ESCAPE.sub(replace, text.encode())


@dataclass(frozen=True)
class LineFormat:
    """The console producer's ``parse.*`` reader properties, plus kcat's -Z (``empty_as_null``)."""

    parse_key: bool = False
    key_separator: bytes = b"\t"
    parse_headers: bool = False
    headers_delimiter: bytes = b"\t"
    headers_separator: bytes = b","
    headers_key_separator: bytes = b":"
    null_marker: bytes | None = None
    ignore_error: bool = False
    empty_as_null: bool = False

    def check(self) -> None:
        """Kafka's `LineMessageReader` rules: the header separators differ from each other and
        null.marker differs from every separator in use (key.separator may equal a header one)."""
        headers = {"headers.delimiter": self.headers_delimiter, "headers.separator": self.headers_separator,
                   "headers.key.separator": self.headers_key_separator} if self.parse_headers else {}
        used = headers | ({"key.separator": self.key_separator} if self.parse_key else {})
        empty = [name for name, value in used.items() if not value]
        if empty:
            raise ValueError(f"{empty[0]} must not be empty")
        pairs = list(itertools.combinations(headers, 2))
        if self.null_marker is not None:
            pairs += [("null.marker", name) for name in used]
        values: dict[str, bytes | None] = {**used, "null.marker": self.null_marker}
        for first, second in pairs:
            if values[first] == values[second]:
                raise ValueError(f"{first} and {second} may not be equal")

    def _field(self, raw: bytes) -> bytes | None:
        if raw == self.null_marker or (self.empty_as_null and raw == b""):
            return None
        return raw

    def _headers(self, text: bytes, number: int) -> list[tuple[str, bytes | None]]:
        headers = []
        for pair in text.split(self.headers_separator):
            name, sep, value = pair.partition(self.headers_key_separator)
            if not sep and not self.ignore_error:
                raise InputError(f"No header key separator found in pair '{_show(pair)}' on line number {number}")
            if self.null_marker is not None and name == self.null_marker:
                raise InputError(f"Header keys should not be equal to the null marker '{_show(self.null_marker)}' "
                                 f"as they can't be null (line number {number})")
            headers.append((name.decode("utf-8", "replace"), self._field(value) if sep else None))
        return headers

    def parse(self, line: bytes, number: int, fixed_headers: Headers = ()) -> ProducerRecord:
        """One input line (without its line separator) → a record; ``number`` counts from 1."""
        headers: list[tuple[str, bytes | None]] = []
        rest = line
        if self.parse_headers:
            head, sep, tail = rest.partition(self.headers_delimiter)
            if sep:
                headers, rest = self._headers(head, number), tail
            elif not self.ignore_error:
                raise InputError(f"No headers delimiter found on line number {number}: '{_show(line)}'")
        key: bytes | None = None
        if self.parse_key:
            raw_key, sep, tail = rest.partition(self.key_separator)
            if sep:
                key, rest = self._field(raw_key), tail
            elif not self.ignore_error:
                raise InputError(f"No key separator found on line number {number}: '{_show(line)}'")
        return ProducerRecord(self._field(rest), key, tuple(headers) + tuple(fixed_headers))


def _show(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def encode_bytes(raw: bytes | None) -> str | dict[str, str] | None:
    """A key/value/header value for JSON: text if it is UTF-8, else ``{"base64": …}``."""
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode()}


def decode_bytes(value: Any, what: str, number: int) -> bytes | None:
    """The inverse of ``encode_bytes``; other JSON values become their compact JSON text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"base64"}:
        try:
            return base64.b64decode(value["base64"], validate=True)
        except (ValueError, TypeError):
            raise InputError(f"line number {number}: {what} is not valid base64") from None
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _json_headers(value: Any, number: int) -> list[tuple[str, bytes | None]]:
    if value is None:
        return []
    if isinstance(value, dict):
        pairs = [(k, v) for k, vs in value.items() for v in (vs if isinstance(vs, list) else [vs])]
    elif isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 for p in value):
        pairs = [(k, v) for k, v in value]
    elif isinstance(value, list) and len(value) % 2 == 0:
        pairs = list(zip(value[::2], value[1::2], strict=True))
    else:
        raise InputError(f"line number {number}: headers must be a map, [[name, value], …] or [name, value, …]")
    if not all(isinstance(k, str) for k, _ in pairs):
        raise InputError(f"line number {number}: header names must be strings")
    return [(k, decode_bytes(v, f"header {k!r}", number)) for k, v in pairs]


def _optional_int(obj: dict[str, Any], names: tuple[str, ...], number: int) -> int | None:
    for name in names:
        value = obj.get(name)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool):
                raise InputError(f"line number {number}: {name} must be an integer")
            return value
    return None


def parse_json_line(line: bytes, number: int, fixed_headers: Headers = ()) -> ProducerRecord:
    """One JSON object per line (kcat -J's envelope or ``{"key","value","headers",…}``) → a record."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise InputError(f"line number {number} is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InputError(f"line number {number}: expected a JSON object")
    value = obj["payload"] if "payload" in obj else obj.get("value")
    partition = _optional_int(obj, ("partition",), number)
    return ProducerRecord(
        decode_bytes(value, "value", number), decode_bytes(obj.get("key"), "key", number),
        tuple(_json_headers(obj.get("headers"), number)) + tuple(fixed_headers),
        partition if partition is not None and partition >= 0 else None,
        _optional_int(obj, ("ts", "timestamp"), number))


def headers_map(headers: Headers) -> dict[str, Any]:
    """Headers as a JSON map; a name that repeats maps to the list of its values."""
    result: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for name, _ in headers:
        counts[name] = counts.get(name, 0) + 1
    for name, value in headers:
        encoded = encode_bytes(value)
        if counts[name] > 1:
            result.setdefault(name, []).append(encoded)
        else:
            result[name] = encoded
    return result


def to_json(record: ConsumedRecord) -> str:
    """kcat -J's envelope for ``record``, on one line."""
    return json.dumps({
        "topic": record.topic, "partition": record.partition, "offset": record.offset,
        "tstype": record.timestamp_type, "ts": record.timestamp if record.timestamp is not None else -1,
        "broker": record.broker, "headers": headers_map(record.headers),
        "key": encode_bytes(record.key), "payload": encode_bytes(record.value),
    }, ensure_ascii=False, separators=(",", ":"))
