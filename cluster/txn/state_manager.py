"""TransactionStateManager (Kafka's ``kafka.coordinator.transaction.TransactionStateManager``).

The cache of the transactional ids of the ``__transaction_state`` partitions this broker leads,
one :class:`TxnPartitionCache` per partition with the *coordinator epoch* it was loaded at (the
partition's leader epoch, which WriteTxnMarkers carries so partition leaders can refuse an old
coordinator). Placement and failover follow the group coordinator's: a partition is loaded to its
log end when this broker becomes its leader (until then its ids answer
COORDINATOR_LOAD_IN_PROGRESS) and dropped when it stops leading it (NOT_COORDINATOR).

Every state change is a record appended with acks=all (``when_replicated``) *before* the cache
changes (``append_transaction_to_log``): the client is answered once the in-sync replicas have it,
so an acknowledged InitProducerId/AddPartitions/EndTxn survives the coordinator's node.

Also here: the transactions open past their timeout (``timed_out_transactions``, aborted by the
coordinator) and the expiry of ids idle for ``transactional.id.expiration.ms`` (a tombstone each).

Concurrency: event loop only. Appends do not await: they return a future, and its callback
completes (or rolls back) the pending transition in the same turn the replication is seen, so a
cache update never interleaves with a request's checks. ``load_partition`` awaits between chunks,
but no request reaches a partition's ids while it is loading.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cluster.log.validator import RecordValidationError
from cluster.replication.delayed_produce import (
    COORDINATOR_APPEND_ERRORS,
    COORDINATOR_LOAD_CHUNK_BYTES,
    when_replicated,
)
from cluster.replication.partition import NotLeaderError, PartitionError
from cluster.txn.transaction_log import (
    TRANSACTION_STATE_TOPIC,
    CorruptTransactionLogRecordError,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
    partition_for,
)
from cluster.txn.transaction_metadata import (
    TransactionMetadata,
    TransactionState,
    TxnTransitMetadata,
)
from pykafka_ops.errors import ErrorCode
from pykafka_ops.records.batch import RecordBatch, iter_batches
from pykafka_ops.records.builder import RecordBatchBuilder

if TYPE_CHECKING:
    from cluster.broker import Broker

log = logging.getLogger(__name__)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class TransactionConfig:
    """Kafka's ``TransactionConfig``: the broker settings the coordinator reads (Kafka's defaults)."""

    num_partitions: int = 50
    replication_factor: int = 3
    min_isr: int = 2
    max_timeout_ms: int = 900_000
    id_expiration_ms: int = 604_800_000
    abort_timed_out_interval_ms: int = 10_000
    remove_expired_interval_ms: int = 3_600_000
    append_timeout_ms: int = 30_000
    """Kafka waits ``request.timeout.ms`` for a transaction-log append's replication."""

    @classmethod
    def from_broker_config(cls, config: Mapping[str, Any]) -> TransactionConfig:
        d = cls()
        return cls(int(config.get("transaction.state.log.num.partitions", d.num_partitions)),
                   int(config.get("transaction.state.log.replication.factor", d.replication_factor)),
                   int(config.get("transaction.state.log.min.isr", d.min_isr)),
                   int(config.get("transaction.max.timeout.ms", d.max_timeout_ms)),
                   int(config.get("transactional.id.expiration.ms", d.id_expiration_ms)),
                   int(config.get("transaction.abort.timed.out.transaction.cleanup.interval.ms",
                                  d.abort_timed_out_interval_ms)),
                   int(config.get("transaction.remove.expired.transaction.cleanup.interval.ms",
                                  d.remove_expired_interval_ms)),
                   int(config.get("request.timeout.ms", d.append_timeout_ms)))


@dataclass
class TxnPartitionCache:
    """The ids of one owned partition and the coordinator epoch it was loaded at."""

    coordinator_epoch: int
    ids: dict[str, TransactionMetadata] = field(default_factory=dict)


@dataclass(frozen=True)
class CoordinatorEpochAndMetadata:
    coordinator_epoch: int
    metadata: TransactionMetadata


@dataclass(frozen=True)
class PendingCompletion:
    """A loaded transaction in PrepareCommit/PrepareAbort whose markers must be (re)sent."""

    coordinator_epoch: int
    metadata: TransactionMetadata
    transit: TxnTransitMetadata


