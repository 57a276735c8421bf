"""The records walk of the produce path: C and Python walkers, and the log validator's answers.

* Cases with the message each walker must give (Kafka's ``DefaultRecord.readFrom`` and
  ``DefaultRecordBatch.RecordIterator`` refuse all of them with InvalidRecordException).
* Differential: the C extension and the pure-Python reference agree, message for message, on
  valid sections (ours and librdkafka's) and on random mutations of them.
* In CI (``CI=true``) the C extension must be the one in use: the fallback never ships silently.
* ``validate_record_set`` answers INVALID_RECORD for a malformed record, and CORRUPT_MESSAGE for a
  stream that does not decompress (``cluster.log.validator.DECOMPRESSION_ERROR``).
"""

from __future__ import annotations

import os
import random
import struct
import sys
from pathlib import Path

import pytest
from crc32c import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.log.validator import RecordValidationError, validate_record_set
from pykafka_ops.errors import ErrorCode
from pykafka_ops.records import record_walk
from pykafka_ops.records.batch import (
    CRC,
    HEADER_SIZE,
    read_batch_header,
)
from pykafka_ops.records.builder import RecordBatchBuilder
from pykafka_ops.records.compression import Compression, compress
from pykafka_ops.records.record import encode_varint, encode_varlong
from pykafka_ops.records.record_walk import walk_records_py

from .helpers import build, record_specs

try:
    from pykafka_ops.records._recordwalk import walk_records as walk_records_c
except ImportError:  # the optional build failed; CI refuses that below
    walk_records_c = None

needs_c = pytest.mark.skipif(walk_records_c is None, reason="the C extension _recordwalk is not built")
DATA = Path(__file__).parent / "data"


def v(value: int) -> bytes:
    """A zigzag varint."""
    return encode_varint(value)


def record(offset_delta: int = 0, key: bytes | None = b"k", value: bytes | None = b"v",
           headers: list[tuple[bytes, bytes | None]] | None = None, *, body: bytes | None = None,
           length: int | None = None) -> bytes:
    """One record, length prefix included; ``body`` replaces the fields, ``length`` the prefix."""
    if body is None:
        body = b"\x00" + encode_varlong(0) + v(offset_delta)
        for field in (key, value):
            body += v(-1) if field is None else v(len(field)) + field
        body += v(len(headers or []))
        for header_key, header_value in headers or []:
            body += v(len(header_key)) + header_key
            body += v(-1) if header_value is None else v(len(header_value)) + header_value
    return v(len(body) if length is None else length) + body


def fields(offset_delta: int = 0) -> bytes:
    """attributes, timestampDelta, offsetDelta: the fixed start of a record body."""
    return b"\x00" + encode_varlong(0) + v(offset_delta)


