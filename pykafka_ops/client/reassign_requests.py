"""Reassignment requests, sent with our codec (librdkafka has none of them).

AlterPartitionReassignments (key 45, v0-1) and ListPartitionReassignments (key 46, v0) go to the
first bootstrap server that answers (``wire_admin``; a KRaft broker forwards them to the active
controller). AlterReplicaLogDirs (key 34) and DescribeLogDirs (key 35) act on one broker's
disks, so they go to that broker's own address. Blocking; the service layer runs them in a
thread. Plaintext listeners only (``WireClient``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.librdkafka import KafkaCallError
from pykafka_ops.client.wire import WireClient
from pykafka_ops.client.wire_admin import send_admin_request
from pykafka_ops.errors import error_name
from pykafka_ops.models.reassign import BrokerInfo, OngoingReassignment, PartitionError
from pykafka_ops.protocol.api_keys import ApiKey

TopicPartition = tuple[str, int]
LIST_REASSIGNMENTS = ApiKey.LIST_PARTITION_REASSIGNMENTS


def _by_topic(partitions: Iterable[TopicPartition]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for topic, partition in sorted(set(partitions)):
        grouped.setdefault(topic, []).append(partition)
    return grouped


def _check(error_code: int, message: str | None, what: str) -> None:
    name = error_name(error_code)
    if name != "NONE":
        raise KafkaCallError(name, f"{what}: {name}: {message or name}")


def list_partition_reassignments(settings: ClientSettings, partitions: Iterable[TopicPartition] | None = None
                                 ) -> tuple[OngoingReassignment, ...]:
    """The reassignments going on (of ``partitions`` only, when given), sorted by topic and
    partition; a top-level error raises ``KafkaCallError``. A partition listed with nothing to add
    and nothing to remove is not being reassigned (Kafka never lists one; Tansu lists every
    partition so) and is left out."""
    topics = None if partitions is None else [{"name": t, "partition_indexes": p}
                                               for t, p in _by_topic(partitions).items()]
    response = send_admin_request(settings, ApiKey.LIST_PARTITION_REASSIGNMENTS,
                                  {"timeout": int(settings.timeout_s * 1000), "topics": topics})
    _check(response.error_code, response.error_message, "list partition reassignments")
    found = [OngoingReassignment(t.name, p.partition_index, tuple(p.replicas), tuple(p.adding_replicas),
                                 tuple(p.removing_replicas)) for t in response.topics for p in t.partitions
             if p.adding_replicas or p.removing_replicas]
    return tuple(sorted(found, key=lambda r: (r.topic, r.partition)))


def adding_replicas(client: WireClient, metadata: Any, timeout_ms: int) -> dict[TopicPartition, tuple[int, ...]]:
    """The replicas being added to each partition being reassigned, asked of the broker
    ``client`` is connected to only when some partition of its ``metadata`` answer has an ISR that
    lacks a replica (a reassigning partition always does); empty when none does, or when the broker
    does not know ListPartitionReassignments or refuses it. Replicas being added do not count as
    missing from the ISR (KIP-455)."""
    lacking = any(not set(p.replica_nodes) <= set(p.isr_nodes) for t in metadata.topics for p in t.partitions)
    if not lacking or LIST_REASSIGNMENTS not in client.api_versions():
        return {}
    response = client.request(LIST_REASSIGNMENTS, 0, {"timeout": timeout_ms, "topics": None})
    if response.error_code != 0:
        return {}
    return {(t.name, p.partition_index): tuple(p.adding_replicas) for t in response.topics for p in t.partitions
            if p.adding_replicas}


def alter_partition_reassignments(settings: ClientSettings,
                                  changes: Mapping[TopicPartition, Sequence[int] | None]) -> tuple[PartitionError, ...]:
    """Start (replicas) or cancel (None) the reassignment of each partition; the partitions
    refused, with Kafka's error (a top-level error refuses every partition, as Kafka's Admin)."""
    topics = [{"name": topic, "partitions": [{"partition_index": p, "replicas": _replicas(changes[(topic, p)])}
                                             for p in indexes]}
              for topic, indexes in _by_topic(changes).items()]
    response = send_admin_request(settings, ApiKey.ALTER_PARTITION_REASSIGNMENTS,
                                  {"timeout": int(settings.timeout_s * 1000), "topics": topics,
                                   "allow_replication_factor_change": True})
    if response.error_code != 0:
        name = error_name(response.error_code)
        return tuple(PartitionError(t, p, name, response.error_message or name) for t, p in sorted(changes))
    errors = [PartitionError(t.name, p.partition_index, error_name(p.error_code),
                             p.error_message or error_name(p.error_code))
              for t in response.responses for p in t.partitions if p.error_code != 0]
    return tuple(sorted(errors, key=lambda e: (e.topic, e.partition)))


def _replicas(replicas: Sequence[int] | None) -> list[int] | None:
    return None if replicas is None else list(replicas)


def _at(settings: ClientSettings, broker: BrokerInfo) -> ClientSettings:
    """``settings`` aimed at one broker (its advertised address) instead of the bootstrap servers."""
    host = f"[{broker.host}]" if ":" in broker.host else broker.host
    return replace(settings, bootstrap_servers=f"{host}:{broker.port}")


def alter_replica_log_dirs(settings: ClientSettings, broker: BrokerInfo,
                           moves: Mapping[TopicPartition, str]) -> dict[TopicPartition, str]:
    """Ask ``broker`` to move its replica of each partition to the log dir given; Kafka's error
    name per partition (``NONE`` when the move started, ``REPLICA_NOT_AVAILABLE`` while the
    broker has no replica yet)."""
    by_dir: dict[str, list[TopicPartition]] = {}
    for key, log_dir in moves.items():
        by_dir.setdefault(log_dir, []).append(key)
    body = {"dirs": [{"path": log_dir, "topics": [{"name": t, "partitions": p} for t, p in _by_topic(keys).items()]}
                     for log_dir, keys in sorted(by_dir.items())]}
    response = send_admin_request(_at(settings, broker), ApiKey.ALTER_REPLICA_LOG_DIRS, body)
    answered = {(t.topic_name, p.partition_index): error_name(p.error_code)
                for t in response.results for p in t.partitions}
    return {key: answered.get(key, "UNKNOWN_SERVER_ERROR") for key in moves}


def describe_replica_log_dirs(settings: ClientSettings, broker: BrokerInfo, partitions: Iterable[TopicPartition]
                              ) -> dict[TopicPartition, tuple[str | None, str | None]]:
    """Where ``broker`` keeps each partition: (current log dir, future log dir being written by a
    move, or None); partitions it does not hold are left out (Kafka's ``describeReplicaLogDirs``).
    Log dirs answered with an error (offline) are skipped."""
    wanted = set(partitions)
    body = {"topics": [{"topic": t, "partitions": p} for t, p in _by_topic(wanted).items()]}
    response = send_admin_request(_at(settings, broker), ApiKey.DESCRIBE_LOG_DIRS, body)
    _check(getattr(response, "error_code", 0), None, f"describe log dirs of broker {broker.broker_id}")
    found: dict[TopicPartition, list[Any]] = {}
    for result in response.results:
        if result.error_code != 0:
            continue
        for topic in result.topics:
            for p in topic.partitions:
                key = (topic.name, p.partition_index)
                if key in wanted:
                    found.setdefault(key, [None, None])[1 if p.is_future_key else 0] = result.log_dir
    return {key: (dirs[0], dirs[1]) for key, dirs in found.items()}
