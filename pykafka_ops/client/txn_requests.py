"""Transaction admin requests (KIP-664) over ``WireClient``, as Kafka's ``Admin`` sends them.

confluent-kafka's AdminClient offers neither DescribeProducers nor ``abortTransaction``, so
`pko transactions` speaks the standard requests itself, to our brokers or Apache Kafka's:

* ListTransactions (key 66) to every broker (each answers for the ids it coordinates; v1 adds
  the duration filter, KIP-994) — Kafka's ``ListTransactionsHandler``;
* FindCoordinator (key 10, key type TRANSACTION) then DescribeTransactions (key 65) to the
  coordinator — ``DescribeTransactionsHandler``;
* DescribeProducers (key 61) to each partition's leader, or to a chosen broker —
  ``DescribeProducersHandler``;
* WriteTxnMarkers (key 27) with one ABORT marker to the partition's leader —
  ``AbortTransactionHandler``.

DescribeTransactions is decoded here, not by kio: Kafka answers a start time of -1 for a
transactional id with no transaction, which kio's datetime type refuses.

Blocking, one connection per broker, plaintext listeners only (as ``group_requests``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from pykafka_ops.client.wire import WireClient, WireError, bootstrap_addresses
from pykafka_ops.errors import error_name
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.fastpath import _I64, ParseError, _Reader

METADATA_VERSION, FIND_COORDINATOR_VERSION, WRITE_TXN_MARKERS_VERSION = 12, 4, 1
TRANSACTION_KEY_TYPE = 1
_RETRIABLE = {"COORDINATOR_NOT_AVAILABLE", "COORDINATOR_LOAD_IN_PROGRESS", "NOT_COORDINATOR"}
_RETRY_BACKOFF_S = 0.1


class TxnRequestError(Exception):
    """A Kafka error answered to a transaction admin request (``code``: Kafka's constant)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PartitionInfo:
    """A partition's leader and replicas from Metadata."""

    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]


@dataclass(frozen=True)
class ListedTransaction:
    """Kafka's ``TransactionListing`` plus the broker that listed it."""

    transactional_id: str
    producer_id: int
    state: str
    coordinator: int


@dataclass(frozen=True)
class TransactionDescription:
    """Kafka's ``TransactionDescription`` (start time None when no transaction is open)."""

    transactional_id: str
    coordinator: int
    state: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    start_time_ms: int | None
    partitions: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ProducerState:
    """Kafka's ``ProducerState`` (None for an unknown value)."""

    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    coordinator_epoch: int | None
    current_txn_start_offset: int | None


def _known(value: int) -> int | None:
    return None if value < 0 else value


