"""Coverage-guided fuzzing of our decoders, in process, with atheris (outside CI; T8 tier B).

Targets, as the node runs them on a received frame:

* ``codec.decode_request_header`` and ``codec.decode_request`` (``bounds`` walk, then kio's
  native reader) for every (key, version) the node advertises (``api_version_entries``);
* ``fastpath.parse_produce_request``, the Produce path, and on each partition's records
  ``validator.validate_record_set``; a record set that validates is then read record by record
  (``RecordBatch.records``: decompression and record decoding, as compacted topics and
  ListOffsets by timestamp do).

The first input byte picks the target (bits 0-1): ``0`` or ``3``: a request of the advertised
pair chosen by the second byte (key and version are written into the header, the rest of the
input follows them: correlation id, client id, body); ``1``: a raw request frame (header as
given); ``2``: a record set (the second byte is ignored). Bit 2 set: the harness recomputes the
CRC of each record batch first, so mutations reach what lies behind the CRC check. Documented exceptions are ``codec.CodecError``, ``fastpath.ParseError``,
``RecordValidationError`` and ``CorruptRecordError``; anything else is a finding, and so is an
abort: RLIMIT_AS is set to the current address space + 2 GiB, so that an allocation sized by a
lying length fails (the Rust reader aborts, libFuzzer reports the input). One contract is
checked beyond that: ``validate_record_set`` must refuse with ``RecordValidationError`` only (a
``CorruptRecordError`` escaping it closes the client's connection: reliability-probe §3.6). Known
findings (``KNOWN``) are counted and printed once instead of stopping the run; ``--strict``
stops on them too.

Run from ``tests/`` after ``pip install -e '.[test,fuzz]'``::

    python -m fuzz.atheris_decoders --seed-corpus                  # (re)write fuzz/corpus/
    mkdir -p /tmp/atheris && python -m fuzz.atheris_decoders /tmp/atheris fuzz/corpus -max_total_time=300
    python -m fuzz.atheris_decoders crash-<sha1>                   # replay a finding
    python -m fuzz.atheris_decoders -merge=1 fuzz/corpus /tmp/atheris   # fold new coverage in

New inputs go to the first directory (keep it outside the repository); ``fuzz/corpus`` stays
small: one valid request per advertised pair, a few record sets and the known killer frames.
"""

from __future__ import annotations

import random
import resource
import struct
import sys
from collections import Counter
from pathlib import Path

import atheris
from crc32c import crc32c

with atheris.instrument_imports(include=["pykafka_ops", "cluster.log.validator"]):
    from cluster.log.validator import RecordValidationError, validate_record_set
    from pykafka_ops.protocol import codec, fastpath
    from pykafka_ops.records.batch import ATTRIBUTES, CRC, HEADER_SIZE, LENGTH, LOG_OVERHEAD, RecordBatch
    from pykafka_ops.records.record import CorruptRecordError

from cluster.handlers import load_handlers
from cluster.handlers.api_versions import api_version_entries

CORPUS = Path(__file__).parent / "corpus"
DOCUMENTED = (codec.CodecError, fastpath.ParseError, RecordValidationError, CorruptRecordError)
#: Findings already reported (reliability-probe.md §3.6): (target, exception type, message start).
#: Findings known and not fixed yet: (target, exception type, message part). None at the moment.
KNOWN: tuple[tuple[str, str, str], ...] = ()
MAX_MESSAGE_BYTES, SEGMENT_BYTES = 1_048_588, 1 << 30

load_handlers()
PAIRS = [(e["api_key"], v) for e in api_version_entries() for v in range(e["min_version"], e["max_version"] + 1)]
PAIRS_SET = frozenset(PAIRS)
STRICT = "--strict" in sys.argv
known_seen: Counter[tuple[str, str, str]] = Counter()


