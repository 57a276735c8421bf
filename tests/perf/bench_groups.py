"""Benchmark of `pko consumer-groups` (not a test): wall time of the real binary, as a user runs it.

    python tests/perf/bench_groups.py                   # our cluster (started here), else Tansu
    python tests/perf/bench_groups.py --broker tansu
    python tests/perf/bench_groups.py --bootstrap HOST:PORT

Figures (median of ``--runs``; goals from issue 4):
- ``pko consumer-groups --describe --group g`` for a group with 100 partitions   (goal ≤ 0.4 s)
- ``pko consumer-groups --describe --all-groups`` with 500 groups               (goal ≤ 3 s)
- ``pko --help`` cold start                                                     (goal ≤ 0.2 s)
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from group_clients import create_topic, produce, tansu_broker

_SCRIPT = Path(sys.executable).parent / "pko"
PKO = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "commands.main"]


def measure(argv: list[str], runs: int) -> tuple[float, float, float]:
    """Median and worst wall time, and median CPU time (user + system), of ``argv`` in seconds.

    CPU time is reported because wall time on a loaded machine mostly measures the other load.
    """
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return statistics.median(walls), max(walls), statistics.median(cpus)


def commit_groups(bootstrap: str, groups: list[str], offsets: dict[tuple[str, int], int]) -> None:
    """Commit ``offsets`` for every group at once (AlterConsumerGroupOffsets, one request per group)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
    futures = [f for g in groups for f in admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(g, partitions)], request_timeout=30).values()]
    for future in futures:
        future.result(timeout=60)


@contextmanager
def broker(kind: str) -> Iterator[str]:
    """Bootstrap servers of a freshly started broker: ``pko`` (our cluster) or ``tansu``."""
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "tansu":
            with tansu_broker(Path(tmp)) as started:
                yield started.bootstrap
            return
        from cluster.pytest_plugin import start_cluster

        with start_cluster("cluster: {name: bench}\nnodes:\n  - {id: 1}\nbroker: {num.partitions: 1}\n",
                           tmp, **{"group.initial.rebalance.delay.ms": 0}) as cluster:
            yield cluster.bootstrap_servers


def run(bootstrap: str, runs: int) -> None:
    suffix = uuid.uuid4().hex[:6]
    topic, group = f"bench-{suffix}", f"bench-{suffix}"
    create_topic(bootstrap, topic, 100)
    produce(bootstrap, topic, {p: 2 for p in range(100)})
    commit_groups(bootstrap, [group], {(topic, p): 1 for p in range(100)})
    many = [f"bench-many-{suffix}-{i:03d}" for i in range(500)]
    commit_groups(bootstrap, many, {(topic, 0): 1, (topic, 1): 1})
    results = [
        ("pko consumer-groups --describe --group g (100 partitions)", 0.4,
         measure([*PKO, "consumer-groups", "--describe", "--group", group, "-b", bootstrap], runs)),
        ("pko consumer-groups --describe --all-groups (≥ 500 groups)", 3.0,
         measure([*PKO, "consumer-groups", "--describe", "--all-groups", "-b", bootstrap], runs)),
        ("pko --help (cold start)", 0.2, measure([*PKO, "--help"], runs)),
        ("python -c pass (interpreter start-up, for reference)", 0.0, measure([sys.executable, "-c", "pass"], runs)),
    ]
    print(f"{'command':<58} {'wall p50':>9} {'worst':>8} {'CPU p50':>8} {'goal':>6}")
    for name, goal, (median, worst, cpu) in results:
        print(f"{name:<58} {median:>8.3f}s {worst:>7.3f}s {cpu:>7.3f}s {goal:>5.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", choices=("pko", "tansu"), default="pko", help="start this broker (default: pko)")
    parser.add_argument("--bootstrap", help="use a running broker instead")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.bootstrap:
        run(args.bootstrap, args.runs)
        return
    with broker(args.broker) as bootstrap:
        print(f"broker: {args.broker} at {bootstrap}")
        run(bootstrap, args.runs)


if __name__ == "__main__":
    main()
