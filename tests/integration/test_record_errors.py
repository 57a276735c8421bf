"""Per-record produce errors (KIP-467, issue 18) on a real node.

A batch with keyless records on a compacted topic is refused as Kafka's ``LogValidator`` does:
INVALID_RECORD for the partition, every keyless record listed in ``record_errors`` by its index in
the batch, nothing of the batch appended, the request's other partitions unaffected. librdkafka
then fails the keyless records with INVALID_RECORD and the others with
``_INVALID_DIFFERENT_RECORD``, so the application resends just those; kafka-python fails the bad
ones with InvalidRecordError and the others with a KafkaError saying why.
"""

from __future__ import annotations

from typing import Any

import pytest
from integration_helpers import build_batch, create_topic, read_partition, unique_topic, wire

from cluster.pytest_plugin import RunningCluster
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records.builder import RecordBatchBuilder

INVALID_RECORD = 87
COMPACTED = {"cleanup.policy": "compact"}


@pytest.fixture(scope="module")
def compacted(own_cluster: RunningCluster) -> tuple[RunningCluster, str]:
    """The module's node and a compacted topic of 2 partitions (each test uses its own partition
    or reads only what it wrote)."""
    topic = unique_topic("record-errors")
    create_topic(own_cluster, topic, partitions=2, config=COMPACTED)
    return own_cluster, topic


def _keyed_batch(keys: list[bytes | None]) -> bytes:
    batch = RecordBatchBuilder()
    for i, key in enumerate(keys):
        batch.append(key, b"v%d" % i)
    return batch.build()


def _produce(cluster: RunningCluster, version: int, topic: str, partitions: dict[int, bytes]) -> list[Any]:
    with wire(cluster) as client:
        response = client.request(ApiKey.PRODUCE, version, {
            "transactional_id": None, "acks": -1, "timeout": 5000,
            "topic_data": [{"name": topic, "partition_data": [{"index": p, "records": r}
                                                              for p, r in partitions.items()]}]})
    (topic_response,) = response.responses
    return sorted(topic_response.partition_responses, key=lambda p: p.index)


def test_librdkafka_fails_only_the_keyless_records_then_resends_the_others(own_cluster: RunningCluster) -> None:
    """100 records in ONE batch, 10 without a key → 10 INVALID_RECORD, 90 _INVALID_DIFFERENT_RECORD;
    resending the 90 succeeds and nothing of the refused batch was stored."""
    from confluent_kafka import KafkaError, Producer

    topic = unique_topic("rdkafka-record-errors")
    create_topic(own_cluster, topic, partitions=1, config=COMPACTED)
    producer = Producer({"bootstrap.servers": own_cluster.bootstrap_servers, "linger.ms": 60_000,
                         "batch.num.messages": 100, "batch.size": 1 << 20, "compression.type": "lz4"})
    reports: dict[int, Any] = {}

    def send(indexes: list[int]) -> None:
        for i in indexes:
            key = None if i % 10 == 3 else b"k%d" % i
            producer.produce(topic, b"v%d" % i, key, partition=0,
                             on_delivery=lambda err, _msg, i=i: reports.__setitem__(i, err))
        assert producer.flush(15) == 0

    send(list(range(100)))
    codes = {i: err.code() if err is not None else None for i, err in reports.items()}
    bad = sorted(i for i, code in codes.items() if code == KafkaError.INVALID_RECORD)
    different = [i for i, code in codes.items() if code == KafkaError._INVALID_DIFFERENT_RECORD]
    assert bad == list(range(3, 100, 10))
    assert len(different) == 90, {i: code for i, code in codes.items() if i not in bad}
    assert read_partition(own_cluster, topic, 0) == []

    reports.clear()
    send(sorted(different))
    assert all(err is None for err in reports.values()) and len(reports) == 90
    stored = read_partition(own_cluster, topic, 0)
    assert [r.value for r in stored] == [b"v%d" % i for i in sorted(different)]
    assert [r.offset for r in stored] == list(range(90))


@pytest.mark.parametrize("version", [8, 9])
def test_raw_produce_lists_every_keyless_record(compacted: tuple[RunningCluster, str], version: int) -> None:
    """Produce v8 (and flexible v9): record_errors name the keyless records' batch indexes with
    Kafka's message; the partition's error_message is LogValidator.processRecordErrors'."""
    cluster, topic = compacted
    keys = [b"a", None, b"c", None, b"e", None, None]
    (answer,) = _produce(cluster, version, topic, {0: _keyed_batch(keys)})
    assert answer.error_code == INVALID_RECORD
    assert [e.batch_index for e in answer.record_errors] == [1, 3, 5, 6]
    message = f"Compacted topic cannot accept message without key in topic partition {topic}-0."
    assert {e.batch_index_error_message for e in answer.record_errors} == {message}
    assert answer.error_message == (
        "One or more records have been rejected due to 4 record errors in total, and only showing the first "
        f"three errors at most: [RecordError(batchIndex=1, message='{message}'), "
        f"RecordError(batchIndex=3, message='{message}'), RecordError(batchIndex=5, message='{message}')]")
    assert answer.base_offset == -1


def test_only_the_bad_partition_of_a_request_is_refused(compacted: tuple[RunningCluster, str]) -> None:
    """One request, two partitions: the keyless batch fails with its record errors, the other is
    appended."""
    cluster, topic = compacted
    before = len(read_partition(cluster, topic, 1))
    bad, good = _produce(cluster, 8, topic, {0: _keyed_batch([b"x", None]),
                                             1: build_batch([b"g1", b"g2"], key=b"g")})
    assert (bad.error_code, [e.batch_index for e in bad.record_errors]) == (INVALID_RECORD, [1])
    assert (good.error_code, tuple(good.record_errors), good.error_message) == (0, (), None)
    assert [r.value for r in read_partition(cluster, topic, 1)[before:]] == [b"g1", b"g2"]


def test_kafka_python_fails_bad_records_with_their_message(compacted: tuple[RunningCluster, str]) -> None:
    """kafka-python (Produce v9) maps record_errors: InvalidRecordError with the record's message
    for a keyless record, a KafkaError for its batch mates."""
    from kafka import KafkaProducer
    from kafka.errors import InvalidRecordError, KafkaError

    cluster, topic = compacted
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap_servers, linger_ms=60_000,
                             batch_size=1 << 20, retries=0)
    try:
        futures = [producer.send(topic, b"v%d" % i, key=None if i in (2, 5) else b"k", partition=0)
                   for i in range(8)]
        producer.flush(15)
    finally:
        producer.close(5)
    errors = [f.exception for f in futures]
    assert [i for i, e in enumerate(errors) if isinstance(e, InvalidRecordError)] == [2, 5]
    assert "Compacted topic cannot accept message without key" in str(errors[2])
    assert all(type(e) is KafkaError for i, e in enumerate(errors) if i not in (2, 5))
