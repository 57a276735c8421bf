"""The fault-test checker and history on synthetic histories: a clean run passes, each anomaly
is detected (so every check can fail), an ``info`` send may or may not be read, and a history
round-trips through JSON lines."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pytest

from faults.checker import (
    ANOMALIES,
    BatchSummary,
    batches_from_dump,
    check,
    compare_replicas,
)
from faults.history import History


def fake_clock() -> History:
    ticks = itertools.count()
    return History(clock=lambda: float(next(ticks)))


def clean(n: int = 6, partitions: int = 2) -> tuple[History, dict[int, list[tuple[int, str]]]]:
    """``n`` sends of p0, round robin over ``partitions``, all acknowledged and all read back."""
    history = fake_clock()
    reads: dict[int, list[tuple[int, str]]] = {p: [] for p in range(partitions)}
    for i in range(n):
        partition = i % partitions
        op = history.invoke("p0", "send", f"p0-{i}", partition)
        offset = len(reads[partition])
        history.ok(op, partition, offset)
        reads[partition].append((offset, f"p0-{i}"))
    return history, reads


def anomalies(result: object) -> dict[str, int]:
    return {name: getattr(result, name) for name in ANOMALIES if getattr(result, name)}


def test_a_clean_history_passes() -> None:
    history, reads = clean()
    result = check(history, reads)
    assert result.valid, result.summary()
    assert (result.attempted, result.acked, result.read, result.indeterminate) == (6, 6, 6, 0)
    figures = result.figures()
    assert figures["valid"] is True and figures["lost"] == 0
    json.dumps(figures)  # one JSON line


def test_lost_acknowledged_record() -> None:
    history, reads = clean()
    del reads[1][1]
    result = check(history, reads)
    assert anomalies(result) == {"lost": 1}
    assert result.examples["lost"] == [{"value": "p0-3", "partition": 1, "offset": 1}]


def test_duplicate() -> None:
    history, reads = clean()
    reads[0].append((3, "p0-2"))
    assert anomalies(check(history, reads)) == {"duplicates": 1}


def test_reading_one_offset_twice_is_no_duplicate() -> None:
    history, reads = clean()
    reads[0].append(reads[0][0])  # a consumer that re-read offset 0
    assert check(history, reads).valid


def test_offset_mismatch_between_ack_and_read() -> None:
    history, reads = clean(n=2, partitions=1)
    reads[0] = [(0, "p0-0"), (5, "p0-1")]  # acknowledged at 1
    result = check(history, reads)
    assert anomalies(result) == {"offset_mismatches": 1}
    assert result.examples["offset_mismatches"][0]["acked"] == [0, 1]


def test_two_values_at_one_offset() -> None:
    history, reads = clean(n=2, partitions=1)
    reads[0].append((1, "p0-0"))
    result = check(history, reads)
    assert result.offset_mismatches == 1


def test_reordered_sends_of_one_producer() -> None:
    history, reads = clean(n=4, partitions=1)
    reads[0] = [(0, "p0-0"), (1, "p0-2"), (2, "p0-1"), (3, "p0-3")]
    result = check(history, reads)
    assert result.reordered == 1 and result.examples["reordered"][0]["later_in_log"] == ["p0-1", 2]
    assert check(history, reads, check_order=False).reordered == 0


def test_two_producers_interleaved_is_not_a_reorder() -> None:
    history = fake_clock()
    a0, b0, a1, b1 = (history.invoke(p, "send", f"{p}-{i}", 0) for p, i in (("a", 0), ("b", 0), ("a", 1), ("b", 1)))
    for op, offset in ((b0, 0), (a0, 1), (b1, 2), (a1, 3)):
        history.ok(op, 0, offset)
    reads = {0: [(0, "b-0"), (1, "a-0"), (2, "b-1"), (3, "a-1")]}
    assert check(history, reads).valid


def test_unexpected_record() -> None:
    history, reads = clean()
    reads[0].append((3, "never-sent"))
    assert anomalies(check(history, reads)) == {"unexpected": 1}


def test_a_failed_send_must_not_be_read() -> None:
    history, reads = clean(n=2, partitions=1)
    op = history.invoke("p0", "send", "p0-2", 0)
    history.fail(op, "MSG_SIZE_TOO_LARGE")
    assert check(history, reads).valid
    reads[0].append((2, "p0-2"))
    assert anomalies(check(history, reads)) == {"failed_but_read": 1}


@pytest.mark.parametrize("appears", [True, False])
def test_an_indeterminate_send_may_or_may_not_appear(appears: bool) -> None:
    history, reads = clean(n=2, partitions=1)
    timed_out = history.invoke("p0", "send", "p0-2", 0)
    history.info(timed_out, "_MSG_TIMED_OUT")
    history.invoke("p0", "send", "p0-3", 0)  # never answered: also unknown
    if appears:
        reads[0] += [(2, "p0-2"), (3, "p0-3")]
    result = check(history, reads)
    assert result.valid, result.summary()
    assert (result.indeterminate, result.indeterminate_read) == (2, 2 if appears else 0)


def test_nemesis_and_poll_ops_are_not_sends() -> None:
    history, reads = clean()
    history.nemesis("kill-9", 2)
    poll = history.invoke("reader", "poll")
    history.ok(poll, value="6")
    result = check(history, reads)
    assert result.valid and result.attempted == 6
    assert [op.f for op in history.nemesis_ops()] == ["kill-9"]


def batch(base: int, last: int, epoch: int = 0, crc: int = 7) -> BatchSummary:
    return BatchSummary(base, last, epoch, 1000, crc)


def test_identical_replicas_pass_and_a_suffix_above_the_high_watermark_is_ignored() -> None:
    leader = {0: [batch(0, 4), batch(5, 9)]}
    follower = {0: [batch(0, 4), batch(5, 9), batch(10, 12, epoch=1)]}
    result = compare_replicas({1: leader, 2: follower}, {0: 10})
    assert result.valid and result.replicas_compared == 2


@pytest.mark.parametrize("other", [
    [batch(0, 4), batch(5, 8)],              # a shorter batch
    [batch(0, 4), batch(5, 9, epoch=2)],     # another leader epoch
    [batch(0, 4), batch(5, 9, crc=8)],       # other bytes
    [batch(0, 4)],                           # a missing batch below the high watermark
])
def test_diverging_replicas(other: list[BatchSummary]) -> None:
    history, _reads = clean(n=1, partitions=1)
    replicas = {1: {0: [batch(0, 4), batch(5, 9)]}, 3: {0: other}}
    result = check(history, {0: [(0, "p0-0")]}, replicas=replicas, high_watermarks={0: 10})
    assert anomalies(result) == {"divergent": 1}
    example = result.examples["divergent"][0]
    assert example["partition"] == 0 and example["batch"] == 1 and "node_1" in example and "node_3" in example


def test_batches_from_a_dump_log_payload() -> None:
    def file(start: int, batches: list[dict[str, int]]) -> dict[str, object]:
        return {"type": "log", "log_start_offset": start, "batches": batches}

    def entry(base: int, last: int) -> dict[str, int]:
        return {"base_offset": base, "last_offset": last, "partition_leader_epoch": 3, "producer_id": 9, "crc": base}

    payload = [file(10, [entry(10, 14)]), {"type": "index"}, file(0, [entry(0, 4), entry(5, 9)])]
    assert [b.base_offset for b in batches_from_dump(payload)] == [0, 5, 10]
    assert batches_from_dump(payload)[0] == BatchSummary(0, 4, 3, 9, 0)


def test_history_is_thread_safe_and_round_trips_through_json_lines(tmp_path: Path) -> None:
    history = History()

    def writer(proc: str) -> None:
        for i in range(500):
            op = history.invoke(proc, "send", f"{proc}-{i}", 0)
            (history.ok(op, 0, i) if i % 3 else history.info(op, "timeout"))

    threads = [threading.Thread(target=writer, args=(f"p{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ops = history.ops
    assert len(ops) == 4000 and [op.index for op in ops] == list(range(4000))
    assert all(a.t <= b.t for a, b in itertools.pairwise(ops))
    assert history.pending() == [] and history.count("info") == 4 * 167
    loaded = History.load_jsonl(history.dump_jsonl(tmp_path / "history.jsonl"))
    assert loaded.ops == ops
    first = json.loads((tmp_path / "history.jsonl").read_text().splitlines()[0])
    assert set(first) == {"index", "t", "proc", "type", "f", "value", "partition", "offset", "error", "invoke"}


def test_a_completion_needs_an_open_invocation() -> None:
    history = fake_clock()
    op = history.invoke("p0", "send", "p0-0", 0)
    history.ok(op, 0, 0)
    with pytest.raises(ValueError):
        history.info(op, "twice")


class _Delivered:
    """What a confluent-kafka delivery report passes as its message."""

    def partition(self) -> int:
        return 1

    def offset(self) -> int:
        return 7


def test_delivery_reports_are_ok_fail_or_info() -> None:
    from confluent_kafka import KafkaError

    from faults.clients import RecordingProducer

    history = fake_clock()
    producer = RecordingProducer("127.0.0.1:1", "t", history, proc="p0")
    ops = [history.invoke("p0", "send", f"p0-{i}", 1) for i in range(4)]
    producer._report(ops[0], None, _Delivered())
    producer._report(ops[1], KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), _Delivered())
    producer._report(ops[2], KafkaError(KafkaError._MSG_TIMED_OUT), _Delivered())
    producer._report(ops[3], KafkaError(KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND), _Delivered())
    completions = [(op.type, op.partition, op.offset) for op in history.ops if op.type != "invoke"]
    assert completions == [("ok", 1, 7), ("fail", 1, None), ("info", 1, None), ("info", 1, None)]
