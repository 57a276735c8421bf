"""``services.hanging_transactions``: which partitions are candidates, what is read once, when a
transaction counts as hanging, and the alerts `pko lag` and `pko monitor` raise for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.models.groups import TopicPartition
from pykafka_ops.models.monitor import PartitionOffsets
from pykafka_ops.models.replication import HANGING_TRANSACTION
from pykafka_ops.models.transactions import HangingTransaction
from pykafka_ops.services import hanging_transactions
from pykafka_ops.services.hanging_transactions import HangingTransactionFinder, stuck_partitions
from pykafka_ops.services.replication import hanging_alerts, new_alerts

NOW = 10_000_000
MINUTE = 60_000
A0, A1 = TopicPartition("a", 0), TopicPartition("a", 1)


class FakeAdmin:
    """Record timestamps by (partition, offset); remembers every read."""

    def __init__(self, stamps: Mapping[tuple[TopicPartition, int], int | str]) -> None:
        self.stamps = dict(stamps)
        self.reads: list[tuple[dict[TopicPartition, int], str]] = []

    async def record_timestamps(self, positions: Mapping[TopicPartition, int],
                                isolation_level: str = "read_committed") -> dict[TopicPartition, int | str]:
        self.reads.append((dict(positions), isolation_level))
        return {tp: self.stamps.get((tp, o), "no record at or after the offset") for tp, o in positions.items()}


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[TopicPartition, int]]:
    """DescribeProducers answered from a table; broker configs say transaction.max.timeout.ms = 15 min."""
    calls: list[dict[TopicPartition, int]] = []

    def producers_holding(_settings: Any, positions: Mapping[TopicPartition, int]) -> dict[TopicPartition, Any]:
        calls.append(dict(positions))
        return {tp: (1000 + tp.partition, 3) for tp in positions}

    class Entry:
        name, value = "transaction.max.timeout.ms", str(15 * MINUTE)

    class Described:
        entries = (Entry(),)

    monkeypatch.setattr(hanging_transactions, "producers_holding", producers_holding)
    monkeypatch.setattr(hanging_transactions, "resource_configs", lambda *_args: [Described()])
    return calls


def offsets(**lso: int) -> list[PartitionOffsets]:
    """Partitions a-0 and a-1 with high watermark 100 and the given LSOs (``p0=…``, ``p1=…``)."""
    return [PartitionOffsets("a", p, 0, 100, lso.get(f"p{p}", 100)) for p in (0, 1)]


def finder(admin: FakeAdmin) -> HangingTransactionFinder:
    return HangingTransactionFinder(ClientSettings("127.0.0.1:1", timeout_s=1.0), admin, object())  # type: ignore[arg-type]


def test_candidates_are_stuck_partitions_whose_lso_did_not_move() -> None:
    assert stuck_partitions(offsets(p0=40), None) == {A0: (40, 100)}
    assert stuck_partitions(offsets(p0=40, p1=50), {A0: 40, A1: 45}) == {A0: (40, 100)}
    assert stuck_partitions([PartitionOffsets("a", 0, 0, 100, None)], None) == {}


async def test_an_old_open_transaction_is_hanging_and_names_its_producer(asked: list[Any]) -> None:
    admin = FakeAdmin({(A0, 40): NOW - 20 * MINUTE, (A1, 70): NOW - 5 * MINUTE})
    found, error = await finder(admin).find(offsets(p0=40, p1=70), [1], NOW)
    assert (found, error) == ((HangingTransaction("a", 0, 40, 100, NOW - 20 * MINUTE, 1000, 3),), None)
    assert admin.reads == [({A0: 40, A1: 70}, "read_uncommitted")]
    assert asked == [{A0: 40}]


async def test_timestamps_and_producers_are_read_once_per_stuck_lso(asked: list[Any]) -> None:
    admin = FakeAdmin({(A0, 40): NOW - 20 * MINUTE, (A0, 60): NOW - 30 * MINUTE})
    hanging = finder(admin)
    await hanging.find(offsets(p0=40), [1], NOW)
    found, _ = await hanging.find(offsets(p0=40), [1], NOW + 1000)
    assert [h.producer_id for h in found] == [1000]
    assert (len(admin.reads), len(asked)) == (1, 1)
    assert await hanging.find(offsets(p0=60), [1], NOW) == ((), None)  # moved: not a candidate this poll
    found, _ = await hanging.find(offsets(p0=60), [1], NOW)
    assert [h.last_stable_offset for h in found] == [60]
    assert (len(admin.reads), len(asked)) == (2, 2)


async def test_what_cannot_be_read_is_reported_once_and_flags_nothing(asked: list[Any]) -> None:
    admin = FakeAdmin({})
    hanging = finder(admin)
    found, error = await hanging.find(offsets(p0=40), [1], NOW)
    assert found == () and error == "first record of the open transaction on a-0: no record at or after the offset"
    assert await hanging.find(offsets(p0=40), [1], NOW) == ((), None)
    assert asked == []


def test_alerts_name_the_producers_and_do_not_ring_again_when_the_high_watermark_moves() -> None:
    first = hanging_alerts([HangingTransaction("a", 1, 7, 50, 0, 2002, 0), HangingTransaction("a", 0, 4, 10, 0, None)])
    (alert,) = first
    assert (alert.kind, alert.level, alert.partitions) == (HANGING_TRANSACTION, "ERR", (0, 1))
    assert alert.message == (
        "topic 'a': hanging transactions on 2 partitions (0, 1): partition 0 producer unknown, last stable offset 4 "
        "behind the high watermark 10 for longer than transaction.max.timeout.ms; partition 1 producer id 2002, "
        "last stable offset 7 behind the high watermark 50 for longer than transaction.max.timeout.ms; "
        "see pko transactions find-hanging --topic a")
    later = hanging_alerts([HangingTransaction("a", 1, 7, 90, 0, 2002, 0), HangingTransaction("a", 0, 4, 30, 0, None)])
    assert new_alerts(later, {(a.topic, a.kind): a for a in first}) == ()
    aborted = hanging_alerts([HangingTransaction("a", 1, 7, 90, 0, 2002, 0)])
    assert new_alerts(aborted, {(a.topic, a.kind): a for a in first}) == aborted
