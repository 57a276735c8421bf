"""`pko skew --keys-file`: key placement with no cluster, through the service and the CLI."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from commands.main import app
from pykafka_ops.models.skew import SkewOptions
from pykafka_ops.partitioner import Partitioner, partition
from pykafka_ops.services import skew_keysfile
from pykafka_ops.services.skew import predict_keys

runner = CliRunner()


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    """1,000 keys: 'hot' on 40 % of the lines, an empty line, CRLF endings, no final line break."""
    lines = ["hot" if i % 5 < 2 else f"cust-{i}" for i in range(997)] + ["", "café", "cust-3"]
    path = tmp_path / "keys.txt"
    path.write_bytes("\r\n".join(lines).encode())
    return path


def expected_counts(path: Path, n: int, partitioner: Partitioner) -> list[int]:
    counts = Counter(partition(k, n, partitioner) for k in path.read_bytes().split(b"\r\n"))
    return [counts[p] for p in range(n)]


@pytest.mark.parametrize("block", [skew_keysfile.BLOCK, 7])
def test_keys_are_placed_as_the_partitioner_does(keys_file: Path, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(skew_keysfile, "BLOCK", block)  # 7 bytes: lines cut across blocks
    report = asyncio.run(predict_keys(keys_file, 6, Partitioner.murmur2, SkewOptions(top=3)))
    assert [p.records for p in report.partitions] == expected_counts(keys_file, 6, Partitioner.murmur2)
    assert report.records == report.scanned == 1000 and report.empty_keys == 1 and report.null_keys == 0
    hot = report.heavy_hitters[0]
    assert (hot.key, hot.count, hot.partition) == ("hot", 400, partition(b"hot", 6, Partitioner.murmur2))
    assert hot.share_of_topic == pytest.approx(0.4)
    assert report.distinct_keys == 600 and report.distinct_keys_exact  # hot, 597 cust-i, "", café (cust-3 twice)
    assert report.forensics is None and report.partitioner == "murmur2" and report.mode == "keys-file"
    hot_partition = report.partitions[hot.partition]
    assert hot_partition.hot and report.imbalance.hot_partitions == (hot.partition,)
    keys = keys_file.read_bytes().split(b"\r\n")
    assert hot_partition.bytes == sum(len(k) for k in keys if partition(k, 6, Partitioner.murmur2) == hot.partition)


def test_sticky_keys_are_dealt_evenly(keys_file: Path) -> None:
    # consistent_random does not hash the empty key: it is dealt like a sticky record
    report = asyncio.run(predict_keys(keys_file, 6, Partitioner.consistent_random))
    expected = expected_counts(keys_file, 6, Partitioner.consistent_random)
    assert sum(p.records for p in report.partitions) == 1000
    assert report.partitions[0].records == expected[0] + 1  # the one empty key, dealt to partition 0


def test_salted_what_if_cuts_the_excess(keys_file: Path) -> None:
    options = SkewOptions(what_if_keys=("{key}:{offset%12}",), what_if_partitions=(6, 12))
    report = asyncio.run(predict_keys(keys_file, 6, Partitioner.murmur2, options))
    six, twelve = report.what_if
    assert (six.partitions, twelve.partitions) == (6, 12)
    assert six.current == report.imbalance  # the whole file is the sample
    assert six.excess_cut is not None and six.excess_cut >= 0.5
    assert sum(twelve.records) == 1000


def test_cli_json_report_and_fail_on_imbalance(keys_file: Path) -> None:
    args = ["skew", "--keys-file", str(keys_file), "--partitions", "6", "--partitioner", "murmur2", "--output", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["version"] == 1
    assert set(payload) >= {"source", "mode", "partition_count", "records", "partitions", "imbalance",
                            "heavy_hitters", "distinct_keys", "forensics", "what_if", "warnings"}
    assert payload["heavy_hitters"][0]["key"] == "hot" and payload["partition_count"] == 6

    breached = runner.invoke(app, [*args, "--fail-on-imbalance", "1.5"])
    assert breached.exit_code == 3
    assert "exceeds --fail-on-imbalance 1.5" in breached.stderr
    assert json.loads(breached.stdout)["imbalance"]["max_over_mean"] > 1.5
    assert runner.invoke(app, [*args, "--fail-on-imbalance", "50"]).exit_code == 0


def test_cli_text_report_names_the_hot_key(keys_file: Path) -> None:
    result = runner.invoke(app, ["skew", "--keys-file", str(keys_file), "--partitions", "6", "--output", "text"])
    assert result.exit_code == 0, result.output
    assert "top key 'hot' carries 40.0% of the topic" in result.stdout
    assert result.stdout.count("\nPARTITION ") == 1 and "KEY " in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["skew"], ""),  # no arguments: help
    (["skew", "t", "--keys-file", "{keys}", "--partitions", "3"], "not both"),
    (["skew", "--keys-file", "{keys}"], "--keys-file needs --partitions"),
    (["skew", "t", "--partitions", "3"], "--partitions goes with --keys-file"),
    (["skew", "t", "--sample", "10", "--full"], "cannot be used together"),
    (["skew", "--keys-file", "{keys}", "--partitions", "3", "--group", "g"], "--group cannot be used with --keys-file"),
    (["skew", "--keys-file", "{keys}", "--partitions", "3", "--what-if-key", "{nope}"], "unknown field {nope}"),
    (["skew", "t", "--since", "yesterday"], "--since 'yesterday'"),
])
def test_usage_errors_exit_2(keys_file: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [a.replace("{keys}", str(keys_file)) for a in args])
    assert result.exit_code == 2
    assert message in result.output


def test_durations() -> None:
    from commands.skew import parse_duration_ms

    assert parse_duration_ms("90s", "--since") == 90_000
    assert parse_duration_ms("1h30m", "--since") == 5_400_000
    assert parse_duration_ms("500ms", "--since") == 500
    assert parse_duration_ms("PT1H", "--since") == 3_600_000
    assert parse_duration_ms("2d", "--since") == 172_800_000
