"""`pko topics` and `pko configs` against a real cluster (and Tansu where it supports the call):
lifecycle, kafka-topics' describe lines, JSON schema, filters, errors and exit codes."""

from __future__ import annotations

import json
import re

import pytest

from records_cli import Broker, pko, topic, unique, wait_until

TOPIC_ID = r"[A-Za-z0-9_-]{22}"


def partition_line(name: str, partition: int, broker_id: str) -> str:
    """kafka-topics' partition line for a single-replica partition (a regex)."""
    return (rf"\tTopic: {re.escape(name)}\tPartition: {partition}\tLeader: {broker_id}\tReplicas: {broker_id}"
            rf"\tIsr: {broker_id}\tElr: N/A\tLastKnownElr: N/A")


def test_topic_lifecycle_create_list_describe_alter_delete(broker: Broker) -> None:
    name = unique("life")
    created = pko(broker.bootstrap, "topics", "--create", "--topic", name, "--partitions", "2")
    assert (created.exit_code, created.stdout) == (0, f"Created topic {name}.\n")
    assert name in pko(broker.bootstrap, "topics", "--list").stdout.splitlines()

    described = pko(broker.bootstrap, "topics", "--describe", "--topic", re.escape(name))
    lines = described.stdout.splitlines()
    assert re.fullmatch(rf"Topic: {name}\tTopicId: {TOPIC_ID}\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: .*",
                        lines[0]), lines
    assert [bool(re.fullmatch(partition_line(name, p, r"\d+"), line)) for p, line in enumerate(lines[1:])] == [True] * 2

    if broker.name == "pko":  # Tansu 0.6 has no CreatePartitions
        assert pko(broker.bootstrap, "topics", "--alter", "--topic", name, "--partitions", "3").exit_code == 0
        wait_until(lambda: json.loads(pko(broker.bootstrap, "topics", "--describe", "--topic", name,
                                          "--output", "json").stdout)[0]["partition_count"] == 3, 10, "3 partitions")
    assert pko(broker.bootstrap, "topics", "--delete", "--topic", name).exit_code == 0
    wait_until(lambda: name not in pko(broker.bootstrap, "topics", "--list").stdout.splitlines(), 10, "deletion")


def test_describe_json_schema_and_config_overrides(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = unique("json")
    pko(bootstrap, "topics", "--create", "--topic", name, "--partitions", "2", "--config", "retention.ms=86400000")
    text = pko(bootstrap, "topics", "--describe", "--topic", name).stdout.splitlines()[0]
    assert text.endswith("\tConfigs: retention.ms=86400000")
    described = json.loads(pko(bootstrap, "topics", "--describe", "--topic", name, "--output", "json").stdout)
    assert re.fullmatch(TOPIC_ID, described[0].pop("topic_id"))
    assert described == [{"topic": name, "is_internal": False, "partition_count": 2, "replication_factor": 1,
                          "configs": {"retention.ms": "86400000"},
                          "partitions": [{"partition": p, "leader": 1, "replicas": [1], "isr": [1], "adding_replicas": [],
                                          "removing_replicas": []} for p in (0, 1)]}]
    overrides = pko(bootstrap, "topics", "--describe", "--topics-with-overrides").stdout.splitlines()
    assert [line.split("\t")[0] for line in overrides if line.startswith(f"Topic: {name}\t")] == [f"Topic: {name}"]
    assert not any(line.startswith("\t") for line in overrides)


def test_replica_filters_on_one_node(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "filters", 2)
    for flag in ("--under-replicated-partitions", "--unavailable-partitions", "--under-min-isr-partitions"):
        result = pko(bootstrap, "topics", "--describe", "--topic", name, flag)
        assert (result.exit_code, result.stdout) == (0, ""), flag
    at_min = pko(bootstrap, "topics", "--describe", "--topic", name, "--at-min-isr-partitions").stdout.splitlines()
    assert [bool(re.fullmatch(partition_line(name, p, "1"), line)) for p, line in enumerate(at_min)] == [True, True]


def test_create_existing_fails_unless_if_not_exists(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "twice")
    again = pko(bootstrap, "topics", "--create", "--topic", name)
    assert again.exit_code == 1
    assert again.stderr == f"pko: create topic {name}: TOPIC_ALREADY_EXISTS: topic {name!r} already exists\n"
    quiet = pko(bootstrap, "topics", "--create", "--topic", name, "--if-not-exists")
    assert (quiet.exit_code, quiet.stdout) == (0, "")


@pytest.mark.parametrize("action", [["--describe"], ["--delete"], ["--alter", "--partitions", "5"]])
def test_missing_topic_exits_1_unless_if_exists(pko_group_cluster: Broker, action: list[str]) -> None:
    missing = unique("missing")
    result = pko(pko_group_cluster.bootstrap, "topics", *action, "--topic", missing)
    assert (result.exit_code, result.stderr) == (1, f"pko: Topic '{missing}' does not exist as expected\n")
    assert pko(pko_group_cluster.bootstrap, "topics", *action, "--topic", missing, "--if-exists").exit_code == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--list", "--describe"], "Command must include exactly one action: --list, --describe, --create, --alter or "
                               "--delete"),
    (["--topic", "t"], "Command must include exactly one action: --list, --describe, --create, --alter or --delete"),
    (["--create"], "--create needs --topic"),
    (["--alter", "--topic", "t", "--config", "a=b"],
     "--config can't be used with --alter (change topic configs with `pko configs --alter`)"),
    (["--create", "--topic", "t", "--partitions", "0"], "The partitions must be greater than 0"),
    (["--create", "--topic", "t", "--replica-assignment", "1:2", "--partitions", "1"],
     "--replica-assignment can't be used with --partitions or --replication-factor"),
    (["--list", "--if-not-exists"], "--if-not-exists can't be used with --list"),
])
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = pko("127.0.0.1:1", "topics", *args)
    assert (result.exit_code, result.stderr) == (2, f"pko: {message}\n")


