"""`pko transactions`: kafka-transactions' verbs (KIP-664, Kafka's ``TransactionsCommand``).

* ``list`` — every broker's transactions (ListTransactions; ``--duration-filter``, KIP-994);
* ``describe`` — one transactional id at its coordinator (DescribeTransactions);
* ``describe-producers`` — a partition's active producers at its leader (DescribeProducers);
* ``abort`` — an ABORT marker for a producer's open transaction on one partition (WriteTxnMarkers
  to the leader), by producer id/epoch/coordinator epoch or by the transaction's start offset;
* ``find-hanging`` — Kafka's ``FindHangingTransactionsCommand``: the open transactions of a
  broker's (or a topic's) partitions whose producer has written nothing for longer than the
  maximum transaction timeout, and which no coordinator knows as a running transaction of that
  producer id and epoch including the partition (``is_hanging``).

The requests are in ``client.txn_requests`` (blocking); each call here opens and closes its
connections, and a connection failure becomes ``ClusterUnreachableError`` naming the bootstrap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.txn_requests import (
    ListedTransaction,
    PartitionInfo,
    ProducerState,
    TransactionDescription,
    TxnAdmin,
    TxnRequestError,
)
from pykafka_ops.client.wire import WireError

#: Kafka's ``transaction.max.timeout.ms`` default, in minutes (find-hanging's default).
DEFAULT_MAX_TRANSACTION_TIMEOUT_MIN = 15
#: A coordinator's states of a transaction still running (Kafka's ``TransactionState``).
RUNNING_STATES = frozenset({"Ongoing", "PrepareCommit", "PrepareAbort"})

T = TypeVar("T")


class TransactionsError(Exception):
    """A request Kafka refused, or nothing to abort (shown as one line, exit 1)."""


@dataclass(frozen=True)
class OpenTransaction:
    """A producer's open transaction on one partition (Kafka's ``OpenTransaction``)."""

    topic: str
    partition: int
    producer: ProducerState

    def duration_ms(self, now_ms: int) -> int:
        """Since the producer's last write (DescribeProducers has no start time)."""
        return now_ms - self.producer.last_timestamp


@dataclass(frozen=True)
class AbortSpec:
    """Kafka's ``AbortTransactionSpec``: what the ABORT marker carries."""

    topic: str
    partition: int
    producer_id: int
    producer_epoch: int
    coordinator_epoch: int


def now_ms() -> int:
    return int(time.time() * 1000)


@contextmanager
def _admin(settings: ClientSettings) -> Iterator[TxnAdmin]:
    """A TxnAdmin whose connection failures become ``ClusterUnreachableError``; Kafka errors
    become ``TransactionsError``."""
    admin = TxnAdmin(settings.bootstrap_servers, settings.timeout_s)
    try:
        yield admin
    except WireError as exc:
        raise settings.unreachable(exc) from None
    except TxnRequestError as exc:
        raise TransactionsError(str(exc)) from None
    finally:
        admin.close()


def _call(settings: ClientSettings, fn: Callable[[TxnAdmin], T]) -> T:
    with _admin(settings) as admin:
        return fn(admin)


def list_transactions(settings: ClientSettings, duration_ms: int = -1,
                      pattern: str | None = None) -> list[ListedTransaction]:
    """Every broker's transactions, running longer than ``duration_ms`` when ≥ 0, with an id the
    regular expression ``pattern`` matches whole when given."""
    return _call(settings, lambda admin: admin.list_transactions(duration_ms=duration_ms, pattern=pattern))


def describe_transaction(settings: ClientSettings, transactional_id: str) -> TransactionDescription:
    """The id's transaction as its coordinator knows it."""
    return _call(settings, lambda admin: admin.describe_transaction(transactional_id))


def _partition(admin: TxnAdmin, topic: str, partition: int) -> PartitionInfo:
    for info in admin.metadata([topic]):
        if info.partition == partition:
            return info
    raise TxnRequestError("UNKNOWN_TOPIC_OR_PARTITION", f"partition {topic}-{partition} does not exist")


def _producers(admin: TxnAdmin, info: PartitionInfo, broker_id: int | None = None) -> list[ProducerState]:
    answer = admin.describe_producers([info], broker_id)[(info.topic, info.partition)]
    if isinstance(answer, TxnRequestError):
        raise TxnRequestError(answer.code, f"{info.topic}-{info.partition}: {answer}")
    return answer


