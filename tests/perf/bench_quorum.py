"""Metadata-quorum benchmark: election after kill -9, commit latency, start-up replay (issue "KRaft quorum").

Not a test: run it by hand and read the figures.

    python tests/perf/bench_quorum.py                  # Kafka's default quorum timeouts
    python tests/perf/bench_quorum.py --test-timeouts  # election 300 ms, fetch 600 ms, request 1 s
    python tests/perf/bench_quorum.py --records 5000 --json out.json

Three controller-only nodes on this machine. Election: the leader is killed with SIGKILL
``--rounds`` times (and restarted), each time timing until another node answers DescribeQuorum as
leader. Commit latency: ``--records`` CreateTopics of one topic each, one at a time, on the leader
(p50/p99, ms), and the same on a single combined node for comparison. Replay: a node of the
three-node quorum is restarted after those records and timed until it answers again. Start-up
replay: a single node with ``--replay-records`` metadata records (CreateTopics of one partition)
restarted without a snapshot and with one (metadata.log.max.record.bytes.between.snapshots small),
timed until it answers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster.pytest_plugin import RunningCluster, start_cluster  # noqa: E402
from quorum_helpers import create_on, elect, register_broker  # noqa: E402

TEST_TIMEOUTS = {"controller.quorum.election.timeout.ms": 300, "controller.quorum.fetch.timeout.ms": 600,
                 "controller.quorum.request.timeout.ms": 1000, "controller.quorum.election.backoff.max.ms": 300}


KAFKA_TIMEOUTS = {"controller.quorum.election.timeout.ms": 1000, "controller.quorum.fetch.timeout.ms": 2000,
                  "controller.quorum.request.timeout.ms": 2000, "controller.quorum.election.backoff.max.ms": 1000}


def _yaml(nodes: int, timeouts: dict[str, int]) -> str:
    roles = "[controller]" if nodes > 1 else "[broker, controller]"
    lines = ["cluster: {name: bench-quorum}", "nodes:"]
    lines += [f"  - {{id: {i}, roles: {roles}}}" for i in range(1, nodes + 1)]
    if nodes > 1:  # Kafka's quorum defaults unless told (start_cluster's test settings otherwise)
        settings = {**KAFKA_TIMEOUTS, **timeouts, "broker.session.timeout.ms": 600_000}  # a broker, once
        lines += ["broker:"] + [f"  {key}: {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2)}


def _commit_latency(cluster: RunningCluster, leader: int, records: int, prefix: str) -> dict[str, float]:
    samples = []
    for i in range(records):
        started = time.perf_counter()
        code = create_on(cluster, leader, f"{prefix}-{i}")
        samples.append((time.perf_counter() - started) * 1000)
        if code != 0:
            raise RuntimeError(f"CreateTopics answered {code}")
    return _percentiles(samples)


def measure_quorum(workdir: Path, rounds: int, records: int, timeouts: dict[str, int]) -> dict[str, Any]:
    """Election after kill -9, commit latency and replay on three controller-only nodes."""
    out: dict[str, Any] = {}
    with start_cluster(_yaml(3, timeouts), workdir / "three") as cluster:
        nodes = [1, 2, 3]
        leader, seconds = elect(cluster, nodes)
        out["first_election_s"] = round(seconds, 2)
        if register_broker(cluster, leader) != 0:
            raise RuntimeError("broker registration failed")
        elections = []
        for _ in range(rounds):
            cluster.kill(leader)
            new_leader, seconds = elect(cluster, [n for n in nodes if n != leader])
            elections.append(seconds)
            cluster.restart(leader)
            leader = new_leader
        out["election_after_kill9_s"] = {"min": round(min(elections), 2), "median": round(statistics.median(elections), 2),
                                         "max": round(max(elections), 2), "rounds": rounds}
        out["commit_latency_three_voters"] = _commit_latency(cluster, leader, records, "bench")
        follower = next(n for n in nodes if n != leader)
        started = time.monotonic()
        cluster.restart(follower)
        out["restart_follower_after_records_s"] = round(time.monotonic() - started, 2)
    with start_cluster(_yaml(1, {}), workdir / "one") as single:
        out["commit_latency_one_voter"] = _commit_latency(single, 1, records, "bench")
    return out


def measure_replay(workdir: Path, topics: int) -> dict[str, Any]:
    """Restart time of one controller after ``topics`` CreateTopics (3 records each), without and
    with snapshots."""
    out: dict[str, Any] = {"records": topics * 3}
    for label, threshold in (("without_snapshot", 1 << 40), ("with_snapshot", 64 * 1024)):
        # one controller-only node: the restart replays metadata and opens no partition log
        yaml = ("cluster: {name: bench-replay}\nnodes:\n  - {id: 1, roles: [controller]}\n"
                f"broker:\n  metadata.log.max.record.bytes.between.snapshots: {threshold}\n")
        with start_cluster(yaml, workdir / label) as single:
            if register_broker(single, 1) != 0:
                raise RuntimeError("broker registration failed")
            for i in range(topics):
                create_on(single, 1, f"replay-{i}")
            started = time.monotonic()
            single.restart(1)
            out[f"restart_{label}_s"] = round(time.monotonic() - started, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="kill -9 rounds")
    parser.add_argument("--records", type=int, default=300, help="CreateTopics for the latency figures")
    parser.add_argument("--test-timeouts", action="store_true", help="shorter quorum timeouts (see TEST_TIMEOUTS)")
    parser.add_argument("--replay-records", type=int, default=20_000,
                        help="metadata records before the start-up replay figures (0: skip)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-quorum-") as tmp:
        figures = measure_quorum(Path(tmp), args.rounds, args.records, TEST_TIMEOUTS if args.test_timeouts else {})
        if args.replay_records:
            figures["replay"] = measure_replay(Path(tmp), args.replay_records // 3)
    figures["timeouts"] = TEST_TIMEOUTS if args.test_timeouts else "Kafka's defaults"
    print(json.dumps(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
