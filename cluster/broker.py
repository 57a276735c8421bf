"""Broker: one node's broker (and controller, on a node with that role) — wiring and lifecycle.

Start-up order: the admin endpoint listens (``nodes[].admin_port``, if set) → check the data dir's
identity → open the metadata log and replay what it holds
as committed → join the quorum (a voter listens on its controller listener; a broker-only node
is an observer) → a broker registers with the active controller, catches up with the metadata
log and is unfenced (``BrokerLifecycleManager``) → only then does it open its client listener
and create the cluster file's topics. Shutdown: controlled shutdown (the controller moves this
broker's leadership away), stop listening, a quorum leader resigns (EndQuorumEpoch), close
connections, then close logs cleanly (snapshots + clean-shutdown marker).

Concurrency: everything runs on the node's one event loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cluster.admin.server import AdminServer
from cluster.admin.tracker import ProduceClientTracker
from cluster.broker_lifecycle import BrokerLifecycleManager
from cluster.controller.broker_configs import DynamicBrokerConfig
from cluster.controller.controller import QuorumController
from cluster.controller.metadata_image import MetadataImage
from cluster.controller.quorum import (
    METADATA_LOG_CONFIG,
    METADATA_TOPIC,
)
from cluster.controller.raft_quorum import open_quorum
from cluster.controller.topics import NewTopic
from cluster.controller_requests import ControllerRequests
from cluster.group.coordinator import GroupCoordinator
from cluster.handlers import CONTROLLER, load_handlers
from cluster.handlers.metadata import warm_cache as warm_metadata_cache
from cluster.log.cleaner import LogCleaner
from cluster.log.manager import LogManager
from cluster.meta_properties import check_storage_dirs, record_cluster_id
from cluster.network.quotas import fd_connection_budget
from cluster.network.server import SocketServer
from cluster.producer_ids import ProducerIdManager
from cluster.replication.alter_log_dirs import ReplicaAlterLogDirsManager
from cluster.replication.alter_partition_manager import AlterPartitionManager
from cluster.replication.replica_manager import ReplicaManager
from cluster.security.authorizer import authorizer_from_config
from cluster.txn.coordinator import TransactionCoordinator
from pykafka_ops.config.cluster import ClusterConfig
from pykafka_ops.config.settings import topic_defaults
from pykafka_ops.errors import ErrorCode

log = logging.getLogger(__name__)

MAINTENANCE_INTERVAL_S = 1.0
#: Longest wait for every broker of the cluster file before creating its topics, in seconds.
CONFIG_TOPICS_WAIT_S = 10.0
#: Longest run of metadata application (creating partition logs) between two event-loop turns.
APPLY_SLICE_S = 0.02


class Broker:
    """Everything one node runs; handlers reach it through ``RequestContext.broker``."""

    def __init__(self, cluster: ClusterConfig, node_id: int) -> None:
        node = cluster.node(node_id)
        self.node_id = node_id
        self.host = cluster.host_of(node_id)
        self.port = node.port
        # static settings with the dynamic broker configs of the current image on top
        self.config: Mapping[str, Any] = DynamicBrokerConfig(
            cluster.broker, node_id, lambda: self.image if hasattr(self, "controller") else None)
        self.authorizer = authorizer_from_config(self.config)
        """Kafka's StandardAuthorizer over the image's ACLs, or None (``authorizer.class.name`` unset)."""
        self.cluster = cluster
        self.data_dir: Path = cluster.node_dir(node_id)
        # connections may take half of the fd limit; log files share the other half with the rest
        max_open_files = min(self.config["log.open.files.max"], max(16, fd_connection_budget() - 64))
        self.log_manager = LogManager(cluster.log_dirs(node_id), self.config["producer.id.expiration.ms"],
                                      max_open_files, metadata_log_dir=self.data_dir)
        self.alter_partitions = AlterPartitionManager(
            node_id, lambda: self.lifecycle.broker_epoch,
            lambda broker_epoch, topics: self.requests.alter_partition(broker_epoch, topics), image=lambda: self.image)
        self.replica_manager = ReplicaManager(node_id, self.log_manager, self.config, self._broker_address,
                                              self.alter_partitions)
        self.group_coordinator = GroupCoordinator(self)
        self.txn_coordinator = TransactionCoordinator(self)
        self.log_cleaner = LogCleaner(self.log_manager)
        self.alter_log_dirs = ReplicaAlterLogDirsManager(
            self.log_manager, lambda tp: self.replica_manager.partition(*tp), self.config)
        self.controller: QuorumController
        self.socket_server = SocketServer(self)
        self.controller_server = SocketServer(self, CONTROLLER)
        self.spec = node
        self._image_failure: str | None = None
        self._apply_lock = asyncio.Lock()
        self._applied_image: MetadataImage | None = None
        self._meta_cluster_id: str | None = None
        """The cluster id meta.properties was last checked or written with ("" if it has none, None
        if there is no file)."""
        self.formatted_cluster_id = ""
        """The cluster id the launcher formatted this node's storage with while its metadata log
        names none yet: the one the first active controller writes."""
        self._maintenance: asyncio.Task[None] | None = None
        self._creating_topics: asyncio.Task[None] | None = None
        self.requests = ControllerRequests(self)
        self.lifecycle = BrokerLifecycleManager(self)
        self.producer_ids = ProducerIdManager(self.requests)
        self.produce_clients = ProduceClientTracker(self.config["admin.produce.clients.window.ms"])
        """What Produce requests said per client id and topic (the Produce handler feeds it)."""
        self.admin_server = AdminServer({"/v1/produce-clients": lambda: self.produce_clients.snapshot(node_id)})

    @property
    def image(self) -> MetadataImage:
        """The current metadata image (the controller's own, in combined mode)."""
        return self.controller.image

    def _broker_address(self, broker_id: int) -> tuple[str, int] | None:
        """Where broker ``broker_id`` listens, by the current metadata (None if not registered)."""
        broker = self.image.brokers.get(broker_id)
        return None if broker is None else (broker.host, broker.port)

    @property
    def controller_id(self) -> int:
        """What Metadata and DescribeCluster name as the controller: as Kafka's KRaft brokers, a
        live broker (clients send it their admin requests, and it forwards them to the active
        controller, which DescribeQuorum names) — this one while it is live, as the client
        reached it already (Kafka picks one at random); -1 while no broker is live."""
        live = self.image.live_brokers
        if any(b.broker_id == self.node_id for b in live):
            return self.node_id
        return random.choice(live).broker_id if live else -1

    @property
    def applied_offset(self) -> int:
        """The offset of the last metadata record this broker has applied (-1: none yet)."""
        return self._applied_image.offset if self._applied_image is not None else -1

    async def start(self) -> None:
        """Open storage, replay metadata, join the quorum; a broker then registers with the
        active controller and listens once it is unfenced, and creates the YAML's topics."""
        load_handlers()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.spec.admin_port is not None:  # answers from the start, while the node joins the cluster
            await self.admin_server.start(self.config["admin.bind.address"], self.spec.admin_port)
        self.log_manager.startup()
        metadata_config = topic_defaults(self.config) | METADATA_LOG_CONFIG
        metadata_log = self.log_manager.get_or_create(METADATA_TOPIC, 0, metadata_config)
        quorum = open_quorum(self.cluster, self.node_id, metadata_log)
        self.controller = QuorumController(quorum, self.config, on_image=self._apply_image)
        self.controller.load()
        self._check_meta_properties(self.controller.image.cluster_id)
        self.controller.formatted_cluster_id = self.formatted_cluster_id
        quorum.cluster_id = quorum.cluster_id or self.formatted_cluster_id  # checked in every KRaft RPC
        if self.spec.is_controller:
            quorum.on_leadership = self.controller.on_leadership
            if len(self.cluster.voters) > 1 or not self.spec.is_broker:
                await self.controller_server.start(self.host, self.spec.quorum_port)
            if quorum.leading:  # a single voter leads from the start
                self.controller.on_leadership()
        if self.spec.is_broker:
            self.lifecycle.start()
            await self.lifecycle.wait_unfenced()  # the controller saw it catch up with the metadata
            if self._applied_image is not None:
                self.replica_manager.delete_orphan_dirs(self._applied_image)
            await self.socket_server.start(self.host, self.port)
            self._creating_topics = asyncio.create_task(self._create_config_topics())
        self._write_meta_properties()
        self._maintenance = asyncio.create_task(self._run_maintenance())
        self.alter_log_dirs.start()
        log.info("node %d (%s) serving on %s:%d (cluster id %s, %d partitions)", self.node_id,
                 "+".join(self.spec.roles), self.host, self.port, self.image.cluster_id or "not known yet",
                 len(self.replica_manager.partitions))

    async def _create_config_topics(self) -> None:
        """Create the cluster file's topics that do not exist, once every broker of the file is
        live (so that their partitions are spread over all of them) or after
        ``CONFIG_TOPICS_WAIT_S``; every broker tries, the first one creates them. A request
        that fails (no controller yet) is tried again every second; a refusal is logged once."""
        brokers = {n.id for n in self.cluster.nodes if n.is_broker}
        deadline = time.monotonic() + CONFIG_TOPICS_WAIT_S
        while time.monotonic() < deadline and not brokers <= {b.broker_id for b in self.image.live_brokers}:
            await asyncio.sleep(0.05)
        retriable = {ErrorCode.request_timed_out, ErrorCode.not_controller}
        while True:
            missing = [NewTopic(t.name, t.partitions, t.replication_factor, config=t.config)
                       for t in self.cluster.topics if t.name not in self.image.topics]
            if not missing:
                return
            results = await self.requests.create_topics(missing)
            for result in results:
                if result.error_code not in (ErrorCode.none, ErrorCode.topic_already_exists, *retriable):
                    log.error("cannot create topic %s of %s: %s", result.name, self.cluster.source,
                              result.error_message or result.error_code.name)
            if not any(result.error_code in retriable for result in results):
                return
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        """Controlled shutdown (leadership moved away), then stop serving and close every log cleanly."""
        if self.spec.is_broker:
            # as long as one metadata write may take: a quorum that lost its majority (the last
            # nodes of a cluster going down) cannot fence anyone, and the wait would be wasted
            await self.lifecycle.controlled_shutdown(self.config["controller.quorum.request.timeout.ms"] / 1000)
        self.socket_server.stop()
        if self.spec.is_controller:  # a leaving leader hands the quorum over (its listener still answers)
            await self.controller.quorum.resign(self.config["controller.quorum.request.timeout.ms"] / 1000)
        self.controller_server.stop()
        self.admin_server.stop()
        for task in (self._maintenance, self._creating_topics):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self.group_coordinator.shutdown()
        self.txn_coordinator.shutdown()
        self.replica_manager.shutdown()
        self.controller.quorum.close()
        self.requests.close()
        await self.alter_log_dirs.stop()
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
                self.txn_coordinator.on_metadata_update(image)
                await _run_sliced(warm_metadata_cache(image))
            except Exception as exc:
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
        """Background duties: ISR shrinks, fsync rolled segments, flush policy, retention, producer
        expiry, committed-offset expiry, transaction timeouts and transactional-id expiry,
        compaction (every log.cleaner.backoff.ms)."""
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
                self.replica_manager.maybe_shrink_isrs(now_ms)
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
                self.txn_coordinator.maintenance(now_ms)  # timed-out transactions, expired ids
                if time.monotonic() >= next_cleaning:
                    await self.log_cleaner.clean_logs(now_ms)
                    next_cleaning = time.monotonic() + cleaner_every_s
            except Exception:  # maintenance must never stop serving
                log.exception("log maintenance failed; retrying")

    # -- data dir identity --------------------------------------------------------------------

    def _check_meta_properties(self, log_cluster_id: str) -> None:
        """Refuse (StorageFormatError) a data dir of another storage format, node or cluster than
        its metadata log's (``log_cluster_id``, "" while it names none)."""
        found = check_storage_dirs(self.cluster, self.node_id, log_cluster_id)
        self._meta_cluster_id = None if found is None else found.cluster_id
        if found is not None and not log_cluster_id:
            self.formatted_cluster_id = found.cluster_id

    def _write_meta_properties(self) -> None:
        """Record the metadata log's cluster id in meta.properties once it is known (the migration
        of a data dir from before formatting), and write the file of a dir that has none. A
        formatted id is never replaced: another one from the quorum is logged, and the next start
        refuses the dir."""
        cluster_id = self.image.cluster_id
        if cluster_id == self._meta_cluster_id or (not cluster_id and self._meta_cluster_id is not None):
            return
        if cluster_id and self._meta_cluster_id:
            log.error("%s belongs to cluster %s (meta.properties), but the metadata quorum names cluster %s",
                      self.data_dir, self._meta_cluster_id, cluster_id)
        else:
            record_cluster_id(self.cluster, self.node_id, cluster_id)
        self._meta_cluster_id = cluster_id


async def _run_sliced(steps: Iterator[None]) -> None:
    """Run a generator's steps, giving the event loop a turn every ``APPLY_SLICE_S``."""
    deadline = time.monotonic() + APPLY_SLICE_S
    for _ in steps:
        if time.monotonic() >= deadline:
            await asyncio.sleep(0)
            deadline = time.monotonic() + APPLY_SLICE_S
