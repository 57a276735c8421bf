"""`pko transactions` (kafka-transactions, KIP-664) end to end on one node, in-process (typer's
CliRunner), with DescribeProducers / DescribeTransactions / ListTransactions served by our broker.

* a confluent-kafka transactional producer's id is listed and described Ongoing, with its
  partition, and the partition's producer shows the transaction's start offset; after commit the
  id is CompleteCommit and the producer has no open transaction;
* a hanging transaction (transactional records of a producer id no coordinator knows, written
  with raw requests, last written 20 minutes ago) is found by ``find-hanging`` and ended by
  ``abort --start-offset``, after which the last stable offset reaches the high watermark and a
  read_committed consumer sees nothing of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from integration_helpers import (
    build_batch,
    create_topic,
    init_producer_id,
    list_offset,
    produce_raw,
    unique_topic,
)
from typer.testing import CliRunner

from cluster.pytest_plugin import RunningCluster, start_cluster, wait_until
from pykafka_ops.client.wire import WireClient
from pykafka_ops.records.builder import RecordBatchBuilder

READ_COMMITTED = 1
YAML = """\
cluster: {name: txn-cli}
nodes:
  - {id: 1}
broker:
  offsets.topic.num.partitions: 1
  transaction.state.log.num.partitions: 2
"""


@pytest.fixture(scope="module")
def txn_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with start_cluster(YAML, tmp_path_factory.mktemp("txn-cli")) as running:
        yield running


def pko(cluster: RunningCluster, *args: str) -> Any:
    """`pko transactions -b … ARGS` in-process; exit code and output."""
    from commands.main import app

    return CliRunner().invoke(app, ["transactions", "-b", cluster.bootstrap_servers, *args], catch_exceptions=False)


def pko_json(cluster: RunningCluster, *args: str) -> Any:
    result = pko(cluster, *args, "--output", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _listed_state(cluster: RunningCluster, transactional_id: str) -> str | None:
    return next((t["state"] for t in pko_json(cluster, "list") if t["transactional_id"] == transactional_id), None)


def _producers(cluster: RunningCluster, topic: str) -> list[dict[str, Any]]:
    return pko_json(cluster, "describe-producers", "--topic", topic, "--partition", "0")["producers"]


def test_list_describe_and_producers_of_a_confluent_transaction(txn_cluster: RunningCluster) -> None:
    topic, tid = unique_topic("txn-cli"), unique_topic("tid")
    create_topic(txn_cluster, topic, partitions=1)
    producer = Producer({"bootstrap.servers": txn_cluster.bootstrap_servers, "transactional.id": tid})
    producer.init_transactions(30)
    producer.begin_transaction()
    for value in (b"a", b"b"):
        producer.produce(topic, value, partition=0)
    assert producer.flush(30) == 0

    assert _listed_state(txn_cluster, tid) == "Ongoing"
    by_pattern = pko_json(txn_cluster, "list", "--transactional-id-pattern", f"{tid[:-2]}.*")  # KIP-1152
    assert [t["transactional_id"] for t in by_pattern] == [tid]
    assert pko_json(txn_cluster, "list", "--transactional-id-pattern", tid[:-2]) == []  # must match whole
    bad = pko(txn_cluster, "list", "--transactional-id-pattern", "([")
    assert bad.exit_code == 1 and "INVALID_REGULAR_EXPRESSION" in bad.stderr
    described = pko_json(txn_cluster, "describe", "--transactional-id", tid)
    assert (described["state"], described["partitions"], described["coordinator"]) == (
        "Ongoing", [{"topic": topic, "partition": 0}], 1)
    (entry,) = _producers(txn_cluster, topic)
    assert (entry["producer_id"], entry["current_txn_start_offset"]) == (described["producer_id"], 0)
    text = pko(txn_cluster, "list", "--output", "text").stdout.splitlines()
    assert text[0].split() == ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]

    producer.commit_transaction(30)
    wait_until(lambda: _listed_state(txn_cluster, tid) == "CompleteCommit", 10, f"{tid} CompleteCommit")
    described = pko_json(txn_cluster, "describe", "--transactional-id", tid)
    assert (described["state"], described["partitions"]) == ("CompleteCommit", [])
    (entry,) = _producers(txn_cluster, topic)
    assert entry["current_txn_start_offset"] is None
    assert pko_json(txn_cluster, "list", "--duration-filter", "3600000") == []
    missing = pko(txn_cluster, "describe", "--transactional-id", "no-such-id")
    assert (missing.exit_code, "TRANSACTIONAL_ID_NOT_FOUND" in missing.stderr) == (1, True)


def hanging_transaction(cluster: RunningCluster, topic: str) -> int:
    """A one-partition topic with a transaction of a producer no coordinator knows (two records
    written 20 minutes ago), then a plain record: its producer id."""
    create_topic(cluster, topic, partitions=1)
    host, _, port = cluster.bootstrap_servers.split(",")[0].rpartition(":")
    old = int(time.time() * 1000) - 20 * 60_000
    with WireClient(host, int(port)) as client:
        pid, epoch = init_producer_id(client)
        builder = RecordBatchBuilder(producer_id=pid, producer_epoch=epoch, base_sequence=0, is_transactional=True)
        for value in (b"h0", b"h1"):
            builder.append(None, value, timestamp_ms=old)
        batch = builder.build()
        assert produce_raw(client, topic, 0, batch, transactional_id="ghost").error_code == 0
        assert produce_raw(client, topic, 0, build_batch([b"after"])).error_code == 0
    return pid


def test_find_hanging_and_abort(txn_cluster: RunningCluster) -> None:
    topic = unique_topic("txn-hang")
    pid = hanging_transaction(txn_cluster, topic)
    assert list_offset(txn_cluster, topic, 0, -1, READ_COMMITTED).offset == 0
    hanging = pko_json(txn_cluster, "find-hanging", "--broker-id", "1")
    assert [(h["topic"], h["partition"], h["producer_id"], h["current_txn_start_offset"]) for h in hanging] == [
        (topic, 0, pid, 0)]
    assert pko_json(txn_cluster, "find-hanging", "--topic", topic, "--max-transaction-timeout", "30") == []

    result = pko(txn_cluster, "abort", "--topic", topic, "--partition", "0", "--start-offset", "0")
    assert (result.exit_code, result.stdout) == (0, "")
    wait_until(lambda: list_offset(txn_cluster, topic, 0, -1, READ_COMMITTED).offset
               == list_offset(txn_cluster, topic, 0, -1).offset, 10, "the LSO at the high watermark")
    assert pko_json(txn_cluster, "find-hanging", "--broker-id", "1") == []
    nothing = pko(txn_cluster, "abort", "--topic", topic, "--partition", "0", "--start-offset", "0")
    assert nothing.exit_code == 1 and "Could not find any open transactions" in nothing.stderr


def test_lag_flags_a_hanging_transaction_with_its_producer(txn_cluster: RunningCluster) -> None:
    """`pko lag` raises an ERR alert for a consumed topic whose LSO a hanging transaction holds:
    the producer id in JSON and on stderr, exit 3 with --fail-on ERR; none once it is aborted."""
    from commands.main import app

    topic, group = unique_topic("txn-lag"), unique_topic("lag-group")
    pid = hanging_transaction(txn_cluster, topic)
    admin = AdminClient({"bootstrap.servers": txn_cluster.bootstrap_servers})
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 0)])])[
        group].result(10)

    def lag(*args: str) -> Any:
        return CliRunner().invoke(app, ["lag", "-b", txn_cluster.bootstrap_servers, "--group", group, "--window", "2",
                                        "--interval", "0.1", *args], catch_exceptions=False)

    answer = lag("--output", "json")
    assert answer.exit_code == 0, answer.output
    (alert,) = json.loads(answer.stdout)["alerts"]
    assert (alert["kind"], alert["level"], alert["topic"], alert["partitions"]) == (
        "hanging_transaction", "ERR", topic, [0])
    assert [(t["producer_id"], t["last_stable_offset"], t["high_watermark"]) for t in alert["transactions"]] == [
        (pid, 0, 3)]
    failed = lag("--fail-on", "ERR")
    assert failed.exit_code == 3
    assert f"pko: ERR topic '{topic}': hanging transaction on 1 partition (0): partition 0 producer id {pid}" \
        in failed.stderr
    assert f"pko transactions abort --topic {topic} --partition 0 --start-offset 0" in failed.stderr

    assert pko(txn_cluster, "abort", "--topic", topic, "--partition", "0", "--start-offset", "0").exit_code == 0
    wait_until(lambda: list_offset(txn_cluster, topic, 0, -1, READ_COMMITTED).offset == 4, 10, "the LSO at the end")
    assert json.loads(lag("--output", "json").stdout)["alerts"] == []