def test_configs_alter_and_describe_layout(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "configs")
    altered = pko(bootstrap, "configs", "--alter", "--topic", name,
                  "--add-config", "retention.ms=5000,segment.ms=60000")
    assert (altered.exit_code, altered.stdout) == (0, f"Completed updating config for topic {name}.\n")
    assert pko(bootstrap, "configs", "--describe", "--entity-type", "topics", "--entity-name", name).stdout == (
        f"Dynamic configs for topic {name} are:\n"
        "  retention.ms=5000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=5000, "
        "DEFAULT_CONFIG:log.retention.hours=168}\n"
        "  segment.ms=60000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:segment.ms=60000, "
        "DEFAULT_CONFIG:log.roll.hours=168}\n")
    pko(bootstrap, "configs", "--alter", "--topic", name, "--delete-config", "segment.ms")
    described = json.loads(pko(bootstrap, "configs", "--describe", "--topic", name, "--output", "json").stdout)
    assert described == [{"entity_type": "topics", "entity_name": name, "configs": [
        {"name": "retention.ms", "value": "5000", "source": "DYNAMIC_TOPIC_CONFIG", "is_default": False,
         "read_only": False, "sensitive": False,
         "synonyms": [{"name": "retention.ms", "value": "5000", "source": "DYNAMIC_TOPIC_CONFIG"},
                      {"name": "log.retention.hours", "value": "168", "source": "DEFAULT_CONFIG"}]}]}]
    every = pko(bootstrap, "configs", "--describe", "--topic", name, "--all").stdout.splitlines()
    assert every[0] == f"All configs for topic {name} are:"
    assert "  segment.bytes=1073741824 sensitive=false synonyms={DEFAULT_CONFIG:log.segment.bytes=1073741824}" in every


def test_configs_refusals_exit_1(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    name = topic(bootstrap, "badcfg")
    typo = pko(bootstrap, "configs", "--alter", "--topic", name, "--add-config", "retention.mss=1")
    assert (typo.exit_code, typo.stderr) == (
        1, f"pko: alter configs of topic {name}: INVALID_CONFIG: retention.mss: unknown topic config\n")
    broker_alter = pko(bootstrap, "configs", "--alter", "--broker", "1", "--add-config", "num.partitions=1")
    assert broker_alter.exit_code == 1 and "Cannot update these configs dynamically" in broker_alter.stderr
    broker_all = pko(bootstrap, "configs", "--describe", "--broker", "1", "--all").stdout.splitlines()
    assert broker_all[0] == "All configs for broker 1 are:"
    assert "  num.partitions=1 sensitive=false synonyms={DEFAULT_CONFIG:num.partitions=1}" in broker_all


def test_configs_against_tansu(tansu: Broker) -> None:
    name = topic(tansu.bootstrap, "tcfg")
    altered = pko(tansu.bootstrap, "configs", "--alter", "--topic", name, "--add-config", "retention.ms=5000")
    assert altered.exit_code == 0
    every = pko(tansu.bootstrap, "configs", "--describe", "--topic", name, "--all").stdout.splitlines()
    assert "  retention.ms=5000 sensitive=false synonyms={}" in every
