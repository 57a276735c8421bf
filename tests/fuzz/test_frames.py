"""The fuzzer's own pieces, without a node: cases are rebuilt exactly from (seed, index), the
length sweep writes what it claims, and the framing oracle cuts bytes as the node does."""

from __future__ import annotations

import random

from fuzz import expect, mutations
from fuzz.frames import KNOWN_FRAMES, SCHEDULE, FrameGenerator, request
from pykafka_ops.protocol import bounds, codec

PAIRS = [(0, 9), (1, 12), (3, 0), (3, 9), (16, 4), (18, 0), (18, 3), (19, 7), (60, 1)]
ADVERTISED = {0: (9, 9), 1: (12, 12), 3: (0, 9), 16: (4, 4), 18: (0, 3), 19: (7, 7), 60: (1, 1)}


def test_a_case_is_rebuilt_exactly_from_seed_and_index() -> None:
    first, second = FrameGenerator(PAIRS, 7), FrameGenerator(PAIRS, 7)
    indices = [5000, 3, 977, 42, 3]  # any order: no state leaks from one case into another
    assert [first.case(i) for i in indices] == [second.case(i) for i in reversed(indices)][::-1]
    assert FrameGenerator(PAIRS, 8).case(977) != first.case(977)


def test_the_known_killer_frames_come_first() -> None:
    generator = FrameGenerator(PAIRS, 1)
    for index, (_name, frame) in enumerate(KNOWN_FRAMES):
        assert generator.case(index).data == bytes.fromhex(frame)


def test_every_pair_meets_every_strategy_once_a_cycle() -> None:
    generator = FrameGenerator(PAIRS, 3)
    cases = [generator.case(i) for i in range(len(KNOWN_FRAMES), len(KNOWN_FRAMES) + len(PAIRS) * len(SCHEDULE))]
    for pair in PAIRS:
        expected = {"valid", "length", "truncate", "size_lie", "pipeline", "unknown_api", "header"}
        if pair == (18, 0):  # ApiVersions v0 has an empty body: its length visits flip bytes instead
            expected = expected - {"length"} | {"bitflip"}
        assert expected <= {c.family for c in cases if c.pair == pair}


def test_a_huge_compact_length_is_the_uvarint_ffffffff() -> None:
    head, body = request(16, 4, 1, random.Random(0), {"states_filter": ["a"]})
    (array,) = [f for f in bounds.length_fields(codec.load_request_schema(16, 4), body, 0) if f.what == "array"]
    mutated = mutations.set_length(body, array, "huge")
    assert mutated[array.position: array.position + 5] == bytes.fromhex("ffffffff0f")
    assert expect.decode_request(16, 4, head + mutated, len(head)) is None  # refused, nothing allocated


def test_the_oracle_cuts_frames_as_the_node_does() -> None:
    head, body = request(18, 0, 9, random.Random(0))
    payload = head + body
    assert expect.plan(mutations.with_prefix(payload, -1), ADVERTISED).end == "refused"
    assert expect.plan(mutations.with_prefix(payload, mutations.MAX_REQUEST_BYTES + 1), ADVERTISED).end == "refused"
    assert expect.plan(mutations.with_prefix(payload, len(payload) + 1), ADVERTISED).end == "partial"
    honest = expect.plan(mutations.with_prefix(payload) * 2, ADVERTISED)
    assert honest.end == "idle" and [f.correlation_id for f in honest.frames] == [9, 9]
    assert all(f.reaches_decoder for f in honest.frames)
    short = expect.plan(mutations.with_prefix(payload, 6), ADVERTISED)  # 6 bytes: no correlation id
    assert short.frames[0].correlation_id is None and not short.frames[0].reaches_decoder
