"""meta.properties and storage formatting (issue 14 item 1): the cluster id is chosen once, by the
launcher, written to every node dir with its node id; dirs of another cluster, node or storage
format are refused with one line; dirs from before formatting are left to the node to migrate."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from cluster.meta_properties import (
    MetaProperties,
    StorageFormatError,
    check_meta_properties,
    format_storage,
    new_cluster_id,
    read_meta_properties,
    write_meta_properties,
)
from pykafka_ops.config.cluster import ClusterConfig, parse
from pykafka_ops.state import STORAGE_FORMAT_VERSION

THREE_NODES = """\
cluster: {name: fmt, data_dir: data}
nodes:
  - {id: 1, port: 9192, roles: [controller]}
  - {id: 2, port: 9193, roles: [controller]}
  - {id: 3, port: 9194, roles: [controller]}
"""


def _config(tmp_path: Path) -> ClusterConfig:
    return parse(THREE_NODES, tmp_path / "cluster.yaml", tmp_path)


def _meta(config: ClusterConfig, node_id: int) -> MetaProperties | None:
    return read_meta_properties(config.node_dir(node_id))


def _old_metadata_log(node_dir: Path) -> None:
    """A node dir as today's single node leaves it: records in its metadata log."""
    log_dir = node_dir / "__cluster_metadata-0"
    log_dir.mkdir(parents=True)
    (log_dir / "00000000000000000000.log").write_bytes(b"\0" * 80)


def test_new_cluster_ids_have_kafkas_format() -> None:
    ids = {new_cluster_id() for _ in range(100)}
    assert len(ids) == 100
    for cluster_id in ids:
        assert len(cluster_id) == 22 and "=" not in cluster_id
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_a_new_cluster_is_formatted_once(tmp_path: Path) -> None:
    config = _config(tmp_path)
    cluster_id = format_storage(config)
    assert len(cluster_id) == 22
    for node_id in (1, 2, 3):
        assert _meta(config, node_id) == MetaProperties(node_id, cluster_id, STORAGE_FORMAT_VERSION)
    assert (config.node_dir(2) / "meta.properties").read_text() == (
        f"# written by pko\nversion=1\nnode.id=2\ncluster.id={cluster_id}\n"
        f"pko.storage.format.version={STORAGE_FORMAT_VERSION}\n")
    assert not list(config.node_dir(1).glob("*.tmp"))
    assert format_storage(config) == cluster_id  # started again: the same cluster


def test_a_new_node_dir_joins_the_cluster_of_the_others(tmp_path: Path) -> None:
    config = _config(tmp_path)
    cluster_id = format_storage(config)
    (config.node_dir(3) / "meta.properties").unlink()  # a replaced disk
    assert format_storage(config) == cluster_id
    assert _meta(config, 3) == MetaProperties(3, cluster_id)


def test_node_dirs_of_different_clusters_are_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    cluster_id = format_storage(config)
    write_meta_properties(config.node_dir(3), MetaProperties(3, "another-cluster-id-xyz"))
    with pytest.raises(StorageFormatError) as refused:
        format_storage(config)
    assert str(refused.value) == (
        f"the node dirs belong to different clusters: {config.node_dir(1)} to {cluster_id}, "
        f"{config.node_dir(2)} to {cluster_id}, {config.node_dir(3)} to another-cluster-id-xyz")


def test_a_dir_of_another_node_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    write_meta_properties(config.node_dir(1), MetaProperties(2, "abc"))
    with pytest.raises(StorageFormatError) as refused:
        format_storage(config)
    assert str(refused.value) == (f"{config.node_dir(1)} belongs to node 2, not to node 1 "
                                  "(node.id in its meta.properties)")
    assert not config.node_dir(2).exists()  # nothing formatted


def test_a_dir_of_another_storage_format_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    write_meta_properties(config.node_dir(1), MetaProperties(1, "abc", STORAGE_FORMAT_VERSION + 1))
    with pytest.raises(StorageFormatError, match=(
            f"uses storage format {STORAGE_FORMAT_VERSION + 1}, this pko uses {STORAGE_FORMAT_VERSION}: "
            "use a new data_dir or `pko cluster down --purge`")):
        format_storage(config)


def test_a_dir_whose_metadata_log_names_another_cluster_is_refused(tmp_path: Path) -> None:
    found = MetaProperties(1, "copied-from-elsewhere")
    check_meta_properties(tmp_path, found, 1, "copied-from-elsewhere")
    check_meta_properties(tmp_path, found, 1, "")  # the log names none yet
    check_meta_properties(tmp_path, MetaProperties(1, ""), 1, "from-the-log")  # migrated on start
    check_meta_properties(tmp_path, None, 1, "from-the-log")
    with pytest.raises(StorageFormatError) as refused:
        check_meta_properties(tmp_path, found, 1, "from-the-log")
    assert str(refused.value) == (f"{tmp_path} belongs to cluster copied-from-elsewhere (meta.properties), "
                                  "but its metadata log to cluster from-the-log")


@pytest.mark.parametrize("meta_text", [None, "version=1\nnode.id=1\npko.storage.format.version=1\n",
                                       "version=1\nnode.id=1\ncluster.id=\npko.storage.format.version=1\n"])
