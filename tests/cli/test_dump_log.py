"""`pko dump-log` (kafka-dump-log.sh) on the segment files of a real running node: records written
by an idempotent confluent-kafka producer, uncompressed and compressed, dumped as Kafka's text and
as JSON; indexes checked against the log; a torn copy, a missing file and bad flags."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from group_clients import unique, wait_until
from typer.testing import CliRunner

from cluster.pytest_plugin import RunningCluster

SEGMENT = "00000000000000000000"
PAD = "." * 200  # librdkafka sends a batch uncompressed unless compressing makes it smaller
BATCH_LINE = re.compile(
    r"baseOffset: (\d+) lastOffset: (\d+) count: (\d+) baseSequence: (\d+) lastSequence: (\d+) "
    r"producerId: (\d+) producerEpoch: 0 partitionLeaderEpoch: (\d+) isTransactional: false isControl: false "
    r"deleteHorizonMs: OptionalLong\.empty position: (\d+) CreateTime: (\d+) size: (\d+) magic: 2 "
    r"compresscodec: (\w+) crc: (\d+) isvalid: true")


def pko(*args: str) -> Any:
    """`pko` in-process: exit code, stdout and stderr apart."""
    from commands.main import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _write_topic(cluster: RunningCluster, compression: str, count: int) -> Path:
    """A one-partition topic (an index entry every 100 bytes) holding ``count`` records ``k<i>`` →
    ``value-<i>`` + PAD from one idempotent producer, in batches of 5; returns its partition dir."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = unique(f"dump-{compression}")
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
    admin.create_topics([NewTopic(topic, 1, 1, config={"index.interval.bytes": "100"})])[topic].result(15)
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "enable.idempotence": True,
                         "acks": "all", "compression.type": compression, "linger.ms": 50})
    for start in range(0, count, 5):
        for i in range(start, min(start + 5, count)):
            producer.produce(topic, key=f"k{i}".encode(), value=f"value-{i}{PAD}".encode(), partition=0,
                             headers=[("source", b"test")] if i == 0 else None)
        assert producer.flush(15) == 0
    directory = cluster.config.node_dir(1) / f"{topic}-0"
    wait_until(lambda: (directory / f"{SEGMENT}.log").exists(), 10, f"segment of {topic}")
    return directory


@pytest.fixture(scope="module")
def plain_dir(pko_cluster: RunningCluster) -> Path:
    return _write_topic(pko_cluster, "none", 12)


@pytest.fixture(scope="module")
def gzip_dir(pko_cluster: RunningCluster) -> Path:
    return _write_topic(pko_cluster, "gzip", 12)


@pytest.mark.parametrize("which, codec", [("plain_dir", "none"), ("gzip_dir", "gzip")])
def test_print_data_log_shows_kafka_batch_and_record_lines(which: str, codec: str,
                                                           request: pytest.FixtureRequest) -> None:
    log = request.getfixturevalue(which) / f"{SEGMENT}.log"
    result = pko("dump-log", "--files", str(log), "--print-data-log")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"Dumping {log}", "Log starting offset: 0"]
    batches = [BATCH_LINE.fullmatch(line) for line in lines if line.startswith("baseOffset:")]
    assert batches and all(batches), lines
    assert {m.group(11) for m in batches if m} == {codec}
    assert len({m.group(6) for m in batches if m}) == 1  # one producer id, from the idempotent producer
    expected_position = 0
    for m in batches:
        assert m is not None
        base, last, count, base_seq, last_seq = (int(m.group(i)) for i in range(1, 6))
        assert (last - base + 1, base_seq, last_seq) == (count, base, last)  # sequence follows the offset here
        assert int(m.group(8)) == expected_position
        expected_position += int(m.group(10))
    assert expected_position == log.stat().st_size
    records = [line for line in lines if line.startswith("| ")]
    assert len(records) == 12
    assert re.fullmatch(r"\| offset: 0 CreateTime: \d+ keySize: 2 valueSize: 207 sequence: 0 headerKeys: \[source\] "
                        rf"key: k0 payload: {re.escape('value-0' + PAD)}", records[0]), records[0]
    assert records[11].endswith(f"keySize: 3 valueSize: 208 sequence: 11 headerKeys: [] key: k11 payload: value-11{PAD}")
    assert "invalid bytes" not in result.stdout