def describe_producers(settings: ClientSettings, topic: str, partition: int,
                       broker_id: int | None = None) -> list[ProducerState]:
    """The partition's active producers, at its leader or at ``broker_id``."""
    return _call(settings, lambda admin: _producers(admin, _partition(admin, topic, partition), broker_id))


def abort_spec_for_offset(topic: str, partition: int, producers: list[ProducerState], start_offset: int) -> AbortSpec:
    """The producer whose open transaction starts at ``start_offset`` (Kafka's abort
    ``--start-offset``; a producer with no marker yet gets coordinator epoch 0, as Kafka's)."""
    for p in producers:
        if p.current_txn_start_offset == start_offset:
            return AbortSpec(topic, partition, p.producer_id, p.producer_epoch, max(p.coordinator_epoch or 0, 0))
    raise TransactionsError(f"Could not find any open transactions starting at offset {start_offset} "
                            f"on partition {topic}-{partition}")


def abort_transaction(settings: ClientSettings, topic: str, partition: int, *, start_offset: int | None = None,
                      producer_id: int | None = None, producer_epoch: int | None = None,
                      coordinator_epoch: int | None = None) -> AbortSpec:
    """Abort a hanging transaction on one partition (KIP-664); returns what was written."""
    def abort(admin: TxnAdmin) -> AbortSpec:
        info = _partition(admin, topic, partition)
        if start_offset is not None:
            spec = abort_spec_for_offset(topic, partition, _producers(admin, info), start_offset)
        elif producer_id is not None and producer_epoch is not None and coordinator_epoch is not None:
            spec = AbortSpec(topic, partition, producer_id, producer_epoch, coordinator_epoch)
        else:
            raise ValueError("abort needs a start offset, or a producer id, producer epoch and coordinator epoch")
        admin.abort_transaction(info, spec.producer_id, spec.producer_epoch, spec.coordinator_epoch)
        return spec

    return _call(settings, abort)


def open_transactions(producers: Mapping[tuple[str, int], list[ProducerState]], now_ms: int,
                      max_timeout_ms: int) -> list[OpenTransaction]:
    """Kafka's ``collectCandidateOpenTransactions``: open transactions idle past the timeout."""
    return [OpenTransaction(topic, partition, p)
            for (topic, partition), states in sorted(producers.items()) for p in states
            if p.current_txn_start_offset is not None and now_ms - p.last_timestamp > max_timeout_ms]


def is_hanging(candidate: OpenTransaction, descriptions: list[TransactionDescription]) -> bool:
    """Hanging unless a coordinator runs a transaction of the same producer id and epoch that
    includes the partition (Kafka's ``isTransactionRunning``)."""
    return not any(d.producer_id == candidate.producer.producer_id
                   and d.producer_epoch == candidate.producer.producer_epoch and d.state in RUNNING_STATES
                   and (candidate.topic, candidate.partition) in d.partitions
                   for d in descriptions)


def find_hanging(settings: ClientSettings, *, broker_id: int | None = None, topic: str | None = None,
                 partition: int | None = None,
                 max_timeout_min: int = DEFAULT_MAX_TRANSACTION_TIMEOUT_MIN) -> tuple[int, list[OpenTransaction]]:
    """(now in ms, the hanging transactions) of ``broker_id``'s replicas, or of ``topic``
    (one ``partition`` of it when given)."""
    def find(admin: TxnAdmin) -> tuple[int, list[OpenTransaction]]:
        partitions = [p for p in admin.metadata(None if topic is None else [topic])
                      if (broker_id is None or broker_id in p.replicas)
                      and (partition is None or p.partition == partition)]
        answers = admin.describe_producers(partitions, broker_id)
        producers = {tp: a for tp, a in answers.items() if not isinstance(a, TxnRequestError)}
        now = now_ms()
        candidates = open_transactions(producers, now, max_timeout_min * 60_000)
        if not candidates:
            return now, []
        listed = admin.list_transactions(producer_ids=sorted({c.producer.producer_id for c in candidates}))
        descriptions: dict[int, list[TransactionDescription]] = {}
        for entry in listed:
            try:
                described = admin.describe_transaction(entry.transactional_id)
            except TxnRequestError as exc:
                if exc.code != "TRANSACTIONAL_ID_NOT_FOUND":
                    raise
                continue
            descriptions.setdefault(entry.producer_id, []).append(described)
        return now, [c for c in candidates if is_hanging(c, descriptions.get(c.producer.producer_id, []))]

    return _call(settings, find)