# (section, records_count, last_offset_delta, expected message or None)
CASES: dict[str, tuple[bytes, int, int, str | None]] = {
    "valid": (record(0) + record(1, None, None, [(b"h", b"x"), (b"n", None)]), 2, 1, None),
    "no-records": (b"", 0, -1, None),
    "key-length-below-minus-one-is-null": (record(body=fields() + v(-5) + v(0) + v(0)), 1, 0, None),
    "non-canonical-varint": (record(body=fields() + b"\x80\x00" + v(0) + v(0)), 1, 0, None),
    "fewer-records-than-count": (record(0), 2, 1,
                                 "record 1: length runs past the end of the records (2 declared)"),
    "trailing-bytes": (record(0) + b"\x00\x01\x02", 1, 0, "3 bytes remain after the last of 1 records"),
    "more-records-than-count": (record(0) + record(1), 1, 0, "9 bytes remain after the last of 1 records"),
    "length-beyond-section": (record(length=50), 1, 0, "record 0: length 50 is invalid, 8 bytes remain"),
    "negative-length": (record(length=-1), 1, 0, "record 0: length -1 is invalid, 8 bytes remain"),
    "zero-length": (v(0), 1, 0, "record 0: attributes runs past the end of the record"),
    "length-longer-than-fields": (record(body=fields() + v(-1) + v(-1) + v(0) + b"\x00"), 1, 0,
                                  "record 0: length 7 but its fields end after 6 bytes"),
    "key-overruns-record": (record(body=fields() + v(10) + b"abc"), 1, 0,
                            "record 0: key of 10 bytes overruns the record"),
    "value-overruns-record": (record(body=fields() + v(-1) + v(4) + b"ab"), 1, 0,
                              "record 0: value of 4 bytes overruns the record"),
    "record-cut-in-a-varint": (record(body=fields() + v(-1) + b"\x80"), 1, 0,
                               "record 0: valueLength runs past the end of the record"),
    "negative-header-count": (record(body=fields() + v(-1) + v(-1) + v(-1)), 1, 0,
                              "record 0: invalid negative headerCount -1"),
    "header-count-beyond-record": (record(body=fields() + v(-1) + v(-1) + v(1000) + b"\x00\x00"), 1, 0,
                                   "record 0: headerCount 1000 exceeds the 2 bytes left in the record"),
    "negative-header-key-length": (record(body=fields() + v(-1) + v(-1) + v(1) + v(-1) + v(-1)), 1, 0,
                                   "record 0: invalid negative headerKeyLength -1"),
    "header-key-overruns": (record(body=fields() + v(-1) + v(-1) + v(1) + v(9) + b"ab"), 1, 0,
                            "record 0: headerKey of 9 bytes overruns the record"),
    "header-value-overruns": (record(body=fields() + v(-1) + v(-1) + v(1) + v(1) + b"a" + v(9)), 1, 0,
                              "record 0: headerValue of 9 bytes overruns the record"),
    "varint-too-long": (record(body=b"\x00" + v(0) + b"\xff" * 5 + b"\x00"), 1, 0,
                        "record 0: offsetDelta varint is longer than 5 bytes"),
    "varint-beyond-32-bits": (record(body=b"\x00" + v(0) + b"\x80\x80\x80\x80\x10" + v(0) * 3), 1, 0,
                              "record 0: offsetDelta varint does not fit 32 bits"),
    "varlong-too-long": (record(body=b"\x00" + b"\xff" * 10 + b"\x00"), 1, 0,
                         "record 0: timestampDelta varint is longer than 10 bytes"),
    "varlong-beyond-64-bits": (record(body=b"\x00" + b"\xff" * 9 + b"\x02" + v(0) * 4), 1, 0,
                               "record 0: timestampDelta varint does not fit 64 bits"),
    "repeated-offset-delta": (record(0) + record(0), 2, 1,
                              "record 1: offsetDelta 0 does not follow 0 within lastOffsetDelta 1"),
    "offset-delta-beyond-last": (record(0) + record(5), 2, 1,
                                 "record 1: offsetDelta 5 does not follow 0 within lastOffsetDelta 1"),
    "negative-first-offset-delta": (record(-1), 1, 0,
                                    "record 0: offsetDelta -1 does not follow -1 within lastOffsetDelta 0"),
    "negative-count": (b"", -1, 0, "invalid record count -1"),
}


def _walkers() -> list[object]:
    return [pytest.param(walk_records_py, id="python"), pytest.param(walk_records_c, id="c", marks=needs_c)]


@pytest.mark.parametrize("walker", _walkers())
@pytest.mark.parametrize("case", list(CASES))
def test_each_case_gets_its_message(walker: record_walk.WalkRecords, case: str) -> None:
    section, count, last_offset_delta, expected = CASES[case]
    assert walker(section, count, last_offset_delta) == expected
    assert walker(memoryview(bytearray(section)), count, last_offset_delta) == expected  # any buffer


def test_the_c_extension_is_in_use_in_ci() -> None:
    """CI installs the package (``pip install '.[test]'``): the optional build must have worked."""
    if os.environ.get("CI", "").lower() != "true":
        pytest.skip("only checked in CI (CI=true)")
    assert walk_records_c is not None, "pykafka_ops.records._recordwalk did not build or import"
    assert record_walk.IMPLEMENTATION == "c"
    assert record_walk.walk_records is walk_records_c


@needs_c
def test_the_wrapper_prefers_the_c_extension() -> None:
    assert record_walk.IMPLEMENTATION == "c" and record_walk.walk_records is walk_records_c


def test_without_the_extension_the_reference_walker_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pykafka_ops.records._recordwalk", None)  # import fails
    assert record_walk._select() == (walk_records_py, "python")


@needs_c
def test_the_c_walker_refuses_what_is_not_a_buffer() -> None:
    with pytest.raises(TypeError):
        walk_records_c("text", 0, 0)  # type: ignore[misc]


# --- differential: C against the reference ---------------------------------------------------


def _section(batch: bytes) -> tuple[bytes, int, int]:
    header = read_batch_header(batch)
    return batch[HEADER_SIZE:], header.records_count, header.last_offset_delta


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(5)
        at = rng.randrange(len(out) + 1)
        if kind == 0 and out:  # overwrite a byte: lengths, counts and varint bits go wrong
            out[min(at, len(out) - 1)] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        elif kind == 1:  # insert bytes
            out[at:at] = rng.randbytes(rng.randint(1, 4))
        elif kind == 2:  # delete bytes
            del out[at : at + rng.randint(1, 4)]
        elif kind == 3:  # truncate
            del out[at:]
        else:  # garbage tail
            out[at:] = rng.randbytes(rng.randint(0, 32))
    return bytes(out)


@needs_c
@settings(max_examples=300, deadline=None)
@given(specs=record_specs)
def test_c_and_python_accept_every_valid_section(specs: list) -> None:
    section, count, last_offset_delta = _section(build(specs))
    assert walk_records_py(section, count, last_offset_delta) is None
    assert walk_records_c(section, count, last_offset_delta) is None


