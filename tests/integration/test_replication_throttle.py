"""Replication throttles (KIP-73) on real node processes, set with real admin clients.

Three combined nodes; two topics of one partition, replicas [1, 2] (broker 1 leads): ``leader-side``
is throttled on the leader only (``leader.replication.throttled.replicas=*``, broker 1's
``leader.replication.throttled.rate``), ``follower-side`` on the follower only
(``follower.replication.throttled.replicas=0:2,1:3``: partition 0 on broker 2; broker 2's
``follower.replication.throttled.rate``).
The rates are set with confluent-kafka's IncrementalAlterConfigs on each broker (as kafka-configs
``--entity-type brokers --entity-name N``; a broker resource is sent to that broker, so while it
runs). Broker 2 is killed (-9), ``DATA_MB`` are produced to each topic with acks=1, then the replica
lists are set (``*`` with kafka-python's IncrementalAlterConfigs, ``[0:2,1:3]`` with ``pko configs
--alter --add-config``) and ``pko configs --describe`` shows them; broker 2 restarts. Its
replicas catch up at the throttled rate, measured from its partition sizes (DescribeLogDirs of
kafka-python on broker 2); once ``pko configs --alter --delete-config`` removes the lists they
catch up at full speed and rejoin the ISR. Prints the figures as one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)
from integration_helpers import admin
from kafka.admin import AlterConfigOp, ConfigResourceType, KafkaAdminClient
from kafka.admin import ConfigResource as KafkaPythonResource

from cluster.pytest_plugin import ClusterFactory, RunningCluster, wait_until

PKO = str(Path(sys.executable).parent / "pko")
LEADER_SIDE, FOLLOWER_SIDE = "leader-side", "follower-side"
TOPICS = (LEADER_SIDE, FOLLOWER_SIDE)
MB = 1 << 20
#: The throttle, bytes/s, and what is produced to each topic while the follower is down.
RATE = 2 * MB
DATA_MB = 20
#: The throttled rate is measured between these follower sizes (after the first burst, which an
#: empty quota window lets through, and before the throttle is removed).
MEASURE_FROM, MEASURE_TO = 3 * MB, 12 * MB
#: Seconds between two samples of the follower's sizes.
SAMPLE_S = 0.1
YAML = """\
cluster: {name: throttle}
nodes:
  - {id: 1}
  - {id: 2}
  - {id: 3}
broker:
  num.partitions: 1
  replica.fetch.max.bytes: 262144
"""


def _create_topics(cluster: RunningCluster) -> None:
    client = admin(cluster)
    futures = client.create_topics([NewTopic(t, 1, -1, replica_assignment=[[1, 2]]) for t in TOPICS],
                                   operation_timeout=10, request_timeout=15)
    for future in futures.values():
        future.result(timeout=15)


def _set_broker_rate(cluster: RunningCluster, broker: int, name: str, value: int) -> None:
    """``kafka-configs --alter --entity-type brokers --entity-name <broker> --add-config name=value``."""
    client = admin(cluster)
    resource = ConfigResource(ResourceType.BROKER, str(broker), incremental_configs=[
        ConfigEntry(name, str(value), incremental_operation=AlterConfigOpType.SET)])
    client.incremental_alter_configs([resource])[resource].result(timeout=15)


def _isr(client: Any, topic: str) -> list[int]:
    """The ISR of ``topic``-0 by Metadata (``client``: a confluent-kafka AdminClient)."""
    metadata = client.list_topics(topic, timeout=5)
    return sorted(metadata.topics[topic].partitions[0].isrs)


def _pko_configs(cluster: RunningCluster, *args: str) -> str:
    done = subprocess.run([PKO, "configs", "-b", cluster.bootstrap_servers, *args], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, f"pko configs {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


def _produce(cluster: RunningCluster) -> None:
    blob = os.urandom(MB)  # incompressible values, so sizes on disk are the bytes replicated
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "1", "linger.ms": 20,
                         "batch.size": 512 * 1024, "compression.type": "none"})
    value_bytes = 16 * 1024
    for topic in TOPICS:
        for i in range(DATA_MB * MB // value_bytes):
            start = (i * 7919) % (MB - value_bytes)
            while True:
                try:
                    producer.produce(topic, blob[start:start + value_bytes], partition=0)
                    break
                except BufferError:
                    producer.poll(0.1)
    assert producer.flush(60) == 0


@dataclass(frozen=True)
class _Sample:
    at: float
    sizes: dict[str, int]
    cpu_s: float | None
    """CPU seconds (user + system) of broker 2's process so far."""


