"""Fuzz cases for the broker port, rebuilt exactly from (seed, index) and the advertised APIs.

A case is the bytes sent on one fresh connection: one frame, or several pipelined. Case ``i``
first replays the fixed ``CORPUS`` (frames that killed or hurt the node before), then takes
the (key, version) pair ``i % len(pairs)`` of the node's advertised versions and a strategy
from ``SCHEDULE``, rotated per pair so that every pair meets every strategy once per
``len(SCHEDULE)`` visits. Strategies start from a valid request built by ``fuzz.examples``:

* ``valid``        the request as built (handlers see good input too);
* ``random_body``  the valid header, then random bytes;
* ``truncate``     the body cut short (the header sometimes too);
* ``bitflip``      1-4 body bytes changed;
* ``length``       a *systematic sweep*: the n-th visit of a pair rewrites the n-th
  (value class, length field) of that pair's sweep examples (``bounds.length_fields``), value
  classes first, so a short run already puts a huge length in every field;
* ``batch``        Produce only: a bad record batch (``mutations.BATCH_FAULTS``, in turn);
  other APIs get ``tagged`` (unknown tagged fields) when flexible, else ``bitflip``;
* ``size_lie``     an honest request under a lying size prefix (``mutations.SIZE_LIES``);
* ``unknown_api``  an API key the node does not advertise, or a version outside its range;
* ``header``       a broken request header (client id length, header tagged fields, cut);
* ``pipeline``     2-6 frames on one connection, valid ones among mutated ones.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fuzz import mutations as mut
from fuzz.examples import example, record_batch
from pykafka_ops.protocol import bounds, codec
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.bounds import LengthField

Pair = tuple[int, int]
#: The topic bad record batches are produced to (created by the runner; not in examples.NAMES,
#: so fuzzed DeleteTopics never removes it).
BATCH_TOPIC = "pko-fuzz-batches"
CLIENT_ID = "fuzz"

#: Frames that crashed or hurt earlier nodes (specs/reliability-probe.md §3.2, §3.6, §3.7),
#: replayed first by every run: (name, frame in hex, size prefix included).
KNOWN_FRAMES: tuple[tuple[str, str], ...] = (
    # Metadata v9: topics array of 0xFFFFFFFE elements; the pre-fix node reserved 34 GB and aborted
    ("metadata_v9_huge_array", "0000001a00030009000000010002667a00ffffffff0f03667a0000000000"),
    # ListGroups v4: states_filter of 0xFFFFFFFE elements (same crash)
    ("list_groups_v4_huge_array", "0000001300100004000000010002667a00ffffffff0f00"),
    ("http_get", (b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").hex()),
)

SCHEDULE = (
    "valid", "length", "random_body", "length", "truncate", "batch", "length", "bitflip",
    "size_lie", "length", "pipeline", "unknown_api", "length", "header", "batch", "truncate",
    "length", "pipeline", "valid", "size_lie",
)
#: Keys no node of ours advertises (plus nonsense), for ``unknown_api``.
UNKNOWN_KEYS = (4, 5, 6, 7, 17, 23, 29, 36, 50, 57, 68, 74, 1000, 32767, -1, -32768)
HEADER_FAULTS = ("client_id_minus2", "client_id_past_end", "client_id_max", "tags_huge", "tags_past_end", "cut")
UNKNOWN_VARIANTS = ("key", "version_above", "version_far_above", "version_below", "version_negative")


@dataclass(frozen=True)
class Case:
    """What one connection receives: ``data`` (frames with their size prefixes)."""

    index: int
    strategy: str
    """``name`` or ``name:variant`` (e.g. ``length:huge``, ``batch:crc_wrong``)."""
    pair: Pair | None
    data: bytes

    @property
    def family(self) -> str:
        """The strategy without its variant."""
        return self.strategy.split(":", 1)[0]


def correlation_id(index: int, sub: int = 0) -> int:
    """The correlation id of frame ``sub`` of case ``index`` (unique within a run)."""
    return (index * 8 + sub) & 0x7FFFFFFF


def header(key: int, version: int, cid: int) -> bytes:
    """A request header of (key, version): v1, or v2 (an empty tagged-field section) when the
    version is flexible."""
    client = CLIENT_ID.encode()
    tags = b"\0" if codec.known_versions(key) and codec.is_flexible(key, version) else b""
    return struct.pack(">hhih", key, version, cid, len(client)) + client + tags


def request(key: int, version: int, cid: int, rng: random.Random, body: Any = None) -> tuple[bytes, bytes]:
    """(header, body) of a valid request of (key, version): ``body`` (a dict or kio instance),
    or an example built from ``rng``."""
    schema = codec.load_request_schema(key, version)
    raw = codec.encode_request(key, version, cid, CLIENT_ID, body if body is not None else example(schema, rng))
    head = header(key, version, cid)
    assert raw.startswith(head), "codec and fuzz.frames disagree on the request header"
    return head, raw[len(head):]


def produce_body(records: bytes | None, rng: random.Random) -> dict[str, object]:
    """A Produce request carrying ``records`` for partition 0 of ``BATCH_TOPIC``."""
    return {"transactional_id": None, "acks": rng.choice((1, 1, -1, 0)), "timeout": 5000,
            "topic_data": [{"name": BATCH_TOPIC, "partition_data": [{"index": 0, "records": records}]}]}


#: A listener's own valid bodies: ``bodies(key, version, rng)`` is a body dict for ``request``, or
#: None to take ``fuzz.examples``' generic example (``fuzz.listeners``: the Raft RPCs' bodies).
Bodies = Callable[[int, int, random.Random], Any]


class FrameGenerator:
    """Builds case ``index`` for a node advertising ``pairs`` (deterministic in seed, index).

    ``bodies`` (optional) supplies valid bodies of the listener's own (see ``Bodies``); without it
    every valid request is a generic example."""

    def __init__(self, pairs: Sequence[Pair], seed: int, bodies: Bodies | None = None) -> None:
        self.pairs = sorted(pairs)
        self.seed = seed
        self.bodies = bodies
        self.keys = sorted({key for key, _ in self.pairs})
        self._ranges = {key: (min(v for k, v in self.pairs if k == key), max(v for k, v in self.pairs if k == key))
                        for key in self.keys}
        self._sweeps: dict[Pair, list[tuple[bytes, list[LengthField]]]] = {}

    def case(self, index: int) -> Case:
        """Case ``index`` (see the module docstring)."""
        if index < len(KNOWN_FRAMES):
            name, frame = KNOWN_FRAMES[index]
            return Case(index, f"corpus:{name}", None, bytes.fromhex(frame))
        j = index - len(KNOWN_FRAMES)
        p, r = j % len(self.pairs), j // len(self.pairs)
        strategy = SCHEDULE[(r + p) % len(SCHEDULE)]
        visit = self._visits(p, r, strategy)
        rng = random.Random(f"{self.seed}:{index}")
        pair = self.pairs[p]
        if strategy == "pipeline":
            return Case(index, "pipeline", pair, self._pipeline(index, rng))
        name, payload = self._frame(strategy, pair, correlation_id(index), rng, visit)
        return Case(index, name, pair, payload)

    def _request(self, key: int, version: int, cid: int, rng: random.Random, body: Any = None) -> tuple[bytes, bytes]:
        """``request``, with a body of the listener's own when ``bodies`` gives one."""
        if body is None and self.bodies is not None:
            body = self.bodies(key, version, rng)
        return request(key, version, cid, rng, body)

    def _visits(self, p: int, r: int, strategy: str) -> int:
        """How often pair ``p`` met ``strategy`` before round ``r`` (the sweep position)."""
        cycle = len(SCHEDULE)
        full = (r // cycle) * SCHEDULE.count(strategy)
        return full + sum(1 for j in range(r % cycle) if SCHEDULE[(p + j) % cycle] == strategy)

    def _frame(self, strategy: str, pair: Pair, cid: int, rng: random.Random, visit: int) -> tuple[str, bytes]:
        """(strategy name with variant, wire bytes) of one frame."""
        key, version = pair
        if strategy == "batch" and key != ApiKey.PRODUCE:
            produce = [v for k, v in self.pairs if k == ApiKey.PRODUCE]
            if visit % 2 and produce:  # every other time: a bad batch in a Produce of any version
                key, version, visit = ApiKey.PRODUCE, rng.choice(produce), rng.randrange(len(mut.BATCH_FAULTS))
            else:
                strategy = "tagged" if codec.is_flexible(key, version) else "bitflip"
        if strategy == "length":
            return self._length(pair, cid, rng, visit)
        if strategy == "batch":
            fault = tuple(mut.BATCH_FAULTS)[visit % len(mut.BATCH_FAULTS)]
            records = mut.bad_batch(record_batch(rng), fault, rng)
            head, body = self._request(key, version, cid, rng, produce_body(records, rng))
            return f"batch:{fault}", mut.with_prefix(head + body)
        if strategy == "size_lie":
            lie = tuple(mut.SIZE_LIES)[visit % len(mut.SIZE_LIES)]
            head, body = self._request(key, version, cid, rng)
            payload = head + body
            return f"size_lie:{lie}", mut.with_prefix(payload, mut.SIZE_LIES[lie](len(payload), rng))
        if strategy == "unknown_api":
            return self._unknown(pair, cid, rng, UNKNOWN_VARIANTS[visit % len(UNKNOWN_VARIANTS)])
        if strategy == "header":
            fault = HEADER_FAULTS[visit % len(HEADER_FAULTS)]
            return f"header:{fault}", mut.with_prefix(_bad_header(*self._request(key, version, cid, rng), rng, fault))
        head, body = self._request(key, version, cid, rng)
        if strategy == "random_body":
            body = rng.randbytes(rng.choice((0, 1, 2, 4, 8, 16, 64, 256, 1024)))
        elif strategy == "truncate":
            if body and rng.random() < 0.85:
                body = body[: rng.randrange(len(body))]
            else:
                head, body = head[: rng.randrange(len(head))], b""
        elif strategy == "bitflip":
            body = _bitflip(body, rng)
        elif strategy == "tagged":
            body = _unknown_tags(key, version, body, rng)
        return strategy, mut.with_prefix(head + body)

    def _length(self, pair: Pair, cid: int, rng: random.Random, visit: int) -> tuple[str, bytes]:
        """The ``visit``-th (value class, length field) of the pair's sweep (module doc)."""
        found = self._sweep_entry(pair, visit)
        head = header(*pair, cid)
        if found is None:  # this API's bodies have no length field (e.g. ApiVersions v0)
            return "bitflip", mut.with_prefix(head + _bitflip(self._request(*pair, cid, rng)[1], rng))
        body, field, kind = found
        return f"length:{kind}", mut.with_prefix(head + mut.set_length(body, field, kind))

    def _sweep_entry(self, pair: Pair, visit: int) -> tuple[bytes, LengthField, str] | None:
        """(body, length field, value class) of sweep position ``visit``: the combinations of
        block 0's example, value class first, then those of block 1's, and so on."""
        blocks = self._sweeps.setdefault(pair, [])
        start = 0
        for number in range(visit + 8):
            if number == len(blocks):
                rng = random.Random(f"{self.seed}:sweep:{pair[0]}:{pair[1]}:{number}")
                body = self._request(*pair, 0, rng)[1]
                blocks.append((body, bounds.length_fields(codec.load_request_schema(*pair), body, 0)))
            body, fields = blocks[number]
            combos = len(fields) * len(mut.LENGTH_VALUES)
            if visit < start + combos:
                kind_index, field_index = divmod(visit - start, len(fields))
                return body, fields[field_index], mut.LENGTH_VALUES[kind_index]
            start += combos
            if number >= 3 and start == 0:
                return None
        return None

    def _unknown(self, pair: Pair, cid: int, rng: random.Random, variant: str) -> tuple[str, bytes]:
        key, version = pair
        low, high = self._ranges[key]
        head, body = self._request(key, version, cid, rng)
        if variant == "key":
            key = rng.choice([k for k in UNKNOWN_KEYS if k not in self._ranges])
        else:
            version = {"version_above": high + 1, "version_far_above": 32767,
                       "version_below": low - 1, "version_negative": -1}[variant]
        return f"unknown_api:{variant}", mut.with_prefix(struct.pack(">hh", key, version) + head[4:] + body)

    def _pipeline(self, index: int, rng: random.Random) -> bytes:
        """2-6 frames of random pairs: about half valid, the last one sometimes lying."""
        frames = []
        count = rng.randint(2, 6)
        for sub in range(count):
            pair = rng.choice(self.pairs)
            strategy = rng.choice(("valid", "valid", "valid", "bitflip", "truncate", "random_body", "batch",
                                   "length", "size_lie" if sub == count - 1 else "valid"))
            frames.append(self._frame(strategy, pair, correlation_id(index, sub), rng, rng.randrange(1000))[1])
        return b"".join(frames)


def _bitflip(body: bytes, rng: random.Random) -> bytes:
    if not body:
        return rng.randbytes(rng.randint(1, 4))
    out = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(out))
        out[pos] = rng.choice((out[pos] ^ (1 << rng.randrange(8)), 0xFF, 0x00, 0x80, 0x7F))
    return bytes(out)


