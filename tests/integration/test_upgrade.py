"""Data dirs written by earlier versions start under today's code without loss.

Each fixture in ``tests/fixtures/upgrade`` is node 1's data dir as an earlier commit's single node
left it after a clean stop (SIGTERM); the tests run on each:

``node-1-624da2b.tar.gz`` (before the Raft quorum, issue "KRaft quorum" item 4): single-voter
metadata log of JSON records, epoch 1; topic ``orders`` with 3 partitions and retention.ms=86400000,
30 records produced by an idempotent confluent-kafka producer (``order-<i>`` to partition i % 3),
and group ``billing`` with committed offsets 7 (partition 0) and 3 (partition 1).

``node-1-4eeeca0.tar.gz`` (``main`` before multi-node clusters, issue 14 "a single-node data dir
written by today's main starts and keeps its data"): written by commit 4eeeca0 (run from a git
worktree of it, with its record-walk extension built) with
``metadata.log.max.record.bytes.between.snapshots: 4000``, so that its metadata log holds a Raft
snapshot (``00000000000000000062-0000000001.checkpoint``) and records after it. The same
``orders`` and ``billing`` as above; then, after the snapshot, topic ``refunds`` (2 partitions,
cleanup.policy=compact) with 6 records ``refund-<i>`` keyed ``r<i % 3>`` to partition i % 2 from a
second idempotent producer (producer ids 0 and 1), and group ``audit`` with committed offset 2 on
``refunds`` partition 1.

Today's node opens either as a Raft log, keeps every topic, record, committed offset and setting,
takes a new leader epoch, hands out producer ids above the ones already used, accepts metadata
writes, and does so again after a restart. Its meta.properties names the cluster of its metadata
log; one without ``cluster.id``, or none at all (a dir from before storage formatting, issue 14
item 1), is given it on that first start.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from integration_helpers import create_topic, init_producer_id, read_partition, wire

from cluster.meta_properties import MetaProperties, read_meta_properties
from cluster.pytest_plugin import RunningCluster, start_cluster
from pykafka_ops.protocol.api_keys import ApiKey
from pykafka_ops.records.batch import iter_batches

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "upgrade"
YAML = "cluster: {name: upgraded}\nnodes:\n  - {id: 1}\n"


@dataclass(frozen=True)
class Fixture:
    """What one fixture's data dir holds."""

    commit: str
    cluster_id: str
    """The cluster id in its metadata log (its ClusterRecord)."""
    topics: dict[str, dict[int, list[bytes]]]
    """Every user topic: partition -> record values, in offset order."""
    committed: dict[str, dict[tuple[str, int], int]]
    """Every group: (topic, partition) -> committed offset."""
    configs: dict[str, dict[str, str]] = field(default_factory=dict)
    """Topic configs set at creation."""
    log_epoch: int = 1
    """The leader epoch its metadata log ended in."""

    @property
    def path(self) -> Path:
        return FIXTURES_DIR / f"node-1-{self.commit}.tar.gz"


ORDERS = {p: [f"order-{i}".encode() for i in range(30) if i % 3 == p] for p in range(3)}
REFUNDS = {p: [f"refund-{i}".encode() for i in range(6) if i % 2 == p] for p in range(2)}
BILLING = {("orders", 0): 7, ("orders", 1): 3}
FIXTURES = [
    Fixture("624da2b", "OMtVAZCiQFSKTnva1WAz-w", {"orders": ORDERS}, {"billing": BILLING},
            {"orders": {"retention.ms": "86400000"}}),
    Fixture("4eeeca0", "GQP9zE-8RL-oFLAlQ0wV8g", {"orders": ORDERS, "refunds": REFUNDS},
            {"billing": BILLING, "audit": {("refunds", 1): 2}},
            {"orders": {"retention.ms": "86400000"}, "refunds": {"cleanup.policy": "compact"}}),
]


