"""Topic and broker ``compression.type`` (issue 18) on a real node.

Every Kafka value is set on a topic (and ``gzip`` as the broker default, which a topic without
its own value follows); confluent-kafka, kafka-python and aiokafka each write to every topic with
a codec of their own, every client reads every topic back, and every stored batch is in the
topic's codec (Kafka's ``LogValidator`` recompresses on append), except on a ``producer`` topic,
which keeps each producer's codec. Bad values and levels are refused with Kafka's messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from integration_helpers import admin, create_topic, fetch_raw, unique_topic, wait_until, wire

from cluster.pytest_plugin import RunningCluster, start_cluster
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records.batch import iter_batches
from pykafka_ops.records.compression import Compression

YAML = """\
cluster: {name: topic-compression}
nodes:
  - {id: 1}
broker:
  num.partitions: 1
  compression.type: gzip
"""
#: Each topic's compression.type (None: no override, the broker's gzip) → the codec it stores.
TOPICS: dict[str | None, Compression | None] = {
    "uncompressed": Compression.NONE, "gzip": Compression.GZIP, "snappy": Compression.SNAPPY,
    "lz4": Compression.LZ4, "zstd": Compression.ZSTD, "producer": None, None: Compression.GZIP,
}
#: The codec each client produces with.
WRITERS = {"confluent": "zstd", "kafka-python": "lz4", "aiokafka": "snappy"}
PER_WRITER = 20
INVALID_CONFIG = 40


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """One node whose broker default is compression.type=gzip."""
    with start_cluster(YAML, tmp_path_factory.mktemp("compression")) as running:
        yield running


@pytest.fixture(scope="module")
def written(node: RunningCluster) -> dict[str | None, str]:
    """A topic per compression type (one partition), written by every client: type → topic name."""
    names = {kind: unique_topic(f"codec-{kind or 'default'}") for kind in TOPICS}
    for kind, name in names.items():
        create_topic(node, name, partitions=1, config={"compression.type": kind} if kind else {})
        if kind == "zstd":  # a level (KIP-390) does not change what is stored
            _alter(node, name, {"compression.zstd.level": "19"})
    topics = list(names.values())
    _write_confluent(node, topics)
    _write_kafka_python(node, topics)
    asyncio.run(_write_aiokafka(node, topics))
    return names


def _values(writer: str) -> list[bytes]:
    return [f"{writer}-{i}-".encode() * 8 for i in range(PER_WRITER)]


def _write_confluent(node: RunningCluster, topics: list[str]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": node.bootstrap_servers, "compression.type": WRITERS["confluent"],
                         "linger.ms": 50, "acks": "all"})
    for topic in topics:
        for value in _values("confluent"):
            producer.produce(topic, value, b"k", partition=0)
    assert producer.flush(15) == 0


def _write_kafka_python(node: RunningCluster, topics: list[str]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=node.bootstrap_servers,
                             compression_type=WRITERS["kafka-python"], linger_ms=50)
    try:
        futures = [producer.send(topic, value, key=b"k", partition=0)
                   for topic in topics for value in _values("kafka-python")]
        producer.flush(15)
        for future in futures:
            future.get(timeout=5)
    finally:
        producer.close(5)


async def _write_aiokafka(node: RunningCluster, topics: list[str]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=node.bootstrap_servers,
                                compression_type=WRITERS["aiokafka"], linger_ms=50)
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=b"k", partition=0)
                for topic in topics for value in _values("aiokafka")]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _alter(node: RunningCluster, topic: str, configs: dict[str, str]) -> None:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET) for name, value in configs.items()])
    client = admin(node)
    client.incremental_alter_configs([resource])[resource].result(timeout=15)


def _expected(written: dict[str | None, str]) -> dict[str, list[bytes]]:
    values = [v for writer in WRITERS for v in _values(writer)]
    return {name: values for name in written.values()}


def _stored_codecs(node: RunningCluster, topic: str) -> set[Compression]:
    with wire(node) as client:
        data = fetch_raw(client, topic, 0, 0, max_bytes=16 << 20).records or b""
    return {header.compression for _pos, header in iter_batches(data)}


def test_every_stored_batch_is_in_the_topic_codec(written: dict[str | None, str], node: RunningCluster) -> None:
    producer_codecs = {Compression[c.upper()] for c in WRITERS.values()}
    for kind, topic in written.items():
        assert _stored_codecs(node, topic) == ({TOPICS[kind]} if TOPICS[kind] is not None else producer_codecs), kind


def test_confluent_reads_every_topic(written: dict[str | None, str], node: RunningCluster) -> None:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": node.bootstrap_servers, "group.id": unique_topic("g"),
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(t, 0, 0) for t in written.values()])
        got: dict[str, list[bytes]] = {t: [] for t in written.values()}

        def done() -> bool:
            for message in consumer.consume(500, 0.2):
                assert message.error() is None, message.error()
                got[message.topic()].append(message.value())
            return all(len(v) == PER_WRITER * len(WRITERS) for v in got.values())

        wait_until(done, 15, "confluent-kafka reads every topic")
    finally:
        consumer.close()
    assert got == _expected(written)


def test_kafka_python_reads_every_topic(written: dict[str | None, str], node: RunningCluster) -> None:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=node.bootstrap_servers, enable_auto_commit=False)
    try:
        consumer.assign([TopicPartition(t, 0) for t in written.values()])
        consumer.seek_to_beginning()
        got: dict[str, list[bytes]] = {t: [] for t in written.values()}

        def done() -> bool:
            for tp, messages in consumer.poll(200).items():
                got[tp.topic] += [m.value for m in messages]
            return all(len(v) == PER_WRITER * len(WRITERS) for v in got.values())

        wait_until(done, 15, "kafka-python reads every topic")
    finally:
        consumer.close()
    assert got == _expected(written)


def test_aiokafka_reads_every_topic(written: dict[str | None, str], node: RunningCluster) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read() -> dict[str, list[bytes]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=node.bootstrap_servers, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign([TopicPartition(t, 0) for t in written.values()])
            got: dict[str, list[bytes]] = {t: [] for t in written.values()}
            while not all(len(v) == PER_WRITER * len(WRITERS) for v in got.values()):
                batches = await asyncio.wait_for(consumer.getmany(timeout_ms=200), 15)
                for tp, messages in batches.items():
                    got[tp.topic] += [m.value for m in messages]
            return got
        finally:
            await consumer.stop()

    assert asyncio.run(read()) == _expected(written)


def test_altered_compression_applies_to_the_next_batches(node: RunningCluster) -> None:
    """IncrementalAlterConfigs compression.type: batches appended afterwards are in the new codec;
    those stored before stay as they were."""
    from confluent_kafka import Producer

    topic = unique_topic("codec-altered")
    create_topic(node, topic, partitions=1, config={"compression.type": "uncompressed"})
    producer = Producer({"bootstrap.servers": node.bootstrap_servers, "compression.type": "lz4"})
    producer.produce(topic, b"before" * 20, partition=0)
    assert producer.flush(10) == 0
    _alter(node, topic, {"compression.type": "snappy"})
    wait_until(lambda: _topic_config(node, topic)["compression.type"] == "snappy", 10, "the new config applied")
    producer.produce(topic, b"after" * 20, partition=0)
    assert producer.flush(10) == 0
    with wire(node) as client:
        data = fetch_raw(client, topic, 0, 0).records
    assert [h.compression for _pos, h in iter_batches(data)] == [Compression.NONE, Compression.SNAPPY]


def _topic_config(node: RunningCluster, topic: str, synonyms: bool = False) -> dict[str, Any]:
    with wire(node) as client:
        response = client.request(ApiKey.DESCRIBE_CONFIGS, 1, {
            "resources": [{"resource_type": 2, "resource_name": topic, "configuration_keys": None}],
            "include_synonyms": synonyms})
    (resource,) = response.results
    return {c.name: [(s.name, s.value) for s in c.synonyms] if synonyms else c.value for c in resource.configs}


def test_describe_configs_shows_the_broker_synonym(written: dict[str | None, str], node: RunningCluster) -> None:
    """A topic's compression.type (and levels) has the broker's setting of the same name as synonym
    (the static broker value, then Kafka's default)."""
    config = _topic_config(node, written[None], synonyms=True)
    assert config["compression.type"] == [("compression.type", "gzip"), ("compression.type", "producer")]
    assert config["compression.lz4.level"] == [("compression.lz4.level", "9")]
    assert _topic_config(node, written["zstd"])["compression.zstd.level"] == "19"


@pytest.mark.parametrize(("name", "value", "message"), [
    ("compression.type", "lz5", "Invalid value lz5 for configuration compression.type: String must be one of: "
                                "uncompressed, zstd, lz4, snappy, gzip, producer"),
    ("compression.gzip.level", "0", "Invalid value 0 for configuration compression.gzip.level: Value must be "
                                    "between 1 and 9 or equal to -1"),
    ("compression.lz4.level", "18", "Invalid value 18 for configuration compression.lz4.level: Value must be no "
                                    "more than 17"),
    ("compression.zstd.level", "-131073", "Invalid value -131073 for configuration compression.zstd.level: Value "
                                          "must be at least -131072"),
])
def test_bad_values_are_invalid_config(node: RunningCluster, name: str, value: str, message: str) -> None:
    with wire(node) as client:
        response = client.request(ApiKey.CREATE_TOPICS, 5, {
            "topics": [{"name": unique_topic("bad-codec"), "num_partitions": 1, "replication_factor": 1,
                        "assignments": [], "configs": [{"name": name, "value": value}]}],
            "timeout": 10000, "validate_only": False})
    (topic,) = response.topics
    assert topic.error_code == INVALID_CONFIG
    assert message in topic.error_message


def test_a_dynamic_broker_default_applies_to_topics_without_their_own(node: RunningCluster) -> None:
    """IncrementalAlterConfigs of broker 1's compression.type (dynamic, as Kafka's DynamicLogConfig):
    a topic with no override stores the next batches in the new codec (restored afterwards)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    def set_default(op: AlterConfigOpType) -> None:
        resource = ConfigResource(ConfigResource.Type.BROKER, "1", incremental_configs=[
            ConfigEntry("compression.type", "lz4", incremental_operation=op)])
        client = admin(node)  # kept: a collected AdminClient cancels its futures
        client.incremental_alter_configs([resource])[resource].result(timeout=15)

    topic = unique_topic("codec-broker-default")
    create_topic(node, topic, partitions=1)
    set_default(AlterConfigOpType.SET)
    try:
        wait_until(lambda: _topic_config(node, topic)["compression.type"] == "lz4", 10, "the broker default applied")
        producer = Producer({"bootstrap.servers": node.bootstrap_servers, "compression.type": "snappy"})
        producer.produce(topic, b"value" * 20, partition=0)
        assert producer.flush(10) == 0
        assert _stored_codecs(node, topic) == {Compression.LZ4}
    finally:
        set_default(AlterConfigOpType.DELETE)
