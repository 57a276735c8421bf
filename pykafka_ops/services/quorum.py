"""The metadata quorum as operators see it: `pko cluster quorum` and `pko cluster metadata`.

``describe_status`` / ``describe_replication`` are ``kafka-metadata-quorum describe --status`` /
``--replication``: one DescribeQuorum through any bootstrap server (our wire client, so Apache
Kafka answers it too), then the tool's arithmetic — MaxFollowerLag is the leader's log end offset
minus the smallest voter's, MaxFollowerLagTimeMs the difference of their last caught-up times (0
when the leader itself is the furthest behind, -1 when a time is unknown), and each row's Lag is
measured from the leader's log end offset.

``read_node_metadata`` is in the spirit of ``kafka-metadata-shell``: a node's metadata image rebuilt
offline from the ``__cluster_metadata-0`` segments in its data dir (``MetadataImage.apply_all``).
Read-only: files are opened for reading, nothing is locked, written or recovered, so it works
while the node runs (a batch being appended is not whole yet and is left out) and after it
stopped or crashed (a torn tail ends the log there, as the node's own recovery would cut it).
Control batches (the LeaderChangeMessage a Raft leader appends) carry no metadata and are skipped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pykafka_ops.client.connection import ClientSettings
from pykafka_ops.client.quorum_requests import (
    QuorumInfo,
    ReplicaState,
    describe_metadata_quorum,
)

if TYPE_CHECKING:
    from cluster.controller.metadata_image import MetadataImage
    from pykafka_ops.config.cluster import ClusterConfig

#: The metadata log's directory in a node's data dir (Kafka's ``__cluster_metadata-0``).
METADATA_LOG_DIR = "__cluster_metadata-0"


class MetadataLogError(Exception):
    """A node's metadata log is missing or cannot be replayed (the message says where)."""


@dataclass(frozen=True)
class QuorumMember:
    """A voter or observer as `--status` lists it: id, directory id (None when unknown), endpoints."""

    id: int
    directory_id: str | None
    endpoints: tuple[str, ...]

    def kafka_text(self) -> str:
        """``kafka-metadata-quorum``'s form: ``{"id": 1, "directoryId": "…", "endpoints": ["C://h:p"]}``."""
        text = f'{{"id": {self.id}'
        if self.directory_id:
            text += f', "directoryId": "{self.directory_id}"'
        if self.endpoints:
            text += ', "endpoints": [' + ", ".join(f'"{e}"' for e in self.endpoints) + "]"
        return text + "}"


@dataclass(frozen=True)
class QuorumStatus:
    """``kafka-metadata-quorum describe --status``."""

    cluster_id: str | None
    leader_id: int
    leader_epoch: int
    high_watermark: int
    max_follower_lag: int
    max_follower_lag_time_ms: int
    current_voters: tuple[QuorumMember, ...]
    current_observers: tuple[QuorumMember, ...]


@dataclass(frozen=True)
class ReplicationRow:
    """One row of ``kafka-metadata-quorum describe --replication`` (timestamps -1 when unknown)."""

    node_id: int
    directory_id: str | None
    log_end_offset: int
    lag: int
    last_fetch_timestamp: int
    last_caught_up_timestamp: int
    status: str
    """``Leader``, ``Follower`` or ``Observer``."""


def _checked(settings: ClientSettings) -> QuorumInfo:
    from pykafka_ops.client.wire import WireError

    protocol = settings.properties.get("security.protocol", "plaintext").lower()
    if protocol != "plaintext":
        raise ValueError(f"pko cluster quorum needs a plaintext listener (security.protocol={protocol})")
    if not settings.any_server_accepts():
        raise settings.unreachable("connection refused or no route to host")
    try:
        return describe_metadata_quorum(settings.bootstrap_servers, settings.timeout_s)
    except WireError as exc:
        raise settings.unreachable(exc) from None


async def describe_quorum(settings: ClientSettings) -> QuorumInfo:
    """DescribeQuorum (and the cluster id) through any bootstrap server."""
    return await asyncio.to_thread(_checked, settings)


def _leader(info: QuorumInfo) -> ReplicaState | None:
    return next((v for v in info.voters if v.replica_id == info.leader_id), None)


def _members(info: QuorumInfo, replicas: tuple[ReplicaState, ...]) -> tuple[QuorumMember, ...]:
    endpoints = {n.node_id: n.endpoints for n in info.nodes}
    return tuple(QuorumMember(r.replica_id, r.replica_directory_id, endpoints.get(r.replica_id, ()))
                 for r in replicas)


