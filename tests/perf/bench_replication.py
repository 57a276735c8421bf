"""Replication benchmark (issue 15, "Done when"): acks=all throughput at replication factor 3,
failover after kill -9 of a partition leader, a restarted follower's catch-up, node CPU per GB.

Not a test: run it by hand and read the figures (pytest collects only test_*.py files).

    python tests/perf/bench_replication.py                     # ≈ 2-4 minutes
    python tests/perf/bench_replication.py --catch-up-mb 256 --skip-tansu
    python tests/perf/bench_replication.py --kafka-defaults    # Kafka's broker/quorum timeouts
    python tests/perf/bench_replication.py --json out.json

Clusters, each on free 127.0.0.1 ports in a temp dir, same client (confluent-kafka) for all:
``rf3``   three combined broker + controller nodes (cluster.pytest_plugin.start_cluster, so
          MULTI_NODE_TEST_SETTINGS: broker.session.timeout.ms 2000; with --kafka-defaults
          bench_cluster.KAFKA_TIMEOUTS instead, 9000), min.insync.replicas 2;
``pko-1`` one node (bench_broker.our_node); ``tansu`` Tansu's single node, memory storage
          (bench_broker.tansu).

throughput  ``--records`` × ``--record-size`` B to a fresh topic of 3 partitions (leaders spread
            over the 3 nodes at RF 3), bench_broker.produce (linger.ms 5, librdkafka's batch.size
            1 MB), ``--rounds`` times each: rf3 acks=all, pko-1 acks=1 and acks=all, tansu acks=1.
            MB/s and records/s (medians), rf3 acks=all / pko-1 acks=1 (goal >= 0.5), and the CPU
            seconds of the node processes (psutil, user+system, all three nodes summed) per GB
            produced; for rf3 also per GB written (produced × 3 replicas).
failover    a topic of 1 partition, RF 3, a fresh one per round; an idempotent acks=all producer
            sends 1 KiB records at ~2 000/s; kill -9 of the partition's leader. Seconds from the
            kill to the first acknowledged record at an offset at or after the new leader's epoch
            start (OffsetForLeaderEpoch of the old epoch, asked of the new leader): goal <= 3 s with
            the test timeouts. Also to the new leader in a survivor's Metadata, and to the first
            acks=all Produce of our own that a survivor accepts (when the cluster is ready). The
            killed node is restarted before the next round. Median and max of ``--rounds``.
            librdkafka asks again for the leader of a partition whose broker is down once a second
            (its topic scan; with debug=topic: "broker is down: re-query"), so its first ack comes
            at the first scan after the controller fenced the broker: up to a second (once seen:
            two) after the cluster accepts writes; its retry backoffs do not change that.
catch-up    a topic of 3 partitions, RF 3, whose leaders are on two nodes and whose third replica
            is on a node that does not lead the metadata quorum; that node is killed (-9),
            ``--catch-up-mb`` are produced acks=all (stalls until the leader drops it from the
            ISR, or the controller fences it), then it is restarted: seconds until the .log files
            of each of its partitions are as large as the leader's (a follower appends the
            leader's batches byte for byte), MB/s of the bytes it lacked, and until the leaders'
            Metadata lists it in the ISR again (null if not within the deadline).

One JSON line per scenario, then a table. The settings used are in the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Self

import psutil
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import our_node, produce, tansu
from bench_cluster import (
    KAFKA_TIMEOUTS,
    TOPIC_ALREADY_EXISTS,
    kill9,
    metadata,
    pid_of,
    quorum_leader,
)

from cluster.pytest_plugin import (
    MULTI_NODE_TEST_SETTINGS,
    RunningCluster,
    start_cluster,
    wait_until,
)
from pykafka_ops.client.wire import WireClient, bootstrap_addresses
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records.builder import RecordBatchBuilder

NODES = (1, 2, 3)
PARTITIONS = 3
MIN_ISR = 2
WAIT_S = 60.0
THREE_NODES_YAML = f"""\
cluster: {{name: bench-replication}}
nodes:
  - {{id: 1}}
  - {{id: 2}}
  - {{id: 3}}
