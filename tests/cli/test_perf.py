"""`pko perf produce` / `pko perf consume`: the Java tools' summary lines and the JSON schema,
against our cluster and Tansu (small runs: these check the tool, the benchmark is tests/perf/)."""

from __future__ import annotations

import json
import re

from records_cli import Broker, pko, topic

PRODUCER_SUMMARY = (r"500 records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg latency, [\d.]+ ms max "
                    r"latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, \d+ ms 99\.9th\.")
CONSUMER_HEADER = ("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, "
                   "rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")


def test_perf_produce_then_consume_summaries(broker: Broker) -> None:
    name = topic(broker.bootstrap, "perf", 2)
    produced = pko(broker.bootstrap, "perf", "produce", "--topic", name, "--num-records", "500", "--record-size",
                   "100", "--producer-props", "acks=1 linger.ms=1")
    assert produced.exit_code == 0, produced.stderr
    assert re.fullmatch(PRODUCER_SUMMARY, produced.stdout.splitlines()[-1]), produced.stdout
    consumed = pko(broker.bootstrap, "perf", "consume", "--topic", name, "--messages", "500")
    header, row = consumed.stdout.splitlines()
    assert header == CONSUMER_HEADER
    cells = row.split(", ")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}", cells[0]) and cells[4] == "500"
    assert cells[2] == f"{500 * 100 / 1024 / 1024:.4f}"


def test_perf_json_output(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "perfjson")
    produced = json.loads(pko(bootstrap, "perf", "produce", "--topic", name, "--num-records", "200", "--record-size",
                              "10", "--throughput", "2000", "--output", "json").stdout)
    assert set(produced) == {"records", "records_per_sec", "mb_per_sec", "avg_latency_ms", "max_latency_ms", "p50_ms",
                             "p95_ms", "p99_ms", "p999_ms", "elapsed_s", "failed", "transactions"}
    assert (produced["records"], produced["failed"], produced["transactions"]) == (200, 0, 0)
    assert produced["records_per_sec"] <= 2100
    assert produced["p50_ms"] <= produced["p99_ms"] <= produced["max_latency_ms"]
    consumed = json.loads(pko(bootstrap, "perf", "consume", "--topic", name, "--messages", "200",
                              "--output", "json").stdout)
    assert set(consumed) == {"start_time", "end_time", "data_consumed_in_mb", "mb_sec", "data_consumed_in_nmsg",
                             "nmsg_sec", "rebalance_time_ms", "fetch_time_ms", "fetch_mb_sec", "fetch_nmsg_sec",
                             "timed_out"}
    assert (consumed["data_consumed_in_nmsg"], consumed["timed_out"], consumed["rebalance_time_ms"]) == (200, False, 0)


def test_perf_consume_short_of_messages_exits_1(pko_group_cluster: Broker) -> None:
    name = topic(pko_group_cluster.bootstrap, "perfshort")
    result = pko(pko_group_cluster.bootstrap, "perf", "consume", "--topic", name, "--messages", "5", "--timeout", "300")
    assert result.exit_code == 1
    assert "Exiting before consuming the expected number of messages: timeout (300 ms) exceeded" in result.stderr
