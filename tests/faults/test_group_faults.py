"""Consumer groups under faults on real node processes (specs/reliability.md §5.3 T4, T5; issue 16):
three combined broker + controller nodes, a topic of replication factor 3 with
min.insync.replicas 2, ``__consumer_offsets`` replicated 3 times, short test timeouts.

* T4, rolling restart: each node in turn is stopped with SIGTERM (controlled shutdown: its
  leadership moves away first) and started again, the next one only once the node is back in
  every ISR; an idempotent acks=all producer and a 2-member group run throughout. Nothing
  acknowledged is lost or duplicated, each shutdown ends within ``SHUTDOWN_BOUND_S``, the group
  does not rebalance at all (Kafka's ``test_broker_rolling_bounce`` asserts 0 unexpected
  rebalances for a clean bounce: the members are not restarted, and a coordinator that moves
  with its ``__consumer_offsets`` partition loads the group's generation, so the members find it
  and carry on), and the committed positions equal what was consumed.
* T5, rebalance under load: a group grows from 1 to 3 members and shrinks to 2 (one member dies
  between processing and committing) under a steady producer; processing is at least once: every
  acknowledged record is processed (no gaps), polls within an assignment are consecutive, a new
  owner starts at the committed offset; replays are reported.
* Coordinator kill -9: the node of the group's coordinator is killed mid-run; a new coordinator
  (the new leader of the group's ``__consumer_offsets`` partition) takes over, the group commits
  and consumes again, and when a member joins afterwards the partitions' new owners resume from the
  offsets committed before and after the kill (none acknowledged is lost; replays only of what was
  not committed). Time from the kill to the group consuming again is reported.
* Preferred leadership: after a clean restart of a node, ``auto.leader.rebalance.enable`` moves
  leadership back to each partition's first replica.

Each test prints its figures as one JSON line; the bodies (``run_t4`` …) return them with a
``violations`` list and are repeated by ``faults/soak.py`` (longer variants: ``scale``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cluster.pytest_plugin import ClusterFactory, RunningCluster
from faults.checker import check
from faults.clients import RecordingProducer, drain, high_watermarks
from faults.cluster_ops import (
    LeadershipWatch,
    brokers,
    find_coordinator,
    kill9,
    leaders,
    longest_ack_gap,
    partition_states,
    poll_until,
    quorum_leader,
    restart,
    sigterm,
    wait_for_coordinator,
    wait_for_full_isr,
)
from faults.group_clients import (
    GroupConsumer,
    check_group,
    committed_offsets,
    consumed_up_to,
    stable_assignment,
)
from faults.history import History

TOPIC = "grouped"
PARTITIONS = range(6)
GROUP = "faults-group"
OFFSETS_TOPIC = "__consumer_offsets"
#: Partitions of __consumer_offsets in the tests (Kafka's 50 would cost seconds of start-up here).
OFFSETS_PARTITIONS = 3
#: Sends a second (round robin over the partitions): small, the group's checks need coverage.
RATE = 400
#: A clean shutdown must end within this (Redpanda treats > 30 s as a bug; ours is bounded by
#: controller.quorum.request.timeout.ms for the controlled shutdown plus closing the logs).
SHUTDOWN_BOUND_S = 10.0
#: Seconds a restarted node gets to be back in every ISR.
REJOIN_TIMEOUT_S = 20.0
#: Seconds the group gets to consume up to the log ends once the producer stopped.
CATCH_UP_S = 30.0

GROUP_SETTINGS = f"""\
  num.partitions: {len(PARTITIONS)}
  default.replication.factor: 3
  min.insync.replicas: 2
  unclean.leader.election.enable: false
  offsets.topic.replication.factor: 3
  offsets.topic.num.partitions: {OFFSETS_PARTITIONS}
  group.initial.rebalance.delay.ms: 0
  group.min.session.timeout.ms: 1000
"""
TOPICS = f"""\
topics:
  - {{name: {TOPIC}, partitions: {len(PARTITIONS)}, replication.factor: 3, config: {{min.insync.replicas: 2}}}}
"""
#: Three combined broker + controller nodes.
THREE_NODES_YAML = f"""\
cluster: {{name: faults-groups}}
nodes:
  - {{id: 1}}
  - {{id: 2}}
  - {{id: 3}}
