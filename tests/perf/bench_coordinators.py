"""Coordinator and controlled-shutdown benchmark (issue 16, "Done when"): time from SIGTERM to a
node's leadership moved, and time from kill -9 of a group coordinator's node to the group
consuming again.

Not a test: run it by hand and read the figures (pytest collects only test_*.py files).

    python tests/perf/bench_coordinators.py                    # ≈ 1-2 minutes
    python tests/perf/bench_coordinators.py --rounds 9 --offsets-partitions 50
    python tests/perf/bench_coordinators.py --kafka-defaults   # Kafka's broker/quorum timeouts
    python tests/perf/bench_coordinators.py --only coordinator-kill --json out.json

One cluster of three combined broker + controller nodes on free 127.0.0.1 ports in a temp dir
(cluster.pytest_plugin.start_cluster, so MULTI_NODE_TEST_SETTINGS: broker.session.timeout.ms
2000; with --kafka-defaults bench_cluster.KAFKA_TIMEOUTS instead, 9000): a topic of
``--partitions`` partitions, RF 3, min.insync.replicas 2, ``__consumer_offsets`` RF 3 with
``--offsets-partitions`` partitions. An idempotent acks=all producer (faults.clients.
RecordingProducer) sends ``--rate`` records/s throughout each round.

shutdown          ``--rounds`` SIGTERMs, one node after the other (node 1, 2, 3, 1 …): seconds
                  from the signal until the two other nodes' Metadata names no partition of the
                  topic or of __consumer_offsets led by it (a thread polls them every 10 ms:
                  "leadership moved"), and until its process exited (controlled shutdown plus
                  closing its logs); whether it was the metadata quorum's leader (the controller
                  that moves leadership); the longest time between two acknowledgements in the
                  round. The node is started again and every ISR is full before the next round;
                  leadership is not moved back (no preferred election is asked for), so later
                  rounds stop nodes that lead more.
coordinator-kill  ``--rounds`` kills: a fresh 2-member group (faults.group_clients.GroupConsumer:
                  manual synchronous commits after processing) consumes the topic; once both
                  members committed, kill -9 of the node of the group's coordinator
                  (FindCoordinator). Seconds from the kill to: a survivor's FindCoordinator naming
                  another node; the group's first acknowledged commit sent after the kill; "consuming again": every
                  partition had a record past its last acknowledged offset at the kill processed.
                  Also the rebalances the kill caused (0 when the group's state was replicated)
                  and the records processed twice. The killed node is restarted before the next
                  round.

One JSON line per round and per scenario (median, max), then a table. The settings are in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cluster import KAFKA_TIMEOUTS, quorum_leader
from faults.clients import RecordingProducer
from faults.cluster_ops import (
    LeadershipWatch,
    brokers,
    find_coordinator,
    kill9,
    leaders,
    longest_ack_gap,
    sigterm,
    wait_for_coordinator,
    wait_for_full_isr,
)
from faults.group_clients import GroupConsumer, stable_assignment
from faults.history import History

from cluster.pytest_plugin import (
    MULTI_NODE_TEST_SETTINGS,
    RunningCluster,
    start_cluster,
    wait_until,
)

TOPIC = "bench-coordinators"
OFFSETS_TOPIC = "__consumer_offsets"
WAIT_S = 60.0


def cluster_yaml(partitions: int, offsets_partitions: int) -> str:
    return f"""\
cluster: {{name: bench-coordinators}}
nodes:
  - {{id: 1}}
  - {{id: 2}}
  - {{id: 3}}
broker:
  num.partitions: {partitions}
  default.replication.factor: 3
  min.insync.replicas: 2
  offsets.topic.replication.factor: 3
  offsets.topic.num.partitions: {offsets_partitions}
  group.initial.rebalance.delay.ms: 0
  group.min.session.timeout.ms: 1000
topics:
  - {{name: {TOPIC}, partitions: {partitions}, replication.factor: 3, config: {{min.insync.replicas: 2}}}}
