"""Group consumers of the fault tests (specs/reliability.md §5.3 T4, T5): members of one consumer
group (confluent-kafka, the classic protocol, eager assignment) that process at least once and
record everything a group checker needs.

Each ``GroupConsumer`` runs one confluent-kafka ``Consumer`` on its own thread:

* processing = appending ``Consumed(t, partition, offset, value, incarnation)`` to ``consumed``
  (``incarnation``: how many assignments this member had so far, so polls can be checked per
  assignment); then the batch's positions are committed **synchronously**
  (``enable.auto.commit=false``): a commit is an invoke and one ok/fail/info op ``commit`` in the
  history (value: ``{partition: offset}`` as JSON) and every acknowledged one is kept in ``commits``;
* every assignment and revocation (``on_assign``/``on_revoke``/``on_lost``) is an op ``assign``/
  ``revoke``/``lost`` in the history and kept in ``events``: ``assignments`` counts the group's
  rebalances as this member saw them (Kafka's VerifiableConsumer counts the same);
* on revocation the processed but uncommitted positions are committed first (Kafka's
  ``onPartitionsRevoked`` advice), so a clean rebalance replays nothing;
* ``close()`` leaves the group (LeaveGroup) after committing; ``crash()`` stops without committing
  what was processed since the last commit, then leaves: the next owner replays those records.

``check_group`` compares what the members processed and committed with what the producer had
acknowledged (``History``) and the log ends; ``stable_assignment``, ``consumed_up_to`` and
``committed_offsets`` are the conditions and the read-back the tests wait on.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from faults.history import History, Op

#: Commit errors after which nothing was committed (the coordinator refused the request); any
#: other error (a timeout, a lost connection) is an unknown outcome.
COMMIT_DEFINITE_FAILURES = frozenset(getattr(KafkaError, name) for name in (
    "ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID", "REBALANCE_IN_PROGRESS", "FENCED_INSTANCE_ID",
    "COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS", "_NO_OFFSET",
    "OFFSET_METADATA_TOO_LARGE", "GROUP_AUTHORIZATION_FAILED", "_ASSIGNMENT_LOST", "_STATE")
    if hasattr(KafkaError, name))

#: Consumer settings of the group tests: manual commits, eager assignment, a session timeout the
#: brokers accept with the tests' group.min.session.timeout.ms, quick reconnects.
GROUP_CONSUMER_CONFIG: dict[str, Any] = {
    "enable.auto.commit": False, "auto.offset.reset": "earliest", "enable.partition.eof": False,
    "partition.assignment.strategy": "range", "session.timeout.ms": 10_000, "heartbeat.interval.ms": 500,
    "max.poll.interval.ms": 30_000, "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
    "retry.backoff.ms": 50, "retry.backoff.max.ms": 200, "fetch.wait.max.ms": 100,
    "statistics.interval.ms": 500,
}


@dataclass(frozen=True)
class Consumed:
    """One record a member processed."""

    t: float
    proc: str
    partition: int
    offset: int
    value: str
    incarnation: int


@dataclass(frozen=True)
class GroupEvent:
    """An assignment (``assign``), a revocation (``revoke``) or a lost assignment (``lost``)."""

    t: float
    proc: str
    kind: str
    partitions: tuple[int, ...]


@dataclass(frozen=True)
class Commit:
    """An acknowledged (``ok``) or unknown-outcome (``info``) commit of ``offsets`` (partition → next
    offset), sent at ``sent`` and answered at ``t`` (history times)."""

    t: float
    proc: str
    type: str
    offsets: Mapping[int, int]
    sent: float


class GroupConsumer:
    """One member of ``group`` consuming ``topic``, processing at least once (module docstring)."""

    def __init__(self, bootstrap: str, topic: str, group: str, history: History, proc: str = "c0",
                 batch: int = 500, **config: Any) -> None:
        self.topic, self.group, self.history, self.proc, self.batch = topic, group, history, proc, batch
        settings = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": proc, **GROUP_CONSUMER_CONFIG,
                    **{key.replace("_", "."): value for key, value in config.items()}}
        self._consumer = Consumer({**settings, "stats_cb": self._stats})
        self.consumed: list[Consumed] = []
        self.events: list[GroupEvent] = []
        self.commits: list[Commit] = []
        self.commit_errors: dict[str, int] = defaultdict(int)
        self.errors: dict[str, int] = defaultdict(int)
        self.assignment: set[int] = set()
        self.incarnation = 0
        self.unassigned_reads = 0  # records of a partition not assigned to this member (must be 0)
        self.stats: dict[str, Any] = {}
        self._processed: dict[int, int] = {}  # partition → next offset to commit
        self._committed: dict[int, int] = {}  # partition → last acknowledged commit of this member
        self._stop = threading.Event()
        self._crash = False
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: BaseException | None = None

    # -- callbacks (called on the member's thread, from poll/consume/close) ----------------------

    def _event(self, kind: str, partitions: Sequence[TopicPartition]) -> None:
        numbers = tuple(sorted(tp.partition for tp in partitions))
        op = self.history.invoke(self.proc, kind, json.dumps(numbers))
        self.events.append(GroupEvent(self.history.now(), self.proc, kind, numbers))
        self.history.ok(op)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.incarnation += 1
        self.assignment = {tp.partition for tp in partitions}
        self._event("assign", partitions)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not self._crash:
            self._commit({p: o for p, o in self._processed.items() if p in {tp.partition for tp in partitions}})
        self._event("revoke", partitions)
        self.assignment -= {tp.partition for tp in partitions}

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._event("lost", partitions)
        self.assignment -= {tp.partition for tp in partitions}

    def _stats(self, payload: str) -> None:
        self.stats = json.loads(payload).get("cgrp", {})

    # -- processing -----------------------------------------------------------------------------

    def _commit(self, positions: Mapping[int, int]) -> bool:
        """Commit ``positions`` not committed yet, synchronously; True if acknowledged."""
        wanted = {p: o for p, o in positions.items() if self._committed.get(p, -1) < o}
        if not wanted:
            return True
        op: Op = self.history.invoke(self.proc, "commit", json.dumps(wanted))
        try:
            answer = self._consumer.commit(offsets=[TopicPartition(self.topic, p, o) for p, o in wanted.items()],
                                           asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0]
            name = error.name() if isinstance(error, KafkaError) else repr(error)
            self.commit_errors[name] += 1
            definite = isinstance(error, KafkaError) and error.code() in COMMIT_DEFINITE_FAILURES
            (self.history.fail if definite else self.history.info)(op, name)
            if not definite:
                self.commits.append(Commit(self.history.now(), self.proc, "info", wanted, op.t))
            return False
        failed = {tp.partition: tp.error for tp in answer or [] if tp.error is not None}
        if failed:
            for error in failed.values():
                self.commit_errors[error.name()] += 1
            self.history.info(op, "; ".join(f"{p}: {e.name()}" for p, e in failed.items()))
            self.commits.append(Commit(self.history.now(), self.proc, "info", wanted, op.t))
            return False
        self.history.ok(op)
        self.commits.append(Commit(self.history.now(), self.proc, "ok", wanted, op.t))
        self._committed.update(wanted)
        return True

    def _process(self, messages: list[Any]) -> None:
        for message in messages:
            error = message.error()
            if error is not None:
                self.errors[error.name()] += 1
                continue
            p, offset = message.partition(), message.offset()
            if p not in self.assignment:
                self.unassigned_reads += 1
            self.consumed.append(Consumed(self.history.now(), self.proc, p, offset,
                                          (message.value() or b"").decode(errors="replace"), self.incarnation))
            self._processed[p] = offset + 1

    def _run(self) -> None:
        try:
            self._consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                     on_lost=self._on_lost)
            while not self._stop.is_set():
                messages = self._consumer.consume(self.batch, 0.1)
                self._process(messages)
                if self._stop.is_set() and self._crash:
                    break  # processed, never committed
                if messages:
                    self._commit(self._processed)
        except BaseException as exc:  # noqa: BLE001 - kept for the test to report
            self.failure = exc
        finally:
            try:
                self._consumer.close()  # on_revoke (committing unless crashed), then LeaveGroup
            finally:
                self._closed.set()

    # -- control --------------------------------------------------------------------------------

    def start(self) -> Self:
        """Subscribe and consume on a thread until ``close()`` or ``crash()``."""
        self._thread = threading.Thread(target=self._run, name=f"group-consumer-{self.proc}", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout_s: float = 30.0) -> bool:
        """Commit what was processed, leave the group, end the thread; True once it ended."""
        self._stop.set()
        return self._closed.wait(timeout_s)

    def crash(self, timeout_s: float = 30.0) -> bool:
        """Stop without committing the records processed since the last commit (a consumer that
        dies between processing and committing), then leave the group."""
        self._crash = True
        return self.close(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and not self._closed.is_set()

    @property
    def assignments(self) -> int:
        """How many assignments this member got (each is one rebalance it took part in)."""
        return sum(1 for e in self.events if e.kind == "assign")

    def positions(self) -> dict[int, int]:
        """partition → next offset this member would process (processed, maybe not committed)."""
        return dict(self._processed)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- group state ------------------------------------------------------------------------------------


def stable_assignment(members: Iterable[GroupConsumer], partitions: Iterable[int]) -> dict[str, tuple[int, ...]] | None:
    """proc → partitions once every live member has an assignment and together they hold each of
    ``partitions`` exactly once (a completed rebalance); None before."""
    live = [m for m in members if m.alive]
    held = {m.proc: tuple(sorted(m.assignment)) for m in live}
    every = sorted(p for parts in held.values() for p in parts)
    if live and all(m.assignments > 0 for m in live) and every == sorted(partitions):
        return held
    return None


def committed_offsets(bootstrap: str, topic: str, group: str, partitions: Iterable[int],
                      timeout_s: float = 10) -> dict[int, int]:
    """partition → the group's committed offset (-1001 when none), by OffsetFetch from a consumer
    that does not join the group."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "client.id": f"offsets-{uuid.uuid4().hex[:6]}"})
    try:
        answer = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=timeout_s)
        return {tp.partition: tp.offset for tp in answer}
    finally:
        consumer.close()