broker:
  num.partitions: {PARTITIONS}
  default.replication.factor: 3
  min.insync.replicas: {MIN_ISR}
  auto.create.topics.enable: false
"""


# --- helpers -------------------------------------------------------------------------------------


def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS, rf: int = 1,
                 assignment: list[list[int]] | None = None, timeout_s: float = WAIT_S) -> None:
    """CreateTopics (retried while refused, e.g. a restarted broker not yet unfenced for RF 3),
    then wait until every partition has a leader and a full ISR. A manual ``assignment`` goes
    through our wire client (confluent-kafka 2.16 refuses a NewTopic with one)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {"min.insync.replicas": str(MIN_ISR)} if rf > 1 or assignment else {}
    replicas = len(assignment[0]) if assignment else rf
    count = len(assignment) if assignment else partitions

    def created() -> bool:
        if assignment:
            host, port = bootstrap_addresses(bootstrap)[0]
            with WireClient(host, port, timeout=15) as client:
                answer = client.request(ApiKey.CREATE_TOPICS, 7, {"topics": [{
                    "name": topic, "num_partitions": -1, "replication_factor": -1,
                    "assignments": [{"partition_index": p, "broker_ids": r} for p, r in enumerate(assignment)],
                    "configs": [{"name": k, "value": v} for k, v in config.items()]}],
                    "timeout": 10_000, "validate_only": False})
            code = answer.topics[0].error_code
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"CreateTopics {topic}: error {code}")
            return True
        try:
            admin.create_topics([NewTopic(topic, partitions, rf, config=config)])[topic].result(10)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        return True

    wait_until(created, timeout_s, f"CreateTopics {topic}")

    def ready() -> bool:
        parts = admin.list_topics(topic, timeout=5).topics[topic].partitions
        return len(parts) == count and all(p.leader >= 0 and len(p.isrs) == replicas for p in parts.values())

    wait_until(ready, timeout_s, f"{topic}: {count} partitions led with {replicas} in-sync replicas")


def partition_state(cluster: RunningCluster, node: int, topic: str) -> dict[int, Any]:
    """partition -> Metadata v12 partition (leader_id, leader_epoch, replica_nodes, isr_nodes), as ``node`` sees it."""
    answer = metadata(cluster, node, [topic])
    return {p.partition_index: p for t in answer.topics if t.error_code == 0 for p in t.partitions}


def cpu_seconds(procs: list[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in procs)


def node_procs(cluster: RunningCluster) -> list[psutil.Process]:
    return [psutil.Process(pid_of(cluster, n)) for n in NODES]


def log_bytes(cluster: RunningCluster, node: int, topic: str, partition: int) -> int:
    """Bytes of the .log segment files of one partition in ``node``'s data dir."""
    directory = cluster.config.node_dir(node) / f"{topic}-{partition}"
    return sum(f.stat().st_size for f in directory.glob("*.log")) if directory.is_dir() else 0


def new_epoch_start(cluster: RunningCluster, node: int, topic: str, old_epoch: int) -> int:
    """OffsetForLeaderEpoch v4 of ``old_epoch`` asked of (new leader) ``node``: where the next epoch starts."""
    with WireClient(cluster.config.host_of(node), cluster.config.node(node).port, timeout=2.0) as client:
        answer = client.request(ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, {
            "replica_id": -1, "topics": [{"topic": topic, "partitions": [
                {"partition": 0, "current_leader_epoch": -1, "leader_epoch": old_epoch}]}]})
    p = answer.topics[0].partitions[0]
    if p.error_code != 0 or p.end_offset < 0:
        raise RuntimeError(f"OffsetForLeaderEpoch from node {node}: error {p.error_code}, end offset {p.end_offset}")
    return p.end_offset


def med_max(samples: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(samples), 3), "max": round(max(samples), 3),
            "samples": [round(s, 3) for s in samples]}


