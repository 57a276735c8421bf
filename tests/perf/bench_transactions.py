"""Transactional throughput benchmark (issue 17, "Benchmark"): transactions of 100 and 1 000
records against plain idempotent production (goal >= 0.7x at 1 000), commit latency p50/p99,
our broker and Tansu measured in the same run.

Not a test: run it by hand and read the figures (pytest collects only test_*.py files).

    python tests/perf/bench_transactions.py                  # ≈ 1-2 minutes (--three-nodes: ≈ 3)
    python tests/perf/bench_transactions.py --quick          # a smoke run: 20 000 records, 1 round
    python tests/perf/bench_transactions.py --three-nodes --rounds 5 --json out.json
    python tests/perf/bench_transactions.py --skip-tansu --txn-sizes 10,100,1000

Brokers, each on free 127.0.0.1 ports in a temp dir, the same client (confluent-kafka) for all:
``pko``    one node of configs/single.yaml (cluster.pytest_plugin.start_cluster), data on disk;
           with ``--three-nodes`` three combined broker + controller nodes instead
           (bench_replication.THREE_NODES_YAML: RF 3, min.insync.replicas 2, __transaction_state
           RF 3 / min ISR 2);
``tansu``  Tansu's single node, memory storage (bench_broker.tansu); ``--skip-tansu`` leaves it out.

Phases, interleaved round by round (idempotent, txn-100, txn-1000, idempotent, …) so that noise
from other processes on the machine hits them alike; a fresh topic of ``--partitions`` per phase
and round; ``--records`` × ``--record-size`` B, record i to partition i mod partitions, acks=all,
enable.idempotence=true, ``--linger-ms`` and librdkafka's default batch.size for every phase:
``idempotent``  produce everything, then flush;
``txn-N``       a transactional producer (init_transactions before the clock starts): begin,
                N records, commit_transaction() (timed: the commit latency, which includes
                librdkafka's flush of the transaction's records), over and over.
records/s and MB/s are medians over ``--rounds``, the ratio is to the same broker's idempotent
figure, commit latencies are pooled over the rounds (p50, p99, max), and the broker processes'
CPU seconds (user + system, all nodes summed) are medians too.

Every phase is checked after its clock stops, so a broker that fails cannot look fast: a
read_committed consumer must read back exactly the record count (else the phase fails). The sum of
the partitions' high watermarks (ListOffsets) minus the records is reported as the control
markers written: expected 0 (idempotent), or one per partition per transaction (1 to
``--partitions`` per transaction); any other figure is reported as an anomaly (Tansu's high
watermarks are not its log end offsets). A broker that refuses transactions (an error from
init_transactions, a commit, or the read-back) gets its error recorded instead of figures; the
run goes on.

Prints one line per phase and round on stderr as it goes, then one JSON line of every figure and
a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import tansu
from bench_cluster import pid_of
from bench_replication import THREE_NODES_YAML, cpu_seconds, create_topic

from cluster.pytest_plugin import start_cluster

SINGLE_YAML = Path(__file__).resolve().parents[2] / "configs" / "single.yaml"
GOAL_RATIO = 0.7
GOAL_TXN_SIZE = 1000
WAIT_S = 60.0
READ_BACK_S = 120.0
WARM_UP_TOPIC = "bench-txn-warm-up"


class PhaseFailed(RuntimeError):
    """A phase could not run or its records did not check out."""


# --- brokers -------------------------------------------------------------------------------------


@contextmanager
def pko_broker(workdir: Path, three_nodes: bool) -> Iterator[tuple[str, list[psutil.Process], int]]:
    """Our broker (one node of configs/single.yaml, or three nodes at RF 3): (bootstrap, node
    processes, replication factor of the topics)."""
    spec: str | Path = THREE_NODES_YAML if three_nodes else SINGLE_YAML
    with start_cluster(spec, workdir / "pko", wait_s=WAIT_S) as cluster:
        nodes = [n.id for n in cluster.config.nodes]
        yield cluster.bootstrap_servers, [psutil.Process(pid_of(cluster, n)) for n in nodes], 3 if three_nodes else 1


@contextmanager
def tansu_broker(workdir: Path) -> Iterator[tuple[str, list[psutil.Process], int]]:
    """Tansu (memory storage): (bootstrap, its process, replication factor 1)."""
    with tansu(workdir) as (bootstrap, proc):
        yield bootstrap, [proc], 1


# --- producing -----------------------------------------------------------------------------------


def producer_config(bootstrap: str, args: argparse.Namespace, transactional_id: str | None) -> dict[str, Any]:
    """The same settings for every phase; a transactional id for the transactional ones."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                              "linger.ms": args.linger_ms, "queue.buffering.max.messages": 2_000_000,
                              "queue.buffering.max.kbytes": 2_097_151}
    if transactional_id:
        config |= {"transactional.id": transactional_id, "transaction.timeout.ms": 60_000}
    return config


