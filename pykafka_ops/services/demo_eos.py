"""`pko demo --exactly-once`: the design document's consume-transform-produce flow from ``orders``
to ``orders-validated`` (idempotent, transactional, read_committed, the consumed offsets sent in
each transaction), killed with SIGKILL part-way and restarted, next to the at-least-once flow
under the same kill.

Both flows run the copier of ``pykafka_ops.services.copier`` in a child process, a few orders per
batch: each is killed between producing a batch and committing it (a pause there makes the kill
land in that window every time), then restarted with the same ``transactional.id`` / group. The
at-least-once copier (flush, then commit the offsets) copies that batch again: duplicates. The
exactly-once copier's new instance fences the killed one, whose open transaction is aborted, and
resumes at the offsets committed with the last committed transaction: output == input. Outputs
are read read_committed from the beginning; only this run's orders are counted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pykafka_ops.services.copier import CopierConfig
from pykafka_ops.services.copier_run import CopierRun, read_to_end

SOURCE = "orders"
SINKS = {"at-least-once": "orders-validated-at-least-once", "exactly-once": "orders-validated"}
#: Group and transactional id of the copiers (the at-least-once one gets a suffix).
VALIDATOR = "orders-validator"
#: Orders per batch (transaction), and how long a copier waits between its produce and its commit.
BATCH, HOLD_MS = 4, 300


@dataclass(frozen=True)
class FlowResult:
    """One flow's output for this run's orders, after the kill and the restart."""

    guarantee: str
    sink: str
    input: int
    output: int
    distinct: int
    #: Records the copier had copied and committed when it was killed.
    killed_after: int

    @property
    def duplicates(self) -> int:
        """Output records beyond the first copy of each order."""
        return self.output - self.distinct

    @property
    def missing(self) -> int:
        """Orders of the input not in the output."""
        return self.input - self.distinct

    @property
    def exact(self) -> bool:
        """Output == input: every order once."""
        return self.output == self.distinct == self.input


def _ensure_topics(bootstrap_servers: str, names: Iterable[str], partitions: int, timeout_s: float) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0})
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = [NewTopic(name, partitions) for name in names if name not in existing]
    if missing:
        for future in admin.create_topics(missing, operation_timeout=timeout_s).values():
            future.result(timeout=timeout_s)


def run_flow(bootstrap_servers: str, guarantee: str, order_ids: set[str], timeout_s: float = 60) -> FlowResult:
    """Copy ``orders`` with ``guarantee``, SIGKILL the copier mid-batch once a third of ``order_ids`` is
    copied, restart it, let it finish; count this run's orders in the output."""
    suffix = "" if guarantee == "exactly-once" else f"-{guarantee}"
    config = CopierConfig(bootstrap_servers, SOURCE, SINKS[guarantee], VALIDATOR + suffix, VALIDATOR + suffix,
                          guarantee, "validate-order", BATCH, HOLD_MS, exit_idle_ms=1_000)
    run = CopierRun(config).start()
    try:
        run.wait(lambda: bool(run.current.of("ready")), timeout_s, "ready")
        earlier = max(run.current.of("ready")[0]["pending"] - len(order_ids), 0)  # orders of earlier runs first
        run.wait_committed(earlier + len(order_ids) // 3, timeout_s)
        killed_after = run.committed_records
        run.kill_mid_transaction(timeout_s)
        run.finish(timeout_s)
    finally:
        run.stop()
    copies: Counter[str] = Counter()
    for values in read_to_end(bootstrap_servers, SINKS[guarantee], timeout_s=timeout_s).values():
        for value in values:
            order_id = json.loads(value).get("order_id")
            if order_id in order_ids:
                copies[order_id] += 1
    return FlowResult(guarantee, SINKS[guarantee], len(order_ids), sum(copies.values()), len(copies), killed_after)


def compare_flows(bootstrap_servers: str, order_ids: set[str], partitions: int = 3,
                  timeout_s: float = 60) -> list[FlowResult]:
    """The at-least-once flow, then the exactly-once flow, each killed once part-way."""
    _ensure_topics(bootstrap_servers, SINKS.values(), partitions, timeout_s)
    return [run_flow(bootstrap_servers, guarantee, order_ids, timeout_s) for guarantee in SINKS]
