"""TransactionMetadata (Kafka's ``kafka.coordinator.transaction.TransactionMetadata``, KIP-98).

One transactional id's state: its producer id and epoch (and the previous ones, KIP-360), the
transaction timeout, the state, the partitions of the open transaction and two timestamps.

Every change is two steps, as Kafka's: ``prepare_*`` checks the transition against the current
state (``TransactionState.valid_previous``), sets ``pending_state`` and returns the target as an
immutable :class:`TxnTransitMetadata`, which the state manager writes to ``__transaction_state``;
only once that record is replicated does ``complete_transition_to`` apply it (or, if the write
failed, the state manager clears ``pending_state``). A second transition while one is pending is
a bug (``IllegalTransitionError``); the coordinator answers CONCURRENT_TRANSACTIONS before that.

Concurrency: event loop only. Kafka guards each metadata with a lock; here every check and
``prepare_*``/``complete_transition_to`` runs without an await in between, which is the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from cluster.txn.transaction_log import TopicPartition, TransactionLogValue

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
#: Java's Short.MAX_VALUE: the last epoch is kept for fencing, so clients get at most MAX - 1.
SHORT_MAX = 32767


class IllegalTransitionError(RuntimeError):
    """A transition Kafka's TransactionMetadata refuses with IllegalStateException (a bug here)."""


class TransactionState(IntEnum):
    """The states and their ids (``TransactionStatus`` in the log; names for DescribeTransactions)."""

    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def display_name(self) -> str:
        """Kafka's name (``PrepareCommit``), as DescribeTransactions/ListTransactions show it."""
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def valid_previous(self) -> frozenset[TransactionState]:
        return _VALID_PREVIOUS[self]

    @property
    def is_expiration_allowed(self) -> bool:
        """Whether the transactional id may expire in this state (``transactional.id.expiration.ms``)."""
        return self in (TransactionState.EMPTY, TransactionState.COMPLETE_COMMIT, TransactionState.COMPLETE_ABORT)


