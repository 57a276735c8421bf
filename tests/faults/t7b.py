"""T7b (specs/reliability.md §5.3; issue 17): a delayed EndTxn must not end a *later* transaction.

Soak tier only (``cd tests && python -m faults.soak --t7b N``); pytest does not collect this
module. One node (it is the transaction coordinator). A confluent-kafka transactional producer,
connected through a ``ChaosProxy``, runs rounds of three transactions on ``t7b``, each of
``RECORDS`` records whose value says the transaction number and its intent (``t0003-A-07``: the
8th record of transaction 3, meant to be aborted; ``C``: meant to be committed):

1. transaction A (commit in even rounds, abort in odd ones): its EndTxn request is held by the
   proxy for ``delay_s``. librdkafka (2.16, EndTxn v1) times the in-flight request out after
   ``socket.timeout.ms`` (REQTMOUT), closes the connection ("1 request(s) timed out: disconnect"),
   and retries the same EndTxn after ``retry.backoff.ms`` on a new connection ("Retrying
   EndTxnRequest … retry 1/…"); the retry is not held, gets NO_ERROR, so A ends as the app asked
   and ``commit_transaction``/``abort_transaction`` returns success;
2. transaction B, with the opposite intent: half its records are produced (and acknowledged), then
   the app waits until the proxy has sent the held EndTxn of A to the node and got its answer,
   produces the other half and ends B;
3. transaction C, committed: a witness that the producer (or the instance that replaced it after
   a fatal error) goes on.

Then a read_committed consumer reads the partition and a read_uncommitted one says what was
written. Figures: ``aborted_read`` (A-tagged records readable), ``committed_missing`` (C-tagged
records of transactions whose commit the app was told succeeded, not readable), ``torn_txns``
(transactions partly readable), ``hanging`` (the last stable offset behind the high watermark at
the end: an open transaction nothing will end), the late EndTxns' answers, the app's outcomes.

Why a stale EndTxn can end B (transaction version 1, what librdkafka, kafka-python and aiokafka
speak; our broker serves EndTxn v0-3 only): an EndTxn v0-3 names the transactional id, the
producer id and epoch and commit/abort, but not *which* transaction. Under TV1 the epoch stays the
same for every transaction of one producer session, so when A's late EndTxn arrives while B is
Ongoing with the same producer id and epoch, the coordinator (ours, like Kafka's
``TransactionCoordinator.endTransaction``) cannot tell it from B's own EndTxn and acts on B: a
commit makes B's records so far visible (A-tagged records become readable), an abort drops
them. B's later records are then written without an AddPartitionsToTxn (librdkafka believes the
partition is in B already): a transaction on the partition the coordinator does not know, ended
by the next marker of that producer id there — here C's, from the replacement producer (same id,
bumped epoch) — so they take C's fate (a meant-commit B ends torn; a meant-abort B's second half
becomes readable). Had no later transaction of the producer id touched the partition, it would
hang (``hanging``: last stable offset stuck below the high watermark).

That is the flaw Jepsen reported against Kafka in 2024 [S30]; KIP-890 part 2 (transaction version
2: EndTxn v5, the epoch bumped at every transaction end, so a stale EndTxn carries an old epoch and
is fenced) is the fix, and no client we use speaks it. The trial therefore classifies an anomaly
as ``tv1_flaw_reproduced`` — expected and reported, not a failure — only when every anomalous
transaction is a B that the coordinator showed Ongoing (DescribeTransactions, just before the late
EndTxn was sent) under the very producer id and epoch the late EndTxn carries, and the late EndTxn
was answered NONE: the protocol gives the coordinator nothing to tell it apart. Any other anomaly
(in A or C, or with the late EndTxn refused) is a violation. With ``delay_s`` below
``socket.timeout.ms`` librdkafka gets the late answer itself and nothing happens (verdict ``no
anomaly``): the flaw needs a client that gives up on an EndTxn and retries it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException, Producer

from cluster.pytest_plugin import ClusterFactory, RunningCluster, wait_until
from faults.proxy import ChaosProxy, Faults, LateRequest
from pykafka_ops.client.wire import WireClient
from pykafka_ops.errors import ErrorCode
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.services.copier_run import read_to_end

TOPIC = "t7b"
TRANSACTIONAL_ID = "t7b-producer"
RECORDS = 10
ONE_NODE_YAML = f"""\
cluster: {{name: faults-t7b}}
nodes:
  - {{id: 1}}
broker:
  offsets.topic.num.partitions: 1
  transaction.state.log.num.partitions: 1
  transaction.abort.timed.out.transaction.cleanup.interval.ms: 500
topics:
  - {{name: {TOPIC}, partitions: 1, replication.factor: 1}}
