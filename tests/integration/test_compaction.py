"""Log compaction on a real node: a cleanup.policy=compact topic read from the beginning ends up
with the last value of each key and without deleted keys; records without a key are refused;
``__consumer_offsets`` is created compacted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from group_clients import wait_until
from group_members import create_topic, unique
from cluster.pytest_plugin import start_cluster
from group_members import GROUPS_YAML

#: The cleaner looks for work on every maintenance tick.
COMPACTION_YAML = GROUPS_YAML + "  log.cleaner.backoff.ms: 0\n"
#: Tiny segments roll often; tombstones are dropped at the first cleaning.
TABLE_CONFIG = {"cleanup.policy": "compact", "segment.bytes": "1024", "delete.retention.ms": "0"}


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_cluster(COMPACTION_YAML, tmp_path_factory.mktemp("compaction")) as cluster:
        yield cluster.bootstrap_servers


def _read_all(bootstrap: str, topic: str) -> list[tuple[bytes, bytes | None]]:
    """(key, value) of every record from the beginning to the high watermark."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"), "enable.auto.commit": False})
    try:
        end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        records: list[tuple[bytes, bytes | None]] = []
        last = -1
        while last < end - 1:
            message = consumer.poll(5)
            assert message is not None, f"no record after offset {last} (end {end})"
            if not message.error():
                records.append((message.key(), message.value()))
                last = message.offset()
        return records
    finally:
        consumer.close()


def test_a_compacted_topic_keeps_the_last_value_of_each_key_and_forgets_deleted_keys(bootstrap: str) -> None:
    topic = unique("table")
    create_topic(bootstrap, topic, 1, TABLE_CONFIG)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 4})
    for version in range(10):
        for k in range(8):
            producer.produce(topic, key=b"k%d" % k, value=b"v%d" % version)
    for k in range(3):
        producer.produce(topic, key=b"k%d" % k, value=None)  # tombstones: k0..k2 are deleted
    for i in range(40):  # unrelated keys roll the records above out of the active segment
        producer.produce(topic, key=b"filler-%d" % i, value=b"x" * 50)
    assert producer.flush(15) == 0

    def compacted() -> bool:
        table = [(k, v) for k, v in _read_all(bootstrap, topic) if not k.startswith(b"filler-")]
        return table == [(b"k%d" % k, b"v9") for k in range(3, 8)]

    wait_until(compacted, 30, "the topic compacted to the last value of k3..k7")
    assert len([k for k, _v in _read_all(bootstrap, topic) if k.startswith(b"filler-")]) == 40


def test_a_compacted_topic_refuses_a_record_without_a_key(bootstrap: str) -> None:
    topic = unique("table")
    create_topic(bootstrap, topic, 1, TABLE_CONFIG)
    errors: list[KafkaError] = []
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "retries": 0})
    producer.produce(topic, value=b"no key", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(10)
    assert [e.code() for e in errors] == [KafkaError.INVALID_RECORD]


def test_consumer_offsets_is_created_compacted(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("any")})
    consumer.committed([TopicPartition("anything", 0)], timeout=10)  # FindCoordinator creates the topic
    consumer.close()
    resource = ConfigResource(ConfigResource.Type.TOPIC, "__consumer_offsets")
    configs = admin.describe_configs([resource])[resource].result(10)
    assert configs["cleanup.policy"].value == "compact"
    assert len(admin.list_topics("__consumer_offsets", timeout=10).topics["__consumer_offsets"].partitions) == 10
