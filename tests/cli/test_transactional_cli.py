"""`pko consume --isolation-level` and `pko perf produce --transactional-id/--transaction-duration-ms`
(issue 17 item 4) against our single-node cluster, plus the perf tool's transactional-id rules."""

from __future__ import annotations

import json

from confluent_kafka import Producer
from records_cli import Broker, consume_json, pko, topic

from commands.perf import DEFAULT_TRANSACTION_DURATION_MS, transactional


def test_transactional_rules_follow_the_java_tool() -> None:
    props: dict[str, str] = {}
    assert transactional(props, None, None) is None and props == {}
    props = {"transactional.id": "from-props"}
    assert transactional(props, None, None) == DEFAULT_TRANSACTION_DURATION_MS
    assert transactional(props, "flag", 250) == 250 and props["transactional.id"] == "flag"
    props = {}
    assert transactional(props, None, 100) == 100
    assert props["transactional.id"].startswith("performance-producer-")


def _transaction(bootstrap: str, name: str, values: list[str], commit: bool, transactional_id: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id})
    producer.init_transactions(30)
    producer.begin_transaction()
    for value in values:
        producer.produce(name, value.encode(), partition=0)
    if commit:
        producer.commit_transaction(30)
    else:
        producer.flush(30)
        producer.abort_transaction(30)


def test_consume_isolation_level(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "isolation")
    _transaction(bootstrap, name, ["a1", "a2"], commit=False, transactional_id=f"{name}-tx")
    _transaction(bootstrap, name, ["c1"], commit=True, transactional_id=f"{name}-tx")
    committed = consume_json(bootstrap, name, "--isolation-level", "read_committed")
    everything = consume_json(bootstrap, name)  # read_uncommitted, the console consumer's default
    assert [r["payload"] for r in committed] == ["c1"]
    assert [r["payload"] for r in everything] == ["a1", "a2", "c1"]
    refused = pko(bootstrap, "consume", name, "--isolation-level", "serializable")
    assert refused.exit_code == 2 and "read_uncommitted or read_committed" in refused.stderr


def test_perf_produce_in_transactions(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "perftxn")
    result = pko(bootstrap, "perf", "produce", "--topic", name, "--num-records", "300", "--record-size", "10",
                 "--throughput", "1000", "--transactional-id", f"{name}-tx", "--transaction-duration-ms", "100",
                 "--output", "json")
    assert result.exit_code == 0, result.stderr
    figures = json.loads(result.stdout)
    assert (figures["records"], figures["failed"]) == (300, 0)
    assert 2 <= figures["transactions"] <= 6  # ~0.3 s at 1 000 records/s, a commit every 100 ms
    assert len(consume_json(bootstrap, name, "--isolation-level", "read_committed")) == 300
    text = pko(bootstrap, "perf", "produce", "--topic", name, "--num-records", "50", "--record-size", "10",
               "--transaction-duration-ms", "1000")
    assert text.exit_code == 0, text.stderr
    assert text.stdout.splitlines()[-1] == "1 transactions committed (every 1000 ms)."
