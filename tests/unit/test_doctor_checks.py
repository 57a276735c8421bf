"""`pko doctor`'s checks on hand-built inputs: each pitfall found with its evidence, a healthy
cluster with no finding, thresholds and filters respected."""

from __future__ import annotations

import re

import pytest

from pykafka_ops.models.doctor import (
    DoctorInput,
    DoctorOptions,
    Finding,
    NodeFiles,
    ProduceClient,
    ReplicationThrottles,
    Severity,
)
from pykafka_ops.models.groups import (
    GroupDescription,
    MemberDescription,
    TopicPartition,
)
from pykafka_ops.models.monitor import (
    BrokerState,
    BrokerView,
    GroupView,
    MonitorFrame,
    Overview,
    PartitionView,
    Status,
    TopicPartitionView,
    TopicView,
)
from pykafka_ops.models.replication import (
    HANGING_TRANSACTION,
    OFFLINE,
    UNDER_REPLICATED,
    ReplicationAlert,
)
from pykafka_ops.models.skew import (
    Forensics,
    HeavyKey,
    Imbalance,
    PartitionerFit,
    SkewReport,
    SplitKey,
    WhatIf,
)
from pykafka_ops.models.transactions import HangingTransaction
from pykafka_ops.partitioner import Partitioner, partition
from pykafka_ops.services.doctor_checks import CHECKS, SALTED_KEY, run_checks
from pykafka_ops.services.doctor_producers import clients_of
from pykafka_ops.services.skew_forensics import analyse_placements
from pykafka_ops.services.skew_stats import z_scores

B = "127.0.0.1:9092"
NOW = 1_700_000_000.0


def topic(name: str, rates: list[float] | None = None, sizes: list[int] | None = None, rf: int = 1,
          retention_ms: int | None = 604_800_000, isr: int | None = None, leader: bool = True) -> TopicView:
    """A topic with one partition per rate (or size)."""
    n = len(rates if rates is not None else sizes or [0, 0, 0])
    rates = rates if rates is not None else [0.0] * n
    sizes = sizes if sizes is not None else [100] * n
    replicas = tuple(range(1, rf + 1))
    parts = tuple(TopicPartitionView(i, 1 if leader else None, replicas, replicas[:isr if isr is not None else rf], 0,
                                     sizes[i], rates[i], z, False)
                  for i, z in zip(range(n), z_scores(rates)))
    return TopicView(name, name.startswith("__"), parts, rf, 0, 0, sum(rates), sum(sizes), retention_ms, None, None,
                     None)


def member(name: str, topic_name: str, partitions: list[int]) -> MemberDescription:
    return MemberDescription(name, name, "/127.0.0.1", None, tuple(TopicPartition(topic_name, p) for p in partitions))


def group(gid: str, members: tuple[MemberDescription, ...] = (), rows: tuple[PartitionView, ...] = (),
          status: Status = Status.OK, state: str | None = None) -> GroupView:
    state = state or ("Stable" if members else "Empty")
    total = sum(r.lag for r in rows if r.lag and r.lag > 0)
    seconds = max((r.lag_seconds for r in rows if r.lag_seconds is not None), default=None)
    return GroupView(gid, state, len(members), total, seconds, "record", 10.0, status, "because", (), rows,
                     GroupDescription(gid, state, None, "range", members))


def row(gid: str, topic_name: str, partition: int, lag: int, lag_seconds: float | None = None,
        owner: str | None = None, status: Status = Status.OK) -> PartitionView:
    return PartitionView(gid, topic_name, partition, 100, 100 + lag, lag, lag_seconds, "record", 1.0, 1.0, owner,
                         None, owner, status, "because")


def broker(node_id: int = 1, replicas: int = 10) -> BrokerView:
    return BrokerView(node_id, "127.0.0.1", 9092, BrokerState.RUNNING, ("broker",), None, replicas, replicas, 0)