@needs_c
@settings(max_examples=1500, deadline=None)
@given(specs=record_specs, seed=st.integers(0, 2**32 - 1), count_shift=st.sampled_from([0, 0, 0, -1, 1, 5]),
       last_shift=st.sampled_from([0, 0, -1, 1]))
def test_c_and_python_agree_on_mutated_sections(specs: list, seed: int, count_shift: int, last_shift: int) -> None:
    section, count, last_offset_delta = _section(build(specs))
    mutated = _mutate(section, random.Random(seed))
    args = (mutated, count + count_shift, last_offset_delta + last_shift)
    assert walk_records_c(*args) == walk_records_py(*args)


@needs_c
@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=200), count=st.integers(-2, 40), last_offset_delta=st.integers(-2, 2**31 - 1))
def test_c_and_python_agree_on_random_bytes(data: bytes, count: int, last_offset_delta: int) -> None:
    assert walk_records_c(data, count, last_offset_delta) == walk_records_py(data, count, last_offset_delta)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_librdkafka_batches_walk_clean(codec: str) -> None:
    """Batches librdkafka wrote (captured by capture_librdkafka.py) pass both walkers."""
    from pykafka_ops.records.batch import iter_batches
    from pykafka_ops.records.compression import decompress

    buf = (DATA / f"librdkafka-{codec}.bin").read_bytes()
    walked = 0
    for pos, header in iter_batches(buf):
        section = buf[pos + HEADER_SIZE : pos + header.size]
        data = decompress(header.compression, section) if header.compression else section
        for walker in (walk_records_py, walk_records_c):
            if walker is not None:
                assert walker(data, header.records_count, header.last_offset_delta) is None
        walked += 1
    assert walked


# --- the log validator ------------------------------------------------------------------------


def batch_of(section: bytes, count: int, last_offset_delta: int, codec: Compression = Compression.NONE) -> bytearray:
    """A v2 batch around ``section`` (compressed with ``codec``), header fields as given, CRC valid."""
    raw = bytearray(RecordBatchBuilder(compression=codec).build(last_offset_delta=0)[:HEADER_SIZE])
    raw += compress(codec, section)
    struct.pack_into(">i", raw, 8, len(raw) - 12)  # batchLength
    struct.pack_into(">i", raw, 23, last_offset_delta)
    struct.pack_into(">i", raw, 57, count)
    struct.pack_into(">I", raw, CRC, crc32c(bytes(raw[21:])))
    return raw


def garbage_batch(codec: Compression, seed: int = 12) -> bytearray:
    """The probe's poison pill: a 3-record batch whose records are random bytes, CRC made valid."""
    builder = RecordBatchBuilder()
    for i in range(3):
        builder.append(b"k", b"value-%d" % i)
    raw = bytearray(builder.build())
    raw[HEADER_SIZE:] = random.Random(seed).randbytes(len(raw) - HEADER_SIZE)
    struct.pack_into(">h", raw, 21, codec)
    struct.pack_into(">I", raw, CRC, crc32c(bytes(raw[21:])))
    return raw


def _answer(raw: bytearray) -> ErrorCode | None:
    try:
        validate_record_set(memoryview(raw), 1 << 20, 1 << 30)
    except RecordValidationError as exc:
        return exc.error_code
    return None


@pytest.mark.parametrize("codec", list(Compression))
def test_a_valid_batch_passes_with_every_codec(codec: Compression) -> None:
    assert _answer(batch_of(record(0) + record(1, None, b"x" * 300), 2, 1, codec)) is None


def test_garbage_records_under_a_valid_crc_are_invalid_record() -> None:
    assert _answer(garbage_batch(Compression.NONE)) == ErrorCode.invalid_record


@pytest.mark.parametrize("codec", [Compression.GZIP, Compression.SNAPPY, Compression.LZ4, Compression.ZSTD])
def test_garbage_that_does_not_decompress_is_corrupt_message(codec: Compression) -> None:
    assert _answer(garbage_batch(codec)) == ErrorCode.corrupt_message


@pytest.mark.parametrize("codec", list(Compression))
@pytest.mark.parametrize("case", ["fewer-records-than-count", "trailing-bytes", "key-overruns-record",
                                  "negative-header-count", "repeated-offset-delta"])
def test_malformed_records_are_invalid_record_compressed_or_not(codec: Compression, case: str) -> None:
    section, count, last_offset_delta, _message = CASES[case]
    assert _answer(batch_of(section, count, last_offset_delta, codec)) == ErrorCode.invalid_record


def test_the_message_names_the_record() -> None:
    section, count, last_offset_delta, message = CASES["key-overruns-record"]
    with pytest.raises(RecordValidationError, match=f"Found invalid record structure: {message}"):
        validate_record_set(memoryview(batch_of(section, count, last_offset_delta)), 1 << 20, 1 << 30)
