"""A data dir written before the Raft quorum starts under it without loss (issue "KRaft quorum" item 4).

``tests/fixtures/upgrade/node-1-624da2b.tar.gz`` is node 1's data dir as commit 624da2b's node left
it after a clean stop (single-voter metadata log of JSON records, epoch 1): topic ``orders`` with 3
partitions and retention.ms=86400000, 30 records produced by an idempotent confluent-kafka producer
(``order-<i>`` to partition i % 3), and group ``billing`` with committed offsets 7 (partition 0) and
3 (partition 1). Today's node opens it as a Raft log, keeps every record, offset and setting, takes a
new leader epoch, accepts metadata writes, and does so again after a restart.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from integration_helpers import create_topic, read_partition, wire

from cluster.pytest_plugin import RunningCluster, start_cluster
from pykafka_ops.protocol.api_keys import ApiKey

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "upgrade" / "node-1-624da2b.tar.gz"
YAML = "cluster: {name: upgraded}\nnodes:\n  - {id: 1}\n"


def _orders(cluster: RunningCluster) -> dict[int, list[bytes]]:
    return {p: [bytes(r.value) for r in read_partition(cluster, "orders", p)] for p in range(3)}


def _committed(cluster: RunningCluster) -> dict[int, int]:
    with wire(cluster) as client:
        answer = client.request(ApiKey.OFFSET_FETCH, 7, {"group_id": "billing", "topics": None})
    return {p.partition_index: p.committed_offset for t in answer.topics if t.name == "orders" for p in t.partitions}


def _retention(cluster: RunningCluster) -> str:
    with wire(cluster) as client:
        answer = client.request(ApiKey.DESCRIBE_CONFIGS, 4, {"resources": [
            {"resource_type": 2, "resource_name": "orders", "configuration_keys": ["retention.ms"]}],
            "include_synonyms": False, "include_documentation": False})
    return answer.results[0].configs[0].value


def _leader_epoch(cluster: RunningCluster) -> int:
    with wire(cluster) as client:
        answer = client.request(ApiKey.DESCRIBE_QUORUM, 1, {"topics": [
            {"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]})
    return answer.topics[0].partitions[0].leader_epoch


def test_a_data_dir_of_the_single_voter_quorum_starts_without_loss(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(data, filter="data")
    expected = {p: [f"order-{i}".encode() for i in range(30) if i % 3 == p] for p in range(3)}
    with start_cluster(YAML, tmp_path) as cluster:
        assert _orders(cluster) == expected
        assert _committed(cluster) == {0: 7, 1: 3}
        assert _retention(cluster) == "86400000"
        assert _leader_epoch(cluster) >= 2  # the old log was epoch 1; this node took a new epoch
        create_topic(cluster, "after-upgrade", partitions=2)
        cluster.restart(1)
        assert _orders(cluster) == expected
        assert _committed(cluster) == {0: 7, 1: 3}
        with wire(cluster) as client:
            names = {t.name for t in client.request(ApiKey.METADATA, 12, {
                "topics": None, "allow_auto_topic_creation": False,
                "include_topic_authorized_operations": False}).topics}
        assert {"orders", "after-upgrade"} <= names


def test_a_record_of_an_unknown_type_stops_the_start_with_one_line(tmp_path: Path) -> None:
    """A metadata record from a newer version is not skipped: the node refuses to start, naming it."""
    from cluster.controller.quorum import METADATA_LOG_CONFIG, METADATA_TOPIC
    from cluster.launcher import LauncherError
    from cluster.log.manager import LogManager
    from cluster.raft.batches import encode_entries
    from cluster.raft.log import Entry
    from pykafka_ops.config.settings import broker_defaults, topic_defaults

    data = tmp_path / "data"
    data.mkdir()
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(data, filter="data")
    manager = LogManager(data / "node-1", 86_400_000)
    manager.startup()
    metadata_log = manager.get_or_create(METADATA_TOPIC, 0, topic_defaults(broker_defaults()) | METADATA_LOG_CONFIG)
    future = Entry(metadata_log.log_end_offset, 1, b'{"type": "FutureRecord", "version": 0}')
    metadata_log.append_as_follower(memoryview(bytearray(encode_entries([future], 0))), 0)
    manager.shutdown()
    with pytest.raises(LauncherError) as refused:
        start_cluster(YAML, tmp_path, wait_s=20)
    assert (f"node 1 cannot start: metadata record at offset {future.offset} has type 'FutureRecord', "
            "which this pko does not know") in str(refused.value)
