"""Topic administration through confluent-kafka's AdminClient against a real node.

CreateTopics (configs, validate_only, duplicates), DeleteTopics (directories removed, the name
reusable), CreatePartitions (grow, refuse shrink), DescribeConfigs (topic and broker: values
and sources), DescribeCluster, Metadata; auto-creation on first produce with num.partitions;
the YAML ``topics:`` section. Kafka's error codes: TOPIC_ALREADY_EXISTS 36, INVALID_PARTITIONS 37.
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from integration_helpers import admin, create_topic, list_offset, unique_topic, wait_until
from cluster.pytest_plugin import RunningCluster

TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37


@pytest.fixture(scope="module")
def client(cluster: RunningCluster) -> Any:
    return admin(cluster)


def kafka_error(future: Any) -> int:
    """The Kafka error code a failed admin future carries."""
    with pytest.raises(KafkaException) as failure:
        future.result(timeout=15)
    return failure.value.args[0].code()


def partition_count(client: Any, topic: str) -> int | None:
    """Partitions of ``topic`` in a Metadata request for ALL topics: asking for one topic by
    name would auto-create it (librdkafka's admin client allows auto-creation, as a producer)."""
    metadata = client.list_topics(timeout=10).topics.get(topic)
    return None if metadata is None or metadata.error is not None else len(metadata.partitions)


def topic_configs(client: Any, topic: str) -> dict[str, Any]:
    (future,) = client.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
    return future.result(timeout=15)


def test_create_topic_with_configs(cluster: RunningCluster, client: Any) -> None:
    topic = unique_topic("admin-create")
    futures = client.create_topics([NewTopic(topic, 4, 1, config={"retention.ms": "123456",
                                                                  "max.message.bytes": "5000"})])
    assert futures[topic].result(timeout=15) is None
    assert partition_count(client, topic) == 4
    metadata = client.list_topics(timeout=10).topics[topic]
    assert {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in metadata.partitions.values()} == {
        p: (1, [1], [1]) for p in range(4)}

    configs = topic_configs(client, topic)
    assert configs["retention.ms"].value == "123456"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["max.message.bytes"].value == "5000"
    assert configs["segment.bytes"].value == "1048576"  # log.segment.bytes of the cluster YAML
    assert configs["segment.bytes"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert configs["cleanup.policy"].value == "delete"
    assert configs["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value


def test_validate_only_creates_nothing(client: Any) -> None:
    topic = unique_topic("admin-validate")
    futures = client.create_topics([NewTopic(topic, 2, 1)], validate_only=True)
    assert futures[topic].result(timeout=15) is None
    assert partition_count(client, topic) is None
    bad = client.create_topics([NewTopic(topic, 2, 1, config={"no.such.config": "1"})], validate_only=True)
    assert kafka_error(bad[topic]) != 0


def test_creating_an_existing_topic_is_topic_already_exists(cluster: RunningCluster, client: Any) -> None:
    topic = unique_topic("admin-dup")
    create_topic(cluster, topic, partitions=2)
    futures = client.create_topics([NewTopic(topic, 5, 1)])
    assert kafka_error(futures[topic]) == TOPIC_ALREADY_EXISTS
    assert partition_count(client, topic) == 2


def test_delete_topic_removes_its_directories_and_the_name_can_be_reused(cluster: RunningCluster,
                                                                         client: Any) -> None:
    topic = unique_topic("admin-delete")
    create_topic(cluster, topic, partitions=3)
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
    for p in range(3):
        producer.produce(topic, b"old", partition=p)
    assert producer.flush(10) == 0
    node_dir = cluster.config.node_dir(1)
    assert all((node_dir / f"{topic}-{p}").is_dir() for p in range(3))

    futures = client.delete_topics([topic], operation_timeout=10)
    assert futures[topic].result(timeout=15) is None
    wait_until(lambda: not any((node_dir / f"{topic}-{p}").exists() for p in range(3)), 10,
               "the partition directories to be deleted")
    wait_until(lambda: partition_count(client, topic) is None, 10, "the topic to leave Metadata")

    create_topic(cluster, topic, partitions=2)
    assert partition_count(client, topic) == 2
    assert [list_offset(cluster, topic, p, -1).offset for p in range(2)] == [0, 0]  # nothing old comes back
    producer.produce(topic, b"new", partition=1)
    assert producer.flush(10) == 0
    assert list_offset(cluster, topic, 1, -1).offset == 1


def test_deleting_an_unknown_topic_fails(client: Any) -> None:
    topic = unique_topic("admin-never")
    assert kafka_error(client.delete_topics([topic], operation_timeout=10)[topic]) == 3  # UNKNOWN_TOPIC_OR_PARTITION


def test_create_partitions_grows_and_refuses_to_shrink(cluster: RunningCluster, client: Any) -> None:
    topic = unique_topic("admin-grow")
    create_topic(cluster, topic, partitions=3)

    futures = client.create_partitions([NewPartitions(topic, 5)])
    assert futures[topic].result(timeout=15) is None
    wait_until(lambda: partition_count(client, topic) == 5, 10, "5 partitions in Metadata")
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
    producer.produce(topic, b"in the new partition", partition=4)
    assert producer.flush(10) == 0
    assert list_offset(cluster, topic, 4, -1).offset == 1

    assert kafka_error(client.create_partitions([NewPartitions(topic, 2)])[topic]) == INVALID_PARTITIONS
    assert kafka_error(client.create_partitions([NewPartitions(topic, 5)])[topic]) == INVALID_PARTITIONS
    validate = client.create_partitions([NewPartitions(topic, 8)], validate_only=True)
    assert validate[topic].result(timeout=15) is None
    assert partition_count(client, topic) == 5


def test_describe_broker_configs(client: Any) -> None:
    (future,) = client.describe_configs([ConfigResource(ResourceType.BROKER, "1")]).values()
    configs = future.result(timeout=15)
    assert configs["num.partitions"].value == "3"
    assert configs["num.partitions"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert configs["log.retention.check.interval.ms"].value == "500"
    assert configs["message.max.bytes"].value == "1048588"
    assert configs["message.max.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["auto.create.topics.enable"].value == "true"


def test_describe_cluster(cluster: RunningCluster, client: Any) -> None:
    description = client.describe_cluster(request_timeout=10).result(timeout=15)
    assert description.cluster_id
    assert description.controller.id == 1
    assert [(n.id, n.host, n.port) for n in description.nodes] == [
        (1, cluster.config.host, cluster.config.node(1).port)]
    metadata = client.list_topics(timeout=10)
    assert metadata.cluster_id == description.cluster_id
    assert metadata.controller_id == 1
    assert list(metadata.brokers) == [1]


def test_first_produce_auto_creates_the_topic_with_num_partitions(cluster: RunningCluster, client: Any) -> None:
    topic = unique_topic("auto")
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "acks": "all"})
    producer.produce(topic, b"first")
    assert producer.flush(15) == 0
    assert partition_count(client, topic) == 3  # num.partitions in the cluster YAML
    assert sum(list_offset(cluster, topic, p, -1).offset for p in range(3)) == 1


def test_topics_of_the_yaml_exist_after_up(client: Any) -> None:
    assert partition_count(client, "yaml-declared") == 2
    configs = topic_configs(client, "yaml-declared")
    assert configs["retention.ms"].value == "3600000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