class _Follower:
    """Broker 2's partition sizes over time (DescribeLogDirs of kafka-python) and its CPU time."""

    def __init__(self, cluster: RunningCluster) -> None:
        self.cluster = cluster
        self.client: KafkaAdminClient | None = None
        self.process: psutil.Process | None = None
        self.samples: list[_Sample] = []

    def sizes_of(self, broker: int) -> dict[str, int]:
        """Sizes of ``broker``'s replicas; a new client after a failure (one whose metadata does
        not know a restarted broker yet answers UnknownBrokerIdError)."""
        if self.client is None:
            self.client = KafkaAdminClient(bootstrap_servers=self.cluster.bootstrap_servers, request_timeout_ms=5000)
        try:
            (answer,) = self.client.describe_log_dirs({t: [0] for t in TOPICS}, brokers=[broker])
        except Exception:
            self.client.close()
            self.client = None
            raise
        return {topic["name"]: topic["partitions"][0]["partition_size"]
                for log_dir in answer["log_dirs"] for topic in log_dir["topics"]}

    def _cpu_s(self) -> float | None:
        if self.process is None:
            (node,) = [n for n in self.cluster.status() if n.id == 2]
            self.process = psutil.Process(node.pid) if node.pid is not None else None
        if self.process is None:
            return None
        times = self.process.cpu_times()
        return times.user + times.system

    def all_at(self, size: int | dict[str, int]) -> bool:
        """Broker 2 holds at least ``size`` bytes of every topic (sampled at most every
        ``SAMPLE_S``, so that the measurement does not load the node it measures)."""
        if not self.samples or time.monotonic() - self.samples[-1].at >= SAMPLE_S:
            sizes = self.sizes_of(2)  # it answers: the process found is the restarted one
            self.samples.append(_Sample(time.monotonic(), sizes, self._cpu_s()))
        sizes = self.samples[-1].sizes
        wanted = size if isinstance(size, dict) else dict.fromkeys(TOPICS, size)
        return all(sizes.get(t, -1) >= wanted[t] for t in TOPICS)

    def first_at(self, topic: str, size: int) -> _Sample:
        """The first sample where ``topic`` had at least ``size`` bytes."""
        return next(s for s in self.samples if s.sizes.get(topic, 0) >= size)

    def rate(self, topic: str, low: int, high: int) -> float:
        """Bytes/s between the first samples at ``low`` and at ``high`` bytes."""
        first, last = self.first_at(topic, low), self.first_at(topic, high)
        return (last.sizes[topic] - first.sizes[topic]) / (last.at - first.at)

    def cpu_share(self, low: int, high: int) -> float:
        """Broker 2's CPU seconds per second between the first samples at ``low`` and at ``high``
        bytes of every topic (a spinning fetcher would take a whole core)."""
        first = max((self.first_at(t, low) for t in TOPICS), key=lambda s: s.at)
        last = max((self.first_at(t, high) for t in TOPICS), key=lambda s: s.at)
        assert first.cpu_s is not None and last.cpu_s is not None
        return (last.cpu_s - first.cpu_s) / (last.at - first.at)

    def size_before(self, when: float) -> dict[str, int]:
        """Sizes of the last sample taken at or before ``when``."""
        return next(s.sizes for s in reversed(self.samples) if s.at <= when)


