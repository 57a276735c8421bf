"""Broker configs in DescribeConfigs and dynamic broker configs (Incremental/AlterConfigs) on one node.

* DescribeConfigs of broker 1 (confluent-kafka, kafka-python): identity and listener keys,
  Kafka's sources and read-only flags; another broker id is INVALID_REQUEST;
* a cluster-default ``log.retention.ms`` (the empty broker name, our wire client: librdkafka
  refuses it) takes effect on an existing topic without its own override — retention deletes its
  old segments — and survives a node restart; a per-broker value wins over the default;
* refusals as Kafka: a config that is not dynamic, a bad value, a broker name that is not a number;
  legacy AlterConfigs replaces a broker's whole set.

One module-scoped node (restarted once, by the last test).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
from integration_helpers import admin, create_topic, list_offset, unique_topic, wire
from kafka.admin import ConfigResource as KafkaPythonResource
from kafka.admin import ConfigResourceType, KafkaAdminClient

from cluster.pytest_plugin import RunningCluster, start_cluster, wait_until
from pykafka_ops.protocol.api_keys import ApiKey

YAML = """\
cluster: {name: broker-configs}
nodes:
  - {id: 1}
broker:
  num.partitions: 2
  log.retention.check.interval.ms: 200
"""
SET, DELETE = 0, 1
DYNAMIC_BROKER, DYNAMIC_DEFAULT, STATIC, DEFAULT = 2, 3, 4, 5


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with start_cluster(YAML, tmp_path_factory.mktemp("broker-configs")) as running:
        yield running


def _alter(node: RunningCluster, broker: str, *configs: tuple[str, int, str | None]) -> Any:
    """IncrementalAlterConfigs of one broker resource; its (error code, message)."""
    with wire(node) as client:
        response = client.request(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"validate_only": False, "resources": [
            {"resource_type": 4, "resource_name": broker,
             "configs": [{"name": n, "config_operation": op, "value": v} for n, op, v in configs]}]})
    (answer,) = response.responses
    return answer.error_code, answer.error_message


def _describe(node: RunningCluster, resource_type: int, name: str) -> Any:
    with wire(node) as client:
        response = client.request(ApiKey.DESCRIBE_CONFIGS, 4, {
            "resources": [{"resource_type": resource_type, "resource_name": name, "configuration_keys": None}],
            "include_synonyms": True, "include_documentation": False})
    (result,) = response.results
    return result


def _entries(node: RunningCluster, resource_type: int, name: str) -> dict[str, Any]:
    return {e.name: e for e in _describe(node, resource_type, name).configs}


def test_broker_configs_as_kafka_describes_them(node: RunningCluster) -> None:
    client = admin(node)
    resource = ConfigResource(ResourceType.BROKER, "1")
    configs = client.describe_configs([resource])[resource].result(15)
    port = node.config.node(1).port
    assert configs["advertised.listeners"].value == f"PLAINTEXT://127.0.0.1:{port}"
    assert (configs["node.id"].value, configs["broker.id"].value) == ("1", "1")
    assert configs["process.roles"].value == "broker,controller"
    assert configs["log.dirs"].value.startswith("/") and configs["log.dirs"].is_read_only
    assert (configs["num.partitions"].value, configs["num.partitions"].source) == ("2", STATIC)
    assert configs["num.partitions"].is_read_only and not configs["log.retention.ms"].is_read_only
    assert configs["message.max.bytes"].source == DEFAULT
    other = _describe(node, 4, "7")
    assert other.error_code == 42 and "Unexpected broker id" in other.error_message
    kafka_python = KafkaAdminClient(bootstrap_servers=node.bootstrap_servers, request_timeout_ms=15000)
    try:
        answer = kafka_python.describe_configs([KafkaPythonResource(ConfigResourceType.BROKER, "1")],
                                               config_filter="all")
    finally:
        kafka_python.close()
    (by_name,) = next(iter(answer.values())).values()  # {resource type: {resource name: {key: data}}}
    assert {"advertised.listeners", "listeners", "log.retention.hours", "controller.listener.names"} <= set(by_name)


def test_refusals(node: RunningCluster) -> None:
    code, message = _alter(node, "1", ("num.partitions", SET, "5"))
    assert code == 42 and "Cannot update these configs dynamically: ['num.partitions']" in message
    code, message = _alter(node, "", ("log.retention.ms", SET, "soon"))
    assert code == 42 and "log.retention.ms: expected an integer" in message
    assert _alter(node, "one", ("log.retention.ms", SET, "1"))[0] == 42
    assert _alter(node, "", ("no.such.config", SET, "1"))[0] == 42
    client = admin(node)  # librdkafka: a broker resource goes to the broker it names
    resource = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry("log.segment.bytes", "1000", incremental_operation=AlterConfigOpType.SET)])
    client.incremental_alter_configs([resource])[resource].result(15)
    assert _entries(node, 4, "1")["log.segment.bytes"].config_source == DYNAMIC_BROKER


def test_legacy_alter_configs_replaces_a_brokers_set(node: RunningCluster) -> None:
    with wire(node) as client:
        response = client.request(ApiKey.ALTER_CONFIGS, 2, {"validate_only": False, "resources": [
            {"resource_type": 4, "resource_name": "1",
             "configs": [{"name": "message.max.bytes", "value": "2000000"}]}]})
    assert response.responses[0].error_code == 0
    entries = _entries(node, 4, "1")
    assert (entries["message.max.bytes"].value, entries["message.max.bytes"].config_source) == ("2000000",
                                                                                              DYNAMIC_BROKER)
    assert entries["log.segment.bytes"].config_source == DEFAULT  # not given: its dynamic value is gone
    assert _alter(node, "1", ("message.max.bytes", DELETE, None)) == (0, None)


def test_cluster_default_retention_applies_to_existing_topics_and_survives_a_restart(node: RunningCluster) -> None:
    topic = unique_topic("dyn-retention")
    create_topic(node, topic, partitions=1, config={"segment.bytes": "1024"})
    producer = Producer({"bootstrap.servers": node.bootstrap_servers, "linger.ms": 0})
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    for i in range(20):
        producer.produce(topic, b"v" * 200, partition=0, timestamp=an_hour_ago)
        producer.flush(10)
    assert list_offset(node, topic, 0, -2).offset == 0  # retention.ms defaults to 7 days
    assert _alter(node, "", ("log.retention.ms", SET, "60000")) == (0, None)
    wait_until(lambda: list_offset(node, topic, 0, -2).offset > 0, 10, "retention to follow the cluster default")
    retention = _entries(node, 2, topic)["retention.ms"]
    assert (retention.value, retention.config_source) == ("60000", DYNAMIC_DEFAULT)
    assert _alter(node, "1", ("log.retention.ms", SET, "70000")) == (0, None)  # this broker's own value wins
    broker = _entries(node, 4, "1")["log.retention.ms"]
    assert (broker.value, broker.config_source) == ("70000", DYNAMIC_BROKER)
    assert [(s.value, s.source) for s in broker.synonyms][:2] == [("70000", DYNAMIC_BROKER), ("60000", DYNAMIC_DEFAULT)]
    assert _alter(node, "1", ("log.retention.ms", DELETE, None)) == (0, None)
    node.restart(1)
    default = _entries(node, 4, "")
    assert {name: e.value for name, e in default.items()} == {"log.retention.ms": "60000"}
    assert _entries(node, 2, topic)["retention.ms"].value == "60000"
