"""A follower replicating from a leader through the real Fetch handler and the fetcher's request
and answer processing (no sockets): records, epochs and producer state copied, high watermark
and log start taken from the leader, truncation on a diverging epoch (KIP-101/KIP-320)."""

from __future__ import annotations

from typing import Any

from replication_builders import T0, context, encoded, records

from cluster.handlers.fetch import handle_fetch
from cluster.replication.follower_sync import process_partition
from cluster.replication.partition import Partition
from cluster.replication.replica_fetcher import (
    FetcherSettings,
    FetchState,
    ReplicaFetcher,
)
from pykafka_ops.config.settings import broker_defaults
from pykafka_ops.protocol import codec
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records import RecordBatchBuilder

VERSION = 12


def _fetch_once(leader: Partition, follower: Partition) -> Any:
    fetcher = ReplicaFetcher(follower.broker_id, leader.broker_id, None, FetcherSettings(broker_defaults()))  # type: ignore[arg-type]
    body = fetcher._request([FetchState(follower, follower.leader_epoch)])
    body["max_wait"] = 0
    frame, offset = encoded(ApiKey.FETCH, VERSION, body)
    request = codec.decode_request(ApiKey.FETCH, VERSION, memoryview(frame), offset)
    answer = handle_fetch(context(leader, ApiKey.FETCH, VERSION), request)
    data = codec.decode_response(ApiKey.FETCH, VERSION, b"".join(bytes(b) for b in answer)).responses[0].partitions[0]
    assert process_partition(follower, data, T0, leader.broker_id)
    return data


def _replicate(leader: Partition, *followers: Partition, rounds: int = 10) -> None:
    """Fetch until nothing changes (each follower twice more: the leader learns its position)."""
    for _ in range(rounds):
        for follower in followers:
            _fetch_once(leader, follower)


def _batches(partition: Partition) -> list[tuple[int, int, int]]:
    data = partition.log.read(partition.log.log_start_offset, 1 << 30, partition.log.log_end_offset, True)
    out, position, view = [], 0, bytes(data)
    while position + 61 <= len(view):
        base = int.from_bytes(view[position:position + 8], "big")
        length = int.from_bytes(view[position + 8:position + 12], "big")
        epoch = int.from_bytes(view[position + 12:position + 16], "big", signed=True)
        out.append((base, epoch, length))
        position += 12 + length
    return out


def test_followers_copy_the_leader_and_the_high_watermark_follows(make_partition) -> None:
    leader = make_partition()
    f2 = make_partition(broker_id=2)
    f3 = make_partition(broker_id=3)
    leader.append_records_to_leader(records(3), -1, T0)
    leader.append_records_to_leader(records(2), -1, T0)
    assert leader.log.high_watermark == 0
    _replicate(leader, f2, f3)
    assert leader.log.high_watermark == 5
    for follower in (f2, f3):
        assert follower.log.log_end_offset == 5 and follower.log.high_watermark == 5
        assert _batches(follower) == _batches(leader)
        assert follower.log.leader_epochs.entries == leader.log.leader_epochs.entries


def test_idempotent_producer_state_is_rebuilt_on_the_follower(make_partition) -> None:
    leader = make_partition()
    follower = make_partition(broker_id=2)
    builder = RecordBatchBuilder(producer_id=7, producer_epoch=0, base_sequence=0)
    builder.append(b"k", b"v", timestamp_ms=T0)
    batch = bytes(builder.build())
    leader.append_records_to_leader(memoryview(bytearray(batch)), -1, T0)
    _replicate(leader, follower)
    # the follower becomes leader in epoch 6 and is sent the same batch again (a producer retry)
    follower.update_leadership(2, 6, (1, 2, 3), (2,), now_ms=T0)
    retry = follower.append_records_to_leader(memoryview(bytearray(batch)), 1, T0)
    assert retry.duplicate and retry.first_offset == 0
    assert follower.log.log_end_offset == 1


def test_a_returning_leader_truncates_to_the_epoch_boundary_not_its_high_watermark(make_partition) -> None:
    old = make_partition()  # broker 1 leads epoch 5
    new = make_partition(broker_id=2)
    old.append_records_to_leader(records(2), -1, T0)
    _replicate(old, new)  # offsets 0-1 everywhere, HW 2
    old.append_records_to_leader(records(3), -1, T0)  # 2-4 on the old leader only (never acknowledged)
    new.update_leadership(2, 6, (1, 2, 3), (2, 3), now_ms=T0)  # broker 1 fenced: 2 leads epoch 6
    new.append_records_to_leader(records(1), 1, T0)  # offset 2 in epoch 6
    old.update_leadership(2, 6, (1, 2, 3), (2, 3), now_ms=T0)  # it returns as a follower
    first = _fetch_once(new, old)
    assert (first.diverging_epoch.epoch, first.diverging_epoch.end_offset) == (5, 2)
    assert old.log.log_end_offset == 2  # truncated to where epoch 5 ends on the leader, keeping 0-1
    _replicate(new, old)
    assert _batches(old) == _batches(new)
    assert [e.epoch for e in old.log.leader_epochs.entries] == [5, 6]


def test_a_follower_with_an_epoch_the_leader_never_had_truncates_in_two_steps(make_partition) -> None:
    leader = make_partition(broker_id=2, leader=2, epoch=5)
    stale = make_partition()  # broker 1's log of epoch 4 diverges from offset 0
    stale.update_leadership(1, 4, (1, 2, 3), (1,), now_ms=T0)
    stale.append_records_to_leader(records(4), 1, T0)  # epoch 4: offsets 0-3, unknown to the leader
    leader.append_records_to_leader(records(2), 1, T0)  # epoch 5: offsets 0-1
    stale.update_leadership(2, 5, (1, 2, 3), (2,), now_ms=T0)
    _replicate(leader, stale)
    assert _batches(stale) == _batches(leader)
    assert stale.log.log_end_offset == 2


def test_the_leaders_log_start_offset_reaches_followers(make_partition) -> None:
    leader = make_partition(replicas=(1, 2))
    follower = make_partition(replicas=(1, 2), broker_id=2)
    for _ in range(3):
        leader.append_records_to_leader(records(2), -1, T0)
    _replicate(leader, follower)
    leader.log.delete_records_before(4)
    _replicate(leader, follower)
    assert follower.log.log_start_offset == 4


def test_a_follower_behind_the_leaders_log_start_starts_over_there(make_partition) -> None:
    leader = make_partition()
    for _ in range(3):
        leader.append_records_to_leader(records(2), 1, T0)
    leader.log.high_watermark = 6
    leader.log.delete_records_before(4)
    follower = make_partition(broker_id=2)
    _replicate(leader, follower)
    assert (follower.log.log_start_offset, follower.log.log_end_offset) == (4, 6)