"""


def med_max(samples: list[float | None]) -> dict[str, Any]:
    known = [s for s in samples if s is not None]
    return {"median": round(statistics.median(known), 3) if known else None,
            "max": round(max(known), 3) if known else None,
            "samples": [None if s is None else round(s, 3) for s in samples]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def wait_ready(cluster: RunningCluster) -> None:
    """Every partition of the topic and of __consumer_offsets led, with a full ISR."""
    wait_for_full_isr(cluster, TOPIC, WAIT_S)
    wait_until(lambda: find_coordinator(cluster, "bench-probe"), WAIT_S, "__consumer_offsets created")
    wait_for_full_isr(cluster, OFFSETS_TOPIC, WAIT_S)


# --- shutdown ------------------------------------------------------------------------------------


def controlled_shutdown(cluster: RunningCluster, args: argparse.Namespace) -> dict[str, Any]:
    """``--rounds`` SIGTERMs of one node after the other under a steady producer."""
    nodes = brokers(cluster)
    rounds: list[dict[str, Any]] = []
    for i in range(args.rounds):
        node = nodes[i % len(nodes)]
        others = [n for n in nodes if n != node]
        history = History()
        producer = RecordingProducer(cluster.bootstrap_servers, TOPIC, history, proc="p0", max_in_flight=500)
        producer.start(rate_per_s=args.rate)
        try:
            wait_until(lambda producer=producer: producer.acked >= args.rate // 2, WAIT_S, "acks before the SIGTERM")
            led = {t: sum(1 for leader in leaders(cluster, t).values() if leader == node) for t in (TOPIC, OFFSETS_TOPIC)}
            controller = quorum_leader(cluster, nodes)
            watch = LeadershipWatch(cluster, node, (TOPIC, OFFSETS_TOPIC), others, timeout_s=WAIT_S).start()
            signalled = time.monotonic()
            shutdown_s = sigterm(cluster, node, timeout_s=WAIT_S)
            moved_at = watch.wait()
            acked = producer.acked
            wait_until(lambda producer=producer, acked=acked: producer.acked >= acked + args.rate // 2, WAIT_S,
                       "acks after the SIGTERM")
        finally:
            producer.stop(30)
        moved_s = None if moved_at is None else moved_at - signalled
        figures = {"scenario": "shutdown", "round": i, "node": node, "was_quorum_leader": controller == node,
                   "leaders_before": led, "leadership_moved_s": _round(moved_s), "exit_s": _round(shutdown_s),
                   "moved_after_exit_s": _round(None if moved_s is None else moved_s - shutdown_s),
                   "longest_ack_gap_s": _round(longest_ack_gap(history)),
                   "send_errors": history.count("info") + history.count("fail")}
        print(json.dumps(figures), flush=True)
        rounds.append(figures)
        cluster.restart(node)
        wait_ready(cluster)
    summary = {"scenario": "shutdown", "rounds": args.rounds,
               "leadership_moved_s": med_max([r["leadership_moved_s"] for r in rounds]),
               "exit_s": med_max([r["exit_s"] for r in rounds]),
               "longest_ack_gap_s": med_max([r["longest_ack_gap_s"] for r in rounds]),
               "quorum_leader_rounds": [r["round"] for r in rounds if r["was_quorum_leader"]],
               "leadership_moved_s_quorum_leader": med_max(
                   [r["leadership_moved_s"] for r in rounds if r["was_quorum_leader"]]),
               "leadership_moved_s_other": med_max(
                   [r["leadership_moved_s"] for r in rounds if not r["was_quorum_leader"]]),
               "not_moved_within_s": WAIT_S if any(r["leadership_moved_s"] is None for r in rounds) else None}
    print(json.dumps(summary), flush=True)
    return {"summary": summary, "rounds": rounds}


# --- coordinator kill ----------------------------------------------------------------------------


def coordinator_kill(cluster: RunningCluster, args: argparse.Namespace) -> dict[str, Any]:
    """``--rounds`` kills of a fresh group's coordinator node under a steady producer."""
    nodes = brokers(cluster)
    partitions = range(args.partitions)
    rounds: list[dict[str, Any]] = []
    for i in range(args.rounds):
        group = f"bench-group-{i}"
        history = History()
        producer = RecordingProducer(cluster.bootstrap_servers, TOPIC, history, proc="p0", max_in_flight=500)
        producer.start(partitions=partitions, rate_per_s=args.rate)
        members = [GroupConsumer(cluster.bootstrap_servers, TOPIC, group, history, proc=f"c{m}").start()
                   for m in range(2)]
        try:
            wait_until(lambda members=members: (held := stable_assignment(members, partitions)) and all(held.values()),
                       WAIT_S, "2 members sharing the partitions")
            since = history.now()
            wait_until(lambda members=members, since=since: all(
                any(c.type == "ok" and c.sent >= since for c in m.commits) for m in members), WAIT_S, "commits by both")
            victim = find_coordinator(cluster, group)
            survivors = [n for n in nodes if n != victim]
            before = {m.proc: m.assignments for m in members}
            data_leaders = sum(1 for leader in leaders(cluster, TOPIC).values() if leader == victim)
            killed_at = history.now()
            kill9(cluster, victim)
            ends = {p: max((op.offset + 1 for op in history.ops if op.type == "ok" and op.f == "send"
                            and op.partition == p and op.t < killed_at and op.offset is not None), default=0)
                    for p in partitions}
            _node, to_coordinator = wait_for_coordinator(cluster, group, WAIT_S, not_on=[victim], via=survivors)

            def first_commit(members: list[GroupConsumer] = members, killed_at: float = killed_at) -> float | None:
                times = [c.t for m in members for c in m.commits if c.type == "ok" and c.sent >= killed_at]
                return min(times) - killed_at if times else None

            def consuming(members: list[GroupConsumer] = members, ends: dict[int, int] = ends,
                          killed_at: float = killed_at) -> float | None:
                firsts = [min((c.t for m in members for c in m.consumed
                               if c.partition == p and c.offset >= end and c.t >= killed_at), default=None)
                          for p, end in ends.items()]
                return None if None in firsts else max(f for f in firsts if f is not None) - killed_at

            to_commit = wait_until(first_commit, WAIT_S, "an acknowledged commit after the kill")
            to_consuming = wait_until(consuming, WAIT_S, "every partition consumed past its end at the kill")
        finally:
            for m in members:
                m.close(30)
            producer.stop(30)
        consumed = [c for m in members for c in m.consumed]
        figures = {"scenario": "coordinator-kill", "round": i, "group": group, "node": victim,
                   "data_leaders_on_node": data_leaders, "time_to_new_coordinator_s": _round(to_coordinator),
                   "time_to_first_commit_s": _round(to_commit), "time_to_consuming_again_s": _round(to_consuming),
                   "rebalances_caused": sum(m.assignments - before[m.proc] for m in members),
                   "replayed": len(consumed) - len({(c.partition, c.offset) for c in consumed}),
                   "commit_errors": {m.proc: dict(m.commit_errors) for m in members if m.commit_errors},
                   "longest_ack_gap_s": _round(longest_ack_gap(history))}
        print(json.dumps(figures), flush=True)
        rounds.append(figures)
        cluster.restart(victim)
        wait_ready(cluster)
    summary = {"scenario": "coordinator-kill", "rounds": args.rounds,
               "time_to_new_coordinator_s": med_max([r["time_to_new_coordinator_s"] for r in rounds]),
               "time_to_first_commit_s": med_max([r["time_to_first_commit_s"] for r in rounds]),
               "time_to_consuming_again_s": med_max([r["time_to_consuming_again_s"] for r in rounds]),
               "rebalances_caused": [r["rebalances_caused"] for r in rounds],
               "replayed": [r["replayed"] for r in rounds]}
    print(json.dumps(summary), flush=True)
    return {"summary": summary, "rounds": rounds}


