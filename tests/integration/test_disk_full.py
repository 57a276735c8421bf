"""A full disk loses nothing acknowledged (issue "Data safety" item 1; reliability-probe §3.1, T10).

The node's data dir is on a small tmpfs that this test mounts (root is needed: CI runs as root)
and fills with a ballast file. Records are produced with acks=all before, during and after the
fill: while the disk is full, produce answers KAFKA_STORAGE_ERROR (56) and the node keeps serving
reads; once the ballast is gone, produce is acknowledged again, every acknowledged record reads
back with a valid CRC, and after kill -9 and a restart all of them are still there with no
offset reused. Figures are printed as one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.pytest_plugin import RunningCluster, start_cluster
from integration_helpers import build_batch, create_topic, produce_raw, read_partition, wire

KAFKA_STORAGE_ERROR = 56
MiB = 1 << 20
#: Size of the tmpfs, and what the ballast leaves free of it.
TMPFS_BYTES = 24 * MiB
LEFT_FREE = 300 * 1024
VALUE = bytes(60 * 1024)  # one 60 KB record per batch, as in the probe


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of TMPFS_BYTES mounted on a fresh directory, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _produce(cluster: RunningCluster, topic: str, label: str) -> tuple[int, int]:
    """One acks=all batch carrying ``label``; (error code, base offset)."""
    with wire(cluster) as client:
        answer = produce_raw(client, topic, 0, build_batch([label.encode() + VALUE]))
    return answer.error_code, answer.base_offset


def _values(cluster: RunningCluster, topic: str) -> dict[int, str]:
    """offset → label of every record up to the high watermark (Fetch checks each batch's CRC)."""
    return {r.offset: bytes(r.value[: -len(VALUE)]).decode() for r in read_partition(cluster, topic, 0)}


def test_a_full_disk_refuses_writes_then_loses_nothing_acknowledged(tmpfs: Path) -> None:
    yaml = "cluster: {name: full}\nnodes:\n  - {id: 1}\nbroker:\n  num.partitions: 1\n"
    with start_cluster(yaml, tmpfs) as cluster:
        topic = "full"
        create_topic(cluster, topic, partitions=1)
        acked: dict[int, str] = {}
        for i in range(3):
            code, offset = _produce(cluster, topic, f"before-{i}")
            assert code == 0
            acked[offset] = f"before-{i}"

        ballast = tmpfs / "ballast"
        free = os.statvfs(tmpfs).f_bavail * os.statvfs(tmpfs).f_frsize
        ballast.write_bytes(bytes(max(free - LEFT_FREE, 0)))
        refused = 0
        for i in range(12):  # ~720 KB into ~300 KB: the disk fills part way
            code, offset = _produce(cluster, topic, f"during-{i}")
            if code == 0:
                acked[offset] = f"during-{i}"
            else:
                assert code == KAFKA_STORAGE_ERROR
                refused += 1
        assert refused, "the disk never filled"
        assert _values(cluster, topic) == acked  # reads are served while the disk is full

        ballast.unlink()
        for i in range(3):
            code, offset = _produce(cluster, topic, f"after-{i}")
            assert code == 0
            assert offset not in acked, "an acknowledged offset was given out again"
            acked[offset] = f"after-{i}"
        assert _values(cluster, topic) == acked

        cluster.kill(1, "KILL")
        cluster.restart(1)
        found = _values(cluster, topic)
        missing = sorted(set(acked) - set(found))
        assert found == acked, f"lost {missing}"
        print(json.dumps({"test": "disk-full", "acked": len(acked), "refused_with_56": refused,
                          "found_after_kill_9": len(found), "lost": len(missing)}))


def test_metadata_writes_on_a_full_disk_are_refused_with_error_codes_and_commit_nothing(tmpfs: Path) -> None:
    """Probe §3.1: __consumer_offsets created while the disk was full once damaged the metadata
    log, and the next restart deleted every offsets partition."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    from integration_helpers import admin
    from pykafka_ops.protocol.api_keys import ApiKey

    yaml = "cluster: {name: full}\nnodes:\n  - {id: 1}\nbroker:\n  offsets.topic.num.partitions: 3\n"
    with start_cluster(yaml, tmpfs) as cluster:
        client = admin(cluster)  # keep a reference: a collected AdminClient cancels its futures
        ballast = tmpfs / "ballast"
        ballast.write_bytes(bytes(os.statvfs(tmpfs).f_bavail * os.statvfs(tmpfs).f_frsize))
        created, refused = [], None
        for i in range(200):  # small appends fit in the last page of the metadata log for a while
            name = f"t{i}"
            try:
                client.create_topics([NewTopic(name, 1, 1)], request_timeout=10)[name].result(timeout=15)
            except KafkaException as exc:
                assert exc.args[0].code() == KAFKA_STORAGE_ERROR, exc
                refused = name
                break
            created.append(name)
        assert refused is not None, "the metadata log never ran out of space"
        with wire(cluster) as raw:
            answer = raw.request(ApiKey.FIND_COORDINATOR, 3, {"key": "g", "key_type": 0})
            assert answer.error_code == 15  # COORDINATOR_NOT_AVAILABLE: __consumer_offsets cannot be made

        ballast.unlink()
        with wire(cluster) as raw:
            assert raw.request(ApiKey.FIND_COORDINATOR, 3, {"key": "g", "key_type": 0}).error_code == 0
        cluster.kill(1, "KILL")
        cluster.restart(1)
        topics = admin(cluster).list_topics(timeout=10).topics
        assert set(created) <= set(topics) and refused not in topics
        assert len(topics["__consumer_offsets"].partitions) == 3
        print(json.dumps({"test": "metadata-disk-full", "topics_created_while_full": len(created),
                          "refused_with_56": refused, "offsets_partitions_after_kill_9": 3}))


def test_a_broker_that_cannot_create_partition_dirs_catches_up_once_it_can(tmp_path: Path) -> None:
    """Item 4: the metadata is committed, but this broker cannot create the partitions' files (no
    inodes left); it keeps serving, says so, and creates them as soon as it can."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "inodes"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,nr_inodes=600", "tmpfs", str(mount)], check=True)
    try:
        yaml = "cluster: {name: inodes}\nnodes:\n  - {id: 1}\n"
        with start_cluster(yaml, mount) as cluster:
            ballast = mount / "ballast"
            ballast.mkdir()
            count = 0
            try:
                while True:  # take every inode left
                    (ballast / str(count)).touch()
                    count += 1
            except OSError:
                pass
            for i in range(12):  # room for two partitions (a directory and three files each) and a little
                (ballast / str(i)).unlink()
            create_topic(cluster, "wide", partitions=10)  # committed; most directories cannot be made
            from integration_helpers import node_log, wait_until

            wait_until(lambda: "cannot apply metadata" in node_log(cluster), 10, "the broker to report it")
            for i in range(12, count):
                (ballast / str(i)).unlink()
            wait_until(lambda: "applied on this broker" in node_log(cluster), 10, "the broker to catch up")
            with wire(cluster) as client:
                answers = [produce_raw(client, "wide", p, build_batch([b"x"])).error_code for p in range(10)]
            assert answers == [0] * 10, node_log(cluster)[-3000:]
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