def send(producer: Producer, topic: str, payload: bytes, first: int, count: int, partitions: int,
         on_delivery: Callable[[Any, Any], None]) -> None:
    """Records ``first`` .. ``first + count - 1``, record i to partition i mod ``partitions``."""
    for i in range(first, first + count):
        while True:
            try:
                producer.produce(topic, payload, partition=i % partitions, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.005)


def run_phase(bootstrap: str, procs: list[psutil.Process], topic: str, per_txn: int | None,
              args: argparse.Namespace) -> dict[str, Any]:
    """One timed phase: idempotent (``per_txn`` None) or transactions of ``per_txn`` records.
    Returns seconds, node CPU seconds, commit latencies (s); raises PhaseFailed."""
    failed: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(str(err))

    txn_id = f"bench-{topic}" if per_txn else None
    producer = Producer(producer_config(bootstrap, args, txn_id))
    payload = os.urandom(args.record_size)
    commits: list[float] = []
    try:
        producer.list_topics(topic, timeout=10)  # connected and metadata known before the clock starts
        if per_txn:
            producer.init_transactions(30)
        else:  # the producer id, as init_transactions gets it: one record to another topic
            producer.produce(WARM_UP_TOPIC, b"warm-up")
            if producer.flush(30):
                raise PhaseFailed("warm-up record not acknowledged")
        cpu0, t0 = cpu_seconds(procs), time.perf_counter()
        if per_txn is None:
            send(producer, topic, payload, 0, args.records, args.partitions, delivered)
            if producer.flush(120):
                raise PhaseFailed("flush timed out")
        else:
            for first in range(0, args.records, per_txn):
                producer.begin_transaction()
                send(producer, topic, payload, first, min(per_txn, args.records - first), args.partitions, delivered)
                c0 = time.perf_counter()
                producer.commit_transaction(60)
                commits.append(time.perf_counter() - c0)
                if failed:
                    break
        seconds, cpu = time.perf_counter() - t0, cpu_seconds(procs) - cpu0
    except KafkaException as exc:
        raise PhaseFailed(f"{type(exc).__name__}: {exc.args[0]}") from exc
    if failed:
        raise PhaseFailed(f"{len(failed)} records not delivered, e.g. {failed[0]}")
    return {"seconds": seconds, "cpu_s": cpu, "commits_s": commits, "transactions": len(commits),
            **verify(bootstrap, topic, args, transactions=len(commits))}


# --- checking ------------------------------------------------------------------------------------