# --- throughput ----------------------------------------------------------------------------------


def throughput(label: str, bootstrap: str, procs: list[psutil.Process], acks: str, rf: int,
               args: argparse.Namespace) -> dict[str, Any]:
    """``--rounds`` produce runs to a fresh topic each: MB/s, records/s, node CPU-s per GB."""
    seconds, cpus = [], []
    for i in range(args.rounds):
        topic = f"tp-{label}-acks{acks}-{i}"
        create_topic(bootstrap, topic, args.partitions, rf)
        os.sync()  # earlier dirty pages must not be written back while this round is measured
        cpu0, t0 = cpu_seconds(procs), time.perf_counter()
        produce(bootstrap, topic, args.records, args.record_size, acks)
        seconds.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds(procs) - cpu0)
    produced = args.records * args.record_size
    s, cpu = statistics.median(seconds), statistics.median(cpus)
    figures = {"scenario": "throughput", "broker": label, "acks": acks, "replication_factor": rf,
               "partitions": args.partitions, "records": args.records, "record_size": args.record_size,
               "rounds": args.rounds, "seconds": med_max(seconds), "mb_per_s": round(produced / s / 1e6, 1),
               "records_per_s": round(args.records / s), "node_cpu_s": round(cpu, 2),
               "node_cpu_s_per_gb_produced": round(cpu / (produced / 1e9), 2),
               "node_cpu_s_per_gb_written": round(cpu / (produced * rf / 1e9), 2)}
    print(json.dumps(figures), flush=True)
    return figures


# --- failover ------------------------------------------------------------------------------------


class SteadyProducer:
    """An idempotent acks=all producer sending ``size`` B records at ``rate``/s from a thread;
    every acknowledgement is kept as (monotonic time, offset)."""

    def __init__(self, bootstrap: str, topic: str, size: int, rate: int = 2000) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 5})
        self.topic, self.payload, self.rate = topic, os.urandom(size), rate
        self.acks: list[tuple[float, int]] = []
        self.errors: list[str] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(str(err))
        else:
            self.acks.append((time.monotonic(), msg.offset()))

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - start) * self.rate)
            while self.sent < due:
                try:
                    self.producer.produce(self.topic, self.payload, on_delivery=self._delivered)
                    self.sent += 1
                except BufferError:
                    break
            self.producer.poll(0.002)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.producer.flush(60)


def probe_write(cluster: RunningCluster, node: int, topic: str, record: bytes) -> bool:
    """One Produce v9 acks=-1 of a one-record batch to partition 0 through ``node``: acknowledged?"""
    with WireClient(cluster.config.host_of(node), cluster.config.node(node).port, timeout=2.0) as client:
        answer = client.request(ApiKey.PRODUCE, 9, {
            "transactional_id": None, "acks": -1, "timeout": 1500,
            "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": record}]}]})
    return answer.responses[0].partition_responses[0].error_code == 0