def consumed_up_to(members: Iterable[GroupConsumer], ends: Mapping[int, int]) -> bool:
    """Every partition's records below ``ends`` processed and committed by some member."""
    members = list(members)
    processed: dict[int, int] = {}
    committed: dict[int, int] = {}
    for m in members:
        for p, o in m.positions().items():
            processed[p] = max(processed.get(p, 0), o)
        for c in m.commits:
            if c.type == "ok":
                for p, o in c.offsets.items():
                    committed[p] = max(committed.get(p, 0), o)
    return all(processed.get(p, 0) >= end and committed.get(p, 0) >= end for p, end in ends.items())


# -- checks -----------------------------------------------------------------------------------------


@dataclass
class GroupCheck:
    """What the members consumed against what was acknowledged and the log (module docstring)."""

    acked: int = 0
    processed: int = 0
    distinct: int = 0
    replayed: int = 0
    gaps: int = 0
    missing_acked: int = 0
    poll_skips: int = 0
    nonmonotonic_polls: int = 0
    unassigned_reads: int = 0
    resumed_below_commit: int = 0
    resumed_above_commit: int = 0
    rebalances: int = 0
    examples: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))

    def note(self, anomaly: str, example: Any) -> None:
        setattr(self, anomaly, getattr(self, anomaly) + 1)
        if len(self.examples[anomaly]) < 5:
            self.examples[anomaly].append(example)

    ANOMALIES = ("gaps", "missing_acked", "poll_skips", "nonmonotonic_polls", "unassigned_reads",
                 "resumed_below_commit", "resumed_above_commit")

    @property
    def valid(self) -> bool:
        return all(getattr(self, name) == 0 for name in self.ANOMALIES)

    def figures(self) -> dict[str, Any]:
        names = ("acked", "processed", "distinct", "replayed", *self.ANOMALIES, "rebalances")
        return {**{name: getattr(self, name) for name in names},
                "replay_ratio": round(self.replayed / self.processed, 4) if self.processed else 0.0,
                "group_valid": self.valid}

    def summary(self) -> str:
        return "; ".join(f"{name}={getattr(self, name)} e.g. {self.examples[name]}" for name in self.ANOMALIES
                         if getattr(self, name)) or "no anomaly"


