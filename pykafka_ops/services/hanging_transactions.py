"""Hanging transactions found from outside the cluster, for `pko monitor` and `pko lag`
(``models.transactions``: a partition's last stable offset stuck behind its high watermark for
longer than ``transaction.max.timeout.ms``).

Each poll (``HangingTransactionFinder.find``) is given every partition's high watermark and LSO
(ListOffsets latest, read_uncommitted and read_committed). A partition is a candidate when its
LSO is behind its high watermark and has not moved since the previous poll — at the first poll
every such partition is, so a one-shot `pko lag` sees them; a busy transactional topic's LSO
moves from poll to poll and costs nothing more. For a candidate, the timestamp of the record at
the LSO (read_uncommitted: the open transaction's first record) is read once per (partition,
LSO) and remembered; when it is older than the brokers' ``transaction.max.timeout.ms`` (read
with DescribeConfigs, Kafka's default 15 minutes when it cannot be), the partition's leader is
asked who holds it (DescribeProducers, KIP-664: the producer whose ``current_txn_start_offset``
is the LSO). Nothing here fails a poll: what cannot be read leaves a transaction unflagged or
its producer unknown, and is reported as the poll's error.

The record's timestamp is the producer's (CreateTime) unless the topic uses LogAppendTime; a
producer whose clock is far off moves the time a transaction is flagged.

Concurrency: one ``find`` at a time (the monitor's rule: polls never overlap).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from typing import Any

from pykafka_ops.client.admin import KafkaAdmin
from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.librdkafka import in_thread
from pykafka_ops.client.txn_requests import TxnAdmin, TxnRequestError
from pykafka_ops.client.wire import WireError
from pykafka_ops.models.groups import TopicPartition
from pykafka_ops.models.monitor import PartitionOffsets
from pykafka_ops.models.transactions import HangingTransaction
from pykafka_ops.services.configs import resource_configs

#: Kafka's default ``transaction.max.timeout.ms`` (15 minutes), used when the brokers do not say.
DEFAULT_MAX_TIMEOUT_MS = 900_000
#: Polls between two reads of ``transaction.max.timeout.ms``.
TIMEOUT_REFRESH_POLLS = 30

Holder = tuple[int, int] | None
"""(producer id, epoch) of the transaction holding a partition's LSO, None when unknown."""


def stuck_partitions(offsets: Sequence[PartitionOffsets],
                     previous: Mapping[TopicPartition, int] | None) -> dict[TopicPartition, tuple[int, int]]:
    """(LSO, high watermark) of the partitions whose LSO is behind the high watermark and, when
    there was a previous poll (``previous``: its LSO per partition), the same as then."""
    stuck = {}
    for o in offsets:
        tp, lso, hw = TopicPartition(o.topic, o.partition), o.last_stable_offset, o.log_end_offset
        if lso is not None and hw is not None and lso < hw and (previous is None or previous.get(tp) == lso):
            stuck[tp] = (lso, hw)
    return stuck


def producers_holding(settings: ClientSettings, positions: Mapping[TopicPartition, int]) -> dict[TopicPartition, Holder]:
    """For each partition, the producer whose open transaction starts at the given offset, asked
    of its leader with DescribeProducers (blocking; our wire client: PLAINTEXT listeners only)."""
    with closing(TxnAdmin(settings.bootstrap_servers, settings.timeout_s)) as admin:
        infos = [p for p in admin.metadata(sorted({tp.topic for tp in positions}))
                 if TopicPartition(p.topic, p.partition) in positions]
        answers = admin.describe_producers(infos)
    holders: dict[TopicPartition, Holder] = {}
    for (topic, partition), states in answers.items():
        tp = TopicPartition(topic, partition)
        holder = None if isinstance(states, TxnRequestError) else next(
            ((s.producer_id, s.producer_epoch) for s in states if s.current_txn_start_offset == positions.get(tp)),
            None)
        holders[tp] = holder
    return holders