"""
#: librdkafka gives up on an EndTxn after socket.timeout.ms and retries it on a new connection.
PRODUCER_CONFIG = {"socket.timeout.ms": 1_000, "transaction.timeout.ms": 20_000, "retry.backoff.ms": 100,
                   "log_level": 0}
_VALUE = re.compile(r"t(\d+)-([AC])-(\d+)")

Figures = dict[str, Any]


@dataclass
class Txn:
    """One transaction of the workload: its number, intent, role in its round and what the app saw."""

    number: int
    commit: bool
    role: str
    outcome: str = ""
    #: the coordinator's (state, producer id, epoch) of a B just before and just after its round's late EndTxn
    before: tuple[str, int, int] | None = None
    after: tuple[str, int, int] | None = None
    late: LateRequest | None = field(default=None, repr=False)


class _App:
    """The transactional producer app: a new instance (same ``transactional.id``) after a fatal error."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap, self.instances, self.delivery_errors = bootstrap, 0, Counter[str]()
        self.producer = self._new()

    def _new(self) -> Producer:
        self.instances += 1
        producer = Producer({"bootstrap.servers": self.bootstrap, "transactional.id": TRANSACTIONAL_ID,
                             **PRODUCER_CONFIG})
        producer.init_transactions(30)
        return producer

    def _delivered(self, err: Any, _message: Any) -> None:
        if err is not None:
            self.delivery_errors[err.name()] += 1

    def produce(self, txn: Txn, indexes: range) -> None:
        """``indexes`` records of ``txn``, flushed (acknowledged or failed)."""
        for i in indexes:
            value = f"t{txn.number:04d}-{'C' if txn.commit else 'A'}-{i:02d}"
            self.producer.produce(TOPIC, value.encode(), partition=0, on_delivery=self._delivered)
        self.producer.flush(30)

    def end(self, txn: Txn, timeout_s: float = 30) -> None:
        """Commit or abort ``txn`` as meant, retrying retriable errors (librdkafka's contract); a
        fatal error replaces the producer. ``txn.outcome``: ok, fatal:<error>, aborted:<error> …"""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if txn.commit:
                    self.producer.commit_transaction(max(deadline - time.monotonic(), 1))
                else:
                    self.producer.abort_transaction(max(deadline - time.monotonic(), 1))
                txn.outcome = "ok"
                return
            except KafkaException as exc:
                error = exc.args[0]
                if error.fatal():
                    txn.outcome = f"fatal:{error.name()}"
                    self.producer = self._new()
                    return
                if error.retriable() and time.monotonic() < deadline:
                    continue
                if error.txn_requires_abort():
                    self.producer.abort_transaction(30)
                    txn.outcome = f"aborted:{error.name()}"
                    return
                raise

    def close(self) -> None:
        self.producer.flush(10)


def _producer_of(late: LateRequest) -> tuple[int, int, bool]:
    """(producer id, epoch, committed) of a held EndTxn request."""
    header = codec.decode_request_header(memoryview(late.frame))
    body = codec.decode_request(late.api_key, late.version, memoryview(late.frame), header.size)
    return int(body.producer_id), int(body.producer_epoch), bool(body.committed)


def _coordinator_state(cluster: RunningCluster) -> tuple[str, int, int]:
    """(state, producer id, epoch) of ``TRANSACTIONAL_ID`` on the coordinator (DescribeTransactions v0)."""
    with WireClient(cluster.config.host, cluster.config.node(1).port) as client:
        answer = client.request(ApiKey.DESCRIBE_TRANSACTIONS, 0, {"transactional_ids": [TRANSACTIONAL_ID]})
    state = answer.transaction_states[0]
    return state.transaction_state, int(state.producer_id), int(state.producer_epoch)


