"""`pko skew --full` throughput against `pko perf consume` on the same topics, in the same run,
and the peak RSS of `pko skew` with a million distinct keys.

Not a test: run it by hand and read the figures.

    python tests/perf/bench_skew.py               # 1 M records per topic, 3 rounds (≈ 2 minutes)
    python tests/perf/bench_skew.py --records 200000 --rounds 1
    python tests/perf/bench_skew.py --bootstrap 127.0.0.1:9092   # an existing cluster (else one is started)

Topics (6 partitions, 100-byte values, produced by confluent-kafka with murmur2_random):
``zipf`` keys drawn from a Pareto(1.2) law (one key ≈ 55 % of records, a long tail), and
``distinct`` where every record has its own key. Each round runs, one after the other on the
same topic: `pko perf consume` as shipped, `pko perf consume` with
``fetch.queue.backoff.ms=20`` (the fetch setting `pko skew` uses: librdkafka's default of
1000 ms idles the fetcher whenever Python reads slower than the broker sends), a plain
confluent-kafka consume loop that only counts records and bytes, and `pko skew --full`.
Rates are each tool's own figure (records / its measured seconds; `pko skew`'s seconds cover
metadata, offsets, the scan, forensics and what-if); the table shows the median round. Peak
RSS is the child process's ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PARTITIONS = 6
PKO = str(Path(sys.executable).with_name("pko"))
PLAIN_LOOP = """
import sys, time
from confluent_kafka import Consumer, TopicPartition
bootstrap, topic, records, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-plain", "enable.auto.commit": False,
                     "fetch.queue.backoff.ms": 20})
consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
count = size = 0
start = time.monotonic()
while count < records:
    for message in consumer.consume(10000, 0.1):
        if message.error() is None:
            count += 1
            size += len(message)
print(count / (time.monotonic() - start))
"""


def produce(bootstrap: str, topic: str, records: int, distinct: bool) -> None:
    """Create ``topic`` and fill it with ``records`` records."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 50,
                         "batch.num.messages": 10_000})
    rng = random.Random(1)
    value = b"x" * 100
    for i in range(records):
        key = b"key-%d" % i if distinct else b"key-%d" % int(rng.paretovariate(1.2))
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def measured(argv: list[str]) -> tuple[str, float]:
    """Run ``argv`` in a fresh Python process that reports the child's peak RSS (MB)."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "sys.stderr.write(r.stderr); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
             "print(r.stdout, end=''); sys.exit(r.returncode)")
    run = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True)
    rss_kb, _, stdout = run.stdout.partition("\n")
    return stdout, int(rss_kb) / 1024


def perf_consume(bootstrap: str, topic: str, records: int, *props: str) -> tuple[float, float]:
    args = [PKO, "perf", "consume", "--topic", topic, "--messages", str(records), "-b", bootstrap, "--output", "json"]
    for prop in props:
        args += ["--consumer-props", prop]
    stdout, rss = measured(args)
    return json.loads(stdout)["nmsg_sec"], rss


def plain_loop(bootstrap: str, topic: str, records: int) -> tuple[float, float]:
    stdout, rss = measured([sys.executable, "-c", PLAIN_LOOP, bootstrap, topic, str(records), str(PARTITIONS)])
    return float(stdout), rss


def skew(bootstrap: str, topic: str, records: int) -> tuple[float, float]:
    stdout, rss = measured([PKO, "skew", topic, "--full", "-b", bootstrap, "--output", "json"])
    report = json.loads(stdout)
    assert report["scanned"] == records, report["scanned"]
    return report["scanned"] / report["elapsed_s"], rss


RUNNERS = {
    "pko perf consume": lambda b, t, n: perf_consume(b, t, n),
    "pko perf consume (fetch.queue.backoff.ms=20)": lambda b, t, n: perf_consume(b, t, n, "fetch.queue.backoff.ms=20"),
    "plain confluent-kafka loop": plain_loop,
    "pko skew --full": skew,
}


def bench(bootstrap: str, records: int, rounds: int) -> dict[str, dict[str, dict[str, float]]]:
    """{topic kind: {runner: {records_per_s, peak_rss_mb}}} (medians over ``rounds``)."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    for kind in ("zipf", "distinct"):
        topic = f"bench-skew-{kind}-{int(time.time())}"
        started = time.monotonic()
        produce(bootstrap, topic, records, distinct=kind == "distinct")
        print(f"{topic}: produced {records} records in {time.monotonic() - started:.1f} s", file=sys.stderr)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in RUNNERS}
        for _ in range(rounds):
            for name, runner in RUNNERS.items():
                samples[name].append(runner(bootstrap, topic, records))
        results[kind] = {name: {"records_per_s": statistics.median(r for r, _ in runs),
                                "peak_rss_mb": max(m for _, m in runs)} for name, runs in samples.items()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="an existing cluster (default: start one in a temp dir)")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.bootstrap:
        results = bench(args.bootstrap, args.records, args.rounds)
    else:
        from cluster.pytest_plugin import start_cluster

        with tempfile.TemporaryDirectory() as tmp:
            with start_cluster("cluster: {name: bench-skew}\nnodes:\n  - {id: 1}\n", tmp) as cluster:
                results = bench(cluster.bootstrap_servers, args.records, args.rounds)
    for kind, by_runner in results.items():
        reference = by_runner["pko perf consume (fetch.queue.backoff.ms=20)"]["records_per_s"]
        print(f"\n{kind} topic, {args.records} records, median of {args.rounds}:")
        for name, figures in by_runner.items():
            print(f"  {name:46s} {figures['records_per_s']:>10,.0f} records/s  "
                  f"{figures['records_per_s'] / reference:5.2f}×  peak RSS {figures['peak_rss_mb']:6.1f} MB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
