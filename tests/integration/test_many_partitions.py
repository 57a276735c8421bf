"""3 000 partitions on one node with about a hundred descriptors (issue "Data safety" item 3;
reliability-probe §3.3, where 6 656 partitions exhausted the fd limit and the node could not start;
`tests/perf/bench_partitions.py` goes to 12 000, outside CI).

A real node with ``log.open.files.max: 100`` gets two CreateTopics of 1 500 partitions, records in
partitions spread over them, a clean restart and a kill -9 restart. Its open descriptors stay
under the cap plus a fixed allowance, Metadata describes every partition with a leader, and every
record reads back. A CreateTopics asking for more than 10 000 partitions in all is refused for
every topic with POLICY_VIOLATION, as Kafka's controller does, and commits none of them. Figures are printed as one JSON line; speed goals
live in ``tests/perf/bench_partitions.py``, not here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil

from cluster.pytest_plugin import RunningCluster, start_cluster
from integration_helpers import build_batch, produce_raw, read_partition, wire
from pykafka_ops.protocol.api_keys import ApiKey

TOPICS = 2
PARTITIONS = 1_500
MAX_OPEN_FILES = 100
#: Descriptors a node holds besides log files: the metadata log, sockets, epoll, logs, the interpreter.
ALLOWANCE = 64
SAMPLED = [0, 1, 749, 1499]
POLICY_VIOLATION = 44
#: Seconds a restart may take: 3 000 logs recovered while the other test worker shares the cores.
RESTART_WAIT_S = 120.0


def _node(cluster: RunningCluster) -> psutil.Process:
    return psutil.Process(cluster.status()[0].pid)


def _create(cluster: RunningCluster, topics: list[tuple[str, int]]) -> dict[str, int]:
    with wire(cluster, timeout=120) as client:
        response = client.request(ApiKey.CREATE_TOPICS, 7, {
            "topics": [{"name": name, "num_partitions": count, "replication_factor": 1, "assignments": [],
                        "configs": []} for name, count in topics],
            "timeout": 60_000, "validate_only": False})
    return {t.name: t.error_code for t in response.topics}


def _partition_count(cluster: RunningCluster) -> dict[str, int]:
    with wire(cluster, timeout=60) as client:
        response = client.request(ApiKey.METADATA, 12, {"topics": None, "allow_auto_topic_creation": False,
                                                         "include_topic_authorized_operations": False})
    counts = {}
    for topic in response.topics:
        assert all(p.error_code == 0 and p.leader_id == 1 for p in topic.partitions), topic.name
        counts[topic.name] = len(topic.partitions)
    return counts


def _values(cluster: RunningCluster, topic: str, partition: int) -> list[bytes]:
    return [bytes(r.value) for r in read_partition(cluster, topic, partition)]


def test_thousands_of_partitions_with_bounded_descriptors_survive_restarts(tmp_path: Path) -> None:
    yaml = f"cluster: {{name: wide}}\nnodes:\n  - {{id: 1}}\nbroker:\n  log.open.files.max: {MAX_OPEN_FILES}\n"
    with start_cluster(yaml, tmp_path) as cluster:
        names = [f"wide{i}" for i in range(TOPICS)]
        started = time.monotonic()
        for name in names:
            assert _create(cluster, [(name, PARTITIONS)]) == {name: 0}
        create_s = time.monotonic() - started

        written: dict[tuple[str, int], list[bytes]] = {}
        with wire(cluster) as client:
            for name in names:
                for partition in SAMPLED:
                    value = f"{name}-{partition}".encode()
                    assert produce_raw(client, name, partition, build_batch([value])).error_code == 0
                    written[(name, partition)] = [value]
        fds_created = _node(cluster).num_fds()
        assert fds_created <= MAX_OPEN_FILES + ALLOWANCE

        # over Kafka's 10 000 partitions per request: every topic refused, none created
        refused = _create(cluster, [("fits", 1), *((f"huge{i}", 3_000) for i in range(4))])
        assert refused == {"fits": POLICY_VIOLATION, **{f"huge{i}": POLICY_VIOLATION for i in range(4)}}

        cluster.restart(1, RESTART_WAIT_S)
        assert _partition_count(cluster) == {name: PARTITIONS for name in names}
        fds_restarted = _node(cluster).num_fds()
        assert fds_restarted <= MAX_OPEN_FILES + ALLOWANCE

        cluster.kill(1)
        cluster.restart(1, RESTART_WAIT_S)  # unclean: every log recovers from its recovery point
        assert _partition_count(cluster) == {name: PARTITIONS for name in names}
        for (name, partition), values in written.items():
            assert _values(cluster, name, partition) == values
        fds_recovered = _node(cluster).num_fds()
        assert fds_recovered <= MAX_OPEN_FILES + ALLOWANCE

    print(json.dumps({"test": "many_partitions", "partitions": TOPICS * PARTITIONS,
                      "log.open.files.max": MAX_OPEN_FILES, "create_s": round(create_s, 2),
                      "fds_after_create": fds_created, "fds_after_restart": fds_restarted,
                      "fds_after_kill9_restart": fds_recovered}))
