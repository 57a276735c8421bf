"""QuorumController (Kafka's): the active controller, the only writer of metadata records.

Kafka splits its controller by concern, and so does this one: ``ClusterControl`` (cluster id,
broker registration, heartbeats, fencing), ``ReplicationControl`` (topics, partitions, placement,
leader election), ``AlterPartitionControl`` (ISR changes from partition leaders),
``ConfigurationControl`` (topic configs), ``ProducerIdControl`` (producer-id blocks) and
``LeaderElectionControl`` (ElectLeaders, automatic preferred-leader balance) and ``ReassignmentControl``
(partition reassignments, KIP-455) are mixins over the state kept here: the MetadataImage, the quorum and one event queue.
Every node runs one: on the active controller it takes writes, on the others it only replays
what the quorum commits (a broker-only node is an observer of the quorum).

Records are validated on a scratch image, committed through the quorum, and the new image is
handed to the ``on_image`` listener (the broker's replica manager); an operation returns once the
listener has applied it. Operations are ``async`` because a commit waits for a majority.

Concurrency: used from the node's event loop; operations take turns (``_queued``, Kafka's event
queue), so two operations never interleave their checks even though a commit awaits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from cluster.controller.acl_control import AclControl
from cluster.controller.alter_partition import AlterPartitionControl
from cluster.controller.broker_heartbeats import BrokerHeartbeatManager
from cluster.controller.cluster_control import ClusterControl
from cluster.controller.config_control import ConfigurationControl
from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.leader_election import LeaderElectionControl
from cluster.controller.metadata_image import (
    MetadataDelta,
    MetadataImage,
    versioned,
)
from cluster.controller.metadata_snapshot import decode_snapshot, encode_snapshot
from cluster.controller.producer_id_control import ProducerIdControl
from cluster.controller.raft_quorum import (
    QuorumUnavailableError,
    RaftQuorum,
    decode_record,
)
from cluster.controller.reassignment_control import ReassignmentControl
from cluster.controller.records import RECORDS_PER_TURN, MetadataRecord
from cluster.controller.replication_control import ReplicationControl
from cluster.log.validator import RecordValidationError
from cluster.raft.log import Entry, OffsetAndEpoch
from pykafka_ops.errors import ErrorCode

log = logging.getLogger(__name__)


class QuorumController(ClusterControl, ReplicationControl, AlterPartitionControl, ConfigurationControl,
                       ProducerIdControl, LeaderElectionControl, AclControl, ReassignmentControl):
    """The metadata state machine, and the active controller's writes (see module docstring)."""

    def __init__(self, quorum: RaftQuorum, broker_defaults: Mapping[str, Any],
                 on_image: Callable[[MetadataImage], Awaitable[None]], formatted_cluster_id: str = "") -> None:
        self.quorum = quorum
        self.broker_defaults = broker_defaults
        self.on_image = on_image
        self.formatted_cluster_id = formatted_cluster_id
        """The cluster id this node's storage was formatted with ("" if none): the one written."""
        self.image = MetadataImage()
        self.heartbeats = BrokerHeartbeatManager(broker_defaults["broker.session.timeout.ms"])
        self._queue = asyncio.Lock()
        self._proposed: tuple[int, int, MetadataImage, MetadataImage] | None = None
        """(first offset, last offset, image before them, image after them) of the records being
        committed now."""
        self._publishing: asyncio.Task[None] | None = None
        self._claiming: asyncio.Task[None] | None = None
        self._watching: asyncio.Task[None] | None = None

    def on_leadership(self) -> None:
        """This node became the active controller: sessions (``ClusterControl``), then the
        preferred-leader balance looks at the whole image (``LeaderElectionControl``)."""
        ClusterControl.on_leadership(self)
        self.schedule_leader_balance()

    @property
    def is_active(self) -> bool:
        """Whether this node is the active controller: it leads the quorum and its leadership is
        committed, so every record of earlier epochs is in the image (Kafka's controller claims
        leadership only once it has replayed the log up to its epoch's first offset). A newly
        elected leader that has not got there must not validate writes against an older image."""
        return self.quorum.leading

    def load(self) -> None:
        """Rebuild the image from the latest snapshot and the committed log after it (start-up);
        later commits arrive through ``_apply_committed``, snapshots from the leader through
        ``_install_snapshot``."""
        snapshot = self.quorum.start_snapshot
        if snapshot is not None:
            self.image = decode_snapshot(self.quorum.snapshot_data(snapshot), snapshot.offset)
            log.info("metadata image loaded from the snapshot at offset %d", snapshot.offset)
        self.image = self.image.apply_all(self.quorum.replay())
        self.quorum.cluster_id = self.image.cluster_id or self.formatted_cluster_id
        self.quorum.on_committed = self._apply_committed
        self.quorum.on_snapshot = self._install_snapshot

    def _install_snapshot(self, snapshot_id: OffsetAndEpoch, data: bytes) -> None:
        """The leader's snapshot replaces the image (this node was too far behind)."""
        self.image = decode_snapshot(data, snapshot_id.offset)
        self.quorum.cluster_id = self.image.cluster_id or self.formatted_cluster_id
        self._publish_soon()

    def _maybe_snapshot(self) -> None:
        """Kafka's ``metadata.log.max.record.bytes.between.snapshots``: snapshot the image (only
        committed records are in it) once that many record bytes were committed since the last."""
        if self.quorum.bytes_since_snapshot < self.broker_defaults["metadata.log.max.record.bytes.between.snapshots"]:
            return
        if self.image.offset >= 0:
            self.quorum.take_snapshot(self.image.offset + 1, encode_snapshot(self.image))

    def _publish_soon(self) -> None:
        if self._publishing is None or self._publishing.done():
            self._publishing = asyncio.get_running_loop().create_task(self._publish())

    def _apply_committed(self, entries: list[Entry]) -> None:
        """Committed records, in order: this controller's own proposal (whose image ``_commit``
        built already), or records another leader wrote (replayed here, then published)."""
        fresh = [entry for entry in entries if entry.offset > self.image.offset]
        if not fresh:
            return
        proposed = self._proposed
        if proposed is not None and (fresh[0].offset, fresh[-1].offset) == proposed[:2] and self.image is proposed[2]:
            self.image = proposed[3]
        else:
            self.image = self.image.apply_all((entry.offset, decode_record(entry)) for entry in fresh)
            self._publish_soon()
        self.quorum.cluster_id = self.image.cluster_id or self.formatted_cluster_id
        self._maybe_snapshot()

    async def _publish(self) -> None:
        """Hand the newest image to the listener (records committed by another leader), again
        while records keep arriving: a commit during the listener's turn finds this task still
        running and starts no other, so the image it brought must not wait for the next commit."""
        while True:
            image = self.image
            await self.on_image(image)
            if self.image is image:
                return

    async def _commit(self, records: Sequence[MetadataRecord]) -> None:
        """Apply ``records`` to a scratch image, append them, then make the image current (the
        listener hears of it when the operation's turn ends, see ``_queued``).

        A record that does not apply never reaches the log (it would break every later start-up);
        a log that cannot be written is left as it was (a segment append is all or nothing). Both
        raise MetadataCommitError and change nothing. The event loop gets a turn every
        ``RECORDS_PER_TURN`` records, so a 10 000-partition topic does not stall it."""
        if not self.is_active:
            raise MetadataCommitError(ErrorCode.not_controller, "this node is not the active controller")
        records = [versioned(record) for record in records]
        first, before = self.quorum.end_offset, self.image
        try:
            delta = MetadataDelta(self.image)
            for i, record in enumerate(records):
                delta.replay(record, first + i)
                if i % RECORDS_PER_TURN == RECORDS_PER_TURN - 1:
                    await asyncio.sleep(0)
            image = delta.image()
        except (KeyError, TypeError, ValueError) as exc:
            log.error("metadata record refused before it was written: %s", exc)
            raise MetadataCommitError(ErrorCode.unknown_server_error, f"invalid metadata record: {exc}") from exc
        self._proposed = (first, first + len(records) - 1, before, image)
        try:
            await self.quorum.append(records)
        except QuorumUnavailableError as exc:
            log.info("metadata not committed: %s", exc)
            raise MetadataCommitError(ErrorCode.not_controller if exc.leader_id != self.quorum.node.node_id
                                      else ErrorCode.request_timed_out, str(exc)) from exc
        except OSError as exc:
            log.error("cannot write the metadata log: %s", exc.strerror or exc)
            raise MetadataCommitError(ErrorCode.kafka_storage_error,
                                      f"cannot write the metadata log: {exc.strerror or exc}") from exc
        except RecordValidationError as exc:
            raise MetadataCommitError(exc.error_code, f"metadata batch refused: {exc}") from exc
        finally:
            self._proposed = None
        self.schedule_leader_balance(image, records)  # Kafka: after every write, if leaders are imbalanced
