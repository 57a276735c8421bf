"""DescribeTopicPartitions (75), ListConfigResources (74) and DescribeLogDirs (35) on one node.

* DescribeTopicPartitions pages a 2 100-partition topic and a small one, 1 000 partitions a page:
  three pages whose cursors continue each other, every partition once (our wire client, as
  confluent-kafka's ``describe_topics`` sends Metadata; kafka-python's ``describe_topic_partitions``
  for one call); Kafka's 2 000-partition cap; an unknown topic, a cursor outside the named topics;
* ListConfigResources v1 through kafka-python (topics, brokers), v0 (client metrics: none) and
  an unsupported type (UNSUPPORTED_VERSION);
* DescribeLogDirs through kafka-python and v4 (sizes of produced partitions, disk bytes).

One module-scoped node; creating the 2 100 partitions takes most of this file's time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from integration_helpers import create_topic, unique_topic, wire
from kafka.admin import KafkaAdminClient

from cluster.pytest_plugin import RunningCluster, start_cluster
from pykafka_ops.protocol.api_keys import ApiKey

YAML = """\
cluster: {name: admin-apis}
nodes:
  - {id: 1}
broker:
  offsets.topic.num.partitions: 1
"""
BIG, SMALL = "big-topic", "small-topic"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with start_cluster(YAML, tmp_path_factory.mktemp("admin-apis")) as running:
        create_topic(running, BIG, partitions=2100)
        create_topic(running, SMALL, partitions=2)
        yield running


@pytest.fixture(scope="module")
def kafka_python(node: RunningCluster) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=node.bootstrap_servers, request_timeout_ms=15000)
    yield client
    client.close()


def _page(node: RunningCluster, topics: list[str], limit: int, cursor: dict[str, Any] | None = None) -> Any:
    with wire(node) as client:
        return client.request(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, {
            "topics": [{"name": t} for t in topics], "response_partition_limit": limit, "cursor": cursor})


def test_describe_topic_partitions_pages_with_a_cursor(node: RunningCluster) -> None:
    seen: list[tuple[str, int]] = []
    cursors = []
    cursor = None
    for _ in range(4):
        page = _page(node, [SMALL, BIG], 1000, cursor)
        assert all(t.error_code == 0 for t in page.topics)
        seen += [(t.name, p.partition_index) for t in page.topics for p in t.partitions]
        if page.next_cursor is None:
            break
        cursor = {"topic_name": page.next_cursor.topic_name, "partition_index": page.next_cursor.partition_index}
        cursors.append((cursor["topic_name"], cursor["partition_index"]))
    assert cursors == [(BIG, 1000), (BIG, 2000)]  # three pages: sorted by name, big-topic first
    assert seen == [(BIG, i) for i in range(2100)] + [(SMALL, 0), (SMALL, 1)]
    partition = _page(node, [SMALL], 10).topics[0].partitions[0]
    assert (partition.leader_id, partition.replica_nodes, partition.isr_nodes, partition.offline_replicas,
            partition.eligible_leader_replicas, partition.last_known_elr) == (1, (1,), (1,), (), (), ())


def test_describe_topic_partitions_caps_and_errors(node: RunningCluster) -> None:
    capped = _page(node, [], 5000)  # every topic; Kafka's max.request.partition.size.limit is 2000
    assert sum(len(t.partitions) for t in capped.topics) == 2000
    assert (capped.next_cursor.topic_name, capped.next_cursor.partition_index) == (BIG, 2000)
    missing = _page(node, ["no-such-topic", SMALL], 100)
    # UNKNOWN_TOPIC_OR_PARTITION with the zero topic id (kio decodes it as None)
    assert [(t.name, t.error_code, t.topic_id) for t in missing.topics][0] == ("no-such-topic", 3, None)
    outside = _page(node, [SMALL], 100, {"topic_name": BIG, "partition_index": 0})
    assert [(t.name, t.error_code) for t in outside.topics] == [(SMALL, 42)]  # INVALID_REQUEST


def test_describe_topic_partitions_through_kafka_python(kafka_python: KafkaAdminClient) -> None:
    answer = kafka_python.describe_topic_partitions([SMALL])
    topics = answer["topics"] if isinstance(answer, dict) else answer
    (topic,) = topics
    assert topic["name"] == SMALL and len(topic["partitions"]) == 2


def test_list_config_resources(node: RunningCluster, kafka_python: KafkaAdminClient) -> None:
    listed = kafka_python.list_config_resources()  # resource type → names
    assert {BIG, SMALL} <= set(listed["topic"]) and listed["broker"] == ["1"]
    with wire(node) as client:
        assert client.request(ApiKey.LIST_CONFIG_RESOURCES, 0, {}).config_resources == ()
        unsupported = client.request(ApiKey.LIST_CONFIG_RESOURCES, 1, {"resource_types": [2, 64]})
        assert (unsupported.error_code, unsupported.config_resources) == (35, ())  # UNSUPPORTED_VERSION
        topics_only = client.request(ApiKey.LIST_CONFIG_RESOURCES, 1, {"resource_types": [2]})
        assert {r.resource_type for r in topics_only.config_resources} == {2}


def test_describe_log_dirs(node: RunningCluster, kafka_python: KafkaAdminClient) -> None:
    topic = unique_topic("logdirs")
    create_topic(node, topic, partitions=2)
    producer = Producer({"bootstrap.servers": node.bootstrap_servers})
    for i in range(20):
        producer.produce(topic, b"x" * 100, partition=0)
    assert producer.flush(15) == 0
    (broker,) = kafka_python.describe_log_dirs({topic: [0, 1, 7]})
    (log_dir,) = broker["log_dirs"]
    assert log_dir["error_code"] == 0 and log_dir["log_dir"].startswith("/")
    (described,) = log_dir["topics"]
    sizes = {p["partition_index"]: (p["partition_size"], p["offset_lag"], p["is_future_key"])
             for p in described["partitions"]}
    assert sizes.keys() == {0, 1}  # partition 7 does not exist: left out, as Kafka
    assert sizes[0][0] > 2000 and sizes[0][1:] == (0, False) and sizes[1] == (0, 0, False)
    with wire(node) as client:
        for version in (1, 2, 3):
            (older,) = client.request(ApiKey.DESCRIBE_LOG_DIRS, version, {"topics": [
                {"topic": topic, "partitions": [0]}]}).results
            described_sizes = [(t.name, [p.partition_size for p in t.partitions]) for t in older.topics]
            assert described_sizes == [(topic, [sizes[0][0]])]
        every = client.request(ApiKey.DESCRIBE_LOG_DIRS, 4, {"topics": None})
    (result,) = every.results
    assert result.total_bytes > result.usable_bytes > 0
    assert {t.name for t in result.topics} == {BIG, SMALL, topic}  # not the metadata log