def make_input(topics: tuple[TopicView, ...] = (), groups: tuple[GroupView, ...] = (),
               brokers: tuple[BrokerView, ...] = (), alerts: tuple[ReplicationAlert, ...] = (), **more) -> DoctorInput:
    overview = Overview(None, 1, 1, 0, 0, len(topics), 0, 0, 0, (), None, None, ())
    frame = MonitorFrame(NOW, 4, 4, overview, groups, topics, brokers or (broker(),), (), (), (), 0.1, alerts)
    return DoctorInput(frame, 2.0, B, **more)


def checks_of(findings: tuple[Finding, ...]) -> list[str]:
    return [f.check for f in findings]


def sample(name: str, key: str, share: float, partitions: int = 3, scanned: int = 1000,
           forensics: Forensics | None = None) -> SkewReport:
    current, salted = Imbalance(1.8, 0.5, 0.3, 2.0, ()), Imbalance(1.05, 0.02, 0.01, 2.0, ())
    what_if = (WhatIf(SALTED_KEY, partitions, "murmur2_random", scanned, current, salted, (), 0.9),)
    heavy = (HeavyKey(key, 2, int(scanned * share), 0, share, 0.7), HeavyKey("other", 0, 10, 0, 0.01, 0.03))
    return SkewReport(name, "sample", partitions, scanned, scanned, True, 0.1, (), current, heavy, 0, 50, True, 0.0,
                      0, 0, forensics, what_if, ())


def test_healthy_cluster_has_no_finding() -> None:
    rows = (row("g", "orders", 0, 0, owner="m1"), row("g", "orders", 1, 3, 0.2, owner="m2"))
    data = make_input((topic("orders", [100.0, 110.0, 95.0]), topic("__consumer_offsets", [50.0, 0.0, 0.0])),
                      (group("g", (member("m1", "orders", [0, 2]), member("m2", "orders", [1])), rows),),
                      key_samples={"orders": sample("orders", "k1", 0.02)},
                      node_files=(NodeFiles(1, 42, 200, 65536),), throttles=ReplicationThrottles({}, {}, ()))
    findings, skipped = run_checks(data, DoctorOptions())
    assert findings == ()
    assert {name for name, _why in skipped} == {"durability", "producer-acks"}


def test_hot_partition_by_rate_z_score_and_size_skew() -> None:
    rates = [10.0] * 9 + [200.0]
    data = make_input((topic("clicks", rates, sizes=[100] * 9 + [5000]), topic("idle", [0.0] * 10)))
    findings, _ = run_checks(data, DoctorOptions())
    hot = [f for f in findings if f.check == "hot-partition"]
    assert [(f.subject.name, f.subject.partition) for f in hot] == [("clicks", 9)]
    assert hot[0].evidence["z_score"] == 3.0 and hot[0].evidence["produce_rate"] == 200.0
    assert "--what-if-key" in hot[0].fix
    size = next(f for f in findings if f.check == "partition-size-skew")
    assert size.severity is Severity.INFO and size.evidence["largest_partition"] == 9
    assert size.evidence["max_over_mean"] == pytest.approx(5000 / 590, abs=0.01)


def test_slow_topic_and_noise_are_not_judged() -> None:
    trickle = topic("trickle", [0.0, 0.0, 5.0])  # 10 records in the window: too few to tell
    noisy = topic("noisy", [100.0] * 99 + [140.0])  # z ≈ 10 but only 1.4 × the mean
    assert run_checks(make_input((trickle, noisy)), DoctorOptions())[0] == ()


