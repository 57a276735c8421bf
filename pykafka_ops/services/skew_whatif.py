"""What-if for `pko skew`: the balance sampled records would have with another key or partition count.

A key template is text with fields in braces, rendered per record into the new key (UTF-8):

- ``{key}`` the current key (a NULL key renders as nothing, except in the bare template ``{key}``,
  which keeps it NULL);
- ``{partition}``, ``{offset}``, ``{timestamp}`` (ms), each optionally ``%N`` (``{offset%8}``
  salts a key over 8 sub-keys);
- ``{header.NAME}`` the first header NAME (raw bytes);
- ``{value.PATH}`` a field of a JSON value, PATH dotted (``{value.customer.region}``); strings
  as they are, other JSON values as JSON text.

A missing header or field renders as nothing. Records whose new key the partitioner does not hash
(NULL keys under the ``*_random`` partitioners) are spread evenly, the long-run effect of the
sticky partitioner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pykafka_ops.models.skew import WhatIf
from pykafka_ops.partitioner import Partitioner, partitions_for
from pykafka_ops.services.skew_stats import excess_cut, imbalance

_FIELD = re.compile(r"\{([^{}]*)\}")
_NUMERIC = re.compile(r"(partition|offset|timestamp)(?:%([1-9][0-9]*))?")
IDENTITY = "{key}"


class RecordView(NamedTuple):
    """What a key template can read from one record."""

    partition: int
    key: bytes | None
    offset: int
    timestamp: int | None = None
    headers: Sequence[tuple[str, bytes | None]] | None = None
    value: bytes | None = None
    size: int = 0
    """Key + value bytes."""


@dataclass(frozen=True)
class Field:
    """One ``{…}`` of a template: ``kind`` is key, partition, offset, timestamp, header or value."""

    kind: str
    name: str = ""
    modulo: int | None = None


@dataclass(frozen=True)
class KeyTemplate:
    """A parsed key template (see the module docstring)."""

    text: str
    parts: tuple[bytes | Field, ...]

    @classmethod
    def parse(cls, text: str) -> KeyTemplate:
        """Parse ``text``; a ValueError names the field it does not understand."""
        parts: list[bytes | Field] = []
        position = 0
        for match in _FIELD.finditer(text):
            if match.start() > position:
                parts.append(text[position:match.start()].encode())
            parts.append(_field(match.group(1), text))
            position = match.end()
        if position < len(text):
            parts.append(text[position:].encode())
        if any(b"{" in p or b"}" in p for p in parts if isinstance(p, bytes)):
            raise ValueError(f"key template {text!r}: unbalanced brace")
        return cls(text, tuple(parts))

    @property
    def needs_headers(self) -> bool:
        """True when rendering reads record headers."""
        return any(isinstance(p, Field) and p.kind == "header" for p in self.parts)

    @property
    def needs_value(self) -> bool:
        """True when rendering reads the record value."""
        return any(isinstance(p, Field) and p.kind == "value" for p in self.parts)


def _field(spec: str, text: str) -> Field:
    if spec == "key":
        return Field("key")
    if numeric := _NUMERIC.fullmatch(spec):
        return Field(numeric.group(1), modulo=int(numeric.group(2)) if numeric.group(2) else None)
    kind, dot, name = spec.partition(".")
    if dot and name and kind in ("header", "value"):
        return Field(kind, name)
    raise ValueError(f"key template {text!r}: unknown field {{{spec}}} (use key, partition, offset, timestamp, "
                     "each optionally %N, header.NAME or value.PATH)")


def render_keys(templates: Sequence[KeyTemplate], record: RecordView) -> tuple[bytes | None, ...]:
    """The new key of ``record`` under each template."""
    parsed: list[Any] = []  # the JSON value, parsed at most once per record

    def value_field(path: str) -> bytes:
        if not parsed:
            try:
                parsed.append(json.loads(record.value) if record.value is not None else None)
            except ValueError:
                parsed.append(None)
        node = parsed[0]
        for step in path.split("."):
            node = node.get(step) if isinstance(node, dict) else None
        if node is None:
            return b""
        return node.encode() if isinstance(node, str) else json.dumps(node).encode()

    def piece(part: bytes | Field) -> bytes:
        if isinstance(part, bytes):
            return part
        if part.kind == "key":
            return record.key or b""
        if part.kind == "header":
            return next((v or b"" for k, v in record.headers or () if k == part.name), b"")
        if part.kind == "value":
            return value_field(part.name)
        number = getattr(record, part.kind)
        if number is None:
            return b""
        return str(number % part.modulo if part.modulo else number).encode()

    return tuple(record.key if t.text == IDENTITY else b"".join(map(piece, t.parts)) for t in templates)


def spread(partitions: Sequence[int | None], partition_count: int) -> list[int]:
    """Records per partition, with unplaced records (None) dealt evenly over all partitions."""
    counts = [0] * partition_count
    unplaced = 0
    for p in partitions:
        if p is None:
            counts[unplaced % partition_count] += 1
            unplaced += 1
        else:
            counts[p] += 1
    return counts


def what_if(
    sample: Sequence[tuple[int, tuple[bytes | None, ...]]],
    templates: Sequence[KeyTemplate],
    partition_counts: Sequence[int],
    current_count: int,
    partitioner: Partitioner,
    hot_k: float,
) -> tuple[WhatIf, ...]:
    """One ``WhatIf`` per (template, partition count): ``sample`` holds (partition, new keys by
    template) for each sampled record; ``current_count`` is the topic's partition count now."""
    current = imbalance(spread([p for p, _keys in sample], current_count), hot_k)
    results = []
    for index, template in enumerate(templates):
        keys = [new_keys[index] for _p, new_keys in sample]
        for count in partition_counts:
            records = spread(partitions_for(keys, count, partitioner), count)
            predicted = imbalance(records, hot_k)
            results.append(WhatIf(template.text, count, partitioner.value, len(sample), current, predicted,
                                  tuple(records), excess_cut(current, predicted)))
    return tuple(results)
