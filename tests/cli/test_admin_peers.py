"""Issue 18's admin calls against Tansu where it serves them, beside our node (the ``broker``
fixture runs each test on both): broker configs, DescribeTopicPartitions through kafka-python,
and `pko acls` — Tansu 0.6 advertises CreateAcls but answers it with a frame that does not decode,
on which librdkafka aborts the process: pko reports it in one line and exits 1."""

from __future__ import annotations

from typing import Any

from records_cli import Broker, pko, topic


def test_broker_configs_describe(broker: Broker) -> None:
    result = pko(broker.bootstrap, "configs", "--describe", "--entity-type", "brokers")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Dynamic configs for broker ")


def test_describe_topic_partitions_through_kafka_python(broker: Broker) -> None:
    from kafka.admin import KafkaAdminClient

    name = topic(broker.bootstrap, "dtp", partitions=3)
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        answer: Any = client.describe_topic_partitions([name])
    finally:
        client.close()
    topics = answer["topics"] if isinstance(answer, dict) else answer
    assert [(t["name"], sorted(p["partition_index"] for p in t["partitions"])) for t in topics] == [(name, [0, 1, 2])]


def test_acls_never_kill_the_toolkit(broker: Broker) -> None:
    """Our node has no authorizer here (SECURITY_DISABLED); Tansu lists none and sends a CreateAcls
    answer that does not decode. Either way one line, never a crash."""
    listed = pko(broker.bootstrap, "acls", "--list")
    added = pko(broker.bootstrap, "acls", "--add", "--allow-principal", "User:a", "--operation", "Read",
                "--topic", "t")
    assert added.exit_code == 1 and len(added.stderr.splitlines()) == 1, added.stderr
    if broker.name == "pko":
        assert listed.exit_code == 1 and "has no authorizer (SECURITY_DISABLED)" in listed.stderr
    else:
        assert (listed.exit_code, listed.stdout) == (0, "")
        assert "malformed" in added.stderr
