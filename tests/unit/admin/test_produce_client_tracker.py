"""ProduceClientTracker: counts per (client id, topic), the sliding window and the LRU cap, on a fake clock."""

from __future__ import annotations

import struct

import pytest

from cluster.admin.tracker import BUCKETS, ProduceClientTracker
from pykafka_ops.protocol.fastpath import ProducePartition, ProduceRequest, ProduceTopic
from pykafka_ops.records.builder import RecordBatchBuilder

WINDOW_MS = 60_000
WALL_START_S = 1_700_000_000.0


class FakeClock:
    """Monotonic seconds under test control; the wall clock is a fixed offset from it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL_START_S + self.now

    def advance_ms(self, ms: int) -> None:
        self.now += ms / 1000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def tracker(clock: FakeClock, **kwargs: int) -> ProduceClientTracker:
    return ProduceClientTracker(kwargs.pop("window_ms", WINDOW_MS), clock=clock, wall_clock=clock.wall, **kwargs)


def clients(t: ProduceClientTracker) -> dict[tuple[str, str], dict]:
    return {(c["client_id"], c["topic"]): c for c in t.snapshot(1)["clients"]}


def test_counts_per_client_and_topic(clock: FakeClock) -> None:
    t = tracker(clock)
    for _ in range(3):
        t.record("safe", ["orders"], -1, True, False)
    t.record("loose", ["orders", "payments"], 1, False, False)
    t.record("loose", ["orders"], 0, False, False)
    t.record("txn", ["orders"], -1, True, True)
    answer = t.snapshot(7)
    assert answer["node_id"] == 7 and answer["window_ms"] == WINDOW_MS and answer["evicted"] == 0
    assert [(c["client_id"], c["topic"]) for c in answer["clients"]] == [
        ("loose", "orders"), ("loose", "payments"), ("safe", "orders"), ("txn", "orders")]
    by_key = clients(t)
    assert by_key["safe", "orders"] == {
        "client_id": "safe", "topic": "orders", "acks": {"-1": 3}, "requests": 3, "idempotent": True,
        "idempotent_requests": 3, "transactional": False, "transactional_requests": 0,
        "last_seen_ms": int(clock.wall() * 1000)}
    assert by_key["loose", "orders"]["acks"] == {"0": 1, "1": 1}
    assert by_key["loose", "orders"]["requests"] == 2 and not by_key["loose", "orders"]["idempotent"]
    assert by_key["loose", "payments"]["acks"] == {"1": 1}
    assert by_key["txn", "orders"]["transactional"] and by_key["txn", "orders"]["transactional_requests"] == 1


def test_invalid_acks_are_not_counted(clock: FakeClock) -> None:
    t = tracker(clock)
    t.record("odd", ["orders"], 2, False, False)
    assert t.snapshot(1)["clients"] == [] and len(t) == 0


def test_last_seen_is_wall_time_of_the_last_request(clock: FakeClock) -> None:
    t = tracker(clock)
    t.record("a", ["t"], 1, False, False)
    clock.advance_ms(5_000)
    t.record("a", ["t"], 1, False, False)
    clock.advance_ms(2_000)
    assert clients(t)["a", "t"]["last_seen_ms"] == int(clock.wall() * 1000) - 2_000


def test_window_forgets_old_requests(clock: FakeClock) -> None:
    bucket_ms = WINDOW_MS // BUCKETS
    t = tracker(clock)
    t.record("a", ["t"], 1, False, False)      # an acks=1, non-idempotent start ...
    clock.advance_ms(WINDOW_MS // 2)
    t.record("a", ["t"], -1, True, False)      # ... then the client is fixed
    assert clients(t)["a", "t"]["acks"] == {"-1": 1, "1": 1}
    clock.advance_ms(WINDOW_MS // 2 + bucket_ms)  # the first request's bucket is now wholly outside
    entry = clients(t)["a", "t"]
    assert entry["acks"] == {"-1": 1} and entry["idempotent"] and entry["idempotent_requests"] == 1
    clock.advance_ms(WINDOW_MS)                 # nothing within the window any more
    assert t.snapshot(1)["clients"] == [] and len(t) == 0


def test_a_request_counts_for_at_least_the_window(clock: FakeClock) -> None:
    t = tracker(clock)
    t.record("a", ["t"], 1, False, False)
    clock.advance_ms(WINDOW_MS - 1)
    assert clients(t)["a", "t"]["requests"] == 1
    clock.advance_ms(WINDOW_MS // BUCKETS + 1)  # at most a bucket later, it is gone
    assert clients(t) == {}


def test_buckets_per_entry_stay_bounded(clock: FakeClock) -> None:
    t = tracker(clock)
    for _ in range(10 * BUCKETS):
        t.record("a", ["t"], 1, False, False)
        clock.advance_ms(WINDOW_MS // BUCKETS)
    (entry,) = t._entries.values()
    assert len(entry.buckets) <= BUCKETS + 1
    assert clients(t)["a", "t"]["requests"] <= BUCKETS + 1


def test_expired_entries_make_room_before_eviction(clock: FakeClock) -> None:
    t = tracker(clock, max_entries=2)
    t.record("old", ["t"], 1, False, False)
    clock.advance_ms(3 * WINDOW_MS)
    t.record("a", ["t"], 1, False, False)
    t.record("b", ["t"], 1, False, False)
    assert set(clients(t)) == {("a", "t"), ("b", "t")} and t.evicted == 0


def test_lru_cap_evicts_least_recently_written(clock: FakeClock) -> None:
    t = tracker(clock, max_entries=3)
    for name in ("a", "b", "c"):
        t.record(name, ["t"], 1, False, False)
        clock.advance_ms(10)
    t.record("a", ["t"], 1, False, False)       # a is now the most recent: b is the oldest
    t.record("d", ["t"], -1, True, False)
    t.record("e", ["t"], -1, True, False)
    answer = t.snapshot(1)
    assert {c["client_id"] for c in answer["clients"]} == {"a", "d", "e"}
    assert answer["evicted"] == 2 and len(t) == 3
    assert clients(t)["a", "t"]["requests"] == 2


def _request(acks: int, transactional_id: str | None, producer_id: int, topics: tuple[str, ...]) -> ProduceRequest:
    builder = RecordBatchBuilder(producer_id=producer_id, producer_epoch=0 if producer_id >= 0 else -1,
                                 base_sequence=0 if producer_id >= 0 else -1)
    builder.append(b"k", b"v")
    records = memoryview(builder.build())
    return ProduceRequest(transactional_id, acks, 30_000,
                          [ProduceTopic(name, [ProducePartition(0, records)]) for name in topics])


def test_record_request_reads_the_first_batch_producer_id(clock: FakeClock) -> None:
    t = tracker(clock)
    t.record_request("idem", _request(-1, None, 42, ("x", "y")))
    t.record_request("plain", _request(1, None, -1, ("x",)))
    t.record_request("tx", _request(-1, "tx-1", 7, ("x",)))
    t.record_request(None, _request(0, None, -1, ("x",)))
    t.record_request("empty", ProduceRequest(None, 1, 1000, [ProduceTopic("z", [])]))
    by_key = clients(t)
    assert by_key["idem", "x"]["idempotent"] and by_key["idem", "y"]["idempotent"]
    assert not by_key["plain", "x"]["idempotent"] and by_key["plain", "x"]["acks"] == {"1": 1}
    assert by_key["tx", "x"]["transactional"] and by_key["tx", "x"]["idempotent"]
    assert by_key["", "x"]["acks"] == {"0": 1}               # no client id counts under ""
    assert not by_key["empty", "z"]["idempotent"]


def test_producer_id_offset_matches_the_batch_layout() -> None:
    builder = RecordBatchBuilder(producer_id=0x0102030405, producer_epoch=0, base_sequence=0)
    builder.append(None, b"v")
    batch = builder.build()
    assert struct.unpack_from(">q", batch, 43)[0] == 0x0102030405


def test_refuses_a_window_too_short_for_its_buckets(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        tracker(clock, window_ms=BUCKETS - 1)