def test_hot_key_share_and_salted_what_if() -> None:
    data = make_input((topic("orders", [10.0, 10.0, 10.0]),),
                      key_samples={"orders": sample("orders", "customer-42", 0.4)})
    (finding,) = run_checks(data, DoctorOptions())[0]
    assert finding.check == "hot-key" and finding.severity is Severity.WARN
    assert finding.evidence["key"] == "customer-42" and finding.evidence["share_of_writes"] == 0.4
    assert finding.evidence["salted_max_over_mean"] == 1.05
    assert finding.fix == f"pko skew orders -b {B} --what-if-key '{SALTED_KEY}'"
    assert any("remaps keys" in c for c in finding.caveats)
    assert run_checks(data, DoctorOptions(key_share=0.5))[0] == ()
    assert run_checks(data, DoctorOptions(topics=re.compile("^payments$")))[0] == ()


def mixed_forensics(unexplained: int = 0) -> Forensics:
    """400 placements: murmur2 alone explains 190, CRC-32 alone 150; 12 keys in two partitions."""
    fits = (PartitionerFit("murmur2_random", 250, 190, 0.625), PartitionerFit("consistent_random", 210, 150, 0.525),
            PartitionerFit("fnv1a_random", 130, 0, 0.325))
    return Forensics(400, fits, unexplained, ("murmur2_random", "consistent_random"), True,
                     (SplitKey("user-7", (0, 2)), SplitKey("user-9", (1, 2))), 12)


def test_mixed_partitioners_from_hand_built_forensics() -> None:
    data = make_input((topic("orders", [10.0, 10.0, 10.0]),),
                      key_samples={"orders": sample("orders", "k1", 0.02, forensics=mixed_forensics())})
    (finding,) = run_checks(data, DoctorOptions())[0]
    assert finding.check == "mixed-partitioners" and finding.severity is Severity.WARN
    assert finding.subject.kind == "topic" and finding.subject.name == "orders"
    assert finding.evidence == {"partitioners": "murmur2_random,consistent_random", "murmur2_random_share": 0.625,
                                "consistent_random_share": 0.525, "placements": 400, "split_keys": 12,
                                "sampled_records": 1000, "example_key": "user-7", "example_partitions": "0,2"}
    assert finding.fix.startswith("set partitioner=murmur2_random in every librdkafka-based producer of orders")
    assert any("consistent_random move their keys" in c for c in finding.caveats)
    # explicit partitions (many placements no partitioner explains), a small sample, --topic: not judged
    explicit = {"orders": sample("orders", "k1", 0.02, forensics=mixed_forensics(unexplained=60))}
    assert run_checks(make_input(key_samples=explicit), DoctorOptions())[0] == ()
    assert run_checks(data, DoctorOptions(min_key_sample=5000))[0] == ()
    assert run_checks(data, DoctorOptions(topics=re.compile("^payments$")))[0] == ()


def test_mixed_partitioners_from_real_placements() -> None:
    """Keys placed by CRC-32 and murmur2 (two clients), versus one client only."""
    keys = [b"user-%d" % i for i in range(300)]
    crc = [(partition(k, 6, Partitioner.consistent_random), k) for k in keys]
    java = [(partition(k, 6, Partitioner.murmur2_random), k) for k in keys[::2]]
    mixed = sample("clicks", "k1", 0.02, partitions=6, forensics=analyse_placements(crc + java, 6))
    single = sample("views", "k1", 0.02, partitions=6, forensics=analyse_placements(crc, 6))
    findings = run_checks(make_input(key_samples={"clicks": mixed, "views": single}), DoctorOptions())[0]
    assert [(f.check, f.subject.name) for f in findings] == [("mixed-partitioners", "clicks")]
    assert findings[0].evidence["partitioners"] == "consistent_random,murmur2_random"
    assert findings[0].evidence["split_keys"] > 100


