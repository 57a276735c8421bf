"""Shared strategies and helpers for the record-batch tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hypothesis import strategies as st

from pykafka_ops.records import Compression, Record, RecordBatch, RecordBatchBuilder

# (key, value, headers, timestamp_ms), the shape every builder under test accepts.
RecordSpec = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]

# Timestamps stay within ±2**40 ms of each other, so every delta fits comfortably.
record_specs = st.lists(
    st.tuples(
        st.none() | st.binary(max_size=64),
        st.none() | st.binary(max_size=400),
        st.lists(st.tuples(st.text(max_size=12), st.none() | st.binary(max_size=32)), max_size=4),
        st.integers(min_value=0, max_value=2**40),
    ),
    min_size=1,
    max_size=20,
)


def build(specs: Sequence[RecordSpec], **builder_args: Any) -> bytes:
    """A batch built by our RecordBatchBuilder from record specs."""
    builder = RecordBatchBuilder(**builder_args)
    for key, value, headers, timestamp in specs:
        builder.append(key, value, headers, timestamp_ms=timestamp)
    return builder.build()


def expected(specs: Sequence[RecordSpec], base_offset: int = 0) -> list[tuple]:
    """What a reader should return for ``specs``: (offset, ts, key, value, headers) tuples."""
    return [
        (base_offset + i, ts, key, value, [tuple(h) for h in headers])
        for i, (key, value, headers, ts) in enumerate(specs)
    ]


def ours(batch: bytes, pos: int = 0) -> list[tuple]:
    """Our reader's records in the shape of ``expected``."""
    return as_tuples(RecordBatch(batch, pos).records())


def as_tuples(records: Iterable[Record]) -> list[tuple]:
    """Records as (offset, ts, key, value, [(header key, header value)]) tuples."""
    return [
        (r.offset, r.timestamp, r.key, r.value, [(h.key, h.value) for h in r.headers])
        for r in records
    ]


def client_records(batch: Iterable[Any]) -> list[tuple]:
    """kafka-python's or aiokafka's decoded records in the shape of ``expected``."""
    return [(r.offset, r.timestamp, r.key, r.value, [(k, v) for k, v in r.headers]) for r in batch]


CODECS = list(Compression)
