"""A Jepsen-style history of client operations (specs/reliability.md §5.2 item 2).

Every client operation is an ``invoke`` followed by exactly one completion:

* ``ok``: done and acknowledged; a send carries the partition and offset the broker answered;
* ``fail``: definitely did not happen (a send refused before it left the client, or an error
  that Kafka defines as "nothing was appended", e.g. MESSAGE_TOO_LARGE);
* ``info``: unknown outcome (a timeout, a lost connection): the record may or may not be in the
  log, and the checker accepts either.

Operations not completed when the history is read count as ``info`` (``History.pending``).
Fault injections are recorded the same way under the process ``nemesis`` (``f``: kill, pause,
resume, restart …, ``value``: the node), so a history tells when each fault happened.

Every client (confluent-kafka in ``clients.py``, or a raw Kafka-protocol producer of a test's
own) records through the same four calls, from any thread::

    op = history.invoke("p0", "send", value, partition=2)
    history.ok(op, partition=2, offset=41)      # or history.fail(op, "…") / history.info(op, "…")

Timestamps ``t`` are seconds of ``time.monotonic()`` since the history was created.
``dump_jsonl``/``load_jsonl`` write and read one JSON object per line:
``{"index", "t", "proc", "type", "f", "value", "partition", "offset", "error", "invoke"}``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

OpType = Literal["invoke", "ok", "fail", "info"]
#: The process name of fault injections.
NEMESIS = "nemesis"


@dataclass(frozen=True)
class Op:
    """One event of a history. A completion names its invocation by ``invoke`` (its index)."""

    index: int
    t: float
    proc: str
    type: OpType
    f: str
    value: str | None = None
    partition: int | None = None
    offset: int | None = None
    error: str | None = None
    invoke: int | None = None

    def to_json(self) -> str:
        """This event as one JSON line (no trailing newline)."""
        return json.dumps(asdict(self), separators=(",", ":"))


class History:
    """A thread-safe, append-only list of ``Op`` with monotonic timestamps."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()
        self._ops: list[Op] = []
        self._open: dict[int, Op] = {}

    # -- recording -------------------------------------------------------------------------

    def now(self) -> float:
        """Seconds since the history began (the clock of every ``Op.t``)."""
        return self._clock() - self._start

    def _append(self, **fields: Any) -> Op:
        with self._lock:
            op = Op(index=len(self._ops), t=self.now(), **fields)
            self._ops.append(op)
            if op.type == "invoke":
                self._open[op.index] = op
            else:
                if op.invoke not in self._open:
                    raise ValueError(f"{op.type} of op {op.invoke}: not an open invocation")
                del self._open[op.invoke]
            return op

    def invoke(self, proc: str, f: str, value: str | None = None, partition: int | None = None) -> Op:
        """Record that ``proc`` starts operation ``f`` (e.g. ``send`` of ``value``)."""
        return self._append(proc=proc, type="invoke", f=f, value=value, partition=partition)

    def ok(self, invocation: Op, partition: int | None = None, offset: int | None = None,
           value: str | None = None) -> Op:
        """``invocation`` succeeded; a send gives the acknowledged partition and offset."""
        return self._complete("ok", invocation, partition, offset, None, value)

    def fail(self, invocation: Op, error: str) -> Op:
        """``invocation`` definitely had no effect."""
        return self._complete("fail", invocation, invocation.partition, None, error, None)

    def info(self, invocation: Op, error: str) -> Op:
        """``invocation`` may or may not have had its effect (timeout, lost connection)."""
        return self._complete("info", invocation, invocation.partition, None, error, None)

    def _complete(self, kind: OpType, invocation: Op, partition: int | None, offset: int | None,
                  error: str | None, value: str | None) -> Op:
        return self._append(proc=invocation.proc, type=kind, f=invocation.f,
                            value=invocation.value if value is None else value,
                            partition=invocation.partition if partition is None else partition,
                            offset=offset, error=error, invoke=invocation.index)

    def nemesis(self, f: str, node: int | str, outcome: Callable[[], Any] | None = None) -> Any:
        """Record a fault ``f`` on ``node`` around ``outcome()`` (its result is returned); an
        exception from it is recorded as ``info`` and raised again."""
        op = self.invoke(NEMESIS, f, str(node))
        try:
            result = outcome() if outcome is not None else None
        except BaseException as exc:
            self.info(op, repr(exc))
            raise
        self.ok(op)
        return result

    # -- reading ---------------------------------------------------------------------------

    @property
    def ops(self) -> list[Op]:
        """A copy of every event so far, in order."""
        with self._lock:
            return list(self._ops)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def pending(self) -> list[Op]:
        """Invocations with no completion yet (unknown outcome, as ``info``)."""
        with self._lock:
            return list(self._open.values())

    def count(self, kind: OpType, f: str | None = None, proc: str | None = None) -> int:
        """How many events of ``kind`` (and ``f``, ``proc`` if given) there are."""
        return sum(1 for op in self.ops if op.type == kind and (f is None or op.f == f)
                   and (proc is None or op.proc == proc))

    def first_ok_after(self, t: float, f: str = "send", partitions: Iterable[int] | None = None) -> Op | None:
        """The first ``ok`` of ``f`` completed at or after ``t`` (on one of ``partitions``)."""
        wanted = None if partitions is None else set(partitions)
        return next((op for op in self.ops if op.type == "ok" and op.f == f and op.t >= t
                     and op.proc != NEMESIS and (wanted is None or op.partition in wanted)), None)

    def nemesis_ops(self) -> list[Op]:
        """The completed fault injections, in order."""
        return [op for op in self.ops if op.proc == NEMESIS and op.type != "invoke"]

    # -- JSON lines ------------------------------------------------------------------------

    def dump_jsonl(self, path: str | Path) -> Path:
        """Write every event as one JSON line to ``path``; returns it."""
        target = Path(path)
        target.write_text("".join(op.to_json() + "\n" for op in self.ops))
        return target

    @classmethod
    def load_jsonl(cls, path: str | Path) -> History:
        """A history read back from ``dump_jsonl``'s file (timestamps as written)."""
        return cls.from_ops(Op(**json.loads(line)) for line in Path(path).read_text().splitlines() if line)

    @classmethod
    def from_ops(cls, ops: Iterable[Op]) -> History:
        """A history holding ``ops`` as given (for checkers and synthetic tests)."""
        history = cls()
        for op in ops:
            history._ops.append(op)
            if op.type == "invoke":
                history._open[op.index] = op
            else:
                history._open.pop(op.invoke if op.invoke is not None else -1, None)
        return history
