"""The checker of the fault tests (specs/reliability.md §2.7 ideas 1-3, §5.2 item 3).

``check(history, reads, replicas=…)`` compares what the clients were told (the history of
``history.py``) with what a consumer read back from the beginning of every partition after the
run (``reads``: partition → [(offset, value)] in log order) and, optionally, with the batches of
each replica's segment files (``pko dump-log --output json``, see ``batches_from_dump``):

* ``lost``: acknowledged (``ok``) but not read back;
* ``duplicates``: a value read at more than one offset (one per extra copy);
* ``offset_mismatches``: a value read at another offset than its acknowledgement said, or two
  different values read at one offset (Jepsen's inconsistent offsets);
* ``reordered``: within one partition, two records of one producer in the log in the opposite
  order of their sends (nonmonotonic send: with idempotence, a producer's order holds);
* ``unexpected``: read but never sent by anyone;
* ``failed_but_read``: read although its send ``fail``-ed (a fail promises "not written");
* ``divergent``: partitions whose replicas' batch lists (base offset, last offset, leader epoch,
  producer id, CRC) below the high watermark differ.

An ``info`` send (unknown outcome) may or may not be read: both are fine; ``figures()`` says how
many were. ``CheckResult.valid`` is True when every anomaly count is 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from faults.history import NEMESIS, History, Op

#: partition → [(offset, value)] as read back, in log order.
Reads = Mapping[int, Sequence[tuple[int, str]]]
#: How many examples of each anomaly a result keeps.
EXAMPLES = 5
ANOMALIES = ("lost", "duplicates", "offset_mismatches", "reordered", "unexpected", "failed_but_read", "divergent")


@dataclass(frozen=True)
class BatchSummary:
    """What two replicas of a partition must agree on for one batch (KIP-101)."""

    base_offset: int
    last_offset: int
    leader_epoch: int
    producer_id: int
    crc: int


@dataclass
class CheckResult:
    """Counts of operations and anomalies, a few examples of each anomaly."""

    attempted: int = 0
    acked: int = 0
    failed: int = 0
    indeterminate: int = 0
    indeterminate_read: int = 0
    read: int = 0
    lost: int = 0
    duplicates: int = 0
    offset_mismatches: int = 0
    reordered: int = 0
    unexpected: int = 0
    failed_but_read: int = 0
    divergent: int = 0
    replicas_compared: int = 0
    examples: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))

    def note(self, anomaly: str, example: Any, count: int = 1) -> None:
        """Count ``count`` of ``anomaly`` and keep ``example`` if few are kept yet."""
        setattr(self, anomaly, getattr(self, anomaly) + count)
        if len(self.examples[anomaly]) < EXAMPLES:
            self.examples[anomaly].append(example)

    @property
    def valid(self) -> bool:
        """No anomaly of any kind."""
        return all(getattr(self, name) == 0 for name in ANOMALIES)

    def figures(self) -> dict[str, Any]:
        """Every count as a flat dict, for the one JSON line a fault test prints."""
        names = ("attempted", "acked", "failed", "indeterminate", "indeterminate_read", "read", *ANOMALIES,
                 "replicas_compared")
        return {**{name: getattr(self, name) for name in names}, "valid": self.valid}

    def summary(self) -> str:
        """One line per anomaly found, with examples (for assertion messages)."""
        return "; ".join(f"{name}={getattr(self, name)} e.g. {self.examples[name]}" for name in ANOMALIES
                         if getattr(self, name)) or "no anomaly"


def check(history: History | Iterable[Op], reads: Reads, *, replicas: Mapping[int, Mapping[int, Sequence[BatchSummary]]]
          | None = None, high_watermarks: Mapping[int, int] | None = None, f: str = "send",
          check_order: bool = True) -> CheckResult:
    """Check ``history``'s ``f`` operations against ``reads`` (and ``replicas``: node → partition →
    batches, compared below ``high_watermarks``, partition → offset; default: what was read)."""
    ops = [op for op in history if op.f == f and op.proc != NEMESIS]
    result = CheckResult()
    invokes = {op.index: op for op in ops if op.type == "invoke"}
    completions = {op.invoke: op for op in ops if op.type != "invoke"}
    result.attempted = len(invokes)
    oks = [op for op in completions.values() if op.type == "ok"]
    result.acked = len(oks)
    result.failed = sum(1 for op in completions.values() if op.type == "fail")
    indeterminate = {invokes[i].value for i in invokes if i not in completions or completions[i].type == "info"}
    result.indeterminate = len(indeterminate)
    failed = {op.value for op in completions.values() if op.type == "fail"}

    where = _locations(reads, result)
    result.read = len(where)
    for op in oks:
        found = where.get(op.value or "")
        if not found:
            result.note("lost", {"value": op.value, "partition": op.partition, "offset": op.offset})
        elif op.offset is not None and (op.partition, op.offset) not in found:
            result.note("offset_mismatches", {"value": op.value, "acked": [op.partition, op.offset],
                                              "read": [list(loc) for loc in found]})
    sent = {op.value for op in invokes.values()}
    for value, found in where.items():
        if value not in sent:
            result.note("unexpected", {"value": value, "read": [list(loc) for loc in found]})
        if value in failed:
            result.note("failed_but_read", {"value": value, "read": [list(loc) for loc in found]})
    result.indeterminate_read = sum(1 for value in indeterminate if value in where)
    if check_order:
        _check_order(invokes.values(), reads, result)
    if replicas:
        ends = dict(high_watermarks) if high_watermarks is not None else {
            p: max((o for o, _v in records), default=-1) + 1 for p, records in reads.items()}
        compare_replicas(replicas, ends, result)
    return result


def _locations(reads: Reads, result: CheckResult) -> dict[str, list[tuple[int, int]]]:
    """value → every distinct (partition, offset) it was read at; counts duplicates and offsets
    read with two different values on the way."""
    at: dict[tuple[int, int], str] = {}
    where: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for partition, records in reads.items():
        for offset, value in records:
            seen = at.setdefault((partition, offset), value)
            if seen != value:
                result.note("offset_mismatches", {"partition": partition, "offset": offset, "values": [seen, value]})
            elif (partition, offset) not in where[value]:
                where[value].append((partition, offset))
    for value, found in where.items():
        if len(found) > 1:
            result.note("duplicates", {"value": value, "read": [list(loc) for loc in found]}, len(found) - 1)
    return dict(where)


def _check_order(invokes: Iterable[Op], reads: Reads, result: CheckResult) -> None:
    """Per partition and producer, log order (by offset; the first copy of each value; records
    re-read at one offset once) must follow invocation order."""
    sent_by = {op.value: (op.proc, op.index) for op in invokes}
    for partition, records in reads.items():
        last: dict[str, tuple[int, int, str]] = {}
        log = dict(sorted(dict(reversed(records)).items()))  # offset -> the first value read there
        seen: set[str] = set()
        for offset, value in log.items():
            if value not in sent_by or value in seen:
                continue
            seen.add(value)
            proc, index = sent_by[value]
            previous = last.get(proc)
            if previous is not None and index < previous[0]:
                result.note("reordered", {"partition": partition, "proc": proc,
                                          "earlier_in_log": [previous[2], previous[1]], "later_in_log": [value, offset]})
            if previous is None or index > previous[0]:
                last[proc] = (index, offset, value)


def compare_replicas(replicas: Mapping[int, Mapping[int, Sequence[BatchSummary]]], high_watermarks: Mapping[int, int],
                     result: CheckResult | None = None) -> CheckResult:
    """Count partitions whose replicas (node → partition → batches) differ below the high
    watermark; an example names the first differing batch of each node."""
    result = result if result is not None else CheckResult()
    partitions = sorted({p for batches in replicas.values() for p in batches})
    for partition in partitions:
        end = high_watermarks.get(partition)
        held = {node: [b for b in batches[partition] if end is None or b.base_offset < end]
                for node, batches in replicas.items() if partition in batches}
        result.replicas_compared += len(held)
        nodes = sorted(held)
        reference = held[nodes[0]]
        for node in nodes[1:]:
            if held[node] != reference:
                result.note("divergent", {"partition": partition, "high_watermark": end,
                                          **_first_difference(nodes[0], reference, node, held[node])})
                break
    return result


def _first_difference(a: int, batches_a: Sequence[BatchSummary], b: int,
                      batches_b: Sequence[BatchSummary]) -> dict[str, Any]:
    for i in range(max(len(batches_a), len(batches_b))):
        x = batches_a[i] if i < len(batches_a) else None
        y = batches_b[i] if i < len(batches_b) else None
        if x != y:
            return {"batch": i, f"node_{a}": x and x.__dict__, f"node_{b}": y and y.__dict__}
    return {}


def batches_from_dump(payload: Sequence[Mapping[str, Any]]) -> list[BatchSummary]:
    """The batches of one partition from ``pko dump-log --output json`` of its ``.log`` files (a
    list of file objects), in offset order; non-log files are skipped."""
    logs = sorted((f for f in payload if f.get("type") == "log"), key=lambda f: f["log_start_offset"])
    return [BatchSummary(b["base_offset"], b["last_offset"], b["partition_leader_epoch"], b["producer_id"], b["crc"])
            for f in logs for b in f["batches"]]