@pytest.fixture(params=FIXTURES, ids=[f.commit for f in FIXTURES])
def fixture(request: pytest.FixtureRequest) -> Fixture:
    return request.param


def _extract(tmp_path: Path, fixture: Fixture) -> Path:
    """The fixture as ``<tmp_path>/data/node-1``, the node dir of a cluster file in ``tmp_path``."""
    data = tmp_path / "data"
    data.mkdir()
    with tarfile.open(fixture.path) as tar:
        tar.extractall(data, filter="data")
    return data / "node-1"


def _producer_ids(node_dir: Path, fixture: Fixture) -> set[int]:
    """The producer ids of every batch of the fixture's user topics, read from its segment files."""
    ids = set()
    for topic, partitions in fixture.topics.items():
        for partition in partitions:
            for segment in (node_dir / f"{topic}-{partition}").glob("*.log"):
                data = segment.read_bytes()
                ids |= {header.producer_id for _pos, header in iter_batches(data)}
    return ids


def _records(cluster: RunningCluster, fixture: Fixture) -> dict[str, dict[int, list[bytes]]]:
    return {topic: {p: [bytes(r.value) for r in read_partition(cluster, topic, p)] for p in partitions}
            for topic, partitions in fixture.topics.items()}


def _orders(cluster: RunningCluster) -> dict[int, list[bytes]]:
    return {p: [bytes(r.value) for r in read_partition(cluster, "orders", p)] for p in range(3)}


def _committed(cluster: RunningCluster, group: str = "billing") -> dict[tuple[str, int], int]:
    with wire(cluster) as client:
        answer = client.request(ApiKey.OFFSET_FETCH, 7, {"group_id": group, "topics": None})
    assert answer.error_code == 0, answer
    return {(t.name, p.partition_index): p.committed_offset for t in answer.topics for p in t.partitions}


def _all_committed(cluster: RunningCluster, fixture: Fixture) -> dict[str, dict[tuple[str, int], int]]:
    return {group: _committed(cluster, group) for group in fixture.committed}


def _groups(cluster: RunningCluster) -> set[str]:
    with wire(cluster) as client:
        answer = client.request(ApiKey.LIST_GROUPS, 4, {"states_filter": []})
    assert answer.error_code == 0, answer
    return {g.group_id for g in answer.groups}


def _config(cluster: RunningCluster, topic: str, key: str) -> str:
    with wire(cluster) as client:
        answer = client.request(ApiKey.DESCRIBE_CONFIGS, 4, {"resources": [
            {"resource_type": 2, "resource_name": topic, "configuration_keys": [key]}],
            "include_synonyms": False, "include_documentation": False})
    return answer.results[0].configs[0].value