# --- main ----------------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> None:
    print()
    if "shutdown" in results:
        s = results["shutdown"]["summary"]
        print(f"{'SIGTERM ->':<42} {'median s':>9} {'max s':>7}")
        for label, key in (("leadership moved (others' Metadata)", "leadership_moved_s"),
                           ("  when it led the metadata quorum", "leadership_moved_s_quorum_leader"),
                           ("  otherwise", "leadership_moved_s_other"), ("process exited", "exit_s"),
                           ("longest ack gap of the round", "longest_ack_gap_s")):
            f = s[key]
            print(f"{label:<42} {_fmt(f['median']):>9} {_fmt(f['max']):>7}")
    if "coordinator_kill" in results:
        s = results["coordinator_kill"]["summary"]
        print(f"{'coordinator kill -9 ->':<42} {'median s':>9} {'max s':>7}")
        for label, key in (("new coordinator (FindCoordinator)", "time_to_new_coordinator_s"),
                           ("first acknowledged commit", "time_to_first_commit_s"),
                           ("group consuming again", "time_to_consuming_again_s")):
            f = s[key]
            print(f"{label:<42} {_fmt(f['median']):>9} {_fmt(f['max']):>7}")
        print(f"rebalances caused per kill {s['rebalances_caused']}; records processed twice {s['replayed']}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="SIGTERMs and kills (median, max)")
    parser.add_argument("--rate", type=int, default=500, help="records/s of the producer during each round")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the topic")
    parser.add_argument("--offsets-partitions", type=int, default=10,
                        help="partitions of __consumer_offsets (Kafka's default is 50)")
    parser.add_argument("--kafka-defaults", action="store_true",
                        help="Kafka's broker/quorum timeouts (bench_cluster.KAFKA_TIMEOUTS) instead of the tests'")
    parser.add_argument("--only", choices=["shutdown", "coordinator-kill"], action="append",
                        help="run only these scenarios (repeatable)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    only = set(args.only or ["shutdown", "coordinator-kill"])
    settings = KAFKA_TIMEOUTS if args.kafka_defaults else MULTI_NODE_TEST_SETTINGS
    results: dict[str, Any] = {"settings": settings, "kafka_defaults": args.kafka_defaults, "cpus": os.cpu_count(),
                               "rate": args.rate, "partitions": args.partitions,
                               "offsets_partitions": args.offsets_partitions, "loadavg_1m_before": os.getloadavg()[0]}
    print("settings:", json.dumps(settings), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-coordinators-") as tmp, \
            start_cluster(cluster_yaml(args.partitions, args.offsets_partitions), Path(tmp) / "rf3",
                          wait_s=WAIT_S, **settings) as cluster:
        wait_ready(cluster)
        if "shutdown" in only:
            results["shutdown"] = controlled_shutdown(cluster, args)
        if "coordinator-kill" in only:
            results["coordinator_kill"] = coordinator_kill(cluster, args)
    results["loadavg_1m_after"] = os.getloadavg()[0]
    table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
