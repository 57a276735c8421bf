"""Cross-checks with real clients' bytes: librdkafka (captured), kafka-python and aiokafka.

librdkafka's batches were captured from confluent-kafka's Produce requests by
``capture_librdkafka.py`` (see its docstring) and are stored under ``data/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiokafka.record.default_records import DefaultRecordBatch as AioBatch
from aiokafka.record.default_records import DefaultRecordBatchBuilder as AioBuilder
from hypothesis import given, settings
from kafka.record.default_records import DefaultRecordBatch as KafkaPythonBatch
from kafka.record.default_records import DefaultRecordBatchBuilder as KafkaPythonBuilder

from pykafka_ops.records import (
    Compression,
    RecordBatch,
    crc_ok,
    iter_batches,
    read_batch_header,
)

from .helpers import CODECS, build, client_records, expected, ours, record_specs

DATA = Path(__file__).parent / "data"
LIBRDKAFKA = json.loads((DATA / "librdkafka.json").read_text())
CLIENT_BUILDERS = {"kafka-python": KafkaPythonBuilder, "aiokafka": AioBuilder}
CLIENT_READERS = {"kafka-python": KafkaPythonBatch, "aiokafka": AioBatch}


def _unhex(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


@pytest.mark.parametrize("codec", LIBRDKAFKA["codecs"])
def test_librdkafka_batches_decode_exactly(codec: str) -> None:
    buf = (DATA / f"librdkafka-{codec}.bin").read_bytes()
    batches = list(iter_batches(buf))
    last_pos, last = batches[-1]
    assert last_pos + last.size == len(buf)  # no unread tail
    records = []
    for pos, header in batches:
        assert crc_ok(buf, pos, header)
        assert header.compression == Compression[codec.upper()]
        assert header.producer_id >= 0 and header.producer_epoch >= 0  # idempotent producer
        RecordBatch(buf, pos).validate_crc()
        records += ours(buf, pos)
    assert batches[0][1].base_sequence == 0
    want = [
        (
            _unhex(r["key"]),
            _unhex(r["value"]),
            [(k, _unhex(v)) for k, v in r["headers"]],
            r["timestamp"],
        )
        for r in LIBRDKAFKA["records"]
    ]
    # The producer sent these offsets relative to 0, one batch after another.
    assert records == expected(want)


@pytest.mark.parametrize("client", CLIENT_BUILDERS)
@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@settings(max_examples=25, deadline=None)
@given(specs=record_specs)
def test_client_built_batches_decode_exactly(client: str, codec: Compression, specs) -> None:
    builder = CLIENT_BUILDERS[client](2, int(codec), False, 7, 1, 0, 2**30)
    for offset, (key, value, headers, timestamp) in enumerate(specs):
        assert builder.append(offset, timestamp, key, value, headers) is not None
    batch = bytes(builder.build())
    header = read_batch_header(batch)
    assert crc_ok(batch, 0, header)
    # kafka-python sends a batch uncompressed when compression would make it bigger.
    assert header.compression in (codec, Compression.NONE)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 1, 0)
    assert ours(batch) == expected(specs)


@pytest.mark.parametrize("client", CLIENT_BUILDERS)
@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
def test_client_built_compressible_batches_use_the_codec(client: str, codec: Compression) -> None:
    specs = [(b"key-%d" % i, b"the same value " * 20, [("h", b"x")], 1_000 + i) for i in range(50)]
    builder = CLIENT_BUILDERS[client](2, int(codec), False, -1, -1, -1, 2**30)
    for offset, (key, value, headers, timestamp) in enumerate(specs):
        builder.append(offset, timestamp, key, value, headers)
    batch = bytes(builder.build())
    assert read_batch_header(batch).compression == codec
    assert ours(batch) == expected(specs)


@pytest.mark.parametrize("client", CLIENT_READERS)
@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.name)
@settings(max_examples=25, deadline=None)
@given(specs=record_specs)
def test_our_batches_decode_in_client_readers(client: str, codec: Compression, specs) -> None:
    batch = build(specs, base_offset=500, compression=codec, producer_id=9, base_sequence=3)
    reader = CLIENT_READERS[client](batch)
    assert reader.validate_crc()
    assert reader.compression_type == codec
    assert (reader.base_offset, reader.producer_id, reader.base_sequence) == (500, 9, 3)
    assert client_records(reader) == expected(specs, base_offset=500)