def _topics(cluster: RunningCluster) -> dict[str, int]:
    """Every topic Metadata v12 lists (internal ones too), with its partition count."""
    with wire(cluster) as client:
        answer = client.request(ApiKey.METADATA, 12, {
            "topics": None, "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})
    return {t.name: len(t.partitions) for t in answer.topics}


def _cluster_id(cluster: RunningCluster) -> str:
    with wire(cluster) as client:
        return client.request(ApiKey.DESCRIBE_CLUSTER, 0, {"include_cluster_authorized_operations": False}).cluster_id


def _leader_epoch(cluster: RunningCluster) -> int:
    with wire(cluster) as client:
        answer = client.request(ApiKey.DESCRIBE_QUORUM, 1, {"topics": [
            {"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]})
    return answer.topics[0].partitions[0].leader_epoch


def _assert_everything_kept(cluster: RunningCluster, fixture: Fixture) -> None:
    assert _records(cluster, fixture) == fixture.topics
    assert _all_committed(cluster, fixture) == fixture.committed
    topics = _topics(cluster)
    assert {name: topics.get(name) for name in fixture.topics} == {
        name: len(partitions) for name, partitions in fixture.topics.items()}
    for topic, configs in fixture.configs.items():
        assert {key: _config(cluster, topic, key) for key in configs} == configs


def test_a_data_dir_of_the_single_voter_quorum_starts_without_loss(tmp_path: Path, fixture: Fixture) -> None:
    node_dir = _extract(tmp_path, fixture)
    old_producer_ids = _producer_ids(node_dir, fixture)
    with start_cluster(YAML, tmp_path) as cluster:
        assert _orders(cluster) == ORDERS
        assert _committed(cluster) == BILLING
        assert _config(cluster, "orders", "retention.ms") == "86400000"
        _assert_everything_kept(cluster, fixture)
        assert set(fixture.committed) <= _groups(cluster)
        assert _leader_epoch(cluster) > fixture.log_epoch  # this node took a new epoch
        assert _cluster_id(cluster) == fixture.cluster_id
        assert read_meta_properties(node_dir) == MetaProperties(1, fixture.cluster_id)
        with wire(cluster) as client:  # an id already in the logs would mix up sequence state
            producer_id, _epoch = init_producer_id(client)
        assert producer_id > max(old_producer_ids), (producer_id, old_producer_ids)
        create_topic(cluster, "after-upgrade", partitions=2)
        cluster.restart(1)
        assert _orders(cluster) == ORDERS
        assert _committed(cluster) == BILLING
        _assert_everything_kept(cluster, fixture)
        assert {*fixture.topics, "after-upgrade"} <= set(_topics(cluster))
        with wire(cluster) as client:
            assert init_producer_id(client)[0] > producer_id


@pytest.mark.parametrize("meta_properties", ["without cluster.id", "absent"])
def test_a_data_dir_from_before_storage_formatting_is_migrated(tmp_path: Path, meta_properties: str,
                                                               fixture: Fixture) -> None:
    """The cluster id only in the metadata log: the launcher formats nothing, the node writes it."""
    node_dir = _extract(tmp_path, fixture)
    meta = node_dir / "meta.properties"
    if meta_properties == "absent":
        meta.unlink()
    else:
        meta.write_text("".join(line for line in meta.read_text().splitlines(keepends=True)
                                if not line.startswith("cluster.id=")))
    with start_cluster(YAML, tmp_path) as cluster:
        assert _cluster_id(cluster) == fixture.cluster_id
        assert read_meta_properties(node_dir) == MetaProperties(1, fixture.cluster_id)
        assert _orders(cluster)[0][:2] == [b"order-0", b"order-3"]
        cluster.restart(1)
        assert read_meta_properties(node_dir) == MetaProperties(1, fixture.cluster_id)
        _assert_everything_kept(cluster, fixture)


def test_a_record_of_an_unknown_type_stops_the_start_with_one_line(tmp_path: Path, fixture: Fixture) -> None:
    """A metadata record from a newer version is not skipped: the node refuses to start, naming it."""
    from cluster.controller.quorum import METADATA_LOG_CONFIG, METADATA_TOPIC
    from cluster.launcher import LauncherError
    from cluster.log.manager import LogManager
    from cluster.raft.batches import encode_entries
    from cluster.raft.log import Entry
    from pykafka_ops.config.settings import broker_defaults, topic_defaults

    manager = LogManager(_extract(tmp_path, fixture), 86_400_000)
    manager.startup()
    metadata_log = manager.get_or_create(METADATA_TOPIC, 0, topic_defaults(broker_defaults()) | METADATA_LOG_CONFIG)
    future = Entry(metadata_log.log_end_offset, fixture.log_epoch, b'{"type": "FutureRecord", "version": 0}')
    metadata_log.append_as_follower(memoryview(bytearray(encode_entries([future], 0))), 0)
    manager.shutdown()
    with pytest.raises(LauncherError) as refused:
        start_cluster(YAML, tmp_path, wait_s=20)
    assert (f"node 1 cannot start: metadata record at offset {future.offset} has type 'FutureRecord', "
            "which this pko does not know") in str(refused.value)
