"""replication-offset-checkpoint on a real single-node cluster (issue 15 item 2).

The node writes each partition's high watermark to ``<node dir>/replication-offset-checkpoint``
every 5 s (Kafka's ``replica.high.watermark.checkpoint.interval.ms``) and at clean shutdown, and
opens a partition with min(checkpoint, log end). A lone leader then re-advances to its log end,
so every acknowledged record stays consumable after a clean restart, after kill -9, and with a
checkpoint that lags (a crash before the next write) or is unreadable.
"""

from __future__ import annotations

from pathlib import Path

from integration_helpers import (
    admin,
    build_batch,
    create_topic,
    list_offset,
    node_log,
    produce_raw,
    read_partition,
    unique_topic,
    wait_until,
    wire,
)

from cluster.log.checkpoints import REPLICATION_OFFSET_FILE, parse_offset_checkpoint
from cluster.pytest_plugin import RunningCluster

PARTITIONS = 3


def checkpoint_path(cluster: RunningCluster) -> Path:
    return cluster.config.node_dir(1) / REPLICATION_OFFSET_FILE


def read_checkpoint(cluster: RunningCluster) -> dict[tuple[str, int], int]:
    try:
        return parse_offset_checkpoint(checkpoint_path(cluster).read_text())
    except FileNotFoundError:
        return {}


def produce(cluster: RunningCluster, topic: str, acked: dict[int, list[bytes]], batches: int, tag: str) -> None:
    """acks=all batches of 3 records into every partition; the acknowledged values by offset."""
    with wire(cluster) as client:
        for p in range(PARTITIONS):
            for b in range(batches):
                values = [f"{tag}-{p}-{b}-{i}".encode() for i in range(3)]
                answer = produce_raw(client, topic, p, build_batch(values), acks=-1)
                assert answer.error_code == 0, answer
                assert answer.base_offset == len(acked[p])
                acked[p].extend(values)


def assert_all_consumable(cluster: RunningCluster, topic: str, acked: dict[int, list[bytes]]) -> None:
    for p in range(PARTITIONS):
        assert list_offset(cluster, topic, p, -1).offset == len(acked[p])
        records = read_partition(cluster, topic, p)
        assert [(r.offset, r.value) for r in records] == list(enumerate(acked[p]))


def wait_for_checkpoint(cluster: RunningCluster, topic: str, acked: dict[int, list[bytes]]) -> dict:
    expected = {(topic, p): len(acked[p]) for p in range(PARTITIONS)}

    def written() -> dict | None:
        found = read_checkpoint(cluster)
        return found if {tp: found.get(tp) for tp in expected} == expected else None

    return wait_until(written, 20, f"the high watermarks {expected} in {REPLICATION_OFFSET_FILE}")


def test_high_watermarks_are_checkpointed_and_acknowledged_records_survive_restarts(pko_cluster_factory) -> None:
    cluster = pko_cluster_factory()
    topic = unique_topic("hw-checkpoint")
    create_topic(cluster, topic, PARTITIONS)
    acked: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}

    # periodic checkpoint
    produce(cluster, topic, acked, 5, "first")
    found = wait_for_checkpoint(cluster, topic, acked)
    assert all(topic_name != "__cluster_metadata" for topic_name, _ in found)
    lines = checkpoint_path(cluster).read_text().splitlines()
    assert lines[0] == "0" and int(lines[1]) == len(lines) - 2
    assert not list(cluster.config.node_dir(1).glob("*.tmp"))

    # clean restart: the shutdown writes the latest high watermarks
    produce(cluster, topic, acked, 2, "before-stop")
    cluster.restart(1)
    assert {(topic, p): read_checkpoint(cluster).get((topic, p)) for p in range(PARTITIONS)} == {
        (topic, p): len(acked[p]) for p in range(PARTITIONS)}
    assert_all_consumable(cluster, topic, acked)

    # kill -9 right after acknowledged writes, then a checkpoint that lags the log (a crash
    # before the periodic write): the lone leader re-advances to its log end
    produce(cluster, topic, acked, 4, "before-kill")
    cluster.kill(1)
    lagging = {(topic, p): 1 for p in range(PARTITIONS)}
    body = "".join(f"{t} {p} {o}\n" for (t, p), o in lagging.items())
    checkpoint_path(cluster).write_text(f"0\n{len(lagging)}\n{body}")
    cluster.restart(1)
    assert_all_consumable(cluster, topic, acked)
    wait_for_checkpoint(cluster, topic, acked)

    # kill -9 with an unreadable checkpoint: ignored with a warning, rebuilt
    produce(cluster, topic, acked, 1, "before-corrupt")
    cluster.kill(1)
    checkpoint_path(cluster).write_text("0\n7\ngarbage\n")
    cluster.restart(1)
    assert_all_consumable(cluster, topic, acked)
    wait_for_checkpoint(cluster, topic, acked)
    assert f"{REPLICATION_OFFSET_FILE} is unreadable" in node_log(cluster)

    # a deleted topic's partitions leave the file
    client = admin(cluster)
    client.delete_topics([topic], operation_timeout=10)[topic].result(timeout=15)
    wait_until(lambda: not any(t == topic for t, _ in read_checkpoint(cluster)), 20,
               f"{topic} to leave {REPLICATION_OFFSET_FILE}")
