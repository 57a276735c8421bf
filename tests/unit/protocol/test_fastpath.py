"""The hand-written data path (``fastpath.py``) cross-checked against kio, both ways.

* Produce requests written by kio are parsed by ``parse_produce_request`` into the same
  values, with each record set a memoryview slice of the frame (zero copy).
* Produce and Fetch responses written by the fast path decode with kio to the expected values
  and are byte-for-byte what kio writes for the same response.
* Malformed frames (cut anywhere, lengths pointing past the end) raise ``ParseError`` and
  nothing else: the connection loop turns that into a closed connection, never a crash.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pykafka_ops.protocol import codec, fastpath
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.protocol.fastpath import (
    AbortedTransaction,
    FetchPartitionResult,
    ParseError,
    ProducePartitionResult,
    parse_produce_request,
)
from pykafka_ops.records import RecordBatchBuilder

PRODUCE, FETCH = int(ApiKey.PRODUCE), int(ApiKey.FETCH)
PRODUCE_VERSIONS = range(fastpath.PRODUCE_VERSIONS[0], fastpath.PRODUCE_VERSIONS[1] + 1)
FETCH_VERSIONS = range(fastpath.FETCH_VERSIONS[0], fastpath.FETCH_VERSIONS[1] + 1)
CHECK = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])

int16s = st.integers(-(2**15), 2**15 - 1)
int32s = st.integers(-(2**31), 2**31 - 1)
int64s = st.integers(-(2**63), 2**63 - 1)
names = st.text(max_size=12)
error_codes = st.sampled_from([int(code) for code in codec.ErrorCode])
append_times = st.just(-1) | st.integers(0, 2**45)  # -1 (CreateTime topic) or a wall-clock time in ms


def test_fast_path_ranges_cover_what_the_broker_registers() -> None:
    from cluster.handlers import load_handlers

    handlers = load_handlers()
    produce, fetch = handlers[PRODUCE], handlers[FETCH]
    assert fastpath.PRODUCE_VERSIONS[0] <= produce.min_version <= produce.max_version <= fastpath.PRODUCE_VERSIONS[1]
    assert fastpath.FETCH_VERSIONS[0] <= fetch.min_version <= fetch.max_version <= fastpath.FETCH_VERSIONS[1]


def _batch(n: int = 3) -> bytes:
    builder = RecordBatchBuilder(producer_id=4, producer_epoch=0, base_sequence=0)
    for i in range(n):
        builder.append(b"k%d" % i, b"v" * i, [("h", b"x")], timestamp_ms=1_700_000_000_000 + i)
    return builder.build()


# --- Produce request: kio writes, the fast path parses -------------------------------------

produce_bodies = st.fixed_dictionaries(
    {
        "transactional_id": st.none() | names,
        "acks": st.sampled_from([-1, 0, 1]) | int16s,
        "timeout": st.integers(0, 2**31 - 1),
        "topic_data": st.lists(
            st.fixed_dictionaries(
                {
                    "name": names,
                    "partition_data": st.lists(
                        st.fixed_dictionaries(
                            {"index": int32s, "records": st.none() | st.binary(max_size=80) | st.just(_batch())}
                        ),
                        max_size=3,
                    ),
                }
            ),
            max_size=3,
        ),
    }
)


def _produce_frame(version: int, body: dict[str, Any], client_id: str | None = "fastpath") -> tuple[bytearray, int]:
    """A Produce request frame as the network layer holds it (a bytearray), and its body offset."""
    frame = bytearray(codec.encode_request(PRODUCE, version, 11, client_id, body))
    header = codec.decode_request_header(memoryview(frame))
    return frame, header.size


def _parsed_as_values(request: fastpath.ProduceRequest) -> tuple:
    return (
        request.transactional_id,
        request.acks,
        request.timeout_ms,
        [(t.name, [(p.index, None if p.records is None else bytes(p.records)) for p in t.partitions])
         for t in request.topics],
    )


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
@CHECK
@given(body=produce_bodies)
def test_produce_request_parses_as_kio_wrote_it(version: int, body: dict[str, Any]) -> None:
    frame, offset = _produce_frame(version, body)
    parsed = parse_produce_request(memoryview(frame), offset, version)
    kio_view = codec.decode_request(PRODUCE, version, memoryview(frame), offset)
    expected = (
        body["transactional_id"],
        body["acks"],
        body["timeout"],
        [(t["name"], [(p["index"], p["records"]) for p in t["partition_data"]]) for t in body["topic_data"]],
    )
    assert _parsed_as_values(parsed) == expected
    assert kio_view.acks == parsed.acks and kio_view.transactional_id == parsed.transactional_id
    for topic in parsed.topics:
        for partition in topic.partitions:
            if partition.records is not None:
                assert isinstance(partition.records, memoryview)
                assert partition.records.obj is frame  # a view into the frame, not a copy


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
def test_produce_records_can_be_patched_in_place(version: int) -> None:
    batch = _batch()
    frame, offset = _produce_frame(version, {"acks": -1, "timeout": 30_000, "topic_data": [
        {"name": "orders", "partition_data": [{"index": 0, "records": batch}, {"index": 1, "records": batch}]}]})
    parsed = parse_produce_request(memoryview(frame), offset, version)
    first = parsed.topics[0].partitions[0].records
    struct.pack_into(">q", first, 0, 42)  # what assign_offsets does to baseOffset
    assert bytes(frame).count(struct.pack(">q", 42) + batch[8:]) == 1
    assert bytes(parsed.topics[0].partitions[1].records) == batch


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
def test_truncated_produce_request_raises_parse_error_at_every_cut(version: int) -> None:
    body = {"transactional_id": "txn", "acks": -1, "timeout": 1000, "topic_data": [
        {"name": "a", "partition_data": [{"index": 0, "records": _batch(1)}, {"index": 1, "records": None}]},
        {"name": "bé", "partition_data": [{"index": 7, "records": b"xyz"}]}]}
    frame, offset = _produce_frame(version, body)
    parse_produce_request(memoryview(frame), offset, version)
    for cut in range(offset, len(frame)):
        with pytest.raises(ParseError):
            parse_produce_request(memoryview(frame)[:cut], offset, version)


def _flexible(version: int) -> bool:
    return version >= 9


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
@pytest.mark.parametrize("field", ["transactional_id", "topic_count", "topic_name", "partition_count", "records"])
def test_produce_length_past_the_frame_raises_parse_error(version: int, field: str) -> None:
    """Overwrite one length field with a value larger than what is left in the frame."""
    body = {"transactional_id": "tx", "acks": 1, "timeout": 5, "topic_data": [
        {"name": "top", "partition_data": [{"index": 3, "records": b"abcdef"}]}]}
    frame, offset = _produce_frame(version, body)
    flexible = _flexible(version)
    big_varint = b"\xff\xff\xff\x0f"  # 2**28 - 1 + ... : a compact length far past the end
    # Positions of each length field in this body (strings/arrays are compact when flexible).
    if flexible:
        # txn id: len byte at 0, 2 bytes; acks+timeout 6; topics count 1; name len 1 + 3;
        # partitions count 1; index 4; records len 1
        positions = {"transactional_id": 0, "topic_count": 9, "topic_name": 10, "partition_count": 14,
                     "records": 19}
        size = 1
    else:
        positions = {"transactional_id": 0, "topic_count": 10, "topic_name": 14, "partition_count": 19,
                     "records": 27}
        size = {"transactional_id": 2, "topic_name": 2}.get(field, 4)
    pos = offset + positions[field]
    if flexible:
        patched = frame[:pos] + big_varint + frame[pos + size:]
    else:
        patched = frame[:pos] + (b"\x7f\xff" if size == 2 else b"\x7f\xff\xff\xff") + frame[pos + size:]
    # The untouched frame parses, so the positions above are right.
    assert parse_produce_request(memoryview(frame), offset, version).topics[0].partitions[0].index == 3
    with pytest.raises(ParseError):
        parse_produce_request(memoryview(bytearray(patched)), offset, version)


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
@settings(max_examples=40, deadline=None)
@given(garbage=st.binary(max_size=64))
def test_garbage_produce_body_raises_only_parse_error(version: int, garbage: bytes) -> None:
    try:
        parse_produce_request(memoryview(garbage), 0, version)
    except ParseError:
        pass


def test_overlong_varint_raises_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_produce_request(memoryview(b"\xff\xff\xff\xff\xff\x01"), 0, 9)


def test_invalid_utf8_topic_name_raises_parse_error() -> None:
    frame, offset = _produce_frame(3, {"acks": 1, "timeout": 5, "topic_data": [{"name": "ab", "partition_data": []}]})
    name_at = frame.index(b"ab", offset)
    frame[name_at] = 0xFF
    with pytest.raises(ParseError, match="UTF-8"):
        parse_produce_request(memoryview(frame), offset, 3)


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
def test_null_topic_name_raises_parse_error(version: int) -> None:
    frame, offset = _produce_frame(version, {"acks": 1, "timeout": 5, "topic_data": [{"name": "", "partition_data": []}]})
    null = b"\x00" if _flexible(version) else b"\xff\xff"
    empty = b"\x01" if _flexible(version) else b"\x00\x00"
    # body: null txn id, acks, timeout, topic count, then the empty name
    name_at = offset + len(null) + 6 + (1 if _flexible(version) else 4)
    assert frame[name_at:name_at + len(empty)] == empty
    frame[name_at:name_at + len(empty)] = null
    with pytest.raises(ParseError, match="null topic name"):
        parse_produce_request(memoryview(frame), offset, version)


# --- Produce response: the fast path writes, kio reads ---------------------------------------

produce_results = st.lists(
    st.tuples(
        names,
        st.lists(
            st.builds(ProducePartitionResult, int32s, error_codes, int64s, append_times, int64s, st.none() | names,
                      st.none() | st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1)),
                      st.lists(st.tuples(int32s, st.none() | names), max_size=3)),  # record_errors (KIP-467)
            max_size=3,
        ),
    ),
    max_size=3,
)


@pytest.mark.parametrize("version", PRODUCE_VERSIONS)
@CHECK
@given(topics=produce_results, throttle_time_ms=st.integers(0, 2**31 - 1))
def test_produce_response_matches_kio(version: int, topics: list, throttle_time_ms: int) -> None:
    body = fastpath.encode_produce_response(version, topics, throttle_time_ms)
    decoded = codec.decode_response(PRODUCE, version, body)
    assert decoded.throttle_time.total_seconds() * 1000 == pytest.approx(throttle_time_ms)
    assert [t.name for t in decoded.responses] == [name for name, _ in topics]
    for topic, (_, partitions) in zip(decoded.responses, topics):
        for got, want in zip(topic.partition_responses, partitions, strict=True):
            assert (got.index, got.error_code, got.base_offset) == (want.index, want.error_code, want.base_offset)
            append_time = None if got.log_append_time is None else round(got.log_append_time.timestamp() * 1000)
            assert append_time == (None if want.log_append_time_ms == -1 else want.log_append_time_ms)
            if version >= 5:
                assert got.log_start_offset == want.log_start_offset
            if version >= 8:
                assert got.error_message == want.error_message
                assert [(e.batch_index, e.batch_index_error_message) for e in got.record_errors] == want.record_errors
    as_dict = {
        "throttle_time": throttle_time_ms,
        "responses": [
            {"name": name, "partition_responses": [
                {"index": p.index, "error_code": p.error_code, "base_offset": p.base_offset,
                 "log_append_time": p.log_append_time_ms, "log_start_offset": p.log_start_offset,
                 "error_message": p.error_message,
                 "record_errors": [{"batch_index": i, "batch_index_error_message": m} for i, m in p.record_errors],
                 "current_leader": dict(zip(("leader_id", "leader_epoch"), p.current_leader or (-1, -1), strict=True))}
                for p in partitions]}
            for name, partitions in topics
        ],
    }
    assert body == codec.encode_response_body(PRODUCE, version, as_dict)


# --- Fetch response: the fast path writes, kio reads ----------------------------------------


@st.composite
def fetch_partitions(draw: st.DrawFn) -> FetchPartitionResult:
    records = draw(st.sampled_from([b"", b"\x01" * 7, _batch(), _batch(1) + _batch(2)]))
    cuts = sorted(draw(st.lists(st.integers(0, len(records)), max_size=3)))
    chunks = [records[a:b] for a, b in zip([0, *cuts], [*cuts, len(records)])]
    buffers = [memoryview(bytearray(c)) if i % 2 else c for i, c in enumerate(chunks)] if records else []
    aborted = draw(st.none() | st.lists(st.builds(AbortedTransaction, int64s, int64s), max_size=2))
    return FetchPartitionResult(
        draw(int32s), draw(error_codes), draw(int64s), draw(int64s), draw(int64s), aborted, buffers, len(records)
    )


fetch_topics = st.lists(st.tuples(names, st.lists(fetch_partitions(), max_size=3)), max_size=3)


def _fetch_as_dict(topics: list, error_code: int, session_id: int, throttle_time_ms: int) -> dict[str, Any]:
    return {
        "throttle_time": throttle_time_ms,
        "error_code": error_code,
        "session_id": session_id,
        "responses": [
            {"topic": name, "partitions": [
                {"partition_index": p.index, "error_code": p.error_code, "high_watermark": p.high_watermark,
                 "last_stable_offset": p.last_stable_offset, "log_start_offset": p.log_start_offset,
                 "aborted_transactions": None if p.aborted_transactions is None else [
                     {"producer_id": a.producer_id, "first_offset": a.first_offset} for a in p.aborted_transactions],
                 "preferred_read_replica": -1,
                 "records": b"".join(p.records)} for p in partitions]}
            for name, partitions in topics
        ],
    }


@pytest.mark.parametrize("version", FETCH_VERSIONS)
@CHECK
@given(topics=fetch_topics, error_code=error_codes, session_id=int32s, throttle_time_ms=st.integers(0, 2**31 - 1))
def test_fetch_response_matches_kio(version: int, topics: list, error_code: int, session_id: int,
                                    throttle_time_ms: int) -> None:
    buffers = fastpath.encode_fetch_response(version, topics, error_code, session_id, throttle_time_ms)
    # Record buffers are passed through as they are (no copy into the head buffers).
    record_buffers = [b for _, parts in topics for p in parts for b in p.records]
    for rb in record_buffers:
        assert any(out is rb for out in buffers)
    body = b"".join(buffers)
    decoded = codec.decode_response(FETCH, version, body)
    assert decoded.throttle_time.total_seconds() * 1000 == pytest.approx(throttle_time_ms)
    if version >= 7:
        assert (decoded.error_code, decoded.session_id) == (error_code, session_id)
    assert [t.topic for t in decoded.responses] == [name for name, _ in topics]
    for topic, (_, partitions) in zip(decoded.responses, topics):
        for got, want in zip(topic.partitions, partitions, strict=True):
            assert (got.partition_index, got.error_code, got.high_watermark, got.last_stable_offset) == (
                want.index, want.error_code, want.high_watermark, want.last_stable_offset)
            if version >= 5:
                assert got.log_start_offset == want.log_start_offset
            if want.aborted_transactions is None:
                assert got.aborted_transactions is None
            else:
                assert [(a.producer_id, a.first_offset) for a in got.aborted_transactions] == [
                    tuple(a) for a in want.aborted_transactions]
            if version >= 11:
                assert got.preferred_read_replica == -1
            assert got.records == b"".join(want.records)  # empty records are b"", not null
    assert body == codec.encode_response_body(FETCH, version, _fetch_as_dict(topics, error_code, session_id,
                                                                              throttle_time_ms))


@pytest.mark.parametrize("version", FETCH_VERSIONS)
def test_fetch_response_aborted_transactions_null_vs_empty(version: int) -> None:
    def partition(aborted: list | None) -> FetchPartitionResult:
        return FetchPartitionResult(0, 0, 10, 10, 0, aborted, [_batch()], len(_batch()))

    for aborted in (None, [], [AbortedTransaction(9, 3)]):
        body = b"".join(fastpath.encode_fetch_response(version, [("t", [partition(aborted)])]))
        got = codec.decode_response(FETCH, version, body).responses[0].partitions[0].aborted_transactions
        assert (None if got is None else [(a.producer_id, a.first_offset) for a in got]) == (
            None if aborted is None else [tuple(a) for a in aborted])


def test_fetch_response_with_an_empty_topic_list() -> None:
    for version in FETCH_VERSIONS:
        body = b"".join(fastpath.encode_fetch_response(version, []))
        assert body == codec.encode_response_body(FETCH, version, {"responses": []})


def test_produce_v10_names_the_current_leader_and_its_endpoint() -> None:
    """KIP-951: NOT_LEADER_OR_FOLLOWER carries current_leader (partition tag 0) and the broker
    in node_endpoints (response tag 0); the generic codec reads both back."""
    moved = fastpath.ProducePartitionResult(2, 6, -1, -1, -1, "moved", (3, 7))
    ok = fastpath.ProducePartitionResult(0, 0, 10, -1, 0)
    body = fastpath.encode_produce_response(10, [("t", [moved, ok])], 0,
                                            node_endpoints=[fastpath.NodeEndpoint(3, "127.0.0.3", 9093, None)])
    decoded = codec.decode_response(PRODUCE, 10, body)
    first, second = decoded.responses[0].partition_responses
    assert (first.current_leader.leader_id, first.current_leader.leader_epoch) == (3, 7)
    assert second.current_leader.leader_id == -1
    (endpoint,) = decoded.node_endpoints
    assert (endpoint.node_id, endpoint.host, endpoint.port, endpoint.rack) == (3, "127.0.0.3", 9093, None)
    assert fastpath.encode_produce_response(9, [("t", [moved])]) == codec.encode_response_body(
        PRODUCE, 9, codec.decode_response(PRODUCE, 9, fastpath.encode_produce_response(9, [("t", [moved])])))