def check_group(history: History, members: Sequence[GroupConsumer], ends: Mapping[int, int]) -> GroupCheck:
    """Check the members' processing (at least once) against ``history``'s acknowledged sends and
    the log ends (partition → high watermark after the run):

    * ``gaps``: offsets below the end of a partition processed by no member (Kafka's at-least-once
      promise: none); ``missing_acked``: acknowledged values processed by no member;
    * ``poll_skips`` / ``nonmonotonic_polls``: within one member's assignment, a partition's
      records must come at consecutive offsets (Jepsen's poll-skip / nonmonotonic-poll);
    * ``unassigned_reads``: records of a partition the member did not hold;
    * ``resumed_below_commit``: a new owner's first offset below the highest commit acknowledged
      before its assignment (an acknowledged commit lost: replays beyond what was uncommitted);
      ``resumed_above_commit``: above the highest commit made (acknowledged or unknown) before it
      (records skipped);
    * ``replayed``: records processed more than once (allowed: at least once), ``rebalances``:
      assignments summed over the members.
    """
    result = GroupCheck()
    consumed = [c for m in members for c in m.consumed]
    result.processed = len(consumed)
    seen: dict[int, set[int]] = defaultdict(set)
    for c in consumed:
        seen[c.partition].add(c.offset)
    result.distinct = sum(len(offsets) for offsets in seen.values())
    result.replayed = result.processed - result.distinct
    for p, end in ends.items():
        for o in range(end):
            if o not in seen[p]:
                result.note("gaps", {"partition": p, "offset": o})
    values = {c.value for c in consumed}
    for op in history.ops:
        if op.type == "ok" and op.f == "send":
            result.acked += 1
            if op.value not in values:
                result.note("missing_acked", {"value": op.value, "partition": op.partition, "offset": op.offset})
    result.unassigned_reads = sum(m.unassigned_reads for m in members)
    result.rebalances = sum(m.assignments for m in members)
    commits = sorted((c for m in members for c in m.commits), key=lambda c: c.t)
    for m in members:
        _check_member(m, commits, result)
    return result