def test_consumer_lag_statuses() -> None:
    lagging = (row("slow", "orders", 0, 500, 12.0, owner="m1", status=Status.WARN),)
    stalled = (row("stuck", "orders", 0, 80, owner="m1", status=Status.STALL),)
    data = make_input((topic("orders", [10.0, 10.0, 10.0]),),
                      (group("slow", (member("m1", "orders", [0, 1, 2]),), lagging, Status.WARN),
                       group("stuck", tuple(member(f"m{i}", "orders", [i]) for i in range(3)), stalled, Status.STALL)))
    findings, _ = run_checks(data, DoctorOptions())
    by_group = {f.subject.name: f for f in findings if f.check == "consumer-lag"}
    assert by_group["stuck"].severity is Severity.ERROR and by_group["slow"].severity is Severity.WARN
    assert by_group["slow"].evidence["lag"] == 500 and by_group["slow"].evidence["status"] == "WARN"
    assert by_group["slow"].fix.startswith("scale group slow out to up to 3 consumers")
    assert by_group["stuck"].fix == f"pko topics -b {B} --alter --topic orders --partitions 6"
    assert any("never shrink" in c for c in by_group["stuck"].caveats)
    assert checks_of(findings)[0] == "consumer-lag"  # the error first
    only = run_checks(data, DoctorOptions(groups=re.compile("slow")))[0]
    assert [f.subject.name for f in only] == ["slow"]


def test_stalled_empty_group() -> None:
    rows = (row("old", "orders", 0, 250, 30.0, status=Status.STOP), row("old", "orders", 1, 0))
    data = make_input((topic("orders", [1.0, 1.0, 1.0]),), (group("old", rows=rows, status=Status.STOP),))
    (finding,) = run_checks(data, DoctorOptions())[0]
    assert finding.check == "stalled-group" and finding.severity is Severity.WARN
    assert finding.evidence == {"state": "Empty", "lag": 250, "partitions_behind": 1, "topics": "orders",
                                "time_lag_s": 30.0}
    assert "--reset-offsets --to-latest" in finding.fix and "--group old" in finding.fix


def test_retention_risk_warns_then_errors() -> None:
    retention_ms = 600_000  # 10 minutes
    soon = (row("g", "short", 0, 40, 480.0),)  # 8 minutes behind: lost in 2
    late = (row("h", "short", 1, 40, 700.0),)  # already past retention
    fine = (row("k", "short", 2, 40, 5.0),)
    data = make_input((topic("short", [0.0, 0.0, 0.0], retention_ms=retention_ms),),
                      (group("g", rows=soon, state="Stable"), group("h", rows=late, state="Stable"),
                       group("k", rows=fine, state="Stable")))
    risks = {f.subject.name: f for f in run_checks(data, DoctorOptions())[0] if f.check == "retention-risk"}
    assert set(risks) == {"g", "h"}
    assert risks["g"].severity is Severity.WARN and risks["g"].evidence["loss_in_s"] == 120.0
    assert risks["h"].severity is Severity.ERROR and risks["h"].evidence["loss_in_s"] == -100.0
    assert "retention.ms=1200000" in risks["g"].fix


def test_idle_consumers_and_unbalanced_assignment() -> None:
    idle = tuple(member(f"m{i}", "two", [i] if i < 2 else []) for i in range(4))
    skewed = (member("a", "many", [0, 1, 2, 3, 4, 5]), member("b", "many", [6, 7]), member("c", "many", [8]))
    data = make_input((topic("two", [1.0, 1.0]), topic("many", [1.0] * 9)),
                      (group("idle", idle), group("skewed", skewed)))
    findings = {f.check: f for f in run_checks(data, DoctorOptions())[0]}
    assert findings["idle-consumers"].evidence == {"members": 4, "idle_members": 2, "assigned_partitions": 2,
                                                   "topics": "two"}
    assert "--alter --topic two --partitions 4" in findings["idle-consumers"].fix
    assert any("never shrink" in c for c in findings["idle-consumers"].caveats)
    assert findings["unbalanced-assignment"].evidence["most_partitions"] == 6
    assert findings["unbalanced-assignment"].evidence["fewest_partitions"] == 1