def failover(cluster: RunningCluster, args: argparse.Namespace) -> dict[str, Any]:
    """kill -9 of a partition leader under an idempotent acks=all producer, ``--rounds`` times."""
    builder = RecordBatchBuilder()
    builder.append(None, b"probe")
    record = builder.build()
    firsts, seen, probes, stalls, errors, duplicates = [], [], [], [], [], []
    for i in range(args.rounds):
        topic = f"failover-{i}"
        create_topic(cluster.bootstrap_servers, topic, 1, 3)
        with SteadyProducer(cluster.bootstrap_servers, topic, args.record_size) as steady:
            wait_until(lambda steady=steady: len(steady.acks) >= 1000, WAIT_S, "1 000 acknowledged records")
            before = partition_state(cluster, NODES[0], topic)[0]
            leader, epoch = before.leader_id, before.leader_epoch
            survivors = [n for n in NODES if n != leader]
            sent = kill9(cluster, leader)
            at: dict[str, float] = {}
            elected = 0

            def progress(survivors: list[int] = survivors, leader: int = leader, topic: str = topic,
                         at: dict[str, float] = at) -> bool:
                nonlocal elected
                if "metadata" not in at:
                    with contextlib.suppress(Exception):
                        now = partition_state(cluster, survivors[0], topic)[0].leader_id
                        if now >= 0 and now != leader:
                            elected, at["metadata"] = now, time.monotonic()
                if "probe" not in at:
                    for node in survivors:
                        with contextlib.suppress(Exception):
                            if probe_write(cluster, node, topic, record):
                                at["probe"] = time.monotonic()
                                break
                return len(at) == 2

            wait_until(progress, WAIT_S, f"a new leader of {topic} that acknowledges an acks=all write")
            seen.append(at["metadata"] - sent)
            probes.append(at["probe"] - sent)
            start = wait_until(lambda elected=elected, epoch=epoch, topic=topic: new_epoch_start(cluster, elected, topic, epoch) + 1,
                               WAIT_S, "the new leader's epoch start") - 1

            def first_ack(steady: SteadyProducer = steady, start: int = start) -> float:
                return next((t for t, offset in list(steady.acks) if offset >= start), 0.0)

            acked = wait_until(first_ack, WAIT_S, f"an acknowledged record at offset >= {start}")
            firsts.append(acked - sent)
            times = [t for t, _ in steady.acks]
        stalls.append(max(b - a for a, b in itertools.pairwise(times)))
        offsets = [offset for _, offset in steady.acks]
        duplicates.append(len(offsets) - len(set(offsets)))
        errors.append(len(steady.errors))
        if steady.errors:
            print(f"failover round {i}: {len(steady.errors)} delivery errors, e.g. {steady.errors[:3]}", file=sys.stderr)
        cluster.restart(leader)
    figures = {"scenario": "failover", "rounds": args.rounds, "goal_s": None if args.kafka_defaults else 3.0,
               "first_ack_on_new_leader_s": med_max(firsts), "new_leader_in_metadata_s": med_max(seen),
               "raw_acks_all_write_ok_s": med_max(probes), "longest_ack_gap_s": med_max(stalls),
               "delivery_errors": errors, "duplicate_offsets": duplicates}
    print(json.dumps(figures), flush=True)
    return figures


# --- catch-up ------------------------------------------------------------------------------------