def test_a_dir_from_before_formatting_is_left_to_the_node(tmp_path: Path, meta_text: str | None) -> None:
    """Today's single-node dir: the cluster id only in its metadata log; meta.properties without
    cluster.id, or none. The launcher cannot read the log: the node writes the id itself."""
    config = parse("cluster: {name: old, data_dir: data}\nnodes:\n  - {id: 1, port: 9092}\n", tmp_path / "c.yaml",
                   tmp_path)
    _old_metadata_log(config.node_dir(1))
    if meta_text is not None:
        (config.node_dir(1) / "meta.properties").write_text(meta_text)
    assert format_storage(config) == ""
    assert (config.node_dir(1) / "meta.properties").exists() == (meta_text is not None)
    if meta_text is not None:
        assert (config.node_dir(1) / "meta.properties").read_text() == meta_text


def test_a_dir_from_before_formatting_learns_the_id_of_the_others(tmp_path: Path) -> None:
    """When another node dir knows the id, it is written to the old one too: its node then
    compares it with its own metadata log at start."""
    config = _config(tmp_path)
    write_meta_properties(config.node_dir(1), MetaProperties(1, "known"))
    _old_metadata_log(config.node_dir(2))
    write_meta_properties(config.node_dir(2), MetaProperties(2, ""))
    assert format_storage(config) == "known"
    assert _meta(config, 2) == MetaProperties(2, "known")
    assert _meta(config, 3) == MetaProperties(3, "known")


def test_an_empty_metadata_log_is_a_new_cluster(tmp_path: Path) -> None:
    """A node that created its metadata log but wrote nothing in it names no cluster yet."""
    config = _config(tmp_path)
    (config.node_dir(1) / "__cluster_metadata-0").mkdir(parents=True)
    (config.node_dir(1) / "__cluster_metadata-0" / "00000000000000000000.log").touch()
    assert len(format_storage(config)) == 22


@pytest.mark.parametrize(("text", "reason"), [
    ("version=0\nnode.id=1\n", "version=0 is not a KRaft data dir's (version=1)"),
    ("node.id=1\n", "version= is not a KRaft data dir's (version=1)"),
    ("version=1\ncluster.id=x\n", "node.id is missing"),
    ("version=1\nnode.id=one\n", "node.id=one is not a number"),
    ("version=1\nnode.id=1\npko.storage.format.version=v2\n", "pko.storage.format.version=v2 is not a number"),
])
def test_a_meta_properties_that_cannot_be_used_is_one_line(tmp_path: Path, text: str, reason: str) -> None:
    (tmp_path / "meta.properties").write_text(text)
    with pytest.raises(StorageFormatError) as refused:
        read_meta_properties(tmp_path)
    assert str(refused.value) == f"{tmp_path / 'meta.properties'}: {reason}"


def test_kafkas_own_meta_properties_is_read(tmp_path: Path) -> None:
    """Written by Kafka (no pko storage format): read, then refused by the format check."""
    (tmp_path / "meta.properties").write_text(
        "#\n#Thu Jan 01 00:00:00 UTC 2026\nnode.id=1\ndirectory.id=abc\nversion=1\ncluster.id=MkU3OEVBNTcwNTJENDM2Qk\n")
    found = read_meta_properties(tmp_path)
    assert found == MetaProperties(1, "MkU3OEVBNTcwNTJENDM2Qk", None, directory_id="abc")  # KIP-858
    with pytest.raises(StorageFormatError, match=r"uses storage format \(none\), this pko uses"):
        check_meta_properties(tmp_path, found, 1, "")


def test_a_node_dir_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    config = _config(tmp_path)
    (config.node_dir(2) / "meta.properties.tmp").mkdir(parents=True)  # where the write would go
    with pytest.raises(StorageFormatError) as refused:
        format_storage(config)
    assert str(refused.value) == f"cannot format {config.node_dir(2)}: Is a directory"


JBOD = """\
cluster: {name: jbod, data_dir: data}
nodes:
  - {id: 1, port: 9192, log_dirs: [disk-a, disk-b]}
"""


def test_every_log_dir_is_formatted_with_a_directory_id_of_its_own(tmp_path: Path) -> None:
    """KIP-858: each log dir's meta.properties names the node, the cluster and a directory id; the
    node dir (the metadata log dir, not a log dir here) keeps today's format."""
    config = parse(JBOD, tmp_path / "cluster.yaml", tmp_path)
    cluster_id = format_storage(config)
    a, b = (read_meta_properties(path) for path in config.log_dirs(1))
    assert a is not None and b is not None and (a.node_id, a.cluster_id, b.cluster_id) == (1, cluster_id, cluster_id)
    assert len(a.directory_id) == 22 and a.directory_id != b.directory_id
    assert _meta(config, 1) == MetaProperties(1, cluster_id)
    assert format_storage(config) == cluster_id and read_meta_properties(config.log_dirs(1)[0]) == a  # kept


def test_a_log_dir_of_another_node_or_cluster_is_refused(tmp_path: Path) -> None:
    config = parse(JBOD, tmp_path / "cluster.yaml", tmp_path)
    disk_b = config.log_dirs(1)[1]
    write_meta_properties(disk_b, MetaProperties(2, "abc", directory_id="AAAAAAAAAAAAAAAAAAAAAA"))
    with pytest.raises(StorageFormatError, match=f"^{disk_b} belongs to node 2, not to node 1"):
        format_storage(config)
    write_meta_properties(disk_b, MetaProperties(1, "another-cluster"))
    write_meta_properties(config.node_dir(1), MetaProperties(1, "this-cluster"))
    with pytest.raises(StorageFormatError, match="belong to different clusters: .*disk-b to another-cluster"):
        format_storage(config)