broker:
{GROUP_SETTINGS}{TOPICS}"""
#: The same with preferred-leader election every second.
PREFERRED_YAML = f"""\
cluster: {{name: faults-preferred}}
nodes:
  - {{id: 1}}
  - {{id: 2}}
  - {{id: 3}}
broker:
{GROUP_SETTINGS}  auto.leader.rebalance.enable: true
  leader.imbalance.check.interval.seconds: 1
{TOPICS}"""

Figures = dict[str, Any]


def _expect(violations: list[str], condition: bool, message: str) -> None:
    if not condition:
        violations.append(message)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _members(cluster: RunningCluster, history: History, count: int, first: int = 0, **config: Any) -> list[GroupConsumer]:
    return [GroupConsumer(cluster.bootstrap_servers, TOPIC, GROUP, history, proc=f"c{i}", **config).start()
            for i in range(first, first + count)]


def _commits_ok_after(members: list[GroupConsumer], t: float) -> int:
    """Acknowledged commits sent at or after history time ``t``."""
    return sum(1 for m in members for c in m.commits if c.type == "ok" and c.sent >= t)


def _wait_stable(members: list[GroupConsumer], timeout_s: float, what: str) -> tuple[dict[str, tuple[int, ...]], float]:
    def stable() -> dict[str, tuple[int, ...]] | None:
        held = stable_assignment(members, PARTITIONS)
        return held if held is not None and all(held.values()) else None

    return poll_until(stable, timeout_s, what)


def _wait_progress(members: list[GroupConsumer], since: float, timeout_s: float, what: str) -> float:
    """Seconds until every live member holding partitions has an acknowledged commit sent after ``since``."""
    def progressed() -> bool:
        return all(any(c.type == "ok" and c.sent >= since for c in m.commits) for m in members if m.alive and m.assignment)

    return poll_until(progressed, timeout_s, what)[1]


def _timed_sigterm(cluster: RunningCluster, node: int, survivors: list[int],
                   history: History) -> tuple[float | None, float]:
    """SIGTERM ``node`` (controlled shutdown) and wait for its exit: (seconds from the signal until
    the survivors' Metadata names no partition of the topic or of __consumer_offsets led by it —
    None if not within 20 s —, seconds from the signal to the exit)."""
    watch = LeadershipWatch(cluster, node, (TOPIC, OFFSETS_TOPIC), survivors, timeout_s=20).start()
    signalled = time.monotonic()
    shutdown_s = sigterm(cluster, node, history, timeout_s=30)
    moved_at = watch.wait()
    return (None if moved_at is None else moved_at - signalled), shutdown_s


def _offsets_rf(cluster: RunningCluster) -> int:
    """The replication factor of __consumer_offsets once every partition of it is led with a full ISR."""
    return min(len(state.replicas) for state in wait_for_full_isr(cluster, OFFSETS_TOPIC).values())


def _abandon(producer: RecordingProducer, members: list[GroupConsumer]) -> None:
    """Stop every client of a run that failed (its figures are not computed)."""
    producer.stop(5)
    for m in members:
        m.close(10)


def _finish(cluster: RunningCluster, history: History, producer: RecordingProducer, members: list[GroupConsumer],
            violations: list[str]) -> tuple[Figures, dict[int, int]]:
    """Stop the producer, let the group consume and commit everything, close the members, read
    back; the checker's and the group checker's figures, and the high watermarks."""
    unanswered = producer.stop(30)
    ends = high_watermarks(cluster.bootstrap_servers, TOPIC, PARTITIONS)
    live = [m for m in members if m.alive]
    try:
        _, catch_up = poll_until(lambda: consumed_up_to(live, ends), CATCH_UP_S,
                                 f"the group consumed and committed {ends}")
    finally:
        for m in members:
            _expect(violations, m.close(), f"{m.proc} did not close")
    committed = committed_offsets(cluster.bootstrap_servers, TOPIC, GROUP, PARTITIONS)
    reads = drain(cluster.bootstrap_servers, TOPIC, PARTITIONS, history)
    result = check(history, reads)
    group = check_group(history, members, ends)
    consumed_end = {p: max((c.offset + 1 for m in members for c in m.consumed if c.partition == p), default=0)
                    for p in PARTITIONS}
    _expect(violations, result.valid, f"checker: {result.summary()}")
    _expect(violations, group.valid, f"group checker: {group.summary()}")
    _expect(violations, unanswered == 0, f"{unanswered} sends unanswered")
    _expect(violations, committed == ends == consumed_end,
            f"committed {committed}, consumed up to {consumed_end}, log ends {ends}: not all equal")
    failures = [f"{m.proc}: {m.failure!r}" for m in members if m.failure is not None]
    _expect(violations, not failures, f"member threads failed: {failures}")
    figures = {**result.figures(), **group.figures(), "unanswered": unanswered, "high_watermarks": ends,
               "committed": committed, "catch_up_s": _round(catch_up),
               "commits_ok": sum(1 for m in members for c in m.commits if c.type == "ok"),
               "commit_errors": {m.proc: dict(m.commit_errors) for m in members if m.commit_errors},
               "consumer_errors": {m.proc: dict(m.errors) for m in members if m.errors},
               "longest_ack_gap_s": _round(longest_ack_gap(history)),
               "max_ack_to_processed_s": _round(_max_delay(history, members))}
    return figures, ends


def _max_delay(history: History, members: list[GroupConsumer]) -> float | None:
    """The longest time from a send's acknowledgement to the first processing of its record (the
    group's worst lag, in seconds; negative delays — processed before the ack arrived — count 0)."""
    acked = {op.value: op.t for op in history.ops if op.type == "ok" and op.f == "send"}
    first: dict[str, float] = {}
    for m in members:
        for c in m.consumed:
            first[c.value] = min(first.get(c.value, c.t), c.t)
    delays = [max(first[v] - t, 0.0) for v, t in acked.items() if v in first]
    return max(delays, default=None)