def test_throttled_follower_catches_up_at_the_throttled_rate(pko_cluster_factory: ClusterFactory) -> None:
    cluster = pko_cluster_factory(YAML)
    client = admin(cluster)
    _create_topics(cluster)
    for topic in TOPICS:
        wait_until(lambda t=topic: _isr(client, t) == [1, 2], 20, f"{topic}: ISR [1, 2]")
    _set_broker_rate(cluster, 1, "leader.replication.throttled.rate", RATE)
    _set_broker_rate(cluster, 2, "follower.replication.throttled.rate", RATE)

    cluster.kill(2, "KILL")
    for topic in TOPICS:
        wait_until(lambda t=topic: _isr(client, t) == [1], 20, f"{topic}: broker 2 out of the ISR")
    produce_started = time.monotonic()
    _produce(cluster)
    produce_s = time.monotonic() - produce_started
    follower = _Follower(cluster)
    leader_sizes = follower.sizes_of(1)
    assert all(leader_sizes[t] >= DATA_MB * MB for t in TOPICS), leader_sizes

    python_admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers)
    python_admin.alter_configs([KafkaPythonResource(ConfigResourceType.TOPIC, LEADER_SIDE, configs={
        "leader.replication.throttled.replicas": (AlterConfigOp.SET, "*")})])
    python_admin.close()
    _pko_configs(cluster, "--alter", "--entity-type", "topics", "--entity-name", FOLLOWER_SIDE,
                 "--add-config", "follower.replication.throttled.replicas=[0:2,1:3]")
    shown = _pko_configs(cluster, "--describe", "--entity-type", "topics", "--entity-name", LEADER_SIDE)
    assert "leader.replication.throttled.replicas=*" in shown, shown
    shown = _pko_configs(cluster, "--describe", "--entity-type", "topics", "--entity-name", FOLLOWER_SIDE)
    assert "follower.replication.throttled.replicas=0:2,1:3" in shown, shown
    shown = _pko_configs(cluster, "--describe", "--entity-type", "brokers", "--entity-name", "1")
    assert f"leader.replication.throttled.rate={RATE}" in shown, shown

    restart = threading.Thread(target=cluster.restart, args=(2,), daemon=True)
    restart.start()
    wait_until(lambda: follower.all_at(MEASURE_TO), DATA_MB * MB / RATE * 3 + 30,
               f"broker 2 at {MEASURE_TO} bytes of each topic")
    restart.join(60)
    throttled = {t: follower.rate(t, MEASURE_FROM, MEASURE_TO) for t in TOPICS}
    cpu_share = follower.cpu_share(MEASURE_FROM, MEASURE_TO)

    removed_at = time.monotonic()
    _pko_configs(cluster, "--alter", "--entity-type", "topics", "--entity-name", LEADER_SIDE,
                 "--delete-config", "leader.replication.throttled.replicas")
    _pko_configs(cluster, "--alter", "--entity-type", "topics", "--entity-name", FOLLOWER_SIDE,
                 "--delete-config", "follower.replication.throttled.replicas")
    wait_until(lambda: follower.all_at(leader_sizes), 60, "broker 2 caught up after the throttle's removal")
    caught_up_s = time.monotonic() - removed_at
    before = follower.size_before(removed_at)
    remaining = {t: leader_sizes[t] - before[t] for t in TOPICS}
    unthrottled = sum(remaining.values()) / caught_up_s
    for topic in TOPICS:
        wait_until(lambda t=topic: _isr(client, t) == [1, 2], 30, f"{topic}: broker 2 back in the ISR")
    rejoined_s = time.monotonic() - removed_at

    figures: dict[str, Any] = {
        "test": "replication_throttle", "rate_mb_s": RATE / MB, "data_mb_per_topic": DATA_MB,
        "produce_s": round(produce_s, 2),
        "throttled_mb_s": {t: round(r / MB, 2) for t, r in throttled.items()},
        "throttled_ratio": {t: round(r / RATE, 2) for t, r in throttled.items()},
        "follower_cpu_share_throttled": round(cpu_share, 2),
        "after_removal_mb": round(sum(remaining.values()) / MB, 1),
        "after_removal_mb_s": round(unthrottled / MB, 2), "caught_up_s": round(caught_up_s, 2),
        "isr_rejoined_s": round(rejoined_s, 2), "samples": len(follower.samples)}
    print(json.dumps(figures))
    for topic, rate in throttled.items():
        assert 0.5 * RATE <= rate <= 1.5 * RATE, (topic, figures)
    assert unthrottled > 1.5 * RATE, figures
    assert cpu_share < 0.5, figures  # waiting, not spinning
