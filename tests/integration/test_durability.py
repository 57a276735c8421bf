"""Acknowledged records survive `pko cluster down`/`up`, a kill -9 under load, and a torn tail.

The node is driven with the real `pko` binary (subprocesses), as a user would. The module has
its own cluster (``own_cluster``) because every test stops or kills its node.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from integration_helpers import (
    build_batch,
    create_topic,
    drain_confluent,
    fetch_raw,
    high_watermarks,
    node_log,
    produce_raw,
    read_partition,
    unique_topic,
    wait_until,
    wire,
)
from cluster.pytest_plugin import RunningCluster


def pko(cluster: RunningCluster, *args: str, timeout_s: float = 60) -> str:
    """Run `pko cluster <args> -c <the cluster file>`; returns stdout, fails on a non-zero exit."""
    done = subprocess.run(["pko", "cluster", *args, "-c", str(cluster.config_path)],
                          capture_output=True, text=True, timeout=timeout_s, check=False)
    assert done.returncode == 0, f"pko cluster {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


def produce_acked(cluster: RunningCluster, topic: str, count: int) -> dict[int, list[tuple[int, bytes]]]:
    """Produce ``count`` records (acks=all, idempotent); partition → [(offset, value)] acknowledged."""
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})
    acked: dict[int, list[tuple[int, bytes]]] = {}

    def on_delivery(err: object, msg: object) -> None:
        assert err is None, err
        acked.setdefault(msg.partition(), []).append((msg.offset(), msg.value()))  # type: ignore[attr-defined]

    for i in range(count):
        producer.produce(topic, key=b"k%d" % (i % 97), value=b"v%d" % i, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    return acked


def read_values(cluster: RunningCluster, topic: str, partitions: range) -> dict[int, list[tuple[int, bytes]]]:
    """partition → [(offset, value)] of everything up to the high watermark (confluent-kafka)."""
    seen = drain_confluent(cluster, topic, high_watermarks(cluster, topic, partitions))
    return {p: [(r.offset, r.value) for r in records] for p, records in seen.items()}


def test_acknowledged_records_survive_down_and_up(own_cluster: RunningCluster) -> None:
    topic = unique_topic("down-up")
    acked = produce_acked(own_cluster, topic, 5_000)

    assert "is down" in pko(own_cluster, "down")
    assert "is up" in pko(own_cluster, "up")

    found = read_values(own_cluster, topic, range(3))
    assert {p: v for p, v in found.items() if v} == acked


class BackgroundProducer:
    """An idempotent acks=all librdkafka producer writing unique values from a thread until
    stopped; it keeps at most ``MAX_IN_FLIGHT`` records unacknowledged (no unbounded queue while
    the node is down), and librdkafka retries across the node's death."""

    MAX_IN_FLIGHT = 2_000

    def __init__(self, cluster: RunningCluster, topic: str) -> None:
        self.topic = topic
        self.producer = Producer({
            "bootstrap.servers": cluster.bootstrap_servers, "acks": "all", "enable.idempotence": True,
            "linger.ms": 2, "message.timeout.ms": 120_000, "retry.backoff.ms": 20, "retry.backoff.max.ms": 200,
            "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
        })
        self.acked: dict[int, list[tuple[int, bytes]]] = {}
        self.acked_count = 0
        self.errors: list[str] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_delivery(self, err: object, msg: object) -> None:
        if err is not None:
            self.errors.append(str(err))
            return
        self.acked.setdefault(msg.partition(), []).append((msg.offset(), msg.value()))  # type: ignore[attr-defined]
        self.acked_count += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.sent - self.acked_count - len(self.errors) >= self.MAX_IN_FLIGHT:
                self.producer.poll(0.01)  # back-pressure: wait for deliveries, not for time
                continue
            try:
                self.producer.produce(self.topic, key=b"k%d" % (self.sent % 101), value=b"v%d" % self.sent,
                                      on_delivery=self._on_delivery)
                self.sent += 1
            except BufferError:
                self.producer.poll(0.01)
            self.producer.poll(0)

    def __enter__(self) -> BackgroundProducer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop producing and wait for every record still queued to be acknowledged or fail."""
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(30)
            assert self.producer.flush(120) == 0, "records still queued 120 s after the producer stopped"


def test_kill_9_while_producing_loses_and_duplicates_no_acknowledged_record(own_cluster: RunningCluster) -> None:
    topic = unique_topic("kill9")
    create_topic(own_cluster, topic, partitions=3)

    with BackgroundProducer(own_cluster, topic) as producer:
        wait_until(lambda: producer.acked_count >= 2_000, 30, "2000 acknowledged records before the kill")
        assert "is down" in pko(own_cluster, "kill", "--node", "1", "--signal", "KILL")
        acked_at_kill = producer.acked_count
        assert "is up again" in pko(own_cluster, "restart", "--node", "1")
        wait_until(lambda: producer.acked_count >= acked_at_kill + 2_000, 60,
                   "2000 more acknowledged records after the restart")
        producer.stop()

    assert producer.errors == []
    found = read_values(own_cluster, topic, range(3))
    all_values = [value for records in found.values() for _offset, value in records]
    assert len(all_values) == len(set(all_values)), "a value was written twice (idempotence failed)"
    assert sum(len(a) for a in producer.acked.values()) == producer.acked_count
    for partition, acks in producer.acked.items():
        assert [o for o, _v in acks] == sorted(o for o, _v in acks), f"p{partition}: acks out of order"
        log = dict(found[partition])
        missing = [(o, v) for o, v in acks if log.get(o) != v]
        assert not missing, f"p{partition}: {len(missing)} acknowledged records not found, e.g. {missing[:3]}"


# --- a torn tail ---------------------------------------------------------------------------------


def active_segment(cluster: RunningCluster, topic: str, partition: int) -> Path:
    """The newest .log file of a partition."""
    directory = cluster.config.node_dir(1) / f"{topic}-{partition}"
    return max(directory.glob("*.log"))


@pytest.fixture
def torn_topic(own_cluster: RunningCluster) -> Iterator[tuple[str, list[int]]]:
    """A one-partition topic with 5 batches of 10 records; yields (topic, batch base offsets)."""
    topic = unique_topic("torn")
    create_topic(own_cluster, topic, partitions=1)
    bases = []
    with wire(own_cluster) as client:
        for b in range(5):
            answer = produce_raw(client, topic, 0, build_batch([b"b%d-r%d" % (b, r) for r in range(10)]))
            assert answer.error_code == 0
            bases.append(answer.base_offset)
    assert bases == [0, 10, 20, 30, 40]
    yield topic, bases


def test_torn_last_batch_is_cut_at_restart_and_the_log_goes_on(own_cluster: RunningCluster,
                                                                 torn_topic: tuple[str, list[int]]) -> None:
    topic, _bases = torn_topic
    # A crash in the middle of a write: the node dies (kill -9, no clean-shutdown marker) and
    # the last batch reached the disk only in part.
    pko(own_cluster, "kill", "--node", "1", "--signal", "KILL")
    segment = active_segment(own_cluster, topic, 0)
    size = segment.stat().st_size
    log_before = len(node_log(own_cluster))
    os.truncate(segment, size - 25)

    pko(own_cluster, "restart", "--node", "1")

    new_lines = node_log(own_cluster)[log_before:]
    assert f"{topic}-0: recovery cut" in new_lines, new_lines
    assert segment.stat().st_size < size - 25, "the torn batch is still on disk"
    assert_torn_log_recovered(own_cluster, topic)


def test_torn_tail_after_a_clean_stop_is_cut_too(own_cluster: RunningCluster,
                                                 torn_topic: tuple[str, list[int]]) -> None:
    """The files were damaged while the node was stopped cleanly: the clean-shutdown marker
    must not make the node trust a segment whose end is not a batch boundary."""
    topic, _bases = torn_topic
    pko(own_cluster, "down")
    segment = active_segment(own_cluster, topic, 0)
    size = segment.stat().st_size
    log_before = len(node_log(own_cluster))
    os.truncate(segment, size - 25)

    pko(own_cluster, "up")

    new_lines = node_log(own_cluster)[log_before:]
    assert f"{topic}-0: recovery cut" in new_lines, new_lines
    assert_torn_log_recovered(own_cluster, topic)


def assert_torn_log_recovered(cluster: RunningCluster, topic: str) -> None:
    """The first 4 batches (offsets 0-39) are served, the torn 5th is gone, producing continues
    at offset 40 and a consumer reads all of it."""
    assert high_watermarks(cluster, topic, [0]) == {0: 40}
    values = [r.value for r in read_partition(cluster, topic, 0)]
    assert values == [b"b%d-r%d" % (b, r) for b in range(4) for r in range(10)]

    with wire(cluster) as client:
        answer = produce_raw(client, topic, 0, build_batch([b"after-%d" % r for r in range(3)]))
        assert (answer.error_code, answer.base_offset) == (0, 40)
        fetched = fetch_raw(client, topic, 0, 40)
        assert fetched.error_code == 0 and fetched.high_watermark == 43

    seen = drain_confluent(cluster, topic, {0: 43})[0]
    assert [r.offset for r in seen] == list(range(43))
    assert [r.value for r in seen[40:]] == [b"after-0", b"after-1", b"after-2"]

