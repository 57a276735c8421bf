"""`pko plan partitions` on a real node, in-process (typer's CliRunner):

* ``--measure --yes`` probes a scratch topic (produce, consume back), recommends a count from
  positive measured rates and leaves no scratch topic behind; without ``--yes`` and without an
  answer it refuses (exit 2) and creates nothing;
* ``--topic`` on a topic being produced to with keys: its rate comes from log-end offsets sampled
  over ``--window``, the plan grows it with ``pko topics --alter`` and warns that keys move;
* figures given on the command line: the arithmetic lines and the create command;
* usage errors (exit 2, one line) and an unreachable cluster (exit 1, naming the server).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from integration_helpers import admin, create_topic, unique_topic, wait_until
from typer.testing import CliRunner

from cluster.pytest_plugin import RunningCluster
from pykafka_ops.services.plan_probe import PROBE_PREFIX


def pko(*args: str, input: str | None = None) -> Any:
    """`pko plan partitions ARGS` in-process."""
    from commands.main import app

    return CliRunner().invoke(app, ["plan", "partitions", *args], input=input, catch_exceptions=False)


def probe_topics(cluster: RunningCluster) -> list[str]:
    return [t for t in admin(cluster).list_topics(timeout=10).topics if t.startswith(PROBE_PREFIX)]


def test_measure_recommends_from_measured_rates_and_deletes_its_scratch_topic(cluster: RunningCluster) -> None:
    result = pko("-b", cluster.bootstrap_servers, "--target-mb-s", "12", "--measure", "--yes",
                 "--probe-seconds", "2", "--output", "json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    probe = plan["probe"]
    assert probe["topic"].startswith(PROBE_PREFIX) and probe["replication_factor"] == 1
    assert probe["produced_records"] > 0 and probe["consumed_records"] > 0
    assert probe["producer_mb_s"] > 0 and probe["consumer_mb_s"] > 0
    assert probe["producer_mb_s"] <= 1.1 * probe["rate_cap_mb_s"]
    assert plan["producer_mb_s_per_partition"] == probe["producer_mb_s"]
    assert plan["planned_mb_s"] == 24.0 and plan["recommended"] >= 1 and plan["change"] is True
    assert plan["command"] == f"pko topics --create --topic TOPIC --partitions {plan['recommended']} " \
                              "--replication-factor 1"
    assert probe_topics(cluster) == []


def test_measure_without_yes_and_no_answer_refuses(cluster: RunningCluster) -> None:
    result = pko("-b", cluster.bootstrap_servers, "--target-mb-s", "1", "--measure", input="")
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("pko: not measuring without a confirmation (add --yes)")
    assert probe_topics(cluster) == []


@pytest.fixture
def busy_topic(cluster: RunningCluster) -> Iterator[str]:
    """A 3-partition topic a keyed producer writes ~500-byte records to until the test ends."""
    topic = unique_topic("plan-busy")
    create_topic(cluster, topic, partitions=3)
    stop = threading.Event()
    delivered: list[int] = []

    def produce() -> None:
        producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 5})
        i = 0
        while not stop.wait(0.01):
            for _ in range(20):
                producer.produce(topic, b"v" * 500, key=f"customer-{i % 40}".encode(),
                                 on_delivery=lambda err, _msg: err is None and delivered.append(1))
                i += 1
            producer.poll(0)
        producer.flush(10)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        # records on the partitions before a test samples the newest ones (a fresh topic has none)
        wait_until(lambda: len(delivered) >= 300, 30, "300 records delivered to the busy topic")
        yield topic
    finally:
        stop.set()
        thread.join(15)


def test_topic_rate_from_log_end_offsets(cluster: RunningCluster, busy_topic: str) -> None:
    result = pko("-b", cluster.bootstrap_servers, "--topic", busy_topic, "--window", "1",
                 "--producer-mb-s-per-partition", "0.01", "--consumer-mb-s-per-partition", "0.02", "--output", "json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    load = plan["load"]
    assert load["records_per_s"] > 100 and load["window_s"] == 1.0
    assert 500 <= load["record_bytes"] <= 520 and load["keyed"] == load["sampled"] > 0
    assert plan["target_mb_s"] > 0 and plan["current_partitions"] == 3 and plan["by_producer"] > 3
    assert plan["command"] == f"pko topics --alter --topic {busy_topic} --partitions {plan['recommended']}"
    assert any("remaps keys" in w for w in plan["warnings"])


def test_given_figures_show_the_arithmetic(cluster: RunningCluster) -> None:
    result = pko("-b", cluster.bootstrap_servers, "--topic", "new-orders", "--target-mb-s", "12",
                 "--producer-mb-s-per-partition", "8.1", "--consumer-mb-s-per-partition", "5.2", "--output", "text")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:4] == ["target 12.0 MB/s × growth 2 = 24.0 MB/s", "producer 8.1 MB/s/partition → 24.0 / 8.1 = 3",
                         "consumer 5.2 MB/s/partition → 24.0 / 5.2 = 5", "recommend 5"]
    assert lines[-1] == "apply: pko topics --create --topic new-orders --partitions 5 --replication-factor 1"


@pytest.mark.parametrize(("args", "message"), [
    (["--producer-mb-s-per-partition", "1"], "give --topic T"),
    (["--target-mb-s", "1"], "give --measure, or --producer-mb-s-per-partition"),
    (["--target-mb-s", "1", "--measure", "--consumer-mb-s-per-partition", "1"], "--measure measures both"),
    (["--target-mb-s", "1", "--window", "5", "--producer-mb-s-per-partition", "1"], "--window samples"),
    (["--target-mb-s", "1", "--probe-seconds", "2", "--producer-mb-s-per-partition", "1"],
     "--probe-seconds only go with --measure"),
    (["--target-mb-s", "1", "--growth", "0.5", "--producer-mb-s-per-partition", "1"], "--growth"),
])
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    result = pko("-b", "127.0.0.1:1", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_cluster_and_missing_topic_exit_1(cluster: RunningCluster) -> None:
    down = pko("-b", "127.0.0.1:1", "--target-mb-s", "1", "--producer-mb-s-per-partition", "1", "--timeout", "2000")
    assert down.exit_code == 1 and "cannot reach the Kafka cluster at 127.0.0.1:1" in down.stderr
    missing = pko("-b", cluster.bootstrap_servers, "--topic", unique_topic("plan-missing"),
                  "--producer-mb-s-per-partition", "1")
    assert missing.exit_code == 1 and "does not exist (give --target-mb-s N" in missing.stderr