def catch_up(cluster: RunningCluster, args: argparse.Namespace) -> dict[str, Any]:
    metadata_leader = wait_until(lambda: quorum_leader(cluster, list(NODES)), WAIT_S, "a quorum leader")
    victim = next(n for n in reversed(NODES) if n != metadata_leader)
    a, b = [n for n in NODES if n != victim]
    assignment = [[a, b, victim] if p % 2 == 0 else [b, a, victim] for p in range(PARTITIONS)]
    topic = "catch-up"
    create_topic(cluster.bootstrap_servers, topic, assignment=assignment)
    leaders = {p: assignment[p][0] for p in range(PARTITIONS)}
    kill9(cluster, victim)
    records = args.catch_up_mb * 1_000_000 // args.record_size
    chunk = 200_000
    t0 = time.perf_counter()
    for done in range(0, records, chunk):  # bench_broker.produce flushes within 120 s: chunks of 200 MB
        produce(cluster.bootstrap_servers, topic, min(chunk, records - done), args.record_size, "all")
    produce_s = time.perf_counter() - t0
    isr_after = {p: list(s.isr_nodes) for p, s in partition_state(cluster, a, topic).items()}
    target = {p: log_bytes(cluster, leaders[p], topic, p) for p in range(PARTITIONS)}
    had = {p: log_bytes(cluster, victim, topic, p) for p in range(PARTITIONS)}
    lacking = sum(target.values()) - sum(had.values())
    others = [psutil.Process(pid_of(cluster, n)) for n in (a, b)]
    cpu0 = cpu_seconds(others)
    started = time.monotonic()
    cluster.restart(victim)
    answering = time.monotonic() - started
    deadline = started + max(WAIT_S, args.catch_up_mb / 5)  # at least 5 MB/s

    caught_up_s = isr_s = None
    while time.monotonic() < deadline and (caught_up_s is None or isr_s is None):
        now = time.monotonic() - started
        if caught_up_s is None and all(log_bytes(cluster, victim, topic, p) >= target[p] for p in range(PARTITIONS)):
            caught_up_s = now
            cpu = cpu_seconds(others) - cpu0 + cpu_seconds([psutil.Process(pid_of(cluster, victim))])
        if isr_s is None:
            with contextlib.suppress(Exception):  # a node busy or restarting: ask again
                states = {p: partition_state(cluster, leaders[p], topic)[p] for p in range(PARTITIONS)}
                if all(victim in s.isr_nodes for s in states.values()):
                    isr_s = now
        time.sleep(0.05)
    if caught_up_s is None:
        cpu = cpu_seconds(others) - cpu0 + cpu_seconds([psutil.Process(pid_of(cluster, victim))])
    final = {p: log_bytes(cluster, victim, topic, p) for p in range(PARTITIONS)}
    produced = records * args.record_size
    figures = {"scenario": "catch-up", "catch_up_mb": args.catch_up_mb, "victim": victim, "leaders": leaders,
               "produce_acks_all_s": round(produce_s, 2), "produce_mb_per_s": round(produced / produce_s / 1e6, 1),
               "isr_while_down": isr_after, "bytes_lacking": lacking, "restart_until_answering_s": round(answering, 2),
               "restart_until_log_sizes_equal_s": None if caught_up_s is None else round(caught_up_s, 2),
               "catch_up_mb_per_s": None if caught_up_s is None else round(lacking / caught_up_s / 1e6, 1),
               "catch_up_mb_per_s_after_answering": None if caught_up_s is None else round(
                   lacking / max(caught_up_s - answering, 1e-3) / 1e6, 1),
               "restart_until_in_isr_s": None if isr_s is None else round(isr_s, 2),
               "node_cpu_s_per_gb_caught_up": round(cpu / (lacking / 1e9), 2) if lacking else None,
               "leader_bytes": target, "follower_bytes_at_end": final}
    print(json.dumps(figures), flush=True)
    return figures


# --- main ----------------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> None:
    tp = results.get("throughput", {})
    if tp:
        _throughput_table(results)
    print()
    _scenario_lines(results)


def _throughput_table(results: dict[str, Any]) -> None:
    tp = results["throughput"]
    partitions = next(iter(tp.values()))["partitions"]
    print(f"\n{'throughput (' + str(partitions) + ' partitions)':<30} {'MB/s':>7} {'rec/s':>8} "
          f"{'CPU-s/GB prod':>13} {'CPU-s/GB written':>16}")
    for f in tp.values():
        print(f"{f['broker'] + ' acks=' + f['acks']:<30} {f['mb_per_s']:>7.1f} {f['records_per_s']:>8} "
              f"{f['node_cpu_s_per_gb_produced']:>13.2f} {f['node_cpu_s_per_gb_written']:>16.2f}")
    ratio = results["ratio_rf3_all_to_single_acks1"]
    print(f"rf3 acks=all / pko-1 acks=1: {ratio:.2f} (goal >= 0.5: {'met' if ratio >= 0.5 else 'MISSED'})")


