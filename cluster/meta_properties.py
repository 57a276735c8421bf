"""A data dir's identity: Kafka's ``meta.properties`` and the launcher's storage format step.

Every node dir holds ``meta.properties`` in Kafka's KRaft format (``version=1``, ``node.id``,
``cluster.id``) plus our ``pko.storage.format.version``. ``format_storage`` is Kafka's
``kafka-storage format``, run by ``pko cluster up`` before the nodes start: the cluster id is chosen
once, for a new cluster, and written to every node dir; a cluster started again keeps the id its
dirs already hold. A node checks its dir at start (``check_meta_properties``) and refuses, with one
line, a dir of another node, another cluster (its metadata log names another id) or another
storage format. A data dir from before formatting (the cluster id only in its metadata log, and
``meta.properties`` without ``cluster.id`` or absent) is migrated by the node itself, which writes
the id once it has replayed its metadata log.

Every log dir of ``nodes[].log_dirs`` (Kafka's ``log.dirs``, JBOD) is formatted the same way, with a
``directory.id`` of its own (KIP-858: a random Uuid naming the dir); the node dir keeps today's
format unless it is one of them. ``storage_dirs`` lists what a node formats and checks.

Writes are atomic (temp file, fsync, rename, fsync of the dir): a crash leaves the old file or the
new one, never half of one.
"""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from cluster.controller.quorum import METADATA_TOPIC
from pykafka_ops.config.cluster import ClusterConfig
from pykafka_ops.state import STORAGE_FORMAT_VERSION

__all__ = [
    "META_PROPERTIES", "MetaProperties", "StorageFormatError", "check_meta_properties", "check_storage_dirs",
    "format_storage", "new_cluster_id", "read_meta_properties", "record_cluster_id", "storage_dirs",
    "write_meta_properties",
]

META_PROPERTIES = "meta.properties"
#: Kafka's meta.properties version for KRaft data dirs (0 was ZooKeeper mode).
META_PROPERTIES_VERSION = 1
#: The raft snapshot files of the metadata log (``cluster.raft.disk_snapshots.SNAPSHOT_SUFFIX``).
_SNAPSHOT_SUFFIX = ".checkpoint"


class StorageFormatError(RuntimeError):
    """A data dir written by an incompatible version, or that belongs to another node or cluster."""


@dataclass(frozen=True)
class MetaProperties:
    """What a node dir's ``meta.properties`` says."""

    node_id: int
    cluster_id: str = ""
    """Empty while not known: a data dir from before formatting, not migrated yet."""
    storage_format_version: int | None = STORAGE_FORMAT_VERSION
    """``pko.storage.format.version``; None in a file that pko did not write."""
    directory_id: str = ""
    """KIP-858's ``directory.id`` of a log dir ("" in a node dir that is not one of its log dirs)."""

    def to_text(self) -> str:
        """The file's content, Kafka's keys first."""
        lines = ["# written by pko", f"version={META_PROPERTIES_VERSION}", f"node.id={self.node_id}"]
        if self.cluster_id:
            lines.append(f"cluster.id={self.cluster_id}")
        if self.directory_id:
            lines.append(f"directory.id={self.directory_id}")
        if self.storage_format_version is not None:
            lines.append(f"pko.storage.format.version={self.storage_format_version}")
        return "\n".join(lines) + "\n"


def new_cluster_id() -> str:
    """Kafka's cluster id format: a random UUID, URL-safe base64 without padding (22 chars)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def read_meta_properties(data_dir: Path) -> MetaProperties | None:
    """``data_dir``'s meta.properties, or None when it has none; StorageFormatError if unreadable."""
    path = data_dir / META_PROPERTIES
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageFormatError(f"{path}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#"))
    props = {key.strip(): value.strip() for key, value in pairs}
    if props.get("version") != str(META_PROPERTIES_VERSION):
        raise StorageFormatError(f"{path}: version={props.get('version', '')} is not a KRaft data dir's "
                                 f"(version={META_PROPERTIES_VERSION})")
    return MetaProperties(_int(path, props, "node.id"), props.get("cluster.id", ""),
                          _int(path, props, "pko.storage.format.version") if "pko.storage.format.version" in props
                          else None, props.get("directory.id", ""))