def verify(bootstrap: str, topic: str, args: argparse.Namespace, transactions: int) -> dict[str, Any]:
    """A read_committed consumer reads back exactly ``--records`` records (else PhaseFailed); the
    control markers are the sum of the high watermarks minus the records, and an ``anomaly`` says
    when they are not the 0 (idempotent) or 1 to ``--partitions`` per transaction expected."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"verify-{topic}", "enable.auto.commit": False,
                         "isolation.level": "read_committed", "fetch.max.bytes": 52_428_800,
                         "max.partition.fetch.bytes": 10_485_760})
    try:
        parts = [TopicPartition(topic, p, 0) for p in range(args.partitions)]
        consumer.assign(parts)
        got, deadline = 0, time.monotonic() + READ_BACK_S
        while got < args.records and time.monotonic() < deadline:
            got += sum(1 for m in consumer.consume(min(10_000, args.records - got), 1.0) if not m.error())
        got += sum(1 for m in consumer.consume(1000, 0.2) if not m.error())  # nothing beyond the count
        if got != args.records:
            raise PhaseFailed(f"read_committed consumer read {got} records, {args.records} produced")
        ends = sum(consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in parts)
    finally:
        consumer.close()
    markers = ends - args.records
    low, high = (transactions, transactions * args.partitions) if transactions else (0, 0)
    anomaly = None if low <= markers <= high else (
        f"high watermarks sum to {ends}: {markers} offsets beyond the {args.records} records, "
        f"expected {low}..{high} markers for {transactions} transactions")
    return {"markers": markers, "anomaly": anomaly}


# --- the run -------------------------------------------------------------------------------------


def phase_names(args: argparse.Namespace) -> list[tuple[str, int | None]]:
    return [("idempotent", None)] + [(f"txn-{n}", n) for n in args.txn_sizes]


def measure_broker(label: str, bootstrap: str, procs: list[psutil.Process], rf: int,
                   args: argparse.Namespace) -> dict[str, Any]:
    """Every phase ``--rounds`` times (interleaved) against one broker, then each phase's summary."""
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in phase_names(args)}
    errors: dict[str, str] = {}
    create_topic(bootstrap, WARM_UP_TOPIC, 1, rf)
    for i in range(args.rounds):
        for name, per_txn in phase_names(args):
            if name in errors:
                continue
            topic = f"bench-txn-{label}-{name}-{i}"
            try:
                create_topic(bootstrap, topic, args.partitions, rf)
                os.sync()  # earlier dirty pages must not be written back while this phase is measured
                figures = run_phase(bootstrap, procs, topic, per_txn, args)
            except (PhaseFailed, KafkaException, AssertionError) as exc:
                errors[name] = str(exc)
                print(f"{label} {name} round {i}: FAILED {exc}", file=sys.stderr, flush=True)
                continue
            rounds[name].append(figures)
            rate = args.records / figures["seconds"]
            commit = f", commit p50 {percentile(figures['commits_s'], 50) * 1e3:.1f} ms" if per_txn else ""
            note = f"; ANOMALY {figures['anomaly']}" if figures["anomaly"] else ""
            print(f"{label} {name} round {i}: {figures['seconds']:.2f} s, {rate:,.0f} rec/s{commit}{note}",
                  file=sys.stderr, flush=True)
    return {name: summarize(rounds[name], errors.get(name), args) for name, _ in phase_names(args)}


def percentile(samples: list[float], pct: float) -> float:
    """The nearest-rank percentile of ``samples``."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def summarize(rounds: list[dict[str, Any]], error: str | None, args: argparse.Namespace) -> dict[str, Any]:
    """Medians over the rounds that ran; the error of the first that failed, if one did."""
    if not rounds:
        return {"error": error}
    seconds = statistics.median(r["seconds"] for r in rounds)
    commits = [c for r in rounds for c in r["commits_s"]]
    summary: dict[str, Any] = {
        "rounds": len(rounds), "seconds": [round(r["seconds"], 3) for r in rounds],
        "records_per_s": round(args.records / seconds),
        "mb_per_s": round(args.records * args.record_size / seconds / 1e6, 2),
        "node_cpu_s": round(statistics.median(r["cpu_s"] for r in rounds), 2),
        "transactions": rounds[0]["transactions"], "markers": [r["markers"] for r in rounds],
        "anomalies": sorted({r["anomaly"] for r in rounds if r["anomaly"]}), "error": error}
    if commits:
        summary |= {"commit_ms": {"p50": round(percentile(commits, 50) * 1e3, 2),
                                  "p99": round(percentile(commits, 99) * 1e3, 2),
                                  "mean": round(statistics.fmean(commits) * 1e3, 2),
                                  "max": round(max(commits) * 1e3, 2), "samples": len(commits)}}
    return summary


def with_ratios(phases: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each phase's records/s as a ratio to the same broker's idempotent phase."""
    base = phases["idempotent"].get("records_per_s")
    for figures in phases.values():
        if base and figures.get("records_per_s"):
            figures["ratio_to_idempotent"] = round(figures["records_per_s"] / base, 3)
    return phases