def _unknown_tags(key: int, version: int, body: bytes, rng: random.Random) -> bytes:
    """Unknown tagged fields (tag, size, bytes) in an empty tagged-field section of the body."""
    fields = [f for f in bounds.length_fields(codec.load_request_schema(key, version), body, 0)
              if f.what == "tagged_count" and body[f.position] == 0]
    if not fields:
        return _bitflip(body, rng)
    field = rng.choice(fields)
    tags = sorted(rng.sample(range(40), rng.randint(1, 3)))
    section = mut.uvarint(len(tags)) + b"".join(
        mut.uvarint(tag) + mut.uvarint(len(data)) + data for tag in tags for data in [rng.randbytes(rng.randint(0, 9))])
    return body[: field.position] + section + body[field.position + 1:]


def _bad_header(head: bytes, body: bytes, rng: random.Random, fault: str) -> bytes:
    """The request (``head``, ``body``) with its header broken by ``fault`` (the body follows intact)."""
    fixed, client = head[:8], CLIENT_ID.encode()
    tags = head[10 + len(client):]  # empty for a header v1, b"\0" (no tags) for a header v2
    if fault == "cut":
        return head[: rng.randrange(0, len(head))]
    if fault.startswith("client_id"):
        length = {"client_id_minus2": -2, "client_id_past_end": len(head) + len(body), "client_id_max": 32767}[fault]
        return fixed + struct.pack(">h", length) + client + tags + body
    if not tags:  # a header v1 has no tagged fields: lie in the client id length instead
        return fixed + struct.pack(">h", len(client) + 1) + client + body
    section = b"\xff\xff\xff\xff\x0f" if fault == "tags_huge" else b"\x01\x00\xff\xff\xff\x07"
    return fixed + struct.pack(">h", len(client)) + client + section + body