# -- T4 -----------------------------------------------------------------------------------------


def run_t4(factory: ClusterFactory, workdir: Path, rounds: int = 1, rate: int = RATE) -> Figures:
    """T4: restart every node in turn with SIGTERM under an idempotent acks=all producer and a
    2-member group (``rounds`` times over the nodes)."""
    cluster = factory(THREE_NODES_YAML)
    history = History()
    wait_for_full_isr(cluster, TOPIC)
    violations: list[str] = []
    producer = RecordingProducer(cluster.bootstrap_servers, TOPIC, history, proc="p0", max_in_flight=500)
    producer.start(partitions=PARTITIONS, rate_per_s=rate)
    members = _members(cluster, history, 2)
    restarts: list[Figures] = []
    try:
        _wait_stable(members, 30, "2 members sharing the partitions")
        offsets_rf = _offsets_rf(cluster)
        _wait_progress(members, history.now(), 15, "commits by both members")
        baseline = {m.proc: m.assignments for m in members}
        for node in [n for _ in range(rounds) for n in brokers(cluster)]:
            survivors = [b for b in brokers(cluster) if b != node]
            coordinator = find_coordinator(cluster, GROUP)
            controller = quorum_leader(cluster)
            led = sum(1 for leader in leaders(cluster, TOPIC).values() if leader == node)
            stopped_at = history.now()
            moved_s, shutdown_s = _timed_sigterm(cluster, node, survivors, history)
            restart(cluster, node, history)
            started_at = history.now()
            wait_for_full_isr(cluster, TOPIC, REJOIN_TIMEOUT_S)
            wait_for_full_isr(cluster, OFFSETS_TOPIC, REJOIN_TIMEOUT_S)
            isr_s = history.now() - started_at
            progress_s = _wait_progress(members, started_at, 15, f"commits by both members after node {node} restarted")
            acked = producer.acked  # the next node only after a while under load with this one back
            poll_until(lambda acked=acked: producer.acked >= acked + rate // 2, 15, f"acks after node {node} restarted")
            restarts.append({"node": node, "was_coordinator": node == coordinator,
                             "was_quorum_leader": node == controller, "leaders_before": led,
                             "shutdown_s": _round(shutdown_s), "leadership_moved_s": _round(moved_s),
                             "leadership_moved_after_exit_s": _round(None if moved_s is None
                                                                     else max(moved_s - shutdown_s, 0.0)),
                             "down_s": _round(started_at - stopped_at), "isr_full_after_start_s": _round(isr_s),
                             "group_commits_after_start_s": _round(progress_s),
                             "coordinator_after": find_coordinator(cluster, GROUP),
                             "longest_ack_gap_s": _round(longest_ack_gap(
                                 History.from_ops(op for op in history.ops if op.t >= stopped_at)))})
            _expect(violations, shutdown_s <= SHUTDOWN_BOUND_S,
                    f"node {node}: shutdown took {shutdown_s:.1f} s > {SHUTDOWN_BOUND_S:g} s")
        unexpected = {m.proc: m.assignments - baseline[m.proc] for m in members}
        stats = {m.proc: {k: m.stats.get(k) for k in ("state", "join_state", "rebalance_cnt", "rebalance_reason")}
                 for m in members}
    except BaseException:
        _abandon(producer, members)
        raise
    figures, _ends = _finish(cluster, history, producer, members, violations)
    history.dump_jsonl(workdir / "t4-history.jsonl")
    _expect(violations, not any(unexpected.values()), f"unexpected rebalances during the bounce: {unexpected}")
    return {"test": "T4", "fault": "rolling SIGTERM restart", "rounds": rounds, "rate": rate,
            "offsets_topic_rf": offsets_rf,
            **figures, "unexpected_rebalances": sum(unexpected.values()), "rebalances_by_member": unexpected,
            "librdkafka_cgrp": stats, "restarts": restarts,
            "max_shutdown_s": max((r["shutdown_s"] for r in restarts), default=None), "violations": violations}


def test_t4_rolling_restart_loses_nothing_and_does_not_rebalance(pko_cluster_factory: ClusterFactory,
                                                                  tmp_path: Path) -> None:
    figures = run_t4(pko_cluster_factory, tmp_path)
    print(json.dumps(figures))
    assert not figures["violations"], "\n".join(figures["violations"])


# -- T5 -----------------------------------------------------------------------------------------


def run_t5(factory: ClusterFactory, workdir: Path, rate: int = RATE, cycles: int = 1) -> Figures:
    """T5: the group grows from 1 to 3 members, then one dies between processing and committing
    (3 -> 2), under a steady producer; ``cycles`` times (a member joins again before each next cycle)."""
    cluster = factory(THREE_NODES_YAML)
    history = History()
    wait_for_full_isr(cluster, TOPIC)
    violations: list[str] = []
    producer = RecordingProducer(cluster.bootstrap_servers, TOPIC, history, proc="p0", max_in_flight=500)
    producer.start(partitions=PARTITIONS, rate_per_s=rate)
    members = _members(cluster, history, 1)
    changes: list[Figures] = []

    def change(what: str, act: Any, expected: int) -> None:
        began = history.now()
        act()
        held, stable_s = _wait_stable(members, 30, f"{expected} members sharing the partitions after {what}")
        _expect(violations, len(held) == expected, f"after {what}: members {sorted(held)}, expected {expected}")
        progress_s = _wait_progress(members, began, 15, f"commits by every member after {what}")
        changes.append({"change": what, "members": len(held), "stable_s": _round(stable_s),
                        "every_member_committed_s": _round(progress_s)})

    try:
        _wait_stable(members, 30, "the first member holding every partition")
        _wait_progress(members, 0.0, 15, "commits by the first member")
        for cycle in range(cycles):
            first = len(members)
            joining = 2 if cycle == 0 else 1
            change(f"{joining} join", lambda first=first, joining=joining: members.extend(
                _members(cluster, history, joining, first=first)), 3)
            victim = next(m for m in members if m.alive and m.proc != "c0")
            change(f"{victim.proc} dies before committing", lambda victim=victim: victim.crash(), 2)
    except BaseException:
        _abandon(producer, members)
        raise
    figures, _ends = _finish(cluster, history, producer, members, violations)
    history.dump_jsonl(workdir / "t5-history.jsonl")
    return {"test": "T5", "fault": "group 1 -> 3 -> 2 members under load, a member dies uncommitted",
            "cycles": cycles, "rate": rate, **figures, "changes": changes,
            "max_rebalance_s": max((c["stable_s"] for c in changes), default=None), "violations": violations}


def test_t5_rebalance_under_load_processes_every_record_at_least_once(pko_cluster_factory: ClusterFactory,
                                                                       tmp_path: Path) -> None:
    figures = run_t5(pko_cluster_factory, tmp_path)
    print(json.dumps(figures))
    assert not figures["violations"], "\n".join(figures["violations"])


# -- coordinator kill -9 ------------------------------------------------------------------------


def run_coordinator_kill(factory: ClusterFactory, workdir: Path, rate: int = RATE) -> Figures:
    """kill -9 of the group coordinator's node under a 2-member group and a producer; a third
    member joins after the group consumes again, so partitions change owners on the new coordinator."""
    cluster = factory(THREE_NODES_YAML)
    history = History()
    wait_for_full_isr(cluster, TOPIC)
    violations: list[str] = []
    producer = RecordingProducer(cluster.bootstrap_servers, TOPIC, history, proc="p0", max_in_flight=500)
    producer.start(partitions=PARTITIONS, rate_per_s=rate)
    members = _members(cluster, history, 2)
    try:
        _wait_stable(members, 30, "2 members sharing the partitions")
        offsets_rf = _offsets_rf(cluster)
        _wait_progress(members, history.now(), 15, "commits by both members")
        victim = find_coordinator(cluster, GROUP)
        survivors = [b for b in brokers(cluster) if b != victim]
        data_leaders = leaders(cluster, TOPIC)
        before = {m.proc: m.assignments for m in members}
        killed_at = kill9(cluster, victim, history)
        acked_end = {p: max((op.offset + 1 for op in history.ops if op.type == "ok" and op.f == "send"
                             and op.partition == p and op.t < killed_at and op.offset is not None), default=0)
                     for p in PARTITIONS}
        new_coordinator, to_coordinator = wait_for_coordinator(cluster, GROUP, 20, not_on=[victim], via=survivors)
        poll_until(lambda: _commits_ok_after(members, killed_at) > 0, 30, "an acknowledged commit sent after the kill")
        to_commit = min(c.t for m in members for c in m.commits if c.type == "ok" and c.sent >= killed_at) - killed_at

        def consuming_again() -> float | None:
            """Seconds from the kill until every partition had a record past its end at the kill processed."""
            firsts = [min((c.t for m in members for c in m.consumed if c.partition == p and c.offset >= end and c.t >= killed_at),
                          default=None) for p, end in acked_end.items()]
            return None if None in firsts else max(firsts) - killed_at  # type: ignore[type-var]

        resumed_s, _ = poll_until(consuming_again, 30, "every partition consumed past its end at the kill")
        _wait_progress(members, killed_at + resumed_s, 15, "commits by both members after the kill")
        rebalances_after_kill = {m.proc: m.assignments - before[m.proc] for m in members}
        joined_at = history.now()
        members.extend(_members(cluster, history, 1, first=2))
        _, rebalance_s = _wait_stable(members, 30, "3 members sharing the partitions after the join")
        _wait_progress(members, joined_at, 15, "commits by every member after the join")
    except BaseException:
        _abandon(producer, members)
        raise
    figures, _ends = _finish(cluster, history, producer, members, violations)
    history.dump_jsonl(workdir / "coordinator-kill-history.jsonl")
    return {"test": "coordinator-kill-9", "fault": "kill -9 of the group coordinator's node", "rate": rate,
            "offsets_topic_rf": offsets_rf, "node": victim, "new_coordinator": new_coordinator,
            "data_leaders_on_node": sum(1 for leader in data_leaders.values() if leader == victim),
            **figures, "time_to_new_coordinator_s": _round(to_coordinator),
            "time_to_first_commit_s": _round(to_commit), "time_to_consuming_again_s": _round(resumed_s),
            "rebalances_after_kill": rebalances_after_kill, "join_rebalance_s": _round(rebalance_s),
            "violations": violations}


def test_coordinator_kill_9_the_group_resumes_from_its_committed_offsets(pko_cluster_factory: ClusterFactory,
                                                                         tmp_path: Path) -> None:
    figures = run_coordinator_kill(pko_cluster_factory, tmp_path)
    print(json.dumps(figures))
    assert not figures["violations"], "\n".join(figures["violations"])


# -- preferred leadership -----------------------------------------------------------------------


def _not_preferred(cluster: RunningCluster, topics: tuple[str, ...], via: list[int] | None = None) -> dict[str, list[int]]:
    """topic → partitions whose leader is not their first replica."""
    out: dict[str, list[int]] = {}
    for topic in topics:
        states = partition_states(cluster, topic, via)
        wrong = [p for p, s in states.items() if not s.replicas or s.leader != s.replicas[0]]
        if wrong:
            out[topic] = wrong
    return out


def run_preferred(factory: ClusterFactory, workdir: Path, rate: int = RATE) -> Figures:
    """A clean restart of the node that is the preferred leader of partition 0: leadership moves
    away at its SIGTERM and back to every partition's first replica once it is in the ISR again."""
    cluster = factory(PREFERRED_YAML)
    history = History()
    wait_for_full_isr(cluster, TOPIC)
    poll_until(lambda: find_coordinator(cluster, GROUP), 15, "a coordinator (__consumer_offsets created)")
    _offsets_rf(cluster)
    topics = (TOPIC, OFFSETS_TOPIC)
    poll_until(lambda: not _not_preferred(cluster, topics), 20, "every partition led by its first replica")
    victim = partition_states(cluster, TOPIC)[0].replicas[0]
    survivors = [b for b in brokers(cluster) if b != victim]
    preferred_on_victim = {t: sorted(p for p, s in partition_states(cluster, t).items() if s.replicas[0] == victim)
                           for t in topics}
    violations: list[str] = []
    producer = RecordingProducer(cluster.bootstrap_servers, TOPIC, history, proc="p0", max_in_flight=500)
    producer.start(partitions=PARTITIONS, rate_per_s=rate)
    try:
        poll_until(lambda: producer.acked >= rate // 2, 15, "acks before the restart")
        moved_s, shutdown_s = _timed_sigterm(cluster, victim, survivors, history)
        restart(cluster, victim, history)
        started_at = history.now()
        wait_for_full_isr(cluster, TOPIC, REJOIN_TIMEOUT_S)
        wait_for_full_isr(cluster, OFFSETS_TOPIC, REJOIN_TIMEOUT_S)
        in_isr_s = history.now() - started_at
        poll_until(lambda: not _not_preferred(cluster, topics), 20,
                               f"leadership back on node {victim} for its preferred partitions")
        to_preferred = history.now() - started_at
        acked = producer.acked
        poll_until(lambda: producer.acked >= acked + rate // 2, 15, "acks after leadership moved back")
    except BaseException:
        producer.stop(5)
        raise
    unanswered = producer.stop(30)
    reads = drain(cluster.bootstrap_servers, TOPIC, PARTITIONS, history)
    result = check(history, reads)
    history.dump_jsonl(workdir / "preferred-history.jsonl")
    _expect(violations, result.valid, f"checker: {result.summary()}")
    _expect(violations, unanswered == 0, f"{unanswered} sends unanswered")
    _expect(violations, moved_s is not None, f"node {victim} still led partitions 20 s after its SIGTERM")
    _expect(violations, shutdown_s <= SHUTDOWN_BOUND_S, f"shutdown took {shutdown_s:.1f} s")
    return {"test": "preferred-leader", "fault": "SIGTERM restart of a preferred leader", "node": victim,
            "preferred_partitions_of_node": preferred_on_victim, **result.figures(), "unanswered": unanswered,
            "shutdown_s": _round(shutdown_s), "leadership_moved_s": _round(moved_s),
            "in_isr_after_start_s": _round(in_isr_s), "preferred_restored_after_start_s": _round(to_preferred),
            "longest_ack_gap_s": _round(longest_ack_gap(history)), "violations": violations}


def test_preferred_leadership_is_restored_after_a_restart(pko_cluster_factory: ClusterFactory,
                                                          tmp_path: Path) -> None:
    figures = run_preferred(pko_cluster_factory, tmp_path)
    print(json.dumps(figures))
    assert not figures["violations"], "\n".join(figures["violations"])
