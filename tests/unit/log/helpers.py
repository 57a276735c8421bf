"""Shared builders for the log-layer tests: topic configs and record batches."""

from __future__ import annotations

from typing import Any

from cluster.log.config import LogConfig
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.records import RecordBatch, RecordBatchBuilder
from pykafka_ops.records.batch import iter_batches

T0 = 1_700_000_000_000
"""A fixed record timestamp (ms); tests pass ``now_ms`` explicitly, so wall-clock time never matters."""
DAY_MS = 86_400_000


def log_config(**overrides: Any) -> LogConfig:
    """The effective config of a topic with Kafka's defaults plus ``overrides`` (Kafka names)."""
    return LogConfig.from_topic_config(topic_defaults(broker_defaults()) | overrides)


def batch(
    n: int = 1,
    ts: int = T0,
    *,
    value_size: int = 10,
    key: bytes = b"k",
    producer_id: int = -1,
    epoch: int = -1,
    seq: int = -1,
    timestamps: list[int] | None = None,
    **builder_args: Any,
) -> bytes:
    """One v2 batch of ``n`` records (timestamps ``ts``, ``ts + 1`` … unless given)."""
    builder = RecordBatchBuilder(producer_id=producer_id, producer_epoch=epoch, base_sequence=seq, **builder_args)
    stamps = timestamps if timestamps is not None else [ts + i for i in range(n)]
    for i, stamp in enumerate(stamps):
        builder.append(key + b"%d" % i, bytes([i % 256]) * value_size, timestamp_ms=stamp)
    return builder.build()


def produced(*batches: bytes) -> memoryview:
    """A record set as the Produce path hands it to the log: a writable view of the frame."""
    return memoryview(bytearray(b"".join(batches)))


def batches_in(data: bytes) -> list[tuple[int, int, int]]:
    """(base offset, last offset, records) of every whole batch in ``data``."""
    return [(h.base_offset, h.last_offset, h.records_count) for _pos, h in iter_batches(data)]


def offsets_in(data: bytes) -> list[int]:
    """Offsets of every record of the whole batches in ``data``."""
    return [r.offset for pos, _h in iter_batches(data) for r in RecordBatch(data, pos).records()]
