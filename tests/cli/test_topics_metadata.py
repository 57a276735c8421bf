"""`pko offsets` (GetOffsetShell), `pko cluster info` (kcat -L), and the one-line error every
command of this family gives for a cluster that does not answer."""

from __future__ import annotations

import json

import pytest

from group_clients import produce
from cluster.pytest_plugin import free_ports
from records_cli import Broker, pko, topic


def test_offsets_sorted_by_partition_number_for_each_time_spec(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "offs", 12)
    produce(bootstrap, name, {0: 1, 2: 3, 10: 2}, timestamp_ms=1_700_000_000_000)
    latest = pko(bootstrap, "offsets", name).stdout.splitlines()
    assert latest == [f"{name}:{p}:{ {0: 1, 2: 3, 10: 2}.get(p, 0)}" for p in range(12)]  # 2 before 10
    earliest = pko(bootstrap, "offsets", name, "--time", "-2", "--partitions", "2,10").stdout
    assert earliest == f"{name}:2:0\n{name}:10:0\n"
    assert json.loads(pko(bootstrap, "offsets", name, "--time", "max-timestamp", "--partitions", "2",
                          "--output", "json").stdout) == [
        {"topic": name, "partition": 2, "offset": 0, "timestamp": 1_700_000_000_000}]
    after_last = pko(bootstrap, "offsets", name, "--time", "1700000000001")
    assert (after_last.exit_code, after_last.stdout) == (0, "")  # no offset for that time: left out


def test_offsets_without_a_match_exits_1(pko_group_cluster: Broker) -> None:
    result = pko(pko_group_cluster.bootstrap, "offsets", "no-such-topic-.*")
    assert (result.exit_code, result.stderr) == (
        1, "pko: Could not match any topic-partitions with the specified filters\n")


def test_cluster_info_kcat_layout_and_json(broker: Broker) -> None:
    name = topic(broker.bootstrap, "info", 2)
    described = json.loads(pko(broker.bootstrap, "cluster", "info", "--topic", name, "--output", "json").stdout)
    (node,) = described["brokers"]
    assert described["controllerid"] == node["id"] and described["query"] == {"topic": name}
    assert described["topics"] == [{"topic": name, "partitions": [
        {"partition": p, "leader": node["id"], "replicas": [{"id": node["id"]}], "isrs": [{"id": node["id"]}]}
        for p in (0, 1)]}]
    lines = pko(broker.bootstrap, "cluster", "info", "--topic", name).stdout.splitlines()
    assert lines[1:] == [" 1 brokers:", f"  broker {node['id']} at {node['name']} (controller)", " 1 topics:",
                         f'  topic "{name}" with 2 partitions:',
                         *(f"    partition {p}, leader {node['id']}, replicas: {node['id']}, isrs: {node['id']}"
                           for p in (0, 1))]
    assert lines[0].startswith(f"Metadata for {name} (from broker ")


@pytest.mark.parametrize("args", [
    ["topics", "--list"], ["topics", "--describe"], ["configs", "--describe", "--entity-type", "topics"],
    ["offsets"], ["cluster", "info"], ["consume", "t", "-e"], ["produce", "t"],
    ["perf", "produce", "--topic", "t", "--num-records", "1", "--record-size", "1"],
    ["perf", "consume", "--topic", "t", "--messages", "1"],
])
def test_unreachable_cluster_one_line_exit_1(args: list[str]) -> None:
    (port,) = free_ports(1)
    result = pko(f"127.0.0.1:{port}", *args, "--timeout", "3000", input="x\n")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in result.stderr, result.stderr
