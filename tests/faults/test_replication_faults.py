"""Replication under faults on real node processes (specs/reliability.md §5.3 T1, T1c, T2):
a topic of 3 partitions, replication factor 3, min.insync.replicas 2, short test timeouts.

* T1: kill -9 of the leader of p0 under an idempotent acks=all producer, restart it: nothing
  acknowledged is lost or duplicated, acknowledged offsets are the offsets read, and the replicas
  are identical below the high watermark once the restarted one has caught up.
* T1c: kill -9 of two of the three replicas of p0 (its followers), on a cluster whose KRaft quorum
  runs on 3 controller-only nodes (so it survives the broker kills and fences them): once the ISR
  is the leader alone, no acks=all send is acknowledged (NOT_ENOUGH_REPLICAS); every send
  acknowledged after the kill is on a second replica; after a restart acks resume.
* T2: SIGSTOP of the leader of p0 past broker.session.timeout.ms (a zombie leader), with raw
  acks=-1 producers connected to it alone; every ack of the zombie is for a record that survives;
  after SIGCONT it learns it is a follower, truncates and rejoins the ISR.

Each test prints its figures as one JSON line. The bodies are plain functions (``run_t1`` …) that
``faults/soak.py`` repeats outside pytest; they return the figures with a ``violations`` list,
which a test asserts empty.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cluster.pytest_plugin import ClusterFactory
from faults.checker import BatchSummary, CheckResult, batches_from_dump, check
from faults.clients import RecordingProducer, WireProducer, drain, high_watermarks
from faults.cluster_ops import (
    brokers,
    dump_log,
    kill9,
    log_ends,
    longest_ack_gap,
    node_log_mark,
    pause,
    poll_until,
    restart,
    resume,
    snapshot_segments,
    time_to_first_ack,
    truncations,
    wait_for_full_isr,
    wait_for_isr,
    wait_for_replicas_at,
)
from faults.history import History

TOPIC = "replicated"
PARTITIONS = range(3)
#: Sends a second of the confluent-kafka producer (round robin over the partitions).
RATE = 1_500
#: Follower settings of the tests: a lagging follower leaves the ISR after 2 s.
REPLICA_SETTINGS = """\
  replica.lag.time.max.ms: 2000
  replica.fetch.wait.max.ms: 200
  replica.fetch.backoff.ms: 100
"""
TOPIC_SETTINGS = f"""\
  num.partitions: 3
  default.replication.factor: 3
  min.insync.replicas: 2
  unclean.leader.election.enable: false
{REPLICA_SETTINGS}topics:
  - {{name: {TOPIC}, partitions: {len(PARTITIONS)}, replication.factor: 3, config: {{min.insync.replicas: 2}}}}
"""
#: Three combined broker + controller nodes (the quorum loses its majority with two of them down).
THREE_NODES_YAML = f"""\
cluster: {{name: faults-replication}}
nodes:
  - {{id: 1}}
  - {{id: 2}}
  - {{id: 3}}
broker:
{TOPIC_SETTINGS}"""
#: Three controller-only nodes (the quorum) and three brokers: killing brokers leaves the quorum up.
DEDICATED_YAML = f"""\
cluster: {{name: faults-min-isr}}
nodes:
  - {{id: 1, roles: [controller]}}
  - {{id: 2, roles: [controller]}}
  - {{id: 3, roles: [controller]}}
  - {{id: 4, roles: [broker]}}
  - {{id: 5, roles: [broker]}}
  - {{id: 6, roles: [broker]}}
