"""The shared fault-test harness end to end, on three real nodes (replication factor 1 until
replication lands): an idempotent acks=all producer recording its history sends to a 3-partition
topic, the leader of partition 0 is killed with ``kill -9`` and restarted through ``pko cluster``,
the topic is read back from the beginning and the replicas are dumped with ``pko dump-log``; the
checker finds 0 lost, 0 duplicates, 0 offset mismatches, 0 reorders. Figures: one JSON line.
"""

from __future__ import annotations

import json
from pathlib import Path

from cluster.pytest_plugin import ClusterFactory
from faults.checker import check
from faults.clients import RecordingProducer, drain, high_watermarks
from faults.cluster_ops import (
    kill9,
    leaders,
    longest_ack_gap,
    poll_until,
    replica_batches,
    restart,
    time_to_first_ack,
    wait_for_leader,
)
from faults.history import History

TOPIC = "smoke"
PARTITIONS = range(3)
RECORDS = 4_000  # at least this many acks: a quarter before the kill, a quarter after the restart
THREE_NODES_YAML = f"""\
cluster: {{name: faults-smoke}}
nodes:
  - {{id: 1}}
  - {{id: 2}}
  - {{id: 3}}
broker:
  num.partitions: 3
  default.replication.factor: 1
  min.insync.replicas: 1
topics:
  - {{name: {TOPIC}, partitions: {len(PARTITIONS)}, replication.factor: 1}}
"""


def test_kill_9_and_restart_of_a_leader_loses_and_duplicates_nothing(pko_cluster_factory: ClusterFactory,
                                                                       tmp_path: Path) -> None:
    cluster = pko_cluster_factory(THREE_NODES_YAML)
    history = History()
    led, _ = poll_until(lambda: (found := leaders(cluster, TOPIC)) and min(found.values()) >= 0 and found,
                        15, f"a leader for every partition of {TOPIC}")
    victim = led[0]
    victim_partitions = [p for p, leader in led.items() if leader == victim]

    producer = RecordingProducer(cluster.bootstrap_servers, TOPIC, history, proc="p0", max_in_flight=500)
    with producer.start(partitions=PARTITIONS):
        poll_until(lambda: producer.acked >= RECORDS // 4, 20, f"{RECORDS // 4} acks before the fault")
        killed_at = kill9(cluster, victim, history, cli=True)
        restarted_at = restart(cluster, victim, history, cli=True)
        _leader, to_leader = wait_for_leader(cluster, TOPIC, 0, timeout_s=15)
        first_ack = time_to_first_ack(history, killed_at, victim_partitions, timeout_s=20)
        acked_after = producer.acked
        poll_until(lambda: producer.acked >= acked_after + RECORDS // 4, 20, "more acks after the restart")
    unanswered = producer.stop()

    reads = drain(cluster.bootstrap_servers, TOPIC, PARTITIONS, history)
    ends = high_watermarks(cluster.bootstrap_servers, TOPIC, PARTITIONS)
    replicas = replica_batches(cluster, TOPIC, PARTITIONS)
    result = check(history, reads, replicas=replicas, high_watermarks=ends)
    history.dump_jsonl(tmp_path / "history.jsonl")

    print(json.dumps({"test": "harness-smoke", "fault": "kill-9+restart", "node": victim, "rf": 1,
                      **result.figures(), "unanswered": unanswered,
                      "acked_before_kill": sum(1 for op in history.ops if op.type == "ok" and op.t < killed_at),
                      "restart_s": round(restarted_at - killed_at, 3),
                      "leader_after_restart_s": round(to_leader, 3),
                      "first_ack_after_kill_s": round(first_ack, 3),
                      "longest_ack_gap_s": round(longest_ack_gap(history), 3)}))
    assert result.valid, result.summary()
    assert (result.lost, result.duplicates, result.offset_mismatches) == (0, 0, 0)
    assert result.acked + result.indeterminate + result.failed == producer.sent and unanswered == 0
    assert result.acked >= RECORDS // 2
    # the segment files hold exactly what was read: one replica per partition, ending at its high watermark
    for partition in PARTITIONS:
        (batches,) = [held[partition] for held in replicas.values() if partition in held]
        assert batches[-1].last_offset + 1 == ends[partition] == len(reads[partition])