@dataclass
class TxnAdmin:
    """Connections to one cluster, opened on first use (``close`` when done)."""

    bootstrap_servers: str
    timeout_s: float
    _clients: dict[int | str, WireClient] = field(default_factory=dict)
    _brokers: dict[int, tuple[str, int]] = field(default_factory=dict)

    def close(self) -> None:
        """Close every connection."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    # -- connections ---------------------------------------------------------------------

    def _bootstrap(self) -> WireClient:
        """A connection to the first bootstrap server that accepts one (WireError if none)."""
        if "bootstrap" not in self._clients:
            errors = []
            for host, port in bootstrap_addresses(self.bootstrap_servers):
                try:
                    self._clients["bootstrap"] = WireClient(host, port, self.timeout_s)
                    break
                except WireError as exc:
                    errors.append(str(exc))
            else:
                raise WireError("; ".join(errors))
        return self._clients["bootstrap"]

    def _broker(self, node_id: int) -> WireClient:
        if node_id not in self._clients:
            if node_id not in self._brokers:
                self.metadata([])
            if node_id not in self._brokers:
                raise TxnRequestError("BROKER_NOT_AVAILABLE", f"broker {node_id} is not in the cluster")
            self._clients[node_id] = WireClient(*self._brokers[node_id], self.timeout_s)
        return self._clients[node_id]

    def _version(self, client: WireClient, api_key: ApiKey, wanted: int | None = None) -> int:
        version = client.api_versions().get(api_key)
        if version is None:
            raise TxnRequestError("UNSUPPORTED_VERSION", f"the broker at {client.address} does not support "
                                                         f"{api_key.name} (key {int(api_key)}, KIP-664)")
        return version if wanted is None else min(version, wanted)

    # -- requests ------------------------------------------------------------------------

    def metadata(self, topics: list[str] | None) -> list[PartitionInfo]:
        """Brokers (remembered) and the partitions of ``topics`` (None: every topic)."""
        body = {"topics": None if topics is None else [{"name": t} for t in topics],
                "allow_auto_topic_creation": False}
        response = self._bootstrap().request(ApiKey.METADATA, METADATA_VERSION, body)
        self._brokers.update({b.node_id: (b.host, b.port) for b in response.brokers})
        partitions = []
        for topic in response.topics:
            if topic.error_code != 0:
                name = error_name(topic.error_code)
                raise TxnRequestError(name, f"topic {topic.name}: {name}")
            partitions.extend(PartitionInfo(topic.name, p.partition_index, p.leader_id, tuple(p.replica_nodes))
                              for p in topic.partitions)
        return sorted(partitions, key=lambda p: (p.topic, p.partition))

    def brokers(self) -> list[int]:
        """The cluster's broker ids (Metadata without topics)."""
        self.metadata([])
        return sorted(self._brokers)

    def list_transactions(self, states: list[str] | None = None, producer_ids: list[int] | None = None,
                          duration_ms: int = -1, pattern: str | None = None) -> list[ListedTransaction]:
        """Every broker's transactions matching the filters (KIP-664, KIP-994, KIP-1152)."""
        listed = []
        body = {"state_filters": states or [], "producer_id_filters": producer_ids or [],
                "duration_filter": duration_ms, "transactional_id_pattern": pattern}
        for node_id in self.brokers():
            client = self._broker(node_id)
            version = self._version(client, ApiKey.LIST_TRANSACTIONS, 2)
            for needed, used, flag in ((1, duration_ms >= 0, "--duration-filter, KIP-994"),
                                       (2, bool(pattern), "--transactional-id-pattern, KIP-1152")):
                if used and version < needed:
                    raise TxnRequestError("UNSUPPORTED_VERSION", f"broker {node_id} does not support "
                                                                 f"ListTransactions v{needed} ({flag})")
            response = self._with_retries(lambda c=client, v=version: c.request(ApiKey.LIST_TRANSACTIONS, v, body))
            listed.extend(ListedTransaction(t.transactional_id, t.producer_id, t.transaction_state, node_id)
                          for t in response.transaction_states)
        return listed

    def _with_retries(self, call: Any) -> Any:
        """``call()`` until its top-level error is not a retriable coordinator error, or timeout."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            response = call()
            code = error_name(getattr(response, "error_code", 0))
            if code == "NONE":
                return response
            if code not in _RETRIABLE or time.monotonic() > deadline:
                raise TxnRequestError(code, code)
            time.sleep(_RETRY_BACKOFF_S)

    def find_coordinator(self, transactional_id: str) -> int:
        """The coordinator of ``transactional_id`` (FindCoordinator v4, key type 1)."""
        body = {"key_type": TRANSACTION_KEY_TYPE, "coordinator_keys": [transactional_id]}
        client = self._bootstrap()
        version = self._version(client, ApiKey.FIND_COORDINATOR, FIND_COORDINATOR_VERSION)
        if version < FIND_COORDINATOR_VERSION:
            body = {"key_type": TRANSACTION_KEY_TYPE, "key": transactional_id}

        def ask() -> Any:
            response = client.request(ApiKey.FIND_COORDINATOR, version, body)
            return response.coordinators[0] if version >= FIND_COORDINATOR_VERSION else response

        answer = self._with_retries(ask)
        self._brokers[answer.node_id] = (answer.host, answer.port)
        return int(answer.node_id)

    def describe_transaction(self, transactional_id: str) -> TransactionDescription:
        """DescribeTransactions v0 at the id's coordinator, retried while it moves or loads."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            coordinator = self.find_coordinator(transactional_id)
            client = self._broker(coordinator)
            self._version(client, ApiKey.DESCRIBE_TRANSACTIONS)
            frame, offset = client.request_frame(ApiKey.DESCRIBE_TRANSACTIONS, 0,
                                                 {"transactional_ids": [transactional_id]})
            try:
                code, description = _parse_describe_transactions(frame, offset, coordinator)
            except ParseError as exc:
                raise WireError(f"{client.address} sent a malformed DescribeTransactions response: {exc}") from None
            if code == "NONE" and description is not None:
                return description
            if code not in _RETRIABLE or time.monotonic() > deadline:
                raise TxnRequestError(code, f"transactional id {transactional_id!r}: {code}")
            time.sleep(_RETRY_BACKOFF_S)

    def describe_producers(self, partitions: list[PartitionInfo], broker_id: int | None = None
                           ) -> dict[tuple[str, int], list[ProducerState] | TxnRequestError]:
        """Each partition's active producers, asked of its leader (or of ``broker_id``)."""
        by_broker: dict[int, dict[str, list[int]]] = {}
        for p in partitions:
            node = p.leader if broker_id is None else broker_id
            by_broker.setdefault(node, {}).setdefault(p.topic, []).append(p.partition)
        answers: dict[tuple[str, int], list[ProducerState] | TxnRequestError] = {}
        for node, topics in by_broker.items():
            if node < 0:
                for topic, indexes in topics.items():
                    answers.update({(topic, i): TxnRequestError("LEADER_NOT_AVAILABLE", "no leader")
                                    for i in indexes})
                continue
            client = self._broker(node)
            version = self._version(client, ApiKey.DESCRIBE_PRODUCERS, 0)
            body = {"topics": [{"name": t, "partition_indexes": ps} for t, ps in topics.items()]}
            for topic in client.request(ApiKey.DESCRIBE_PRODUCERS, version, body).topics:
                for p in topic.partitions:
                    code = error_name(p.error_code)
                    answers[(topic.name, p.partition_index)] = (
                        TxnRequestError(code, p.error_message or code) if code != "NONE" else
                        [ProducerState(s.producer_id, s.producer_epoch, s.last_sequence, s.last_timestamp,
                                       _known(s.coordinator_epoch), _known(s.current_txn_start_offset))
                         for s in p.active_producers])
        return answers

    def abort_transaction(self, partition: PartitionInfo, producer_id: int, producer_epoch: int,
                          coordinator_epoch: int) -> None:
        """Write an ABORT marker for the producer's open transaction at the partition's leader
        (Kafka's ``Admin.abortTransaction``, KIP-664)."""
        client = self._broker(partition.leader)
        version = self._version(client, ApiKey.WRITE_TXN_MARKERS, WRITE_TXN_MARKERS_VERSION)
        body = {"markers": [{"producer_id": producer_id, "producer_epoch": producer_epoch,
                             "transaction_result": False, "coordinator_epoch": coordinator_epoch,
                             "topics": [{"name": partition.topic, "partition_indexes": [partition.partition]}]}]}
        response = client.request(ApiKey.WRITE_TXN_MARKERS, version, body)
        for marker in response.markers:
            for topic in marker.topics:
                for p in topic.partitions:
                    code = error_name(p.error_code)
                    if code != "NONE":
                        raise TxnRequestError(code, f"{topic.name}-{p.partition_index}: {code}")