def _check_member(member: GroupConsumer, commits: Sequence[Commit], result: GroupCheck) -> None:
    runs: dict[tuple[int, int], list[Consumed]] = defaultdict(list)
    for c in member.consumed:
        runs[(c.incarnation, c.partition)].append(c)
    assigned_at = {i + 1: e.t for i, e in enumerate(e for e in member.events if e.kind == "assign")}
    for (incarnation, p), records in runs.items():
        for a, b in zip(records, records[1:], strict=False):
            if b.offset <= a.offset:
                result.note("nonmonotonic_polls", {"proc": member.proc, "partition": p, "offsets": [a.offset, b.offset]})
            elif b.offset != a.offset + 1:
                result.note("poll_skips", {"proc": member.proc, "partition": p, "offsets": [a.offset, b.offset]})
        since = assigned_at.get(incarnation)
        if since is None:
            continue
        acked = [c.offsets[p] for c in commits if c.t <= since and c.type == "ok" and p in c.offsets]
        made = [c.offsets[p] for c in commits if c.t <= since and p in c.offsets]
        first = records[0].offset
        if acked and first < max(acked):
            result.note("resumed_below_commit", {"proc": member.proc, "partition": p, "first": first,
                                                 "committed": max(acked)})
        if first > max(made, default=0):
            result.note("resumed_above_commit", {"proc": member.proc, "partition": p, "first": first,
                                                 "committed": max(made, default=0)})
