"""`pko consume` offsets and stop conditions (-o -N, s@/e@, -c, --timeout-ms, Ctrl-C), group
consumption that resumes where it committed, the partitioners, and failed deliveries (exit 1)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from group_clients import produce, unique, wait_until
from cluster.pytest_plugin import ClusterFactory
from records_cli import Broker, pko, topic

_SCRIPT = Path(sys.executable).parent / "pko"
PKO = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "commands.main"]
#: Short group timeouts: Tansu completes a join only after a delay tied to them (≈23 s with the defaults).
FAST_GROUP = ["-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500", "-X", "max.poll.interval.ms=6000"]


def test_negative_offset_returns_exactly_the_last_n_per_partition(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "tail", 3)
    produce(bootstrap, name, {0: 5, 1: 1, 2: 0})
    out = pko(bootstrap, "consume", name, "-o", "-2", "-e", "-q", "-f", "%p:%o:%s\\n").stdout
    assert sorted(out.splitlines()) == ["0:3:0-3", "0:4:0-4", "1:0:1-0"]
    one = pko(bootstrap, "consume", name, "-o", "-2", "-e", "-q", "-p", "0", "-f", "%o\\n").stdout
    assert one.splitlines() == ["3", "4"]


def test_start_and_stop_timestamps_select_a_window(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "window", 2)
    lines = [json.dumps({"value": f"v{ts}", "ts": ts, "partition": ts % 2}) for ts in range(1000, 1010)]
    pko(bootstrap, "produce", name, "--format", "json", input="\n".join(lines) + "\n")
    window = pko(bootstrap, "consume", name, "-o", "s@1003", "-o", "e@1007", "-e", "-q", "-f", "%T\\n").stdout
    assert sorted(window.splitlines()) == ["1003", "1004", "1005", "1006"]
    # e@ alone ends the run once every partition has passed it, without -e
    until = pko(bootstrap, "consume", name, "-o", "beginning", "-o", "e@1004", "-q", "-f", "%T\\n").stdout
    assert sorted(until.splitlines()) == ["1000", "1001", "1002", "1003"]


def test_count_and_idle_timeout_end_the_run(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "count")
    produce(bootstrap, name, {0: 5})
    counted = pko(bootstrap, "consume", name, "-o", "beginning", "-c", "2")
    assert (counted.stdout, counted.stderr) == ("0-0\n0-1\n", "Processed a total of 2 messages\n")
    idle = pko(bootstrap, "consume", name, "-o", "end", "--timeout-ms", "300")
    assert (idle.exit_code, idle.stdout, idle.stderr) == (0, "", "Processed a total of 0 messages\n")


def test_group_consumption_resumes_where_it_committed(group_broker: Broker) -> None:
    bootstrap = group_broker.bootstrap
    name, group = topic(bootstrap, "resume", 2), unique("g")
    produce(bootstrap, name, {0: 4, 1: 4})
    # --from-beginning applies where nothing is committed yet (the partition the first run did not read)
    args = ["-G", group, "--from-beginning", "-q", "-f", "%p:%o\\n", *FAST_GROUP]
    first = pko(bootstrap, "consume", name, "-c", "3", *args)
    assert first.exit_code == 0, first.stderr
    rest = pko(bootstrap, "consume", name, "-e", *args)
    assert rest.exit_code == 0, rest.stderr
    seen = first.stdout.splitlines() + rest.stdout.splitlines()
    assert sorted(seen) == sorted(f"{p}:{o}" for p in (0, 1) for o in range(4))  # each record exactly once


@pytest.mark.parametrize(("partitioner", "expected"), [
    # cli-parity.md §6.4, 6 partitions: Java / murmur2 and librdkafka's default (CRC-32)
    ("murmur2", {"foo": 2, "kafka": 4, "hejsan": 1, "abc": 3}),
    ("murmur2_random", {"foo": 2, "kafka": 4, "hejsan": 1, "abc": 3}),
    ("java", {"foo": 2, "kafka": 4, "hejsan": 1, "abc": 3}),
    ("crc32", {"foo": 5, "kafka": 5, "hejsan": 0, "abc": 0}),
    ("consistent", {"foo": 5, "kafka": 5, "hejsan": 0, "abc": 0}),
])
def test_partitioners_place_keys_like_java_and_librdkafka(pko_group_cluster: Broker, partitioner: str,
                                                          expected: dict[str, int]) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "part", 6)
    args = [] if partitioner == "murmur2_random" else ["--partitioner", partitioner]  # the default
    pko(bootstrap, "produce", name, "-K", ":", *args, input="".join(f"{k}:x\n" for k in expected))
    placed = pko(bootstrap, "consume", name, "-o", "beginning", "-e", "-q", "-f", "%k %p\\n").stdout
    assert dict(line.split() for line in placed.splitlines()) == {k: str(p) for k, p in expected.items()}


def test_failed_delivery_exits_1_with_a_count(pko_cluster_factory: ClusterFactory) -> None:
    cluster = pko_cluster_factory(auto_create_topics_enable=False)
    result = pko(cluster.bootstrap_servers, "produce", "no-such-topic", "--timeout", "1500", input="a\nb\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("pko: 2 of 2 records were not delivered to no-such-topic: "), result.stderr


def test_ctrl_c_ends_consume_cleanly_with_a_count(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "sigint")
    produce(bootstrap, name, {0: 3})
    proc = subprocess.Popen([*PKO, "consume", name, "-o", "beginning", "-b", bootstrap], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]  # type: ignore[union-attr]
        assert lines == ["0-0\n", "0-1\n", "0-2\n"]
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert (proc.returncode, stderr) == (0, "Processed a total of 3 messages\n")


def test_ctrl_c_ends_produce_cleanly_while_stdin_is_still_open(pko_group_cluster: Broker) -> None:
    from confluent_kafka import Consumer, TopicPartition

    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "sigint-produce")
    proc = subprocess.Popen([*PKO, "produce", name, "-b", bootstrap], stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        proc.stdin.write("one\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        wait_until(lambda: consumer.get_watermark_offsets(TopicPartition(name, 0), timeout=5)[1] == 1, 15,
                   "the first record")
        proc.send_signal(signal.SIGINT)  # stdin stays open: the reader thread is blocked in a read
        proc.wait(timeout=15)
        stderr = proc.stderr.read()  # type: ignore[union-attr]
    finally:
        consumer.close()
        proc.kill()
    assert (proc.returncode, stderr) == (0, "pko: interrupted: 1 sent, 1 delivered\n")