def table(results: dict[str, Any]) -> None:
    """The human summary: one row per broker and phase."""
    print(f"\n{'broker':<7} {'phase':<11} {'rec/s':>9} {'MB/s':>7} {'/idem':>6} {'txns':>6} "
          f"{'commit p50':>10} {'p99':>8} {'max':>8} {'CPU s':>6}")
    for broker, phases in results["brokers"].items():
        for name, f in phases.items():
            if not f.get("records_per_s"):
                print(f"{broker:<7} {name:<11} error: {f.get('error')}")
                continue
            c = f.get("commit_ms")
            lat = f"{c['p50']:>8.1f}ms {c['p99']:>6.1f}ms {c['max']:>6.1f}ms" if c else f"{'-':>10} {'-':>8} {'-':>8}"
            print(f"{broker:<7} {name:<11} {f['records_per_s']:>9,} {f['mb_per_s']:>7.2f} "
                  f"{f.get('ratio_to_idempotent', 0):>6.2f} {f['transactions']:>6} {lat} {f['node_cpu_s']:>6.2f}")
    goal = f"txn-{GOAL_TXN_SIZE if GOAL_TXN_SIZE in results['txn_sizes'] else max(results['txn_sizes'])}"
    ours = results["brokers"]["pko"].get(goal, {}).get("ratio_to_idempotent")
    tansu_figures = results["brokers"].get("tansu", {})
    if tansu_figures.get("idempotent", {}).get("records_per_s"):
        print("pko / tansu records/s: " + ", ".join(
            f"{name} {f['records_per_s'] / tansu_figures[name]['records_per_s']:.2f}"
            for name, f in results["brokers"]["pko"].items()
            if f.get("records_per_s") and tansu_figures.get(name, {}).get("records_per_s")))
    if ours is not None:
        verdict = "met" if ours >= GOAL_RATIO else "MISSED"
        print(f"goal {goal} / idempotent >= {GOAL_RATIO} (pko): {ours:.2f} ({verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000, help="records per phase and round")
    parser.add_argument("--record-size", type=int, default=100, help="bytes of each record's value")
    parser.add_argument("--txn-sizes", type=lambda s: [int(n) for n in s.split(",")], default=[100, 1000],
                        help="records per transaction, comma-separated (default 100,1000)")
    parser.add_argument("--partitions", type=int, default=3, help="partitions of each topic")
    parser.add_argument("--linger-ms", type=int, default=5, help="linger.ms of every producer")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every phase (medians)")
    parser.add_argument("--three-nodes", action="store_true", help="our broker as 3 nodes, RF 3, min ISR 2")
    parser.add_argument("--skip-tansu", action="store_true", help="measure only our broker")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 000 records, 1 round")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    if args.quick:
        args.records, args.rounds = 20_000, 1
    results: dict[str, Any] = {
        "records": args.records, "record_size": args.record_size, "txn_sizes": args.txn_sizes,
        "partitions": args.partitions, "linger_ms": args.linger_ms, "rounds": args.rounds,
        "three_nodes": args.three_nodes, "cpus": os.cpu_count(), "loadavg_1m_before": os.getloadavg()[0],
        "brokers": {}}
    brokers: list[tuple[str, Callable[[Path], Any]]] = [("pko", lambda d: pko_broker(d, args.three_nodes))]
    if not args.skip_tansu:
        brokers.append(("tansu", tansu_broker))
    with tempfile.TemporaryDirectory(prefix="bench-transactions-") as tmp:
        for label, start in brokers:
            try:
                with start(Path(tmp)) as (bootstrap, procs, rf):
                    results["brokers"][label] = with_ratios(measure_broker(label, bootstrap, procs, rf, args))
            except (RuntimeError, AssertionError) as exc:  # a broker that did not start: say so, go on
                results["brokers"][label] = {name: {"error": f"start: {exc}"} for name, _ in phase_names(args)}
    results["loadavg_1m_after"] = os.getloadavg()[0]
    print(json.dumps(results), flush=True)
    table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
