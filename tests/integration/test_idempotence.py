"""Idempotent produce with raw requests: duplicates, sequence gaps, stale epochs, restarts.

InitProducerId v4 hands out the producer id; Produce v9 carries batches built with our
RecordBatchBuilder (producer id, epoch, base sequence), so every sequence is chosen by the
test. Kafka's answers (UnifiedLog / ProducerStateManager): a batch equal to one of the last 5
of its producer is acknowledged again with its ORIGINAL offsets and not written; a gap gives
OUT_OF_ORDER_SEQUENCE_NUMBER (45); an epoch below the current one INVALID_PRODUCER_EPOCH (47).
The module's own cluster is restarted (cleanly, then with kill -9) to check that producer state
is rebuilt.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integration_helpers import (
    build_batch,
    create_topic,
    init_producer_id,
    list_offset,
    produce_raw,
    read_partition,
    unique_topic,
    wire,
)
from pykafka_ops.client.wire import WireClient
from cluster.pytest_plugin import RunningCluster

OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47


@pytest.fixture
def topic(own_cluster: RunningCluster) -> str:
    name = unique_topic("idem")
    create_topic(own_cluster, name, partitions=1)
    return name


@pytest.fixture
def client(own_cluster: RunningCluster) -> Iterator[WireClient]:
    with wire(own_cluster) as connection:
        yield connection


def batch(pid: int, seq: int, count: int, epoch: int = 0, tag: bytes = b"r") -> bytes:
    return build_batch([b"%s-%d" % (tag, seq + i) for i in range(count)], producer_id=pid,
                       producer_epoch=epoch, base_sequence=seq)


def log_end(cluster: RunningCluster, topic: str) -> int:
    return list_offset(cluster, topic, 0, -1).offset


def test_replayed_batch_is_acknowledged_with_its_original_offset_and_not_written(
        own_cluster: RunningCluster, topic: str, client: WireClient) -> None:
    pid, epoch = init_producer_id(client)
    assert epoch == 0
    first = batch(pid, 0, 3)
    answer = produce_raw(client, topic, 0, first)
    assert (answer.error_code, answer.base_offset) == (0, 0)

    replay = produce_raw(client, topic, 0, first)
    assert (replay.error_code, replay.base_offset) == (0, 0)
    assert log_end(own_cluster, topic) == 3

    second = produce_raw(client, topic, 0, batch(pid, 3, 2))
    assert (second.error_code, second.base_offset) == (0, 3)
    # an older batch, still among the producer's last 5, is a duplicate too
    again = produce_raw(client, topic, 0, first)
    assert (again.error_code, again.base_offset) == (0, 0)

    assert [r.value for r in read_partition(own_cluster, topic, 0)] == [
        b"r-0", b"r-1", b"r-2", b"r-3", b"r-4"]


def test_sequence_gap_is_out_of_order(own_cluster: RunningCluster, topic: str, client: WireClient) -> None:
    pid, _epoch = init_producer_id(client)
    assert produce_raw(client, topic, 0, batch(pid, 0, 2)).error_code == 0

    gap = produce_raw(client, topic, 0, batch(pid, 5, 1))
    assert gap.error_code == OUT_OF_ORDER_SEQUENCE_NUMBER
    assert log_end(own_cluster, topic) == 2
    # the producer can go on from where the broker is
    assert (produce_raw(client, topic, 0, batch(pid, 2, 1)).base_offset) == 2


def test_a_new_epoch_must_start_at_sequence_zero(topic: str, client: WireClient) -> None:
    pid, _epoch = init_producer_id(client)
    assert produce_raw(client, topic, 0, batch(pid, 0, 2)).error_code == 0
    assert produce_raw(client, topic, 0, batch(pid, 2, 1, epoch=1)).error_code == OUT_OF_ORDER_SEQUENCE_NUMBER


def test_older_epoch_is_fenced(own_cluster: RunningCluster, topic: str, client: WireClient) -> None:
    pid, _epoch = init_producer_id(client)
    assert produce_raw(client, topic, 0, batch(pid, 0, 2)).error_code == 0
    bumped = produce_raw(client, topic, 0, batch(pid, 0, 1, epoch=1, tag=b"e1"))
    assert (bumped.error_code, bumped.base_offset) == (0, 2)

    zombie = produce_raw(client, topic, 0, batch(pid, 2, 1, epoch=0, tag=b"zombie"))
    assert zombie.error_code == INVALID_PRODUCER_EPOCH
    assert log_end(own_cluster, topic) == 3


def test_producer_state_survives_clean_restart_and_kill_9(own_cluster: RunningCluster, topic: str) -> None:
    with wire(own_cluster) as client:
        pid, _epoch = init_producer_id(client)
        batches = [batch(pid, seq, 4) for seq in range(0, 24, 4)]  # 6 batches of 4 records
        for i, data in enumerate(batches):
            assert produce_raw(client, topic, 0, data).base_offset == 4 * i

    own_cluster.restart(1)  # SIGTERM: producer state snapshotted at the clean shutdown
    with wire(own_cluster) as client:
        replay = produce_raw(client, topic, 0, batches[-1])
        assert (replay.error_code, replay.base_offset) == (0, 20)
        assert produce_raw(client, topic, 0, batch(pid, 30, 1)).error_code == OUT_OF_ORDER_SEQUENCE_NUMBER
        assert produce_raw(client, topic, 0, batch(pid, 24, 4)).base_offset == 24
    assert log_end(own_cluster, topic) == 28

    with wire(own_cluster) as client:  # written after the last snapshot: rebuilt from the log
        assert produce_raw(client, topic, 0, batch(pid, 28, 4)).base_offset == 28
    own_cluster.kill(1, "KILL")
    own_cluster.restart(1)
    with wire(own_cluster) as client:
        for seq, base in ((28, 28), (24, 24)):
            replay = produce_raw(client, topic, 0, batch(pid, seq, 4))
            assert (replay.error_code, replay.base_offset) == (0, base)
        assert produce_raw(client, topic, 0, batch(pid, 40, 1)).error_code == OUT_OF_ORDER_SEQUENCE_NUMBER
        assert produce_raw(client, topic, 0, batch(pid, 32, 1)).base_offset == 32
    values = [r.value for r in read_partition(own_cluster, topic, 0)]
    assert values == [b"r-%d" % seq for seq in range(33)]