def test_shallow_dump_prints_batches_only(plain_dir: Path) -> None:
    result = pko("dump-log", "--files", str(plain_dir / f"{SEGMENT}.log"))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()[2:]
    assert lines and all(BATCH_LINE.fullmatch(line) for line in lines)


def test_json_carries_what_replicas_are_compared_on(gzip_dir: Path) -> None:
    log = gzip_dir / f"{SEGMENT}.log"
    result = pko("dump-log", "--files", str(log), "--deep-iteration", "--output", "json")
    assert result.exit_code == 0, result.stderr
    [dumped] = json.loads(result.stdout)
    assert (dumped["file"], dumped["type"], dumped["log_start_offset"]) == (str(log), "log", 0)
    assert (dumped["invalid_bytes"], dumped["invalid_reason"], dumped["non_consecutive_offsets"]) == (0, None, [])
    batches = dumped["batches"]
    assert batches[0]["base_offset"] == 0 and batches[-1]["last_offset"] == 11
    for batch in batches:
        assert batch["producer_id"] >= 0 and batch["producer_epoch"] == 0 and batch["partition_leader_epoch"] >= 0
        assert batch["compression"] == "gzip" and batch["crc_valid"] is True and batch["crc"] > 0
        assert [r["offset"] for r in batch["records"]] == list(range(batch["base_offset"], batch["last_offset"] + 1))
        assert [r["sequence"] for r in batch["records"]] == [r["offset"] for r in batch["records"]]
        assert "key" not in batch["records"][0]  # payloads only with --print-data-log
    text = pko("dump-log", "--files", str(log)).stdout
    assert [int(c) for c in re.findall(r" crc: (\d+) ", text)] == [b["crc"] for b in batches]


def test_yaml_with_print_data_log_has_keys_and_payloads(plain_dir: Path) -> None:
    import yaml

    result = pko("dump-log", "--files", str(plain_dir / f"{SEGMENT}.log"), "--print-data-log", "--output", "yaml")
    assert result.exit_code == 0, result.stderr
    records = [r for b in yaml.safe_load(result.stdout)[0]["batches"] for r in b["records"]]
    assert [(r["key"], r["payload"]) for r in records[:2]] == [("k0", f"value-0{PAD}"), ("k1", f"value-1{PAD}")]


def test_index_and_time_index_entries_point_at_batches(plain_dir: Path) -> None:
    index, time_index = plain_dir / f"{SEGMENT}.index", plain_dir / f"{SEGMENT}.timeindex"
    result = pko("dump-log", "--files", f"{index},{time_index}")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # no mismatch with the log
    lines = result.stdout.splitlines()
    split = lines.index(f"Dumping {time_index}")
    assert lines[0] == f"Dumping {index}"
    assert lines[1:split] and all(re.fullmatch(r"offset: \d+ position: \d+", line) for line in lines[1:split])
    assert lines[split + 1:] and all(re.fullmatch(r"timestamp: \d+ offset: \d+", line) for line in lines[split + 1:])
    verified = pko("dump-log", "--files", str(index), "--verify-index-only")
    assert (verified.exit_code, verified.stdout, verified.stderr) == (0, f"Dumping {index}\n", "")


def test_a_torn_copy_reports_its_invalid_tail(plain_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / f"{SEGMENT}.log"
    shutil.copy(plain_dir / f"{SEGMENT}.log", copy)
    size = copy.stat().st_size
    with open(copy, "ab") as f:
        f.write((plain_dir / f"{SEGMENT}.log").read_bytes()[:40])
    result = pko("dump-log", "--files", str(copy), "--deep-iteration")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"Found 40 invalid bytes at the end of {SEGMENT}.log"
    as_json = json.loads(pko("dump-log", "--files", str(copy), "--output", "json").stdout)[0]
    assert (as_json["invalid_bytes"], as_json["invalid_position"]) == (40, size)


def test_a_missing_file_is_one_line_and_exit_1(plain_dir: Path) -> None:
    missing = plain_dir / "00000000000000099999.log"
    result = pko("dump-log", "--files", f"{plain_dir / f'{SEGMENT}.log'},{missing}")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"pko: {missing}: no such file\n")


@pytest.mark.parametrize("args", [[], ["--files", ""], ["--files", "x.log", "--output", "csv"],
                                  ["--files", "x.log", "--max-message-size", "0"], ["--nope"]])
def test_bad_arguments_are_one_line_and_exit_2(args: list[str]) -> None:
    result = pko("dump-log", *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("pko: ")
