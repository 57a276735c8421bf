"""`pko dump-log` on hand-built segment files: Kafka's lines for batches, records and control
markers, and what a torn or corrupt file prints (never a traceback)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from commands.dump_log import batch_line, log_text, record_line
from pykafka_ops.records.builder import RecordBatchBuilder
from pykafka_ops.records.compression import Compression
from pykafka_ops.records.record import ControlRecord, ControlRecordType
from pykafka_ops.services.dump_log import DumpedBatch, InvalidTail, iter_log

TS = 1_700_000_000_000
LOG = "00000000000000000000.log"


def pko(*args: str) -> Any:
    from commands.main import app

    return CliRunner().invoke(app, ["dump-log", *args], catch_exceptions=False)


def batch(base: int = 0, values: tuple[bytes | None, ...] = (b"hello",), compression: Compression = Compression.NONE,
          producer_id: int = 1000, base_sequence: int = 0) -> bytes:
    builder = RecordBatchBuilder(base, compression, producer_id=producer_id, producer_epoch=0,
                                 base_sequence=base_sequence, partition_leader_epoch=0)
    for i, value in enumerate(values):
        builder.append(b"k", value, timestamp_ms=TS + i)
    return builder.build()


def segment(tmp_path: Path, data: bytes, name: str = LOG) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def lines(path: Path, deep: bool = True, print_data: bool = True) -> list[str]:
    return list(log_text(path.name, iter_log(path, deep), deep, print_data))


def test_batch_and_record_lines_are_kafkas(tmp_path: Path) -> None:
    raw = batch(values=(b"hello", None, b"x"))
    path = segment(tmp_path, raw)
    [dumped] = list(iter_log(path, deep=True))
    assert isinstance(dumped, DumpedBatch)
    crc = struct.unpack_from(">I", raw, 17)[0]
    assert batch_line(dumped) == (
        "baseOffset: 0 lastOffset: 2 count: 3 baseSequence: 0 lastSequence: 2 producerId: 1000 producerEpoch: 0 "
        "partitionLeaderEpoch: 0 isTransactional: false isControl: false deleteHorizonMs: OptionalLong.empty "
        f"position: 0 CreateTime: {TS + 2} size: {len(raw)} magic: 2 compresscodec: none crc: {crc} isvalid: true")
    assert [record_line(dumped, r, True) for r in dumped.records or ()] == [
        f"| offset: 0 CreateTime: {TS} keySize: 1 valueSize: 5 sequence: 0 headerKeys: [] key: k payload: hello",
        f"| offset: 1 CreateTime: {TS + 1} keySize: 1 valueSize: -1 sequence: 1 headerKeys: [] key: k",
        f"| offset: 2 CreateTime: {TS + 2} keySize: 1 valueSize: 1 sequence: 2 headerKeys: [] key: k payload: x",
    ]
    assert record_line(dumped, dumped.records[0], True, skip_metadata=True) == "| key: k payload: hello"  # type: ignore[index]


def test_a_batch_without_producer_shows_minus_one_sequences(tmp_path: Path) -> None:
    path = segment(tmp_path, batch(producer_id=-1, base_sequence=-1, compression=Compression.GZIP))
    text = lines(path)
    assert "baseSequence: -1 lastSequence: -1 producerId: -1" in text[0] and "compresscodec: gzip" in text[0]
    assert " sequence: -1 " in text[1]


def test_control_batch_prints_the_marker_not_the_data(tmp_path: Path) -> None:
    marker = ControlRecord(ControlRecordType.COMMIT, 7)
    builder = RecordBatchBuilder(5, producer_id=1000, producer_epoch=0, is_transactional=True, is_control=True,
                                 partition_leader_epoch=3)
    builder.append(marker.encode_key(), marker.encode_value(), timestamp_ms=TS)
    text = lines(segment(tmp_path, builder.build()))
    assert "isTransactional: true isControl: true" in text[0] and "partitionLeaderEpoch: 3" in text[0]
    assert text[1] == (f"| offset: 5 CreateTime: {TS} keySize: 4 valueSize: 6 sequence: -1 headerKeys: [] "
                       "endTxnMarker: COMMIT coordinatorEpoch: 7")


def test_a_torn_last_batch_is_reported_as_invalid_bytes(tmp_path: Path) -> None:
    first, second = batch(0), batch(1)
    path = segment(tmp_path, first + second[:-3])
    items = list(iter_log(path, deep=True))
    assert isinstance(items[-1], InvalidTail) and (items[-1].position, items[-1].size) == (len(first), len(second) - 3)
    text = lines(path)
    assert len(text) == 3 and text[-1] == f"Found {len(second) - 3} invalid bytes at the end of {LOG}"


@pytest.mark.parametrize("tail, reason", [
    (b"\0" * 100, "record size 0 smaller than minimum record overhead (14)"),  # zeros after a crash
    (b"\1" * 10, "a truncated batch"),  # fewer bytes than a header up to the magic
    (struct.pack(">qiib", 9, 40, 0, 1) + b"\0" * 40, "magic 1 is not supported (only v2 record batches)"),
    (struct.pack(">qiib", 9, 20, 0, 2) + b"\0" * 20, "batch length 20 is shorter than a v2 batch header"),
])
def test_a_corrupt_tail_ends_the_dump_with_its_reason(tmp_path: Path, tail: bytes, reason: str) -> None:
    first = batch(0)
    path = segment(tmp_path, first + tail)
    *batches, end = list(iter_log(path))
    assert len(batches) == 1 and end == InvalidTail(len(first), len(tail), reason)
    result = pko("--files", str(path), "--deep-iteration")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.splitlines()[-1] == f"Found {len(tail)} invalid bytes at the end of {LOG}"
    dumped = json.loads(pko("--files", str(path), "--output", "json").stdout)[0]
    assert (dumped["invalid_bytes"], dumped["invalid_position"], dumped["invalid_reason"]) == (
        len(tail), len(first), reason)


def test_a_flipped_byte_shows_isvalid_false_and_the_dump_goes_on(tmp_path: Path) -> None:
    raw = bytearray(batch(0, (b"hello",)))
    raw[-3] ^= 0xFF  # inside the value: the record still decodes
    path = segment(tmp_path, bytes(raw) + batch(1))
    text = lines(path)
    assert text[0].endswith("isvalid: false") and text[2].endswith("isvalid: true")
    assert text[1].startswith("| offset: 0 ") and len(text) == 4


def test_undecodable_records_are_one_line_not_a_traceback(tmp_path: Path) -> None:
    raw = bytearray(batch(0, (b"hello" * 50,), compression=Compression.GZIP))
    raw[70:90] = b"\0" * 20  # break the gzip stream
    path = segment(tmp_path, bytes(raw) + batch(1))
    result = pko("--files", str(path), "--print-data-log")
    assert result.exit_code == 0, result.stderr
    out = result.stdout.splitlines()
    assert "isvalid: false" in out[2]
    assert out[3].startswith("Found invalid records in the batch at position 0: ")
    assert out[4].startswith("baseOffset: 1 ") and out[5].startswith("| offset: 1 ")
    dumped = json.loads(pko("--files", str(path), "--deep-iteration", "--output", "json").stdout)[0]
    assert dumped["batches"][0]["records"] == [] and dumped["batches"][0]["records_error"]


def test_an_empty_segment_prints_only_its_header(tmp_path: Path) -> None:
    path = segment(tmp_path, b"", "00000000000000000042.log")
    result = pko("--files", str(path))
    assert (result.exit_code, result.stdout) == (0, f"Dumping {path}\nLog starting offset: 42\n")


def test_max_bytes_reads_whole_batches_and_reports_no_tail(tmp_path: Path) -> None:
    first = batch(0)
    path = segment(tmp_path, first + batch(1))
    result = pko("--files", str(path), "--max-bytes", str(len(first) + 5))
    assert result.stdout.splitlines()[2:] == [line for line in lines(path, deep=False) if "baseOffset: 0 " in line]


def test_non_consecutive_offsets_go_to_stderr(tmp_path: Path) -> None:
    path = segment(tmp_path, batch(0) + batch(5))
    result = pko("--files", str(path), "--deep-iteration")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [f"Non-consecutive offsets in {path.absolute()}", "  0 is followed by 5"]


def test_index_entries_are_checked_against_the_log(tmp_path: Path) -> None:
    first, second = batch(0, (b"a", b"b")), batch(2)
    segment(tmp_path, first + second)
    index = segment(tmp_path, struct.pack(">ii", 1, 0) + struct.pack(">ii", 1, len(first)) + b"\0\0\0",
                    "00000000000000000000.index")  # the second entry is wrong; a torn third one
    result = pko("--files", str(index))
    assert result.stdout.splitlines() == [f"Dumping {index}", "offset: 1 position: 0",
                                          f"offset: 1 position: {len(first)}"]
    assert result.stderr.splitlines() == [f"Mismatches in :{index.absolute()}", "  Index offset: 1, log offset: 2"]
    index.unlink()  # the time index is checked through the offset index: scan from 0 instead
    empty = segment(tmp_path, b"", "00000000000000000000.timeindex")
    assert pko("--files", str(empty)).stdout == f"Dumping {empty}\n"
    time_index = segment(tmp_path, struct.pack(">qi", TS + 1, 1) + struct.pack(">qi", TS, 2),
                         "00000000000000000000.timeindex")
    result = pko("--files", str(time_index))
    assert result.stdout.splitlines()[1:] == [f"timestamp: {TS + 1} offset: 1", f"timestamp: {TS} offset: 2"]
    assert result.stderr.splitlines() == [f"Found out of order timestamp in :{time_index.absolute()}",
                                          f"  Index timestamp: {TS}, Previously indexed timestamp: {TS + 1}"]


def test_an_unknown_file_is_ignored_as_kafka_does(tmp_path: Path) -> None:
    other = segment(tmp_path, b"x", "leader-epoch-checkpoint")
    result = pko("--files", str(other))
    assert (result.exit_code, result.stdout, result.stderr) == (
        0, f"Dumping {other}\n", f"Ignoring unknown file {other}\n")


def test_a_segment_not_named_by_an_offset_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = segment(tmp_path, batch(0), "segment.log")
    result = pko("--files", str(bad))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"pko: {bad}: not named by a base offset (20 digits)\n"