_S = TransactionState
_VALID_PREVIOUS: dict[TransactionState, frozenset[TransactionState]] = {
    _S.EMPTY: frozenset({_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.ONGOING: frozenset({_S.ONGOING, _S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.PREPARE_COMMIT: frozenset({_S.ONGOING}),
    _S.PREPARE_ABORT: frozenset({_S.ONGOING, _S.PREPARE_EPOCH_FENCE}),
    _S.COMPLETE_COMMIT: frozenset({_S.PREPARE_COMMIT}),
    _S.COMPLETE_ABORT: frozenset({_S.PREPARE_ABORT}),
    _S.DEAD: frozenset({_S.EMPTY, _S.COMPLETE_COMMIT, _S.COMPLETE_ABORT}),
    _S.PREPARE_EPOCH_FENCE: frozenset({_S.ONGOING}),
}


def is_epoch_exhausted(epoch: int) -> bool:
    """Kafka's ``isEpochExhausted``: Short.MaxValue is never handed out, so a fence is always possible."""
    return epoch >= SHORT_MAX - 1


@dataclass(frozen=True)
class TxnTransitMetadata:
    """The target of a prepared transition (Kafka's ``TxnTransitMetadata``): what is written."""

    producer_id: int
    last_producer_id: int
    producer_epoch: int
    last_producer_epoch: int
    timeout_ms: int
    state: TransactionState
    partitions: frozenset[TopicPartition]
    start_timestamp_ms: int
    last_update_timestamp_ms: int

    def to_log_value(self) -> TransactionLogValue:
        return TransactionLogValue(self.producer_id, self.producer_epoch, self.timeout_ms, int(self.state),
                                   self.partitions, self.last_update_timestamp_ms, self.start_timestamp_ms)


@dataclass(eq=False)
class TransactionMetadata:
    """A transactional id's state (see the module docstring)."""

    transactional_id: str
    producer_id: int
    last_producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    timeout_ms: int = 60_000
    state: TransactionState = TransactionState.EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    start_timestamp_ms: int = -1
    last_update_timestamp_ms: int = -1
    pending_state: TransactionState | None = None
    has_failed_epoch_fence: bool = False
    """A fence's epoch bump whose write failed: the next fence reuses the bumped epoch."""

    @classmethod
    def from_log_value(cls, transactional_id: str, value: TransactionLogValue) -> TransactionMetadata:
        """The metadata a loaded record describes (Kafka's ``readTxnRecordValue``; v0 records do not
        carry the last epoch, so a retried InitProducerId across a coordinator move is fenced)."""
        return cls(transactional_id, value.producer_id, value.previous_producer_id, value.producer_epoch,
                   NO_PRODUCER_EPOCH, value.timeout_ms, TransactionState(value.state_id), set(value.partitions),
                   value.start_timestamp_ms, value.last_update_timestamp_ms)

    @property
    def pending_transition_in_progress(self) -> bool:
        return self.pending_state is not None

    @property
    def is_producer_epoch_exhausted(self) -> bool:
        return is_epoch_exhausted(self.producer_epoch)

    @property
    def has_pending_transaction(self) -> bool:
        return self.state in (_S.ONGOING, _S.PREPARE_ABORT, _S.PREPARE_COMMIT)

    # -- prepare -------------------------------------------------------------------------

    def prepare_no_transit(self) -> TxnTransitMetadata:
        """The current state as a transit, without a pending state (for loading and tests)."""
        return TxnTransitMetadata(self.producer_id, self.last_producer_id, self.producer_epoch,
                                  self.last_producer_epoch, self.timeout_ms, self.state, frozenset(self.partitions),
                                  self.start_timestamp_ms, self.last_update_timestamp_ms)

    def prepare_fence_producer_epoch(self) -> TxnTransitMetadata:
        """Bump the epoch to fence the producer of an open transaction (InitProducerId of a new
        instance, or a timeout); the bumped epoch is never returned to a client."""
        if self.producer_epoch == SHORT_MAX:
            raise IllegalTransitionError("cannot fence a producer whose epoch is Short.MaxValue")
        bumped = self.producer_epoch if self.has_failed_epoch_fence else self.producer_epoch + 1
        return self._prepare(_S.PREPARE_EPOCH_FENCE, self.producer_id, bumped, NO_PRODUCER_EPOCH, self.timeout_ms,
                             frozenset(self.partitions), self.start_timestamp_ms, self.last_update_timestamp_ms)

    def prepare_increment_producer_epoch(self, timeout_ms: int, expected_epoch: int | None,
                                         now_ms: int) -> TxnTransitMetadata | None:
        """InitProducerId's epoch bump (KIP-360): None when the expected epoch says the caller was
        fenced (PRODUCER_FENCED). A retry of a bump already done (expected == last epoch) keeps the epoch."""
        if self.is_producer_epoch_exhausted:
            raise IllegalTransitionError(f"producer id {self.producer_id} has no epochs left")
        bumped = self.producer_epoch + 1
        if expected_epoch is None:
            epochs = bumped, NO_PRODUCER_EPOCH
        elif self.producer_epoch == NO_PRODUCER_EPOCH or expected_epoch == self.producer_epoch:
            epochs = bumped, self.producer_epoch
        elif expected_epoch == self.last_producer_epoch:
            epochs = self.producer_epoch, self.last_producer_epoch
        else:
            return None
        return self._prepare(_S.EMPTY, self.producer_id, epochs[0], epochs[1], timeout_ms, frozenset(), -1, now_ms)

    def prepare_producer_id_rotation(self, new_producer_id: int, timeout_ms: int, now_ms: int,
                                     record_last_epoch: bool) -> TxnTransitMetadata:
        """A new producer id with epoch 0, when the old one's epochs are exhausted."""
        if self.has_pending_transaction:
            raise IllegalTransitionError("cannot rotate the producer id while a transaction is open")
        last_epoch = self.producer_epoch if record_last_epoch else NO_PRODUCER_EPOCH
        return self._prepare(_S.EMPTY, new_producer_id, 0, last_epoch, timeout_ms, frozenset(), -1, now_ms)

    def prepare_add_partitions(self, added: frozenset[TopicPartition], now_ms: int) -> TxnTransitMetadata:
        """AddPartitionsToTxn/AddOffsetsToTxn: the first partition starts the transaction."""
        starting = self.state in (_S.EMPTY, _S.COMPLETE_ABORT, _S.COMPLETE_COMMIT)
        return self._prepare(_S.ONGOING, self.producer_id, self.producer_epoch, self.last_producer_epoch,
                             self.timeout_ms, frozenset(self.partitions) | added,
                             now_ms if starting else self.start_timestamp_ms, now_ms)

    def prepare_abort_or_commit(self, state: TransactionState, now_ms: int) -> TxnTransitMetadata:
        """EndTxn (or a fence/timeout abort): PrepareCommit or PrepareAbort."""
        return self._prepare(state, self.producer_id, self.producer_epoch, self.last_producer_epoch, self.timeout_ms,
                             frozenset(self.partitions), self.start_timestamp_ms, now_ms)

    def prepare_complete(self, now_ms: int) -> TxnTransitMetadata:
        """Every marker is written: CompleteCommit or CompleteAbort, without partitions."""
        state = _S.COMPLETE_COMMIT if self.state == _S.PREPARE_COMMIT else _S.COMPLETE_ABORT
        self.has_failed_epoch_fence = False  # the fence (if any) reached the log
        return self._prepare(state, self.producer_id, self.producer_epoch, self.last_producer_epoch, self.timeout_ms,
                             frozenset(), self.start_timestamp_ms, now_ms)

    def prepare_dead(self) -> TxnTransitMetadata:
        """Expiry of the transactional id (its tombstone is written, then it leaves the cache)."""
        return self._prepare(_S.DEAD, self.producer_id, self.producer_epoch, self.last_producer_epoch,
                             self.timeout_ms, frozenset(), self.start_timestamp_ms, self.last_update_timestamp_ms)

    def _prepare(self, state: TransactionState, producer_id: int, epoch: int, last_epoch: int, timeout_ms: int,
                 partitions: frozenset[TopicPartition], start_ms: int, now_ms: int) -> TxnTransitMetadata:
        if self.pending_state is not None:
            raise IllegalTransitionError(f"{self.transactional_id}: transition to {state.display_name} while "
                                         f"{self.pending_state.display_name} is pending")
        if producer_id < 0:
            raise IllegalTransitionError(f"{self.transactional_id}: illegal producer id {producer_id}")
        if state != _S.DEAD and epoch < 0:
            raise IllegalTransitionError(f"{self.transactional_id}: illegal producer epoch {epoch}")
        if self.state not in state.valid_previous:
            raise IllegalTransitionError(f"{self.transactional_id}: {self.state.display_name} → "
                                         f"{state.display_name} is not a valid transition")
        self.pending_state = state
        return TxnTransitMetadata(producer_id, self.producer_id, epoch, last_epoch, timeout_ms, state, partitions,
                                  start_ms, now_ms)

    # -- complete ------------------------------------------------------------------------

    def complete_transition_to(self, transit: TxnTransitMetadata) -> None:
        """Apply ``transit`` once its record is replicated, checking it as Kafka's
        ``completeTransitionTo`` does (same epoch, or a valid bump; partitions only grow while Ongoing)."""
        target = self.pending_state
        if target is None or target != transit.state:
            self._fail(transit)
        same_producer = transit.producer_epoch == self.producer_epoch and transit.producer_id == self.producer_id
        if target == _S.EMPTY:
            if ((self.producer_epoch != transit.producer_epoch and not self._valid_epoch_bump(transit))
                    or transit.partitions or transit.start_timestamp_ms != -1):
                self._fail(transit)
            self.timeout_ms = transit.timeout_ms
            self.producer_epoch, self.last_producer_epoch = transit.producer_epoch, transit.last_producer_epoch
            self.producer_id, self.last_producer_id = transit.producer_id, transit.last_producer_id
        elif target == _S.ONGOING:
            if not same_producer or not self.partitions <= transit.partitions or self.timeout_ms != transit.timeout_ms:
                self._fail(transit)
            self.start_timestamp_ms = transit.start_timestamp_ms
            self.partitions |= transit.partitions
        elif target in (_S.PREPARE_ABORT, _S.PREPARE_COMMIT):
            if (not same_producer or self.partitions != transit.partitions or self.timeout_ms != transit.timeout_ms
                    or self.start_timestamp_ms != transit.start_timestamp_ms):
                self._fail(transit)
        elif target in (_S.COMPLETE_ABORT, _S.COMPLETE_COMMIT):
            if not same_producer or self.timeout_ms != transit.timeout_ms or transit.start_timestamp_ms == -1:
                self._fail(transit)
            self.start_timestamp_ms = transit.start_timestamp_ms
            self.partitions.clear()
        else:  # PrepareEpochFence turns into PrepareAbort before any write; Dead leaves the cache instead
            self._fail(transit)
        self.last_update_timestamp_ms = transit.last_update_timestamp_ms
        self.pending_state = None
        self.state = target

    def _valid_epoch_bump(self, transit: TxnTransitMetadata) -> bool:
        return (transit.producer_epoch == self.producer_epoch + 1
                or (transit.producer_epoch == 0 and transit.producer_id != self.producer_id))

    def _fail(self, transit: TxnTransitMetadata) -> None:
        raise IllegalTransitionError(f"{self.transactional_id} ({self.state.display_name}, pending "
                                     f"{self.pending_state}) cannot complete the transition to {transit}")

    def remove_partition(self, tp: TopicPartition) -> None:
        """A partition whose marker is written (or whose topic is gone), while Prepare*."""
        if self.state not in (_S.PREPARE_COMMIT, _S.PREPARE_ABORT):
            raise IllegalTransitionError(f"{self.transactional_id}: removing a marked partition in {self.state.name}")
        self.partitions.discard(tp)
