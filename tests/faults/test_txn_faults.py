"""T7 (specs/reliability.md §5.3; issue 17): an exactly-once consume-transform-produce copier
under kill -9, on three combined broker + controller nodes (topics of replication factor 3 with
min.insync.replicas 2, ``__transaction_state`` and ``__consumer_offsets`` replicated 3 times).

The copier (``pykafka_ops.services.copier`` in a child process: a transactional producer with one
``transactional.id``, a read_committed consumer, the consumed offsets sent in each batch's
transaction) copies ``in`` (seeded by an idempotent acks=all producer) to ``out``. It is killed -9
three times in the middle of a transaction (after 20 %, 40 %, 60 % of the input), each time
restarted with the same ``transactional.id`` (the new instance fences the dead one: its open
transaction is aborted), and once, at 75 %, the node of its transaction coordinator is killed -9
(and started again). Zombie sub-test, at 70 %: the copier is stopped (SIGSTOP) between a produce
and its commit, a new instance with the same ``transactional.id`` starts and commits, then the old
one is resumed (SIGCONT): its commit must fail fenced (PRODUCER_FENCED / INVALID_PRODUCER_EPOCH,
fatal) and none of its records become visible. A read_committed reader follows ``out`` throughout.

Checked: set(out) == set(in), 0 duplicates in ``out`` read_committed, each partition of ``out``
the same list as the same partition of ``in``, the concurrent reader's view equal. The figures
are one JSON line; ``run_t7`` is repeated by ``faults/soak.py`` (``--t7 N``).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from cluster.pytest_plugin import ClusterFactory
from faults.clients import RecordingProducer, drain
from faults.cluster_ops import (
    find_coordinator,
    kill9,
    poll_until,
    restart,
    wait_for_full_isr,
)
from faults.history import History
from faults.txn_clients import CommittedReader, duplicates
from pykafka_ops.services.copier import CopierConfig
from pykafka_ops.services.copier_run import CopierRun, read_to_end

SOURCE, SINK = "in", "out"
PARTITIONS = range(2)
TRANSACTIONAL_ID = "t7-copier"
#: Fractions of the input copied before each kill -9 of the copier, the zombie's SIGSTOP, the coordinator's kill -9.
COPIER_KILLS = (0.2, 0.4, 0.6)
ZOMBIE = 0.7
COORDINATOR_KILL = 0.8
TOPIC_LINE = "  - {{name: {name}, partitions: 2, replication.factor: 3, config: {{min.insync.replicas: 2}}}}\n"
THREE_NODES_YAML = f"""\
cluster: {{name: faults-txn}}
nodes:
  - {{id: 1}}
  - {{id: 2}}
  - {{id: 3}}
broker:
  default.replication.factor: 3
  min.insync.replicas: 2
  unclean.leader.election.enable: false
  offsets.topic.replication.factor: 3
  offsets.topic.num.partitions: 3
  transaction.state.log.replication.factor: 3
  transaction.state.log.min.isr: 2
  transaction.state.log.num.partitions: 3
  transaction.abort.timed.out.transaction.cleanup.interval.ms: 500