def test_partition_budget_and_open_files() -> None:
    data = make_input(brokers=(broker(1, 4500), broker(2, 100)), node_files=(NodeFiles(2, 77, 900, 1024),))
    findings = run_checks(data, DoctorOptions())[0]
    assert [(f.check, f.subject.name) for f in findings] == [("open-files", "2"), ("partitions-per-broker", "1")]
    assert findings[1].evidence["replicas"] == 4500 and findings[1].evidence["budget"] == 4000
    assert run_checks(data, DoctorOptions(max_partitions_per_broker=5000, max_open_files_share=0.9))[0] == ()


def test_durability_of_critical_topics() -> None:
    configs = {"payments": {"min.insync.replicas": "1", "unclean.leader.election.enable": "true"},
               "ledger": {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}}
    data = make_input((topic("payments", [1.0] * 3, rf=1), topic("ledger", [1.0] * 3, rf=3, isr=1),
                       topic("logs", [1.0] * 3, rf=1)), topic_configs=configs)
    findings = run_checks(data, DoctorOptions(critical_topics=re.compile("payments|ledger")))[0]
    got = {(f.check, f.subject.name): f.severity for f in findings}
    assert got == {("replication-factor", "payments"): Severity.ERROR,
                   ("min-insync-replicas", "payments"): Severity.WARN,
                   ("unclean-leader-election", "payments"): Severity.ERROR,
                   ("under-min-isr", "ledger"): Severity.ERROR}
    rf = next(f for f in findings if f.check == "min-insync-replicas")
    assert rf.fix == f"pko configs -b {B} --alter --topic payments --add-config min.insync.replicas=2"
    _, skipped = run_checks(data, DoctorOptions())
    assert ("durability", "no --critical-topics given") in skipped


def test_replication_and_hanging_alerts() -> None:
    hanging = HangingTransaction("txns", 0, 10, 20, int(NOW * 1000) - 1_000_000, 1001, 0)
    alerts = (ReplicationAlert("orders", OFFLINE, (1,), "ERR"), ReplicationAlert("orders", UNDER_REPLICATED, (2,), "WARN"),
              ReplicationAlert("txns", HANGING_TRANSACTION, (0,), "ERR", (hanging,)))
    findings = run_checks(make_input(alerts=alerts), DoctorOptions())[0]
    assert [(f.check, f.severity) for f in findings] == [("hanging-transaction", Severity.ERROR),
                                                        ("offline", Severity.ERROR),
                                                        ("under-replicated", Severity.WARN)]
    assert findings[0].evidence["producer_id"] == 1001 and findings[0].evidence["stuck_s"] == 1000.0
    assert findings[0].fix.startswith("pko transactions abort --topic txns --partition 0 --start-offset 10")


def test_producer_acks_hook() -> None:
    clients = (ProduceClient("fast", "payments", 1, False), ProduceClient("safe", "payments", -1, False),
               ProduceClient("fine", "payments", -1, True), ProduceClient("logs", "logs", 0, False))
    data = make_input(produce_clients=clients)
    findings = run_checks(data, DoctorOptions(critical_topics=re.compile("payments")))[0]
    assert [(f.check, f.evidence["client_id"]) for f in findings] == [("producer-acks", "fast"),
                                                                      ("producer-idempotence", "safe")]


def test_produce_clients_of_several_nodes_are_merged() -> None:
    node1 = {"clients": [{"client_id": "a", "topic": "t", "acks": {"-1": 5, "1": 2}, "idempotent": True},
                         {"client_id": "b", "topic": "t", "acks": {"-1": 3}, "idempotent": True}]}
    node2 = {"clients": [{"client_id": "b", "topic": "t", "acks": {"-1": 1}, "idempotent": False},
                         {"client_id": "c", "topic": "u", "acks": {"0": 1, "-1": 1}, "idempotent": False}]}
    assert clients_of([node1, node2]) == (ProduceClient("a", "t", 1, True), ProduceClient("b", "t", -1, False),
                                          ProduceClient("c", "u", 0, False))


def test_every_check_is_listed() -> None:
    assert len(CHECKS) == 13