@dataclass(frozen=True)
class TimedOut:
    """An Ongoing transaction past its timeout (Kafka's ``TransactionalIdAndProducerIdEpoch``)."""

    transactional_id: str
    producer_id: int
    producer_epoch: int


def _completed(value: Any) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


class TransactionStateManager:
    """Transactional ids of the ``__transaction_state`` partitions this broker leads."""

    def __init__(self, broker: Broker, config: TransactionConfig) -> None:
        self.broker = broker
        self.config = config
        self.partitions: dict[int, TxnPartitionCache] = {}
        """Owned (loaded) partitions."""
        self.loading: dict[int, int] = {}
        """Partitions being loaded → the coordinator epoch they will have."""

    # -- placement -----------------------------------------------------------------------

    def num_partitions(self) -> int:
        topic = self.broker.image.topics.get(TRANSACTION_STATE_TOPIC)
        return len(topic.partitions) if topic is not None else self.config.num_partitions

    def partition_for(self, transactional_id: str) -> int:
        return partition_for(transactional_id, self.num_partitions())

    def validate_transaction_timeout_ms(self, timeout_ms: int) -> bool:
        """0 < timeout ≤ ``transaction.max.timeout.ms`` (else INVALID_TRANSACTION_TIMEOUT)."""
        return 0 < timeout_ms <= self.config.max_timeout_ms

    def get_transaction_state(self, transactional_id: str) -> tuple[ErrorCode, CoordinatorEpochAndMetadata | None]:
        """Kafka's ``getTransactionState``: (NONE, the id's entry or None) when this broker owns
        its partition; COORDINATOR_LOAD_IN_PROGRESS while it loads; NOT_COORDINATOR otherwise."""
        index = self.partition_for(transactional_id)
        if index in self.loading:
            return ErrorCode.coordinator_load_in_progress, None
        cache = self.partitions.get(index)
        if cache is None:
            return ErrorCode.not_coordinator, None
        metadata = cache.ids.get(transactional_id)
        return ErrorCode.none, None if metadata is None else CoordinatorEpochAndMetadata(cache.coordinator_epoch,
                                                                                         metadata)

    def put_transaction_state_if_not_exists(self, metadata: TransactionMetadata
                                            ) -> tuple[ErrorCode, CoordinatorEpochAndMetadata | None]:
        """Cache a new id's metadata, unless one is cached already (returned instead)."""
        error, found = self.get_transaction_state(metadata.transactional_id)
        if error != ErrorCode.none or found is not None:
            return error, found
        cache = self.partitions[self.partition_for(metadata.transactional_id)]
        cache.ids[metadata.transactional_id] = metadata
        return ErrorCode.none, CoordinatorEpochAndMetadata(cache.coordinator_epoch, metadata)

    # -- appends -------------------------------------------------------------------------

    def append_transaction_to_log(self, transactional_id: str, coordinator_epoch: int, transit: TxnTransitMetadata,
                                  retry_on: frozenset[ErrorCode] = frozenset()) -> asyncio.Future[ErrorCode]:
        """Write ``transit`` (a tombstone for Dead) with acks=all; once replicated, complete the
        pending transition (Dead: drop the id) if this broker still owns the id at
        ``coordinator_epoch``, else NOT_COORDINATOR. On failure the pending state is cleared,
        unless the error is in ``retry_on`` (Kafka's ``retryOnError``: the caller writes again)."""
        index = self.partition_for(transactional_id)
        cache = self.partitions.get(index)
        if cache is None or cache.coordinator_epoch != coordinator_epoch:
            return self._finish(transactional_id, coordinator_epoch, transit, retry_on, ErrorCode.not_coordinator)
        partition = self.broker.replica_manager.partition(TRANSACTION_STATE_TOPIC, index)
        if partition is None:
            return self._finish(transactional_id, coordinator_epoch, transit, retry_on, ErrorCode.not_coordinator)
        now = now_ms()
        value = None if transit.state == TransactionState.DEAD else encode_value(transit.to_log_value())
        builder = RecordBatchBuilder()
        builder.append(encode_key(transactional_id), value, timestamp_ms=now)
        try:
            info = partition.append_records_to_leader(memoryview(bytearray(builder.build())), -1, now)
        except NotLeaderError:
            return self._finish(transactional_id, coordinator_epoch, transit, retry_on, ErrorCode.not_coordinator)
        except (RecordValidationError, PartitionError) as exc:
            log.warning("cannot write transactional id %s to %s: %s", transactional_id, TRANSACTION_STATE_TOPIC, exc)
            return self._finish(transactional_id, coordinator_epoch, transit, retry_on,
                                COORDINATOR_APPEND_ERRORS.get(exc.error_code, ErrorCode.unknown_server_error))
        except OSError as exc:
            log.error("cannot write transactional id %s to %s: %s", transactional_id, TRANSACTION_STATE_TOPIC, exc)
            return self._finish(transactional_id, coordinator_epoch, transit, retry_on, ErrorCode.not_coordinator)
        acked = when_replicated(partition, info.last_offset + 1, partition.leader_epoch,
                                self.config.append_timeout_ms)
        if acked.done():
            return self._finish(transactional_id, coordinator_epoch, transit, retry_on, acked.result())
        answer: asyncio.Future[ErrorCode] = asyncio.get_running_loop().create_future()
        acked.add_done_callback(lambda done: answer.set_result(
            self._finish(transactional_id, coordinator_epoch, transit, retry_on, done.result()).result()))
        return answer

    def _finish(self, transactional_id: str, coordinator_epoch: int, transit: TxnTransitMetadata,
                retry_on: frozenset[ErrorCode], append_error: ErrorCode) -> asyncio.Future[ErrorCode]:
        """Kafka's ``updateCacheCallback``."""
        error = COORDINATOR_APPEND_ERRORS.get(append_error, append_error)
        if error not in (ErrorCode.none, ErrorCode.coordinator_not_available, ErrorCode.not_coordinator):
            error = ErrorCode.unknown_server_error
        lookup_error, found = self.get_transaction_state(transactional_id)
        current = found is not None and found.coordinator_epoch == coordinator_epoch
        if error == ErrorCode.none:
            if lookup_error != ErrorCode.none:
                error = lookup_error
            elif not current:
                error = ErrorCode.not_coordinator
            elif transit.state == TransactionState.DEAD:
                assert found is not None
                found.metadata.pending_state = None
                self.partitions[self.partition_for(transactional_id)].ids.pop(transactional_id, None)
            else:
                assert found is not None
                found.metadata.complete_transition_to(transit)
        if error != ErrorCode.none and current and error not in retry_on:
            assert found is not None
            found.metadata.pending_state = None
        return _completed(error)

    # -- queries (DescribeTransactions / ListTransactions, KIP-664) ----------------------

    def list_transaction_states(self, producer_ids: Iterable[int] = (), state_names: Iterable[str] = (),
                                duration_ms: int = -1, now: int | None = None
                                ) -> tuple[ErrorCode, list[str], list[TransactionMetadata]]:
        """Kafka's ``listTransactionStates``: (error, unknown state filters, matching ids).

        COORDINATOR_LOAD_IN_PROGRESS (and nothing) while any partition loads. A filter that is
        empty matches everything; ``duration_ms`` ≥ 0 keeps transactions running longer than it
        (KIP-994). Dead ids are transient and never listed."""
        if self.loading:
            return ErrorCode.coordinator_load_in_progress, [], []
        by_name = {state.display_name: state for state in TransactionState}
        states: set[TransactionState] = set()
        unknown: list[str] = []
        for name in state_names:
            if name in by_name:
                states.add(by_name[name])
            else:
                unknown.append(name)
        pids = set(producer_ids)
        now = now_ms() if now is None else now
        listed = [m for cache in self.partitions.values() for m in cache.ids.values()
                  if m.state != TransactionState.DEAD and (not pids or m.producer_id in pids)
                  and (not states or m.state in states)
                  and (duration_ms < 0 or now - m.start_timestamp_ms > duration_ms)]
        return ErrorCode.none, unknown, listed

    # -- timeouts and expiry -------------------------------------------------------------

    def timed_out_transactions(self, now: int) -> list[TimedOut]:
        """Ongoing transactions started more than their timeout ago, not mid-transition."""
        return [TimedOut(m.transactional_id, m.producer_id, m.producer_epoch)
                for cache in self.partitions.values() for m in cache.ids.values()
                if m.state == TransactionState.ONGOING and not m.pending_transition_in_progress
                and m.start_timestamp_ms + m.timeout_ms < now]

    def remove_expired_transactional_ids(self, now: int) -> list[asyncio.Future[ErrorCode]]:
        """Tombstone every id idle for ``transactional.id.expiration.ms`` in a state that allows
        it (Empty, CompleteCommit, CompleteAbort); each leaves the cache once its tombstone is
        replicated. Returns the appends' futures."""
        appends = []
        for cache in list(self.partitions.values()):
            for metadata in list(cache.ids.values()):
                if (metadata.state.is_expiration_allowed and not metadata.pending_transition_in_progress
                        and metadata.last_update_timestamp_ms + self.config.id_expiration_ms <= now):
                    log.info("expiring transactional id %s (idle since %d)", metadata.transactional_id,
                             metadata.last_update_timestamp_ms)
                    appends.append(self.append_transaction_to_log(metadata.transactional_id, cache.coordinator_epoch,
                                                                  metadata.prepare_dead()))
        return appends

    # -- loading -------------------------------------------------------------------------

    def begin_loading(self, index: int, coordinator_epoch: int) -> None:
        """From now on the partition's ids answer COORDINATOR_LOAD_IN_PROGRESS."""
        self.partitions.pop(index, None)
        self.loading[index] = coordinator_epoch

    async def load_partition(self, index: int) -> list[PendingCompletion]:
        """Replay partition ``index`` (after ``begin_loading``) to its log end into the cache;
        returns the transactions whose markers must be sent again (Kafka's
        ``loadTransactionsForTxnTopicPartition``). Gives up if the partition stops being ours."""
        partition = self.broker.replica_manager.partition(TRANSACTION_STATE_TOPIC, index)
        if partition is None or index not in self.loading:
            self.loading.pop(index, None)
            return []
        started = time.monotonic()
        loaded: dict[str, TransactionMetadata] = {}
        partition_log = partition.log
        offset, end = partition_log.log_start_offset, partition_log.log_end_offset
        while offset < end:
            data = partition_log.read(offset, COORDINATOR_LOAD_CHUNK_BYTES, end, min_one_batch=True)
            next_offset = offset
            for position, header in iter_batches(data):
                if not header.is_control:
                    for record in RecordBatch(data, position).records():
                        if record.offset >= offset and record.key is not None:
                            _replay(record.key, record.value, loaded, index, record.offset)
                next_offset = header.last_offset + 1
            if next_offset == offset:
                break
            offset = next_offset
            await asyncio.sleep(0)
        coordinator_epoch = self.loading.pop(index, None)
        if coordinator_epoch is None:  # unloaded meanwhile
            return []
        self.partitions[index] = TxnPartitionCache(coordinator_epoch, loaded)
        pending = []
        for metadata in loaded.values():
            if metadata.state in (TransactionState.PREPARE_COMMIT, TransactionState.PREPARE_ABORT):
                pending.append(PendingCompletion(coordinator_epoch, metadata, metadata.prepare_complete(now_ms())))
        log.info("loaded %d transactional id(s) from %s-%d at coordinator epoch %d in %.0f ms (%d to complete)",
                 len(loaded), TRANSACTION_STATE_TOPIC, index, coordinator_epoch,
                 (time.monotonic() - started) * 1000, len(pending))
        return pending

    def unload_partition(self, index: int) -> list[TransactionMetadata]:
        """Forget partition ``index``; returns its ids, now uncached."""
        self.loading.pop(index, None)
        cache = self.partitions.pop(index, None)
        return list(cache.ids.values()) if cache is not None else []

    @property
    def owned_partitions(self) -> set[int]:
        return set(self.partitions)

    @property
    def loading_partitions(self) -> set[int]:
        return set(self.loading)


def _replay(key: bytes, value: bytes | None, loaded: dict[str, TransactionMetadata], index: int, offset: int) -> None:
    """Apply one record to the state being loaded (newest per id wins; a tombstone deletes)."""
    try:
        transactional_id = decode_key(key)
        if value is None:
            loaded.pop(transactional_id, None)
        else:
            loaded[transactional_id] = TransactionMetadata.from_log_value(transactional_id, decode_value(value))
    except (CorruptTransactionLogRecordError, ValueError) as exc:
        log.error("skipping the record at %s-%d offset %d: %s", TRANSACTION_STATE_TOPIC, index, offset, exc)