def write_meta_properties(data_dir: Path, props: MetaProperties) -> None:
    """Write ``props`` to ``data_dir``'s meta.properties atomically (creating the dir); OSError."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / META_PROPERTIES
    tmp = path.with_name(META_PROPERTIES + ".tmp")
    with tmp.open("w") as handle:
        handle.write(props.to_text())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def check_meta_properties(data_dir: Path, found: MetaProperties | None, node_id: int, log_cluster_id: str) -> None:
    """Refuse (StorageFormatError, one line) a dir of another storage format, another node, or whose
    meta.properties names another cluster than its metadata log (``log_cluster_id``, "" if none)."""
    if found is None:
        return
    if found.storage_format_version != STORAGE_FORMAT_VERSION:
        raise StorageFormatError(
            f"{data_dir} uses storage format {found.storage_format_version or '(none)'}, this pko uses "
            f"{STORAGE_FORMAT_VERSION}: use a new data_dir or `pko cluster down --purge`")
    if found.node_id != node_id:
        raise StorageFormatError(f"{data_dir} belongs to node {found.node_id}, not to node {node_id} "
                                 f"(node.id in its {META_PROPERTIES})")
    if found.cluster_id and log_cluster_id and found.cluster_id != log_cluster_id:
        raise StorageFormatError(f"{data_dir} belongs to cluster {found.cluster_id} ({META_PROPERTIES}), "
                                 f"but its metadata log to cluster {log_cluster_id}")


def storage_dirs(config: ClusterConfig, node_id: int) -> list[tuple[Path, bool]]:
    """(dir, is a log dir of ``nodes[].log_dirs``) of node ``node_id``: its node dir first."""
    node_dir, log_dirs = config.node_dir(node_id), config.node(node_id).log_dirs
    return [(node_dir, node_dir in log_dirs)] + [(path, True) for path in log_dirs if path != node_dir]


def record_cluster_id(config: ClusterConfig, node_id: int, cluster_id: str) -> None:
    """Write ``cluster_id`` to the meta.properties of every dir of the node that names no cluster
    (a node migrating a data dir from before formatting), keeping each dir's directory id."""
    for path, is_log_dir in storage_dirs(config, node_id):
        found = read_meta_properties(path)
        if found is None or not found.cluster_id:
            write_meta_properties(path, MetaProperties(node_id, cluster_id,
                                                       directory_id=_directory_id(found, is_log_dir)))


def check_storage_dirs(config: ClusterConfig, node_id: int, log_cluster_id: str) -> MetaProperties | None:
    """``check_meta_properties`` on every dir of the node; returns its node dir's meta.properties."""
    node_props = None
    for path, _is_log_dir in storage_dirs(config, node_id):
        found = read_meta_properties(path)
        check_meta_properties(path, found, node_id, log_cluster_id)
        if path == config.node_dir(node_id):
            node_props = found
    return node_props


def format_storage(config: ClusterConfig) -> str:
    """Kafka's ``kafka-storage format`` for a cluster about to start: its cluster id.

    The id the node dirs' meta.properties hold (StorageFormatError if they disagree, or if one
    belongs to another node or storage format); else, for a new cluster, a new id. It is written
    to every node dir and log dir without one (created as needed), with a new directory id in each
    log dir. Returns "" and writes nothing when a node dir from before formatting (a metadata log,
    no ``cluster.id``) is the only place the id is known: that node writes it once it has replayed
    its log (``record_cluster_id``)."""
    found: dict[Path, tuple[int, bool, MetaProperties | None]] = {}
    for node in config.nodes:
        for path, is_log_dir in storage_dirs(config, node.id):
            props = read_meta_properties(path)
            check_meta_properties(path, props, node.id, "")
            found[path] = (node.id, is_log_dir, props)
    owners = {path: props.cluster_id for path, (_n, _l, props) in found.items() if props and props.cluster_id}
    if len(set(owners.values())) > 1:
        raise StorageFormatError("the node dirs belong to different clusters: " + ", ".join(
            f"{path} to {cluster_id}" for path, cluster_id in sorted(owners.items())))
    unformatted = [path for path in found if path not in owners]
    if owners:
        cluster_id = next(iter(owners.values()))
    elif any(_has_metadata_log(config.node_dir(node.id)) for node in config.nodes
             if config.node_dir(node.id) in unformatted):
        return ""
    else:
        cluster_id = new_cluster_id()
    for path in unformatted:
        node_id, is_log_dir, props = found[path]
        try:
            write_meta_properties(path, MetaProperties(node_id, cluster_id,
                                                       directory_id=_directory_id(props, is_log_dir)))
        except OSError as exc:
            raise StorageFormatError(f"cannot format {path}: {exc.strerror or exc}") from None
    return cluster_id


def _directory_id(found: MetaProperties | None, is_log_dir: bool) -> str:
    """The directory id a dir keeps (its own), or gets: a new random one (Kafka's Uuid format, as
    the cluster id) for a log dir, none for a node dir that is not a log dir."""
    if found is not None and found.directory_id:
        return found.directory_id
    return new_cluster_id() if is_log_dir else ""


def _has_metadata_log(node_dir: Path) -> bool:
    """Whether ``node_dir`` holds metadata records (a segment with bytes, or a snapshot)."""
    log_dir = node_dir / f"{METADATA_TOPIC}-0"
    try:
        return any((path.suffix == ".log" and path.stat().st_size > 0) or path.name.endswith(_SNAPSHOT_SUFFIX)
                   for path in log_dir.iterdir())
    except OSError:  # no such dir, or one the node itself will fail to read, naming it
        return False


def _int(path: Path, props: dict[str, str], key: str) -> int:
    try:
        return int(props[key])
    except KeyError:
        raise StorageFormatError(f"{path}: {key} is missing") from None
    except ValueError:
        raise StorageFormatError(f"{path}: {key}={props[key]} is not a number") from None
