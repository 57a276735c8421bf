"""`pko skew` against a real cluster: real node processes, records from confluent-kafka producers
configured as Java clients (murmur2_random) and as librdkafka's default (consistent_random)."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from group_clients import create_topic, group_member, unique, wait_until
from typer.testing import CliRunner

from commands.main import app
from pykafka_ops.partitioner import Partitioner, partition
from cluster.pytest_plugin import RunningCluster, start_cluster

HOT_KEY = b"customer-42"
#: Kafka settings that make a consumer group join at once.
GROUP_SETTINGS = {"group.initial.rebalance.delay.ms": 0, "offsets.topic.num.partitions": 3}
#: The installed `pko` console script (it sits beside the interpreter: venv or system bin/).
PKO = [str(Path(sys.executable).with_name("pko"))]
VALUE_BYTES = 40


@dataclass(frozen=True)
class Produced:
    """A topic the module produced, with what went into it."""

    topic: str
    records: int
    distinct_keys: int
    null_keys: int
    nbytes: int
    """Key + value bytes."""


@pytest.fixture(scope="module")
def skew_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """A single-node cluster whose consumer groups join without delay."""
    with start_cluster("cluster: {name: skew}\nnodes:\n  - {id: 1}\nbroker: {num.partitions: 6}\n",
                       tmp_path_factory.mktemp("skew"), **GROUP_SETTINGS) as running:
        yield running


def produce_keys(bootstrap: str, topic: str, keys: list[bytes | None], partitioner: str,
                 timestamp_ms: int = 0) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": partitioner, "linger.ms": 20,
                         "batch.num.messages": 10_000, "compression.type": "lz4"})
    value = b"v" * VALUE_BYTES
    for i, key in enumerate(keys):
        producer.produce(topic, value, key, timestamp=timestamp_ms)
        if i % 20_000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


def size_of(keys: list[bytes | None]) -> int:
    return sum(VALUE_BYTES + len(k or b"") for k in keys)


@pytest.fixture(scope="module")
def hot_topic(skew_cluster: RunningCluster) -> Produced:
    """100,000 records, 6 partitions, murmur2_random (the Java default): 40 % carry HOT_KEY,
    1,000 have a NULL key, the rest spread over 5,000 user keys."""
    rng = random.Random(6)
    keys: list[bytes | None] = [HOT_KEY] * 40_000 + [None] * 1_000
    keys += [b"user-%d" % rng.randrange(5_000) for _ in range(59_000)]
    rng.shuffle(keys)
    topic = unique("skew-hot")
    create_topic(skew_cluster.bootstrap_servers, topic, 6)
    produce_keys(skew_cluster.bootstrap_servers, topic, keys, "murmur2_random")
    return Produced(topic, len(keys), len(set(keys) - {None}), 1_000, size_of(keys))


@pytest.fixture(scope="module")
def mixed_topic(skew_cluster: RunningCluster) -> Produced:
    """20,000 records over 2,000 keys, 6 partitions: half from a consistent_random producer
    (librdkafka's default), half from a murmur2_random one (the Java default)."""
    rng = random.Random(7)
    keys: list[bytes | None] = [b"order-%d" % rng.randrange(2_000) for _ in range(20_000)]
    topic = unique("skew-mixed")
    create_topic(skew_cluster.bootstrap_servers, topic, 6)
    produce_keys(skew_cluster.bootstrap_servers, topic, keys[:10_000], "consistent_random")
    produce_keys(skew_cluster.bootstrap_servers, topic, keys[10_000:], "murmur2_random")
    return Produced(topic, len(keys), len(set(keys)), 0, size_of(keys))


def pko(cluster: RunningCluster, *args: str) -> subprocess.CompletedProcess[str]:
    """The real `pko` binary in a child process (no TTY: plain text unless --output)."""
    return subprocess.run([*PKO, "skew", *args, "--bootstrap-server", cluster.bootstrap_servers],
                          check=False, capture_output=True, text=True, timeout=60)


def skew_json(cluster: RunningCluster, *args: str) -> dict[str, Any]:
    """`pko skew … --output json` in-process (CliRunner)."""
    result = CliRunner().invoke(app, ["skew", *args, "--output", "json", "-b", cluster.bootstrap_servers])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_binary_names_hot_partition_key_share_and_the_salted_fix(skew_cluster: RunningCluster,
                                                                  hot_topic: Produced) -> None:
    run = pko(skew_cluster, hot_topic.topic, "--full", "--what-if-key", "{key}:{offset%12}", "--output", "json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    hot = partition(HOT_KEY, 6, Partitioner.murmur2_random)
    assert (report["records"], report["scanned"], report["complete"]) == (100_000, 100_000, True)
    assert report["imbalance"]["hot_partitions"] == [hot]
    assert [p["hot"] for p in report["partitions"]] == [p == hot for p in range(6)]
    top = report["heavy_hitters"][0]
    assert (top["key"], top["partition"]) == (HOT_KEY.decode(), hot)
    assert top["count"] <= 40_000 <= top["count"] + top["error"]
    assert top["share_of_topic"] == pytest.approx(0.40, abs=0.002)
    assert report["null_keys"] == hot_topic.null_keys
    assert abs(report["distinct_keys"] - hot_topic.distinct_keys) <= 0.02 * hot_topic.distinct_keys
    forensics = report["forensics"]
    assert forensics["partitioners"] == ["murmur2_random"] and not forensics["mixed"]
    assert forensics["unexplained"] == 0 and forensics["split_key_count"] == 0
    (salted,) = report["what_if"]
    assert (salted["key_template"], salted["partitions"], salted["partitioner"]) == (
        "{key}:{offset%12}", 6, "murmur2_random")
    excess_now = report["imbalance"]["max_over_mean"] - 1
    assert salted["predicted"]["max_over_mean"] - 1 <= excess_now / 2
    assert salted["excess_cut"] >= 0.5


def test_binary_text_report_and_fail_on_imbalance(skew_cluster: RunningCluster, hot_topic: Produced) -> None:
    run = pko(skew_cluster, hot_topic.topic, "--sample", "10000", "--fail-on-imbalance", "2")
    assert run.returncode == 3
    hot = partition(HOT_KEY, 6, Partitioner.murmur2_random)
    share = re.search(rf"hot partition {hot}: .*; top key 'customer-42' carries ([0-9.]+)% of the topic", run.stdout)
    assert share is not None and 37 < float(share.group(1)) < 43, run.stdout  # a 10,000-record sample
    assert "partitioner: murmur2_random" in run.stdout
    assert run.stderr.startswith("pko: max/mean ") and "exceeds --fail-on-imbalance 2" in run.stderr
    assert "\x1b[" not in run.stdout  # no colours when piped


def test_sample_reads_the_newest_records_and_counts_from_offsets(skew_cluster: RunningCluster,
                                                                  hot_topic: Produced) -> None:
    report = skew_json(skew_cluster, hot_topic.topic, "--sample", "10000")
    assert report["mode"] == "sample" and report["records"] == 100_000
    assert abs(report["scanned"] - 10_000) <= 6
    assert sum(p["records"] for p in report["partitions"]) == 100_000
    assert report["heavy_hitters"][0]["key"] == HOT_KEY.decode()
    # bytes are estimated from the sizes of the records read
    assert sum(p["bytes"] for p in report["partitions"]) == pytest.approx(hot_topic.nbytes, rel=0.02)


def test_mixed_partitioners_are_detected(skew_cluster: RunningCluster, mixed_topic: Produced) -> None:
    report = skew_json(skew_cluster, mixed_topic.topic, "--full")
    forensics = report["forensics"]
    assert forensics["mixed"] and set(forensics["partitioners"]) == {"murmur2_random", "consistent_random"}
    assert forensics["unexplained"] == 0
    assert forensics["split_key_count"] > 0.7 * mixed_topic.distinct_keys  # 5/6 of keys land apart
    assert any(w.startswith("mixed partitioners") for w in report["warnings"])
    assert any("appear in more than one partition" in w for w in report["warnings"])
    # what-if with one partitioner for everybody puts each key back in one partition
    whatif = skew_json(skew_cluster, mixed_topic.topic, "--full", "--what-if-partitions", "6",
                       "--partitioner", "murmur2_random")
    assert whatif["what_if"][0]["partitioner"] == "murmur2_random"


def test_since_and_rate_window_use_timestamps(skew_cluster: RunningCluster) -> None:
    topic = unique("skew-since")
    create_topic(skew_cluster.bootstrap_servers, topic, 3)
    two_hours_ago = int(time.time() * 1000) - 2 * 3_600_000
    produce_keys(skew_cluster.bootstrap_servers, topic, [b"old-%d" % i for i in range(50)], "murmur2_random",
                 timestamp_ms=two_hours_ago)
    produce_keys(skew_cluster.bootstrap_servers, topic, [b"new-%d" % i for i in range(30)], "murmur2_random")
    report = skew_json(skew_cluster, topic, "--since", "1h", "--rate-window", "1h")
    assert report["records"] == report["scanned"] == 30 and report["since_ms"] is not None
    assert all(h["key"].startswith("new-") for h in report["heavy_hitters"])
    assert sum(p["rate_per_s"] for p in report["partitions"]) == pytest.approx(30 / 3600)
    assert skew_json(skew_cluster, topic, "--full")["records"] == 80


def test_max_seconds_marks_the_report_partial(skew_cluster: RunningCluster, hot_topic: Produced) -> None:
    report = skew_json(skew_cluster, hot_topic.topic, "--full", "--max-seconds", "0.001")
    assert not report["complete"] and report["scanned"] < report["records"]
    assert report["warnings"][0].startswith("stopped after 0.001 s (--max-seconds)")


def test_group_lag_and_owner_of_the_hot_partition(skew_cluster: RunningCluster) -> None:
    from group_clients import produce

    topic, group = unique("skew-group"), unique("skew-readers")
    create_topic(skew_cluster.bootstrap_servers, topic, 6)
    produce(skew_cluster.bootstrap_servers, topic, {0: 2, 1: 2, 2: 30, 3: 2, 4: 2, 5: 2})
    with group_member(skew_cluster.bootstrap_servers, group, [topic], client_id="skew-reader") as member:
        wait_until(lambda: len(member.consumed) == 40, 30, "the member to read and commit every record")
        report = skew_json(skew_cluster, topic, "--full", "--group", group)
    assert report["group"] == group and report["imbalance"]["hot_partitions"] == [2]
    assert [p["lag"] for p in report["partitions"]] == [0] * 6
    assert {p["client_id"] for p in report["partitions"]} == {"skew-reader"}
    assert all(p["consumer_id"] for p in report["partitions"])


def test_runtime_errors_exit_1_with_one_line(skew_cluster: RunningCluster) -> None:
    missing = CliRunner().invoke(app, ["skew", "no-such-topic", "-b", skew_cluster.bootstrap_servers])
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    down = CliRunner().invoke(app, ["skew", "t", "-b", "127.0.0.1:1", "--timeout", "1000"])
    assert down.exit_code == 1 and "cannot reach the Kafka cluster at 127.0.0.1:1" in down.stderr
    assert down.stderr.count("\n") == 1