def _end_offsets(cluster: RunningCluster) -> tuple[int, int]:
    """(high watermark, last stable offset) of partition 0 (ListOffsets v2, latest)."""
    ends = []
    with WireClient(cluster.config.host, cluster.config.node(1).port) as client:
        for isolation in (0, 1):
            answer = client.request(ApiKey.LIST_OFFSETS, 2, {
                "replica_id": -1, "isolation_level": isolation,
                "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0, "timestamp": -1}]}]})
            ends.append(answer.topics[0].partitions[0].offset)
    return ends[0], ends[1]


def _tally(values: list[str]) -> dict[int, int]:
    """transaction number → records of it among ``values``."""
    return Counter(int(m.group(1)) for m in map(_VALUE.fullmatch, values) if m)


def run_t7b(factory: ClusterFactory, workdir: Path, rounds: int = 4, delay_s: float = 4.0) -> Figures:
    """T7b: ``rounds`` rounds, each holding one EndTxn (commit, abort, commit …) for ``delay_s``."""
    cluster = factory(ONE_NODE_YAML)
    started = time.monotonic()
    faults = Faults(apis=frozenset(), delay_request_s=delay_s, hold_apis=frozenset({ApiKey.END_TXN}), hold_requests=0)
    txns: list[Txn] = []
    with ChaosProxy((cluster.config.host, cluster.config.node(1).port), faults) as proxy:
        app = _App(proxy.bootstrap)
        try:
            for round_number in range(rounds):
                a = Txn(len(txns), commit=round_number % 2 == 0, role="A")
                b = Txn(a.number + 1, commit=not a.commit, role="B")
                c = Txn(a.number + 2, commit=True, role="C")
                txns += [a, b, c]
                app.producer.begin_transaction()
                app.produce(a, range(RECORDS))
                proxy.faults = dataclasses.replace(proxy.faults, hold_requests=proxy.stats["held"] + 1)
                app.end(a)
                a.late = b.late = proxy.late[-1] if len(proxy.late) > round_number else None
                app.producer.begin_transaction()
                app.produce(b, range(RECORDS // 2))
                if b.late is not None:
                    late = b.late
                    b.before = _coordinator_state(cluster)
                    wait_until(lambda: late.error_code is not None or proxy.stats["late_failed"], delay_s + 15,
                               "the held EndTxn answered")
                    b.after = _coordinator_state(cluster)
                app.produce(b, range(RECORDS // 2, RECORDS))
                app.end(b)
                app.producer.begin_transaction()
                app.produce(c, range(RECORDS))
                app.end(c)
        finally:
            app.close()
        late_requests = list(proxy.late)
        stats = dict(proxy.stats)
    return _figures(cluster, txns, late_requests, stats, app, time.monotonic() - started)


def _figures(cluster: RunningCluster, txns: list[Txn], late_requests: list[LateRequest], stats: dict[str, int],
             app: _App, seconds: float) -> Figures:
    written = _tally(read_to_end(cluster.bootstrap_servers, TOPIC, [0], isolation_level="read_uncommitted")[0])
    high_watermark, stable = _end_offsets(cluster)
    visible = _tally(read_to_end(cluster.bootstrap_servers, TOPIC, [0])[0])
    wrong = []
    for txn in txns:
        seen, total = visible.get(txn.number, 0), written.get(txn.number, 0)
        meant = total if txn.commit and txn.outcome == "ok" else 0 if not txn.commit else None
        if (meant is not None and seen != meant) or 0 < seen < total:
            wrong.append(txn)
    aborted_read = sum(visible.get(t.number, 0) for t in txns if not t.commit)
    committed_missing = sum(written.get(t.number, 0) - visible.get(t.number, 0)
                            for t in txns if t.commit and t.outcome == "ok")
    torn = [t.number for t in txns if 0 < visible.get(t.number, 0) < written.get(t.number, 0)]
    explained = [t for t in wrong if _stale_end_txn_hit(t)]
    violations = []
    if len(explained) < len(wrong):
        violations.append("anomalies the late EndTxn does not explain: " + ", ".join(
            f"txn {t.number} ({t.role}, {'commit' if t.commit else 'abort'}, {t.outcome}): "
            f"{visible.get(t.number, 0)}/{written.get(t.number, 0)} readable" for t in wrong if t not in explained))
    if len(late_requests) != sum(t.role == "A" for t in txns):
        violations.append(f"{len(late_requests)} EndTxn requests held, expected one per round")
    verdict = "no anomaly" if not wrong else "tv1_flaw_reproduced" if not violations else "violation"
    return {"test": "T7B", "verdict": verdict, "txns": len(txns), "records_per_txn": RECORDS,
            "aborted_read": aborted_read, "committed_missing": committed_missing, "torn_txns": len(torn),
            "torn": torn, "hanging": stable < high_watermark, "high_watermark": high_watermark,
            "last_stable_offset": stable,
            "late_end_txns": [_describe(late) for late in late_requests],
            "anomalous_txns": [{"txn": t.number, "role": t.role, "meant": "commit" if t.commit else "abort",
                                "app_outcome": t.outcome, "readable": visible.get(t.number, 0),
                                "written": written.get(t.number, 0), "coordinator_before_late": t.before,
                                "coordinator_after_late": t.after} for t in wrong],
            "app_outcomes": dict(Counter(f"{t.role}:{t.outcome}" for t in txns)),
            "producer_instances": app.instances, "delivery_errors": dict(app.delivery_errors),
            "proxy": stats, "seconds": round(seconds, 1), "violations": violations}


def _stale_end_txn_hit(txn: Txn) -> bool:
    """Whether ``txn`` is a B that was Ongoing when its round's late EndTxn, with B's producer id
    and epoch, arrived and was accepted (NONE) by the node: the TV1 flaw, nothing else."""
    if txn.role != "B" or txn.late is None or txn.late.error_code != ErrorCode.none or txn.before is None:
        return False
    producer_id, epoch, _ = _producer_of(txn.late)
    return txn.before == ("Ongoing", producer_id, epoch)


def _describe(late: LateRequest) -> dict[str, Any]:
    producer_id, epoch, committed = _producer_of(late)
    held_s = None if late.forwarded_at is None else round(late.forwarded_at - late.held_at, 2)
    return {"end": "commit" if committed else "abort", "producer_id": producer_id, "epoch": epoch,
            "version": late.version, "held_s": held_s,
            "answer": None if late.error_code is None else ErrorCode(late.error_code).name,
            "answer_delivered": late.delivered}


def main() -> None:
    """Run one trial outside the soak (``python -m faults.t7b``) and print its JSON line."""
    import tempfile

    from cluster.pytest_plugin import cluster_factory

    with tempfile.TemporaryDirectory(prefix="t7b-") as directory, cluster_factory(Path(directory)) as factory:
        print(json.dumps(run_t7b(factory, Path(directory))))


if __name__ == "__main__":
    main()