def _scenario_lines(results: dict[str, Any]) -> None:
    if "failover" in results:
        f = results["failover"]
        first = f["first_ack_on_new_leader_s"]
        goal = "" if results["kafka_defaults"] else (" (goal <= 3 s: " + ("met" if first["max"] <= 3 else "MISSED") + ")")
        print(f"failover: kill -9 leader -> first ack on new leader median {first['median']:.2f} s, max "
              f"{first['max']:.2f} s{goal}; new leader in Metadata median {f['new_leader_in_metadata_s']['median']:.2f} s; "
              f"first acks=all write accepted (raw client) median {f['raw_acks_all_write_ok_s']['median']:.2f} s; "
              f"delivery errors {f['delivery_errors']}, duplicate offsets {f['duplicate_offsets']}")
    if "catch_up" in results:
        c = results["catch_up"]
        print(f"catch-up: {c['bytes_lacking'] / 1e6:.0f} MB lacking, restart -> answering {c['restart_until_answering_s']} s,"
              f" -> log sizes equal {c['restart_until_log_sizes_equal_s']} s ({c['catch_up_mb_per_s']} MB/s), -> in ISR "
              f"{c['restart_until_in_isr_s']} s; produce acks=all with the follower down {c['produce_mb_per_s']} MB/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="throughput runs and failovers (median, max)")
    parser.add_argument("--records", type=int, default=200_000, help="records per throughput run")
    parser.add_argument("--record-size", type=int, default=1024, help="bytes per record value")
    parser.add_argument("--partitions", type=int, default=PARTITIONS, help="partitions of the throughput topics")
    parser.add_argument("--catch-up-mb", type=int, default=1024, help="MB produced while a follower is down")
    parser.add_argument("--skip-tansu", action="store_true", help="no Tansu throughput run")
    parser.add_argument("--kafka-defaults", action="store_true",
                        help="Kafka's broker/quorum timeouts (bench_cluster.KAFKA_TIMEOUTS) instead of the tests'")
    parser.add_argument("--only", choices=["throughput", "failover", "catch-up"], action="append",
                        help="run only these scenarios (repeatable)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    only = set(args.only or ["throughput", "failover", "catch-up"])
    settings = KAFKA_TIMEOUTS if args.kafka_defaults else MULTI_NODE_TEST_SETTINGS
    results: dict[str, Any] = {"settings": settings, "kafka_defaults": args.kafka_defaults, "cpus": os.cpu_count(),
                               "loadavg_1m_before": os.getloadavg()[0]}
    print("settings:", json.dumps(settings), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-replication-") as tmp:
        workdir = Path(tmp)
        tp: dict[str, Any] = {}
        if "throughput" in only:
            with our_node(workdir / "single") as (bootstrap, proc):
                tp["pko-1 acks=1"] = throughput("pko-1", bootstrap, [proc], "1", 1, args)
                tp["pko-1 acks=all"] = throughput("pko-1", bootstrap, [proc], "all", 1, args)
        with start_cluster(THREE_NODES_YAML, workdir / "rf3", **settings) as cluster:
            if "throughput" in only:
                tp["rf3 acks=all"] = throughput("rf3", cluster.bootstrap_servers, node_procs(cluster), "all", 3, args)
                results["throughput"] = tp
                results["ratio_rf3_all_to_single_acks1"] = round(
                    tp["rf3 acks=all"]["mb_per_s"] / tp["pko-1 acks=1"]["mb_per_s"], 2)
                print(json.dumps({"scenario": "throughput-ratio", "rf3_acks_all_to_pko1_acks1":
                                  results["ratio_rf3_all_to_single_acks1"], "goal": 0.5}), flush=True)
            if "failover" in only:
                results["failover"] = failover(cluster, args)
            if "catch-up" in only:
                results["catch_up"] = catch_up(cluster, args)
        if "throughput" in only and not args.skip_tansu:
            # last: on this VM, memory Tansu frees (its storage is in memory) is slow to touch again for a
            # while, and writes into the page cache that follow it ran at a third of their speed
            with tansu(workdir) as (bootstrap, proc):
                tp["tansu acks=1"] = throughput("tansu", bootstrap, [proc], "1", 1, args)
    results["loadavg_1m_after"] = os.getloadavg()[0]
    table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
