"""Benchmark of `pko doctor` (not a test): the time of a run excluding its window, on 1 000
partitions and 200 groups with committed offsets (issue 19: goal ≤ 5 s).

    python tests/perf/bench_doctor.py                   # our node (started here), then Tansu once
    python tests/perf/bench_doctor.py --broker pko      # our node only (or: tansu)
    python tests/perf/bench_doctor.py --bootstrap HOST:PORT

The scene: ``--topics`` topics sharing ``--partitions`` partitions, ``--records`` keyed records per
partition, and ``--groups`` groups (AlterConsumerGroupOffsets, no members) each committed 1 record
into every partition of one topic, so every partition is covered and each group is stalled.

Figures:
- ``pko doctor --window W --polls 2 --critical-topics FIRST --output json`` as a user runs it (the real binary): wall time
  minus W is the part that is not the window (start-up, the polls' own time, key samples that
  outlast the window, the checks, the output). Median of ``--runs``.
- The same work through the service's functions, in-process, phase by phase: one poll (metadata,
  log-end offsets, groups and their offsets), the key samples (``--key-topics`` largest topics,
  5 000 newest records each, as the doctor samples them), and ``run_checks``.
One JSON line per broker, then a short table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench_groups import PKO, broker, commit_groups
from group_clients import create_topic

GOAL_S = 5.0


def build(bootstrap: str, topics: int, partitions: int, groups: int, records: int) -> list[str]:
    """Create the scene (module docstring); return the topic names."""
    from confluent_kafka import Producer

    suffix = uuid.uuid4().hex[:6]
    names = [f"doctor-bench-{suffix}-{i:02d}" for i in range(topics)]
    per_topic = partitions // topics
    for name in names:
        create_topic(bootstrap, name, per_topic)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "partitioner": "murmur2_random"})
    for name in names:
        for i in range(per_topic * records):
            producer.produce(name, key=b"user-%d" % (i % 5000), value=b"x" * 20)
            if i % 5000 == 0:
                producer.poll(0)
    assert producer.flush(60) == 0
    for start in range(0, groups, 50):  # one topic's partitions per group, committed a few groups at a time
        batch = range(start, min(groups, start + 50))
        for name in names:
            members = [f"doctor-bench-{suffix}-g{g:03d}" for g in batch if names[g % topics] == name]
            if members:
                commit_groups(bootstrap, members, {(name, p): 1 for p in range(per_topic)})
    return names


def cli_run(bootstrap: str, window: float, critical: str) -> tuple[float, dict[str, Any]]:
    """Wall time of one `pko doctor` (``critical``: the first topic, so the durability checks run too) and its JSON."""
    argv = [*PKO, "doctor", "-b", bootstrap, "--window", str(window), "--polls", "2", "--output", "json",
            "--critical-topics", f"^{critical}$"]
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return wall, json.loads(proc.stdout)


async def phases(bootstrap: str) -> dict[str, float]:
    """Seconds of each non-window phase, through the service's own functions."""
    from pykafka_ops.client.connection import ClientSettings
    from pykafka_ops.models.doctor import DoctorInput, DoctorOptions
    from pykafka_ops.models.monitor import MonitorOptions
    from pykafka_ops.services.doctor import Sampling, _key_samples
    from pykafka_ops.services.doctor_checks import run_checks
    from pykafka_ops.services.monitor import MonitorServices
    from pykafka_ops.services.snapshot import KafkaClusterSource

    settings, options, sampling = ClientSettings(bootstrap), DoctorOptions(), Sampling(polls=2)
    services = MonitorServices(KafkaClusterSource(settings), MonitorOptions(window=2, rate_window=1, hot_k=2.0))
    took: dict[str, float] = {}
    try:
        t = time.perf_counter()
        first = await services.poll()
        took["first_poll"] = time.perf_counter() - t
        t = time.perf_counter()
        samples, _errors = await _key_samples(settings, first, options, sampling)
        took["key_samples"] = time.perf_counter() - t
        t = time.perf_counter()
        last = await services.poll()
        took["second_poll"] = time.perf_counter() - t
    finally:
        services.close()
    t = time.perf_counter()
    run_checks(DoctorInput(last, last.taken_at - first.taken_at, bootstrap, samples), options)
    took["run_checks"] = time.perf_counter() - t
    return {k: round(v, 3) for k, v in took.items()}


def run(kind: str, bootstrap: str, args: argparse.Namespace, runs: int) -> dict[str, Any]:
    started = time.perf_counter()
    names = build(bootstrap, args.topics, args.partitions, args.groups, args.records)
    setup_s = time.perf_counter() - started
    walls, payload = [], {}
    for _ in range(runs):
        wall, payload = cli_run(bootstrap, args.window, names[0])
        walls.append(wall)
    wall = statistics.median(walls)
    result = {
        "bench": "doctor", "broker": kind, "partitions": args.partitions, "topics": args.topics,
        "groups": args.groups, "records_per_partition": args.records, "runs": runs, "setup_s": round(setup_s, 1),
        "window_s": args.window, "measured_window_s": payload.get("window_s"), "wall_s": round(wall, 3),
        "non_window_s": round(wall - args.window, 3), "worst_non_window_s": round(max(walls) - args.window, 3),
        "goal_s": GOAL_S, "phases_s": asyncio.run(phases(bootstrap)),
        "findings": dict(Counter(f["check"] for f in payload.get("findings", []))),
        "skipped": {s["check"]: s["why"] for s in payload.get("skipped", [])}, "errors": payload.get("errors", []),
    }
    print(json.dumps(result), flush=True)
    return result


def table(results: list[dict[str, Any]]) -> None:
    print(f"\n{'broker':<7} {'wall p50':>9} {'non-window':>11} {'worst':>7} {'goal':>5}  "
          f"{'poll':>6} {'keys':>6} {'checks':>7}  findings / skipped")
    for r in results:
        p = r["phases_s"]
        found = ", ".join(f"{k} {v}" for k, v in sorted(r["findings"].items())) or "none"
        print(f"{r['broker']:<7} {r['wall_s']:>8.2f}s {r['non_window_s']:>10.2f}s {r['worst_non_window_s']:>6.2f}s "
              f"{r['goal_s']:>4.0f}s  {p['first_poll']:>5.2f}s {p['key_samples']:>5.2f}s {p['run_checks']:>6.3f}s  "
              f"{found} / skipped: {', '.join(r['skipped']) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", choices=("pko", "tansu", "both"), default="both")
    parser.add_argument("--bootstrap", help="use a running broker instead")
    parser.add_argument("--runs", type=int, default=3, help="runs on our node (Tansu: one)")
    parser.add_argument("--window", type=float, default=0.5)
    parser.add_argument("--topics", type=int, default=10)
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--records", type=int, default=10, help="records per partition")
    args = parser.parse_args()
    if args.bootstrap:
        table([run("given", args.bootstrap, args, args.runs)])
        return
    results = []
    for kind in ("pko", "tansu") if args.broker == "both" else (args.broker,):
        with broker(kind) as bootstrap:
            results.append(run(kind, bootstrap, args, args.runs if kind == "pko" else 1))
    table(results)


if __name__ == "__main__":
    main()