class HangingTransactionFinder:
    """Remembers LSOs and first-record timestamps between polls (see the module docstring)."""

    def __init__(self, settings: ClientSettings, admin: KafkaAdmin, client: Any) -> None:
        self.settings = settings
        self._admin = admin
        self._client = client
        """A confluent-kafka AdminClient, for DescribeConfigs."""
        self._previous: dict[TopicPartition, int] | None = None
        self._started: dict[tuple[TopicPartition, int], int | str] = {}
        """Timestamp (ms) of the record at (partition, LSO), or why it could not be read: read once."""
        self._holders: dict[tuple[TopicPartition, int], Holder] = {}
        self._max_timeout_ms: int | None = None
        self._polls = 0

    async def find(self, offsets: Sequence[PartitionOffsets], broker_ids: Sequence[int],
                   now_ms: int | None = None) -> tuple[tuple[HangingTransaction, ...], str | None]:
        """The hanging transactions of this poll, and what could not be read (or None)."""
        candidates = stuck_partitions(offsets, self._previous)
        self._previous = {TopicPartition(o.topic, o.partition): o.last_stable_offset for o in offsets
                          if o.last_stable_offset is not None}
        keys = {(tp, lso) for tp, (lso, _hw) in candidates.items()}
        self._started = {k: v for k, v in self._started.items() if k in keys}
        self._holders = {k: v for k, v in self._holders.items() if k in keys}
        if not keys:
            return (), None
        errors: list[str] = []
        max_timeout_ms, _ = await asyncio.gather(self._max_timeout(broker_ids, errors), self._read_starts(keys, errors))
        now = int(time.time() * 1000) if now_ms is None else now_ms
        hanging = {tp: (lso, hw, started) for tp, (lso, hw) in candidates.items()
                   if isinstance(started := self._started.get((tp, lso)), int) and now - started > max_timeout_ms}
        await self._ask_holders({tp: lso for tp, (lso, _hw, _started) in hanging.items()}, errors)
        found = tuple(HangingTransaction(tp.topic, tp.partition, lso, hw, started,
                                         *(self._holders.get((tp, lso)) or (None, None)))
                      for tp, (lso, hw, started) in sorted(hanging.items()))
        return found, "; ".join(errors) or None

    async def _max_timeout(self, broker_ids: Sequence[int], errors: list[str]) -> int:
        """The brokers' ``transaction.max.timeout.ms`` (the first broker's), re-read every
        ``TIMEOUT_REFRESH_POLLS`` polls; Kafka's default when it cannot be read."""
        self._polls += 1
        if self._max_timeout_ms is None or self._polls % TIMEOUT_REFRESH_POLLS == 0:
            self._max_timeout_ms = DEFAULT_MAX_TIMEOUT_MS
            if broker_ids:
                try:
                    (described,) = await in_thread(resource_configs, self._client, self.settings, "brokers",
                                                   [str(min(broker_ids))])
                    value = next((e.value for e in described.entries if e.name == "transaction.max.timeout.ms"), None)
                    self._max_timeout_ms = int(value) if value else DEFAULT_MAX_TIMEOUT_MS
                except Exception as exc:  # a refused DescribeConfigs must not stop the poll
                    errors.append(f"transaction.max.timeout.ms: {exc} (assuming {DEFAULT_MAX_TIMEOUT_MS} ms)")
        return self._max_timeout_ms

    async def _read_starts(self, keys: set[tuple[TopicPartition, int]], errors: list[str]) -> None:
        """Read the timestamps of the records at the LSOs not read yet."""
        wanted = dict(sorted(k for k in keys if k not in self._started))
        if not wanted:
            return
        stamps = await self._admin.record_timestamps(wanted, isolation_level="read_uncommitted")
        for tp, stamp in stamps.items():
            self._started[(tp, wanted[tp])] = stamp
            if isinstance(stamp, str):
                errors.append(f"first record of the open transaction on {tp.topic}-{tp.partition}: {stamp}")

    async def _ask_holders(self, positions: dict[TopicPartition, int], errors: list[str]) -> None:
        """DescribeProducers for the hanging partitions whose producer is not known yet."""
        wanted = {tp: lso for tp, lso in positions.items() if (tp, lso) not in self._holders}
        if not wanted or self.settings.properties.get("security.protocol", "plaintext").lower() != "plaintext":
            return
        try:
            holders = await in_thread(producers_holding, self.settings, wanted)
        except (WireError, TxnRequestError, OSError) as exc:
            errors.append(f"DescribeProducers: {exc}")
            return
        self._holders.update(((tp, lso), holders.get(tp)) for tp, lso in wanted.items())