topics:
{TOPIC_LINE.format(name=SOURCE)}{TOPIC_LINE.format(name=SINK)}"""

Figures = dict[str, Any]


def _percentile(ordered: list[float], fraction: float) -> float | None:
    return round(ordered[min(int(len(ordered) * fraction), len(ordered) - 1)], 1) if ordered else None


def _seed(bootstrap: str, records: int) -> dict[int, list[str]]:
    """``records`` unique values into ``in`` (idempotent, acks=all, round robin); partition → values."""
    history = History()
    producer = RecordingProducer(bootstrap, SOURCE, history, proc="seed")
    for i in range(records):
        producer.send(partition=i % len(PARTITIONS))
    assert producer.flush(30) == 0 and producer.acked == records, "seed records not acknowledged"
    return {p: [value for _, value in reads] for p, reads in drain(bootstrap, SOURCE, PARTITIONS).items()}


def run_t7(factory: ClusterFactory, workdir: Path, records: int = 2_000, batch: int = 100) -> Figures:
    """T7: the copier killed -9 three times mid-transaction and once its coordinator's node."""
    cluster = factory(THREE_NODES_YAML)
    for topic in (SOURCE, SINK):
        wait_for_full_isr(cluster, topic)
    bootstrap = cluster.bootstrap_servers
    started = time.monotonic()
    source = _seed(bootstrap, records)
    reader = CommittedReader(bootstrap, SINK, PARTITIONS).start()
    run = CopierRun(CopierConfig(bootstrap, SOURCE, SINK, "t7-group", TRANSACTIONAL_ID, batch=batch, hold_ms=50,
                                 exit_idle_ms=1_000)).start()
    violations: list[str] = []
    figures: Figures = {"test": "T7", "input": records}
    try:
        for fraction in COPIER_KILLS:
            run.wait_committed(int(records * fraction), 30)
            run.kill_mid_transaction(10)
        run.wait_committed(int(records * ZOMBIE), 30)
        zombie = run.pause_mid_transaction(10)
        run.wait(lambda: run.current.committed_records > 0, 30, "committing after fencing the zombie")
        zombie_committed = len(zombie.of("committed"))
        zombie.send_signal(signal.SIGCONT)
        run.wait(lambda: zombie.returncode is not None, 15, "the resumed zombie failing")
        run.wait_committed(int(records * COORDINATOR_KILL), 30)
        coordinator = find_coordinator(cluster, TRANSACTIONAL_ID, key_type=1)
        before = run.committed_records
        kill9(cluster, coordinator)
        resumed_s = run.wait(lambda: run.committed_records > before or run.current.returncode == 0, 30,
                             "copying after the coordinator's kill -9")
        restart(cluster, coordinator)
        finish_s = run.finish(30)
        out = read_to_end(bootstrap, SINK, PARTITIONS)
        _, reader_s = poll_until(lambda: reader.count >= sum(map(len, out.values())), 15,
                                 "the concurrent reader caught up")
    finally:
        reader.stop()
        run.stop()
    in_values = {v for vs in source.values() for v in vs}
    out_values = {v for vs in out.values() for v in vs}
    dups, reader_dups = duplicates(out), duplicates(reader.reads)
    latencies = run.commit_latencies_ms()
    zombie_failure = zombie.of("failed")
    figures |= {"zombie_error": zombie_failure[0]["error"] if zombie_failure else None,
                "zombie_commits_after_resume": len(zombie.of("committed")) - zombie_committed,
                "zombie_exit": zombie.returncode}
    figures |= {"output": sum(map(len, out.values())), "missing": len(in_values - out_values),
                "unexpected": len(out_values - in_values), "duplicates": dups, "reader_read": reader.count,
                "reader_duplicates": reader_dups, "copier_kills": run.kills, "copier_crashes": run.crashes,
                "instances": len(run.instances),
                "aborted_txns": run.kills + 1 + len(run.events("aborted")),  # the kills', the zombie's, others
                "committed_txns": len(latencies), "coordinator_killed": coordinator,
                "copying_again_after_coordinator_kill_s": round(resumed_s, 2),
                "txn_commit_ms_p50": _percentile(latencies, 0.5), "txn_commit_ms_p99": _percentile(latencies, 0.99),
                "last_phase_s": round(finish_s, 2), "reader_lag_s": round(reader_s, 2),
                "time_to_finish_s": round(time.monotonic() - started, 2)}
    if in_values != out_values:
        violations.append(f"set(out) != set(in): {figures['missing']} missing, {figures['unexpected']} unexpected")
    if dups or reader_dups:
        violations.append(f"duplicates: {dups} in out, {reader_dups} seen by the concurrent reader")
    if out != source:
        violations.append("a partition of out is not the same list as that partition of in")
    if reader.reads != out:
        violations.append("the concurrent read_committed reader's view differs from the final read")
    if run.kills != len(COPIER_KILLS):
        violations.append(f"{run.kills} copier kills, expected {len(COPIER_KILLS)}")
    if figures["zombie_commits_after_resume"] or not (zombie_failure and zombie_failure[0]["fatal"]):
        violations.append(f"the resumed zombie was not fenced: {zombie_failure}, "
                          f"{figures['zombie_commits_after_resume']} commits after SIGCONT")
    figures["violations"] = violations
    return figures


def test_t7_exactly_once_copier_survives_kill_9_of_itself_and_its_coordinator(pko_cluster_factory: ClusterFactory,
                                                                               tmp_path: Path) -> None:
    figures = run_t7(pko_cluster_factory, tmp_path)
    print(json.dumps(figures))
    assert not figures["violations"], "\n".join(figures["violations"])
