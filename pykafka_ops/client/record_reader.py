"""Read the timestamp of one record per partition with a plain (group-less) confluent-kafka Consumer.

Used for the time lag: the partitions are assigned, never subscribed, and nothing is committed,
so no consumer group is created on the cluster (the ``group.id`` is only required by the client).
Blocking; bounded by the settings' timeout.
"""

from __future__ import annotations

import time

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.models.groups import TopicPartition

_GROUP_ID = "pko-record-reader"


def read_timestamps(settings: ClientSettings, positions: dict[TopicPartition, int],
                    isolation_level: str = "read_committed") -> dict[TopicPartition, int | str]:
    """For each partition, the timestamp (ms) of the first record at or after the offset, or a reason."""
    from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError
    from confluent_kafka import TopicPartition as CkTopicPartition

    consumer = Consumer(settings.librdkafka(group_id=_GROUP_ID, enable_auto_commit=False,
                                            enable_partition_eof=True, auto_offset_reset="error",
                                            isolation_level=isolation_level))
    result: dict[TopicPartition, int | str] = {}
    try:
        consumer.assign([CkTopicPartition(tp.topic, tp.partition, offset) for tp, offset in positions.items()])
        deadline = time.monotonic() + settings.timeout_s
        while len(result) < len(positions) and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=len(positions), timeout=0.1):
                tp = TopicPartition(msg.topic() or "", msg.partition() or 0)
                if tp not in positions or tp in result:  # a client-level error has no partition
                    continue
                error = msg.error()
                if error is None:
                    kind, stamp = msg.timestamp()
                    result[tp] = "the record has no timestamp" if kind == TIMESTAMP_NOT_AVAILABLE else stamp
                elif error.code() == KafkaError._PARTITION_EOF:
                    result[tp] = "no record at or after the offset"
                elif error.code() == KafkaError._AUTO_OFFSET_RESET:
                    result[tp] = "the record was deleted (offset out of range)"
                else:
                    result[tp] = error.str()
    finally:
        consumer.close()
    for tp in positions.keys() - result.keys():
        result[tp] = f"no record read within {settings.timeout_s:g} s"
    return result
