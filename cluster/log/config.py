"""LogConfig (Kafka's `LogConfig`): a partition log's settings, from the topic's effective config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pykafka_ops.records.compression import Compression

#: compression.type → the codec batches are stored in (Kafka's ``BrokerCompressionType``);
#: "producer" is absent: batches are stored as sent.
_TARGET_CODECS = {"uncompressed": Compression.NONE, "gzip": Compression.GZIP, "snappy": Compression.SNAPPY,
                  "lz4": Compression.LZ4, "zstd": Compression.ZSTD}
#: The codecs with a level setting (KIP-390, Kafka 3.8): compression.<codec>.level.
_LEVEL_SETTINGS = {Compression.GZIP: "compression.gzip.level", Compression.LZ4: "compression.lz4.level",
                   Compression.ZSTD: "compression.zstd.level"}


@dataclass(frozen=True)
class LogConfig:
    """Typed view of the topic settings the log layer uses (Kafka names in the docstrings)."""

    segment_bytes: int
    """segment.bytes: roll when the active segment would exceed this."""
    segment_ms: int
    """segment.ms: roll when the active segment's first record is older than this."""
    retention_ms: int
    """retention.ms: delete segments whose newest record is older (-1 = keep forever)."""
    retention_bytes: int
    """retention.bytes: delete oldest segments beyond this partition size (-1 = unlimited)."""
    index_interval_bytes: int
    """index.interval.bytes: bytes of log between offset-index entries."""
    max_message_bytes: int
    """max.message.bytes: largest batch accepted."""
    log_append_time: bool
    """message.timestamp.type == LogAppendTime."""
    flush_messages: int
    """flush.messages: fsync after this many records."""
    flush_ms: int
    """flush.ms: fsync at least this often."""
    min_insync_replicas: int
    """min.insync.replicas: needed for acks=all."""
    compact: bool
    """cleanup.policy has "compact": the log cleaner keeps the newest record per key."""
    delete: bool
    """cleanup.policy has "delete": retention.ms / retention.bytes delete old segments."""
    delete_retention_ms: int
    """delete.retention.ms: how long compaction keeps tombstones (null-value records)."""
    compression: Compression | None = None
    """compression.type as the codec the leader stores batches in; None = "producer" (as sent)."""
    compression_level: int | None = None
    """compression.<codec>.level of that codec (KIP-390); None for snappy, uncompressed, producer."""

    @property
    def max_batch_bytes(self) -> int:
        """The largest batch a segment can hold, offset and length fields included (recovery's bound)."""
        return max(self.max_message_bytes, self.segment_bytes) + 12

    @classmethod
    def from_topic_config(cls, config: Mapping[str, Any]) -> LogConfig:
        """Build from a topic's effective settings (every TOPIC_SETTINGS name present)."""
        policies = set(str(config["cleanup.policy"]).split(","))
        codec = _TARGET_CODECS.get(str(config["compression.type"]))
        level_setting = _LEVEL_SETTINGS.get(codec) if codec is not None else None
        return cls(
            segment_bytes=int(config["segment.bytes"]),
            segment_ms=int(config["segment.ms"]),
            retention_ms=int(config["retention.ms"]),
            retention_bytes=int(config["retention.bytes"]),
            index_interval_bytes=int(config["index.interval.bytes"]),
            max_message_bytes=int(config["max.message.bytes"]),
            log_append_time=config["message.timestamp.type"] == "LogAppendTime",
            flush_messages=int(config["flush.messages"]),
            flush_ms=int(config["flush.ms"]),
            min_insync_replicas=int(config["min.insync.replicas"]),
            compact="compact" in policies,
            delete="delete" in policies,
            delete_retention_ms=int(config["delete.retention.ms"]),
            compression=codec,
            compression_level=int(config[level_setting]) if level_setting else None,
        )