def _contract(target: str, exc: BaseException) -> None:
    """A documented exception that breaks ``target``'s own contract: known, or a finding."""
    for known in KNOWN:
        if known[0] == target and type(exc).__name__ == known[1] and str(exc).startswith(known[2]):
            known_seen[known] += 1
            if known_seen[known] == 1:
                print(f"KNOWN FINDING {target}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            if not STRICT:
                return
    raise AssertionError(f"{target} raised {type(exc).__name__} outside its contract: {exc}") from exc


def recrc(records: bytearray) -> bytearray:
    """Recompute the CRC of every batch that fits, so that mutations get past the CRC check
    (libFuzzer cannot fix a checksum) to the checks and decoders behind it."""
    pos = 0
    while len(records) - pos >= HEADER_SIZE:
        (length,) = struct.unpack_from(">i", records, pos + LENGTH)
        end = pos + LOG_OVERHEAD + length
        if length < 0 or end > len(records) or end < pos + HEADER_SIZE:
            break
        struct.pack_into(">I", records, pos + CRC, crc32c(bytes(records[pos + ATTRIBUTES:end])))
        pos = end
    return records


def check_records(records: memoryview, fix_crc: bool = False) -> None:
    """Validate a record set as the Produce path does; read every record of a valid one."""
    if fix_crc:
        records = memoryview(recrc(bytearray(records)))
    try:
        batches = validate_record_set(records, MAX_MESSAGE_BYTES, SEGMENT_BYTES)
    except RecordValidationError:
        return
    except CorruptRecordError as exc:
        _contract("validate_record_set", exc)
        return
    for batch in batches:
        try:
            for _record in RecordBatch(records, batch.position).records():
                pass
        except CorruptRecordError:
            pass


def check_request(frame: bytes, fix_crc: bool = False) -> None:
    """Decode a request frame (no size prefix) as the node does."""
    view = memoryview(frame)
    header = codec.decode_request_header(view)
    if (header.api_key, header.api_version) not in PAIRS_SET:
        return
    if header.api_key == 0:  # Produce: the node's fast path, then the validator per partition
        request = fastpath.parse_produce_request(view, header.size, header.api_version)
        for topic in request.topics:
            for partition in topic.partitions:
                if partition.records is not None:
                    check_records(memoryview(bytearray(partition.records)), fix_crc)
    codec.decode_request(header.api_key, header.api_version, view.toreadonly(), header.size)


def fuzz_one_input(data: bytes) -> None:
    """The atheris entry point (see the module docstring for the input layout)."""
    if len(data) < 2:
        return
    selector, fix_crc, rest = data[0] & 3, bool(data[0] & 4), data[1:]
    try:
        if selector in (0, 3):
            key, version = PAIRS[rest[0] % len(PAIRS)]
            check_request(struct.pack(">hh", key, version) + rest[1:], fix_crc)
        elif selector == 1:
            check_request(rest, fix_crc)
        else:
            check_records(memoryview(bytearray(rest)), fix_crc)
    except DOCUMENTED:
        pass


def seed_corpus(directory: Path = CORPUS) -> int:
    """Write the starting corpus: a valid request per advertised pair, a few record sets, the
    known killer frames; returns the number of files."""
    from fuzz.examples import example, record_batch
    from fuzz.frames import KNOWN_FRAMES

    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    inputs = []
    for index, (key, version) in enumerate(PAIRS):
        raw = codec.encode_request(key, version, 1, "fuzz", example(codec.load_request_schema(key, version), rng))
        inputs.append(bytes([0, index]) + raw[4:])
    inputs += [bytes([selector, 0]) + record_batch(rng) for selector in (2, 6) for _ in range(4)]
    inputs += [bytes([1, 0]) + bytes.fromhex(frame)[4:] for _name, frame in KNOWN_FRAMES]
    for old in directory.glob("seed-*"):
        old.unlink()
    for number, item in enumerate(inputs):
        (directory / f"seed-{number:03d}").write_bytes(item)
    return len(inputs)


def main() -> None:
    """``--seed-corpus`` writes fuzz/corpus/; anything else goes to atheris/libFuzzer."""
    if "--seed-corpus" in sys.argv:
        print(f"wrote {seed_corpus()} inputs to {CORPUS}")
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        vms = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (vms + 2 * 2**30, hard))
    atheris.Setup([a for a in sys.argv if a != "--strict"], fuzz_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
