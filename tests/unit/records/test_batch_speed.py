"""Timing of the broker's per-batch hot path: read_batch_header + crc_ok (printed, not asserted)."""

from __future__ import annotations

import timeit

import pytest

from pykafka_ops.records import crc_ok, read_batch_header

from .helpers import build


def _per_call_us(stmt, number: int) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6


@pytest.mark.parametrize(
    ("label", "specs", "number"),
    [
        ("100-byte batch", [(b"key", b"v" * 24, [], 1)], 20_000),
        ("1 MiB batch", [(b"k%04d" % i, bytes(1024), [], 1) for i in range(1010)], 200),
    ],
)
def test_print_header_and_crc_timings(capsys, label: str, specs, number: int) -> None:
    buf = memoryview(bytearray(build(specs)))  # what the broker holds: a view of a bytearray
    header = read_batch_header(buf)
    header_us = _per_call_us(lambda: read_batch_header(buf, 0), number * 10)
    crc_us = _per_call_us(lambda: crc_ok(buf, 0, header), number)
    both_us = _per_call_us(lambda: crc_ok(buf, 0, read_batch_header(buf, 0)), number)
    with capsys.disabled():
        print(
            f"\n{label} ({len(buf)} bytes): read_batch_header {header_us:.3f} us, "
            f"crc_ok {crc_us:.3f} us, both {both_us:.3f} us "
            f"({len(buf) / both_us / 1e3:.2f} GB/s)"
        )
    assert crc_ok(buf, 0, header)
