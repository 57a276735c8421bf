"""Broker: one node's broker (and, in combined mode, controller) — wiring and lifecycle.

Start-up order: check the data dir's format → open the metadata log and replay it into the
controller's image → register this broker (which publishes the image, opening every local
partition log, recovering after a crash) → create the YAML's topics → listen. Shutdown: stop
listening, close connections, then close logs cleanly (snapshots + clean-shutdown marker).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cluster.controller.controller import NewTopic, QuorumController
from cluster.controller.metadata_image import MetadataImage
from cluster.controller.quorum import (
    METADATA_LOG_CONFIG,
    METADATA_TOPIC,
)
from cluster.controller.raft_quorum import open_quorum
from cluster.group.coordinator import GroupCoordinator
from cluster.handlers import CONTROLLER, load_handlers
from cluster.handlers.metadata import warm_cache as warm_metadata_cache
from cluster.log.cleaner import LogCleaner
from cluster.log.manager import LogManager
from cluster.network.quotas import fd_connection_budget
from cluster.network.server import SocketServer
from cluster.producer_ids import ProducerIdManager
from cluster.replication.replica_manager import ReplicaManager
from pykafka_ops.config.cluster import ClusterConfig
from pykafka_ops.config.settings import topic_defaults
from pykafka_ops.state import STORAGE_FORMAT_VERSION

log = logging.getLogger(__name__)

META_PROPERTIES = "meta.properties"
MAINTENANCE_INTERVAL_S = 1.0
#: Longest run of metadata application (creating partition logs) between two event-loop turns.
APPLY_SLICE_S = 0.02


class StorageFormatError(RuntimeError):
    """The data dir was written by an incompatible version or belongs to another node."""


class Broker:
    """Everything one node runs; handlers reach it through ``RequestContext.broker``."""

    def __init__(self, cluster: ClusterConfig, node_id: int) -> None:
        node = cluster.node(node_id)
        self.node_id = node_id
        self.host = cluster.host
        self.port = node.port
        self.config: Mapping[str, Any] = cluster.broker
        self.cluster = cluster
        self.data_dir: Path = cluster.node_dir(node_id)
        # connections may take half of the fd limit; log files share the other half with the rest
        max_open_files = min(self.config["log.open.files.max"], max(16, fd_connection_budget() - 64))
        self.log_manager = LogManager(self.data_dir, self.config["producer.id.expiration.ms"], max_open_files)
        self.replica_manager = ReplicaManager(node_id, self.log_manager, self.config)
        self.group_coordinator = GroupCoordinator(self)
        self.log_cleaner = LogCleaner(self.log_manager)
        self.controller: QuorumController
        self.producer_ids: ProducerIdManager
        self.socket_server = SocketServer(self)
        self.controller_server = SocketServer(self, CONTROLLER)
        self.spec = node
        self._image_failure: str | None = None
        self._apply_lock = asyncio.Lock()
        self._applied_image: MetadataImage | None = None
        self._meta_cluster_id: str | None = None
        self._maintenance: asyncio.Task[None] | None = None

    @property
    def image(self) -> MetadataImage:
        """The current metadata image (the controller's own, in combined mode)."""
        return self.controller.image

    @property
    def controller_id(self) -> int:
        """The active controller's node id (-1 while there is none)."""
        return self.controller.quorum.node.leader_id

    async def start(self) -> None:
        """Open storage, replay metadata, register, create YAML topics and listen."""
        load_handlers()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_manager.startup()
        metadata_config = topic_defaults(self.config) | METADATA_LOG_CONFIG
        metadata_log = self.log_manager.get_or_create(METADATA_TOPIC, 0, metadata_config)
        quorum = open_quorum(self.cluster, self.node_id, metadata_log)
        self.controller = QuorumController(quorum, self.config, on_image=self._apply_image)
        self.controller.load()
        self._check_meta_properties(self.controller.image.cluster_id)
        self.producer_ids = ProducerIdManager(self.controller)
        if self.spec.is_controller and (len(self.cluster.voters) > 1 or not self.spec.is_broker):
            await self.controller_server.start(self.host, self.spec.quorum_port)
            quorum.on_leadership = self.controller.on_leadership
            if quorum.leading:  # a single voter leads from the start
                self.controller.on_leadership()
        if self.spec.is_broker:
            await self.controller.bootstrap(self.node_id, self.host, self.port)
            missing = [NewTopic(t.name, t.partitions, t.replication_factor, config=t.config)
                       for t in self.cluster.topics if t.name not in self.image.topics]
            if missing:
                await self.controller.create_topics(missing)
            await self.socket_server.start(self.host, self.port)
        self._write_meta_properties()
        self._maintenance = asyncio.create_task(self._run_maintenance())
        log.info("node %d (%s) serving on %s:%d (cluster id %s, %d partitions)", self.node_id,
                 "+".join(self.spec.roles), self.host, self.port, self.image.cluster_id or "not known yet",
                 len(self.replica_manager.partitions))

    async def stop(self) -> None:
        """Stop serving and close every log cleanly."""
        self.socket_server.stop()
        self.controller_server.stop()
        if self._maintenance is not None:
            self._maintenance.cancel()
            try:
                await self._maintenance
            except asyncio.CancelledError:
                pass
        self.group_coordinator.shutdown()
        self.controller.quorum.close()
        self.log_manager.shutdown()
        log.info("node %d stopped cleanly", self.node_id)

    async def _apply_image(self, image: MetadataImage) -> None:
        """A new metadata image: partitions first, then the coordinators that live on them.

        Applications run one at a time, each bringing the broker to the newest image, and pause
        every ``APPLY_SLICE_S`` so that requests are served while thousands of partition logs are
        created. The image is committed already; if this broker cannot apply it yet (a partition
        directory it cannot create, no file descriptors left), it says so once and the maintenance
        loop applies the newest image again every second until it can (both steps reconcile, so
        a partial application is finished, never repeated)."""
        async with self._apply_lock:
            image = self.image  # the newest: an older one queued behind the lock has nothing left to do
            if image is self._applied_image:
                return
            try:
                await _run_sliced(self.replica_manager.apply_image(image))
                self.group_coordinator.on_metadata_update(image)
                await _run_sliced(warm_metadata_cache(image))
            except Exception as exc:  # noqa: BLE001 - the broker must catch up, not stop
                reason = f"{type(exc).__name__}: {exc}"
                if reason != self._image_failure:
                    log.error("cannot apply metadata up to offset %d on this broker yet (%s); retrying every %g s",
                              image.offset, reason, MAINTENANCE_INTERVAL_S, exc_info=not isinstance(exc, OSError))
                self._image_failure = reason
                return
            self._applied_image = image
            if image.cluster_id != self._meta_cluster_id:  # a controller learns it from the quorum
                self._write_meta_properties()
            if self._image_failure is not None:
                log.info("metadata up to offset %d applied on this broker", image.offset)
            self._image_failure = None

    async def _run_maintenance(self) -> None:
        """Background duties: fsync rolled segments, flush policy, retention, producer expiry,
        committed-offset expiry, compaction (every log.cleaner.backoff.ms)."""
        retention_every_s = self.config["log.retention.check.interval.ms"] / 1000
        next_retention = time.monotonic() + retention_every_s
        offsets_every_s = self.config["offsets.retention.check.interval.ms"] / 1000
        next_offsets_expiry = time.monotonic() + offsets_every_s
        cleaner_every_s = self.config["log.cleaner.backoff.ms"] / 1000
        next_cleaning = time.monotonic() + cleaner_every_s
        while True:
            await asyncio.sleep(MAINTENANCE_INTERVAL_S)
            now_ms = int(time.time() * 1000)
            if self._image_failure is not None:
                await self._apply_image(self.image)
            try:
                await self.log_manager.flush(now_ms)
                if time.monotonic() >= next_retention:
                    next_retention = time.monotonic() + retention_every_s
                    deleted = self.log_manager.apply_retention(now_ms)
                    if deleted:
                        log.info("retention deleted %d segment(s)", deleted)
                    for partition_log in self.log_manager.logs.values():
                        partition_log.producer_state.remove_expired(now_ms)
                if time.monotonic() >= next_offsets_expiry:
                    next_offsets_expiry = time.monotonic() + offsets_every_s
                    self.group_coordinator.expire_offsets(now_ms)
                if time.monotonic() >= next_cleaning:
                    await self.log_cleaner.clean_logs(now_ms)
                    next_cleaning = time.monotonic() + cleaner_every_s
            except Exception:  # maintenance must never stop serving
                log.exception("log maintenance failed; retrying")

    # -- data dir identity --------------------------------------------------------------------

    def _read_meta_properties(self) -> dict[str, str]:
        path = self.data_dir / META_PROPERTIES
        if not path.exists():
            return {}
        pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
        return {k.strip(): v.strip() for k, v in pairs}

    def _check_meta_properties(self, cluster_id: str) -> None:
        props = self._read_meta_properties()
        if not props:
            return
        if props.get("pko.storage.format.version") != str(STORAGE_FORMAT_VERSION):
            raise StorageFormatError(
                f"{self.data_dir} uses storage format {props.get('pko.storage.format.version')}, "
                f"this pko uses {STORAGE_FORMAT_VERSION}: use a new data_dir or `pko cluster down --purge`")
        if props.get("node.id") != str(self.node_id):
            raise StorageFormatError(f"{self.data_dir} belongs to node {props.get('node.id')}, not {self.node_id}")
        if cluster_id and props.get("cluster.id") not in (None, "", cluster_id):
            raise StorageFormatError(f"{self.data_dir} belongs to cluster {props.get('cluster.id')}")

    def _write_meta_properties(self) -> None:
        """Kafka's meta.properties: node id, cluster id (once known) and our storage format."""
        self._meta_cluster_id = self.image.cluster_id
        text = (f"# written by pko\nversion=1\nnode.id={self.node_id}\ncluster.id={self.image.cluster_id}\n"
                f"pko.storage.format.version={STORAGE_FORMAT_VERSION}\n")
        (self.data_dir / META_PROPERTIES).write_text(text)


async def _run_sliced(steps: Iterator[None]) -> None:
    """Run a generator's steps, giving the event loop a turn every ``APPLY_SLICE_S``."""
    deadline = time.monotonic() + APPLY_SLICE_S
    for _ in steps:
        if time.monotonic() >= deadline:
            await asyncio.sleep(0)
            deadline = time.monotonic() + APPLY_SLICE_S
