"""Writing a transaction marker into a partition this broker leads (KIP-98).

Kafka's ``KafkaApis.handleWriteTxnMarkersRequest``: the transaction coordinator asks each partition
leader to append an end-transaction marker (a control batch: COMMIT or ABORT, with the
coordinator epoch) through ``ReplicaManager.appendRecords(requiredAcks=-1,
origin=COORDINATOR, internalTopicsAllowed=true)``; the answer comes once the marker is replicated.
``append_txn_marker`` is that step for one partition; the WriteTxnMarkers handler and an in-process
coordinator both use it.

Per-partition answers as Kafka's: a partition not hosted here → UNKNOWN_TOPIC_OR_PARTITION (Kafka's
``onlinePartition`` check); a follower → NOT_LEADER_OR_FOLLOWER; ISR below min.insync.replicas →
NOT_ENOUGH_REPLICAS; an older producer epoch → INVALID_PRODUCER_EPOCH; an older coordinator epoch →
TRANSACTION_COORDINATOR_FENCED; a write error → KAFKA_STORAGE_ERROR; then the acks=all outcomes
(NOT_ENOUGH_REPLICAS_AFTER_APPEND, NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT).

Concurrency: the append happens synchronously in the caller's turn of the event loop; only the wait
for replication is deferred (a future).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from cluster.log.producer_state import ProducerStateError
from cluster.log.transactions import Origin, build_end_txn_marker
from cluster.log.validator import RecordValidationError
from cluster.replication.delayed_produce import when_replicated
from cluster.replication.partition import NotLeaderError, PartitionError
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.replication.replica_manager import ReplicaManager

log = logging.getLogger(__name__)


def _done(code: ErrorCode) -> asyncio.Future[ErrorCode]:
    future: asyncio.Future[ErrorCode] = asyncio.get_running_loop().create_future()
    future.set_result(code)
    return future


def append_txn_marker(replicas: ReplicaManager, topic: str, index: int, producer_id: int, producer_epoch: int,
                      coordinator_epoch: int, commit: bool, timeout_ms: int) -> asyncio.Future[ErrorCode]:
    """Append a COMMIT/ABORT marker to ``topic``-``index`` as its leader; a future of the
    partition's error code, done once the marker is replicated (or refused)."""
    partition = replicas.partition(topic, index)
    if partition is None:
        return _done(ErrorCode.unknown_topic_or_partition)
    now_ms = int(time.time() * 1000)
    records = memoryview(bytearray(build_end_txn_marker(producer_id, producer_epoch, coordinator_epoch, commit,
                                                        now_ms)))
    try:
        info = partition.append_records_to_leader(records, -1, now_ms, origin=Origin.COORDINATOR)
    except NotLeaderError:
        return _done(ErrorCode.not_leader_or_follower)
    except (RecordValidationError, ProducerStateError, PartitionError) as exc:
        return _done(exc.error_code)
    except OSError as exc:
        log.error("cannot write a transaction marker to %s-%d: %s", topic, index, exc.strerror or exc)
        return _done(ErrorCode.kafka_storage_error)
    return when_replicated(partition, info.last_offset + 1, partition.leader_epoch, timeout_ms)