broker:
{TOPIC_SETTINGS}"""
#: How long T2 keeps the leader stopped: 2.5 × broker.session.timeout.ms of the tests (2 s).
PAUSE_S = 5.0
#: T2: raw producers connected to the paused leader only, and their socket timeout (longer than
#: the pause, so their requests queue at the stopped broker and are answered after SIGCONT).
ZOMBIE_CLIENTS = 3
ZOMBIE_TIMEOUT_S = 20.0
REJOIN_TIMEOUT_S = 15.0

Figures = dict[str, Any]


def _expect(violations: list[str], condition: bool, message: str) -> None:
    if not condition:
        violations.append(message)


def _check_figures(result: CheckResult, violations: list[str]) -> None:
    _expect(violations, result.valid, f"checker: {result.summary()}")


def _replicas_of_copies(copies: dict[int, list[Path]]) -> dict[int, list[BatchSummary]]:
    """partition → batches of copied segment files."""
    return {p: batches_from_dump(dump_log(files)) if files else [] for p, files in copies.items()}


def _ok_sends(history: History, since: float = 0.0, procs: Callable[[str], bool] = lambda _p: True) -> list[Any]:
    return [op for op in history.ops if op.type == "ok" and op.f == "send" and op.t >= since and procs(op.proc)]


def is_zombie(proc: str) -> bool:
    """A raw producer of T2, connected to the paused leader only."""
    return proc.startswith("z")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# -- T1 -----------------------------------------------------------------------------------------


def run_t1(factory: ClusterFactory, workdir: Path, acks: str = "all") -> Figures:
    """T1: kill -9 the leader of p0 under an idempotent acks=all producer, restart it; figures and
    violations. ``acks="1"`` (non-idempotent) is T1b, the contract's contrast: the figures say
    what it lost; the checker's loss counts are then Kafka's allowed outcome, not violations."""
    cluster = factory(THREE_NODES_YAML)
    history = History()
    states = wait_for_full_isr(cluster, TOPIC)
    victim = states[0].leader
    survivors = [b for b in brokers(cluster) if b != victim]
    mark = node_log_mark(cluster, victim)

    producer = RecordingProducer(cluster.bootstrap_servers, TOPIC, history, proc="p0", max_in_flight=500,
                                 acks=acks, enable_idempotence=acks == "all")
    producer.start(partitions=PARTITIONS, rate_per_s=RATE)
    try:
        poll_until(lambda: producer.acked >= 3 * RATE, 20, f"{3 * RATE} acks before the kill")
        killed_at = kill9(cluster, victim, history)
        new_state, to_leader = wait_for_isr(cluster, TOPIC, 0, lambda s: s.leader not in (-1, victim),
                                            f"a leader other than {victim}", timeout_s=15, via=survivors)
        new_leader = new_state.leader
        first_ack = time_to_first_ack(history, killed_at, [0], timeout_s=20)
        before = snapshot_segments(cluster, victim, TOPIC, PARTITIONS, workdir / "before-restart")
        restarted_at = restart(cluster, victim, history)
        acked_after = producer.acked
        poll_until(lambda: producer.acked >= acked_after + 3 * RATE, 30, "acks after the restart")
    finally:
        unanswered = producer.stop(30)

    ends = high_watermarks(cluster.bootstrap_servers, TOPIC, PARTITIONS)
    replicas, catch_up = wait_for_replicas_at(cluster, TOPIC, ends, timeout_s=30)
    reads = drain(cluster.bootstrap_servers, TOPIC, PARTITIONS, history)
    result = check(history, reads, replicas=replicas, high_watermarks=ends)
    history.dump_jsonl(workdir / "t1-history.jsonl")
    old_log = _replicas_of_copies(before)
    cut = truncations(cluster, victim, TOPIC, mark)

    violations: list[str] = []
    if acks == "all":
        _check_figures(result, violations)
    _expect(violations, not result.divergent, f"replicas differ below the high watermark: {result.summary()}")
    _expect(violations, result.replicas_compared == len(brokers(cluster)) * len(PARTITIONS),
            f"compared {result.replicas_compared} replicas")
    _expect(violations, new_state.epoch > states[0].epoch, f"leader {new_leader} of p0 at epoch {new_state.epoch}, "
            f"the killed one's was {states[0].epoch}: a leader change must raise the epoch")
    _expect(violations, unanswered == 0 and result.acked + result.indeterminate + result.failed == producer.sent,
            f"{unanswered} sends unanswered of {producer.sent}")
    _expect(violations, any(op.partition == 0 for op in _ok_sends(history, restarted_at)), "no ack on p0 after the restart")
    return {"test": "T1" if acks == "all" else "T1b", "acks": acks, "fault": "kill-9 leader + restart",
            "node": victim, "new_leader": new_leader, "rf": 3,
            "old_epoch": states[0].epoch, "new_epoch": new_state.epoch,
            **result.figures(), "unanswered": unanswered,
            "acked_before_kill": len([op for op in _ok_sends(history) if op.t < killed_at]),
            "time_to_new_leader_s": _round(to_leader), "time_to_first_ack_p0_s": _round(first_ack),
            "restart_s": _round(restarted_at - killed_at), "catch_up_s": _round(catch_up),
            "longest_ack_gap_s": _round(longest_ack_gap(history)),
            "longest_ack_gap_p0_s": _round(longest_ack_gap(history, [0])),
            "old_leader_log_end": {p: (b[-1].last_offset + 1 if b else 0) for p, b in old_log.items()},
            "truncated_on_old_leader": cut, "high_watermarks": ends, "violations": violations}


def test_t1_kill_9_of_the_leader_under_acks_all_loses_nothing(pko_cluster_factory: ClusterFactory,
                                                               tmp_path: Path) -> None:
    figures = run_t1(pko_cluster_factory, tmp_path)
    print(json.dumps(figures))
    assert not figures["violations"], "\n".join(figures["violations"])


# -- T1c ----------------------------------------------------------------------------------------


def run_t1c(factory: ClusterFactory, workdir: Path) -> Figures:
    """T1c: kill -9 both followers of p0; while its ISR is the leader alone, nothing is acked."""
    cluster = factory(DEDICATED_YAML)
    history = History()
    states = wait_for_full_isr(cluster, TOPIC)
    leader = states[0].leader
    followers = [r for r in states[0].replicas if r != leader]
    host, port = cluster.config.host, cluster.config.node(leader).port

    producer = RecordingProducer(cluster.bootstrap_servers, TOPIC, history, proc="p0", max_in_flight=300)
    probe = WireProducer(host, port, TOPIC, 0, history, proc="w0", timeout_s=10, request_timeout_ms=3000)
    producer.start(partitions=PARTITIONS, rate_per_s=RATE // 3)
    probe.start(pause_s=0.05)
    rejoined = False
    rejoin_s = first_ack_after_rejoin = None
    try:
        poll_until(lambda: producer.acked >= RATE // 2 and probe.acked >= 5, 20, "acks before the kill")
        killed_at = history.now()
        for node in followers:
            kill9(cluster, node, history)
        _state, to_shrink = wait_for_isr(cluster, TOPIC, 0, lambda s: s.isr == (leader,), f"ISR [{leader}]",
                                         timeout_s=15, via=[leader])
        shrunk_at = history.now()
        refused_before = probe.errors.get("NOT_ENOUGH_REPLICAS", 0)
        poll_until(lambda: probe.errors.get("NOT_ENOUGH_REPLICAS", 0) >= refused_before + 5, 15,
                   "5 sends refused NOT_ENOUGH_REPLICAS with the ISR below min.insync.replicas")
        frozen = {node: _replicas_of_copies(snapshot_segments(cluster, node, TOPIC, PARTITIONS,
                                                              workdir / "killed"))
                  for node in followers}
        restart_began = history.now()
        restart(cluster, followers[0], history)
        _state, rejoin_s = wait_for_isr(cluster, TOPIC, 0, lambda s: len(s.isr) >= 2, "ISR of 2 again",
                                        timeout_s=REJOIN_TIMEOUT_S, via=[leader])
        rejoined = True
        first_ack_after_rejoin = time_to_first_ack(history, restart_began, [0], timeout_s=15)
        acked_after = producer.acked
        poll_until(lambda: producer.acked >= acked_after + RATE // 2, 20, "acks after the rejoin")
    finally:
        probe.stop()
        unanswered = producer.stop(30 if rejoined else 3)

    ends = high_watermarks(cluster.bootstrap_servers, TOPIC, PARTITIONS)
    # the leader's and the restarted follower's replicas, once it has caught up
    replicas, _caught_up = wait_for_replicas_at(cluster, TOPIC, ends, nodes=[leader, followers[0]], timeout_s=30)
    reads = drain(cluster.bootstrap_servers, TOPIC, PARTITIONS, history)
    result = check(history, reads, replicas=replicas, high_watermarks=ends)
    history.dump_jsonl(workdir / "t1c-history.jsonl")
    # an acks=all send acknowledged after the kill must be on a second replica: a killed follower's log
    frozen_ends = {p: max(log_ends({n: held})[n].get(p, 0) for n, held in frozen.items()) for p in PARTITIONS}
    after_kill = [op for op in _ok_sends(history, killed_at) if op.t < restart_began]
    on_one_replica = [op for op in after_kill if op.offset is not None and op.offset >= frozen_ends[op.partition]]
    in_window = [op for op in after_kill if op.t >= shrunk_at]

    violations: list[str] = []
    _check_figures(result, violations)
    _expect(violations, not in_window, f"{len(in_window)} sends acked while the ISR was [{leader}]: "
            f"{[(op.value, op.partition, op.offset) for op in in_window[:5]]}")
    _expect(violations, not on_one_replica, f"{len(on_one_replica)} sends acked after the kill that no killed "
            f"follower holds: {[(op.value, op.partition, op.offset) for op in on_one_replica[:5]]}")
    _expect(violations, unanswered == 0, f"{unanswered} sends unanswered")
    _expect(violations, result.replicas_compared == 2 * len(PARTITIONS), f"compared {result.replicas_compared} replicas")
    figures = {"test": "T1c", "fault": "kill-9 both followers of p0 + restart one", "leader": leader,
               "killed": followers, **result.figures(), "unanswered": unanswered,
               "acked_after_kill_before_shrink": len(after_kill) - len(in_window),
               "acked_while_isr_below_min": len(in_window), "acked_on_one_replica": len(on_one_replica),
               "probe_errors": probe.errors, "time_to_isr_shrink_s": _round(to_shrink),
               "unavailable_s": _round(None if first_ack_after_rejoin is None
                                       else restart_began + first_ack_after_rejoin - killed_at),
               "rejoined": rejoined, "time_to_rejoin_after_restart_s": _round(rejoin_s),
               "violations": violations}
    return figures


def test_t1c_no_acks_all_send_is_acknowledged_below_min_insync_replicas(pko_cluster_factory: ClusterFactory,
                                                                          tmp_path: Path) -> None:
    figures = run_t1c(pko_cluster_factory, tmp_path)
    print(json.dumps(figures))
    assert not figures["violations"], "\n".join(figures["violations"])


# -- T2 -----------------------------------------------------------------------------------------


def run_t2(factory: ClusterFactory, workdir: Path) -> Figures:
    """T2: SIGSTOP the leader of p0 past the session timeout, with raw producers stuck on it."""
    cluster = factory(THREE_NODES_YAML)
    history = History()
    states = wait_for_full_isr(cluster, TOPIC)
    victim = states[0].leader
    survivors = [b for b in brokers(cluster) if b != victim]
    host, port = cluster.config.host, cluster.config.node(victim).port
    mark = node_log_mark(cluster, victim)

    producer = RecordingProducer(cluster.bootstrap_servers, TOPIC, history, proc="p0", max_in_flight=500)
    zombies = [WireProducer(host, port, TOPIC, 0, history, proc=f"z{i}", timeout_s=ZOMBIE_TIMEOUT_S,
                            request_timeout_ms=int(ZOMBIE_TIMEOUT_S * 1000)) for i in range(ZOMBIE_CLIENTS)]
    producer.start(partitions=PARTITIONS, rate_per_s=RATE)
    for zombie in zombies:
        zombie.start(pause_s=0.01)
    rejoined = False
    rejoin_s = None
    try:
        poll_until(lambda: producer.acked >= 2 * RATE and all(z.acked >= 5 for z in zombies), 20,
                   "acks before the pause")
        paused_at = pause(cluster, victim, history)
        new_state, to_leader = wait_for_isr(cluster, TOPIC, 0, lambda s: s.leader not in (-1, victim),
                                            f"a leader other than {victim}", timeout_s=15, via=survivors)
        new_leader, new_epoch = new_state.leader, new_state.epoch
        poll_until(lambda: history.now() >= paused_at + PAUSE_S, PAUSE_S + 1, f"{PAUSE_S:g} s of pause")
        before = snapshot_segments(cluster, victim, TOPIC, [0], workdir / "paused")
        resumed_at = resume(cluster, victim, history)
        _state, learn_s = wait_for_isr(cluster, TOPIC, 0, lambda s: s.leader != victim and s.epoch >= new_epoch,
                                       "the zombie's metadata names the new leader", timeout_s=15, via=[victim])
        # the idempotent producer moves p0 once its requests in flight to the zombie are answered or
        # time out (librdkafka keeps a partition's sequence order), so its first ack may follow SIGCONT
        first_ack = time_to_first_ack(history, paused_at, [0], timeout_s=30)
        # every request the zombie had queued is answered (or its connection timed out)
        poll_until(lambda: not [op for op in history.pending() if is_zombie(op.proc) and op.t < resumed_at],
                   ZOMBIE_TIMEOUT_S + 5, "answers to the requests queued at the zombie")
        wait_for_isr(cluster, TOPIC, 0, lambda s: victim in s.isr, f"node {victim} in the ISR",
                     timeout_s=REJOIN_TIMEOUT_S, via=survivors)
        rejoin_s = history.now() - resumed_at
        rejoined = True
        acked_after = producer.acked
        poll_until(lambda: producer.acked >= acked_after + RATE, 20, "acks after the resume")
    finally:
        for zombie in zombies:
            zombie.stop()
        unanswered = producer.stop(30)

    ends = high_watermarks(cluster.bootstrap_servers, TOPIC, PARTITIONS)
    replicas, catch_up = wait_for_replicas_at(cluster, TOPIC, ends, timeout_s=30)
    reads = drain(cluster.bootstrap_servers, TOPIC, PARTITIONS, history)
    result = check(history, reads, replicas=replicas, high_watermarks=ends)
    history.dump_jsonl(workdir / "t2-history.jsonl")
    read_values = {value for records in reads.values() for _offset, value in records}
    zombie_acks = _ok_sends(history, paused_at, is_zombie)  # answers sent before SIGSTOP may arrive after it
    zombie_acks_after_resume = [op for op in zombie_acks if op.t >= resumed_at]
    zombie_lost = [op for op in zombie_acks if op.value not in read_values]
    paused_log = _replicas_of_copies(before)[0]
    cut = truncations(cluster, victim, TOPIC, mark)
    zombie_errors: dict[str, int] = {}
    for zombie in zombies:
        for name, count in zombie.errors.items():
            zombie_errors[name] = zombie_errors.get(name, 0) + count

    violations: list[str] = []
    _check_figures(result, violations)
    _expect(violations, new_epoch > states[0].epoch, f"leader {new_leader} of p0 at epoch {new_epoch}, the zombie's "
            f"was {states[0].epoch}: a leader change must raise the epoch")
    _expect(violations, not zombie_lost, f"{len(zombie_lost)} acks of the zombie lost: "
            f"{[(op.value, op.offset) for op in zombie_lost[:5]]}")
    _expect(violations, result.replicas_compared == len(brokers(cluster)) * len(PARTITIONS),
            f"compared {result.replicas_compared} replicas")
    _expect(violations, unanswered == 0, f"{unanswered} sends unanswered")
    return {"test": "T2", "fault": f"SIGSTOP leader {PAUSE_S:g} s + SIGCONT", "node": victim,
            "new_leader": new_leader, "new_epoch": new_epoch, **result.figures(), "unanswered": unanswered,
            "old_epoch": states[0].epoch, "zombie_sends": sum(z.sent for z in zombies),
            "zombie_acks_after_pause": len(zombie_acks), "zombie_acks_after_resume": len(zombie_acks_after_resume),
            "zombie_acks_examples": [(op.value, op.offset, round(op.t - paused_at, 3)) for op in zombie_acks[:3]],
            "zombie_acks_lost": len(zombie_lost), "zombie_errors": zombie_errors,
            "zombie_log_end_when_paused": paused_log[-1].last_offset + 1 if paused_log else 0,
            "truncated_on_resume": cut, "time_to_new_leader_s": _round(to_leader),
            "time_to_first_ack_p0_s": _round(first_ack), "zombie_learns_s": _round(learn_s),
            "rejoined": rejoined, "time_to_rejoin_isr_after_resume_s": _round(rejoin_s),
            "resume_after_pause_s": _round(resumed_at - paused_at), "catch_up_s": _round(catch_up),
            "longest_ack_gap_p0_s": _round(longest_ack_gap(history, [0])), "violations": violations}


def test_t2_a_paused_leader_acks_nothing_that_is_lost_and_rejoins(pko_cluster_factory: ClusterFactory,
                                                                  tmp_path: Path) -> None:
    figures = run_t2(pko_cluster_factory, tmp_path)
    print(json.dumps(figures))
    assert not figures["violations"], "\n".join(figures["violations"])
