"""ClusterControl (Kafka's ``ClusterControlManager``): the cluster id and broker registration.

A mixin of ``QuorumController``: the first active controller of a new cluster names it (a
``ClusterRecord``), and brokers register their endpoint (``RegisterBrokerRecord``) — the local
broker of a combined node at start-up, any broker through BrokerRegistration (key 62) sent to the
active controller. A broker's epoch is the offset of its registration record, as in Kafka.

Concurrency: part of the controller, on the node's event loop; writes go through its event queue.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from typing import TYPE_CHECKING

from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.event_queue import queued as _queued
from cluster.controller.records import MetadataRecord
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.controller.controller import QuorumController

    _Base = QuorumController
else:
    _Base = object

log = logging.getLogger(__name__)


class ClusterControl(_Base):
    """Cluster id and broker registrations (see module docstring)."""

    def on_leadership(self) -> None:
        """This node became the active controller: the first one of a new cluster names it."""
        if not self.image.cluster_id:
            self._claiming = asyncio.get_running_loop().create_task(self._claim_cluster_id())

    @_queued
    async def _claim_cluster_id(self) -> None:
        if self.image.cluster_id:
            return
        try:
            await self._commit([{"type": "ClusterRecord", "cluster_id": _new_cluster_id()}])
        except MetadataCommitError as exc:  # leadership lost meanwhile: the next leader names it
            log.warning("cluster id not written: %s", exc)

    @_queued
    async def bootstrap(self, broker_id: int, host: str, port: int) -> None:
        """First start: a cluster id. Every start: (re-)register this broker if its endpoint changed."""
        records: list[MetadataRecord] = []
        if not self.image.cluster_id:
            records.append({"type": "ClusterRecord", "cluster_id": _new_cluster_id()})
        known = self.image.brokers.get(broker_id)
        if known is None or (known.host, known.port) != (host, port):
            records.append({"type": "RegisterBrokerRecord", "broker_id": broker_id, "host": host, "port": port})
        if records:
            await self._commit(records)

    @_queued
    async def register_broker(self, broker_id: int, host: str, port: int, cluster_id: str) -> tuple[ErrorCode, int]:
        """BrokerRegistration on the active controller: (error, broker epoch). A broker of another
        cluster gets INCONSISTENT_CLUSTER_ID; a node that does not lead, NOT_CONTROLLER."""
        if cluster_id and self.image.cluster_id and cluster_id != self.image.cluster_id:
            return ErrorCode.inconsistent_cluster_id, -1
        known = self.image.brokers.get(broker_id)
        if known is not None and (known.host, known.port) == (host, port) and self.quorum.node.is_leader:
            return ErrorCode.none, known.epoch
        try:
            await self._commit([{"type": "RegisterBrokerRecord", "broker_id": broker_id, "host": host, "port": port}])
        except MetadataCommitError as exc:
            return exc.error_code, -1
        log.info("registered broker %d at %s:%d", broker_id, host, port)
        return ErrorCode.none, self.image.brokers[broker_id].epoch


def _new_cluster_id() -> str:
    """Kafka's cluster id format: a random UUID, URL-safe base64 without padding (22 chars)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