def _int64(r: _Reader) -> int:
    return int(_I64.unpack_from(r.buf, r._take(8))[0])


def describe_transactions_entries(frame: bytes, offset: int) -> list[tuple[int, TransactionDescription]]:
    """(error code, description with coordinator -1) of every entry of a DescribeTransactions v0
    response body (flexible), read by hand: kio refuses the -1 start time Kafka sends for an id
    without an open transaction. Raises ``fastpath.ParseError`` (a ``ValueError``) on a bad frame."""
    r = _Reader(memoryview(frame), offset, True)
    r.int32()  # throttle time
    entries = []
    for _ in range(r.array_length()):
        code = r.int16()
        tid, state = r.string() or "", r.string() or ""
        timeout_ms = r.int32()
        start_ms, producer_id = _int64(r), _int64(r)
        epoch = r.int16()
        partitions = []
        for _ in range(r.array_length()):
            topic = r.string() or ""
            partitions.extend((topic, r.int32()) for _ in range(r.array_length()))
            r.skip_tagged_fields()
        r.skip_tagged_fields()
        entries.append((code, TransactionDescription(tid, -1, state, producer_id, epoch, timeout_ms,
                                                     _known(start_ms), tuple(partitions))))
    return entries


def _parse_describe_transactions(frame: bytes, offset: int, coordinator: int
                                 ) -> tuple[str, TransactionDescription | None]:
    """The first entry of a DescribeTransactions v0 response body, as its coordinator's."""
    entries = describe_transactions_entries(frame, offset)
    if not entries:
        return "UNKNOWN_SERVER_ERROR", None
    code, description = entries[0]
    return error_name(code), replace(description, coordinator=coordinator)