def status_of(info: QuorumInfo) -> QuorumStatus:
    """The `--status` summary of a DescribeQuorum answer (``handleDescribeStatus``)."""
    leader = _leader(info)
    lag, lag_time = -1, -1
    if leader is not None and info.voters:
        furthest = info.voters[0]
        for voter in info.voters[1:]:  # the first of the smallest, as Stream.min keeps it
            if voter.log_end_offset < furthest.log_end_offset:
                furthest = voter
        lag = leader.log_end_offset - furthest.log_end_offset
        if furthest is leader:
            lag_time = 0
        elif leader.last_caught_up_timestamp is not None and furthest.last_caught_up_timestamp is not None:
            lag_time = leader.last_caught_up_timestamp - furthest.last_caught_up_timestamp
    return QuorumStatus(info.cluster_id, info.leader_id, info.leader_epoch, info.high_watermark, lag, lag_time,
                        _members(info, info.voters), _members(info, info.observers))


def replication_of(info: QuorumInfo) -> list[ReplicationRow]:
    """The `--replication` rows: the leader, then the other voters, then the observers."""
    leader = _leader(info)
    leader_end = leader.log_end_offset if leader is not None else info.high_watermark

    def row(replica: ReplicaState, status: str) -> ReplicationRow:
        def ms(value: int | None) -> int:
            return -1 if value is None else value

        return ReplicationRow(replica.replica_id, replica.replica_directory_id, replica.log_end_offset,
                              leader_end - replica.log_end_offset, ms(replica.last_fetch_timestamp),
                              ms(replica.last_caught_up_timestamp), status)

    rows = [row(leader, "Leader")] if leader is not None else []
    rows += [row(v, "Follower") for v in info.voters if v is not leader]
    rows += [row(o, "Observer") for o in info.observers]
    return rows


async def describe_status(settings: ClientSettings) -> QuorumStatus:
    """``kafka-metadata-quorum describe --status``."""
    return status_of(await describe_quorum(settings))


async def describe_replication(settings: ClientSettings) -> list[ReplicationRow]:
    """``kafka-metadata-quorum describe --replication``."""
    return replication_of(await describe_quorum(settings))


# -- a node's committed metadata, offline ----------------------------------------------------


@dataclass(frozen=True)
class NodeMetadata:
    """A node's metadata image as its log holds it, and where that log is."""

    node_id: int
    log_dir: Path
    image: MetadataImage
    records: int
    """Metadata records replayed."""


def _segments(directory: Path) -> list[Path]:
    return sorted((p for p in directory.glob("*.log") if p.stem.isdigit()), key=lambda p: int(p.stem))


def metadata_records(directory: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(offset, record) of every whole, intact metadata record in the log at ``directory``, in order.

    A batch with a bad CRC or a header that does not parse ends the log (a torn tail); a batch
    still being written is not whole and is left out; control batches are skipped.
    """
    from cluster.controller.records import decode_batches
    from pykafka_ops.records.batch import CorruptRecordError, crc_ok, iter_batches

    for segment in _segments(directory):
        try:
            data = segment.read_bytes()
        except FileNotFoundError:  # deleted between listing and reading (retention, a roll)
            continue
        try:
            for position, header in iter_batches(data):
                if not crc_ok(data, position, header):
                    return
                if not header.is_control:
                    yield from decode_batches(data[position : position + header.size])
        except CorruptRecordError:
            return


def latest_snapshot(directory: Path) -> tuple[int, Path] | None:
    """(end offset, path) of the newest ``<offset>-<epoch>.checkpoint`` snapshot, if any."""
    found = [(int(p.name.split("-", 1)[0]), p) for p in directory.glob("*.checkpoint")
             if p.name.split("-", 1)[0].isdigit()]
    return max(found) if found else None


def read_node_metadata(config: ClusterConfig, node_id: int) -> NodeMetadata:
    """Node ``node_id``'s metadata image — its latest snapshot, then the log after it — replayed
    from its data dir without touching it."""
    from cluster.controller.metadata_image import MetadataImage
    from cluster.controller.metadata_snapshot import decode_snapshot

    directory = config.node_dir(node_id) / METADATA_LOG_DIR
    if not directory.is_dir():
        raise MetadataLogError(f"node {node_id} has no metadata log at {directory} (has it ever started?)")
    count = 0
    offset = -1
    snapshot = latest_snapshot(directory)  # KIP-630: the image up to its offset, the log after it
    start = snapshot[0] if snapshot is not None else 0

    def counted() -> Iterator[tuple[int, Mapping[str, Any]]]:
        nonlocal count, offset
        for offset, record in metadata_records(directory):
            if offset >= start:
                count += 1
                yield offset, record

    try:
        base = decode_snapshot(snapshot[1].read_bytes(), start) if snapshot is not None else MetadataImage()
        image = base.apply_all(counted())
    except (KeyError, TypeError, ValueError) as exc:
        reason = ("a record that is not JSON" if isinstance(exc, json.JSONDecodeError)
                  else f"{type(exc).__name__}: {exc}")
        raise MetadataLogError(f"cannot replay the metadata log of node {node_id} ({directory}) after offset "
                               f"{offset}: {reason}") from None
    return NodeMetadata(node_id, directory, image, count)
