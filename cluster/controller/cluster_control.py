"""ClusterControl (Kafka's ``ClusterControlManager``): the cluster id, broker registration,
heartbeats and fencing.

A mixin of ``QuorumController``. The first active controller of a new cluster writes its id (a
``ClusterRecord``: the id the launcher formatted the storage with, else a new one). Brokers send
BrokerRegistration (key 62) to the active controller: a ``RegisterBrokerRecord`` with a new
broker epoch (the record's offset), fenced. They then send BrokerHeartbeat (key 63) every
``broker.heartbeat.interval.ms``; once a broker's metadata has reached its registration record
it is unfenced (``UnfenceBrokerRecord``, and it leads again the partitions that wait for it). A
broker not heard from for ``broker.session.timeout.ms`` is fenced (``FenceBrokerRecord``, its
leadership moved: ``ReplicationControl._leader_changes``); so is one that asks to shut down
(controlled shutdown), at once.

Concurrency: part of the controller, on the node's event loop; writes go through its event
queue; the session watch runs only while this node is the active controller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.event_queue import queued as _queued
from cluster.controller.records import MetadataRecord
from cluster.meta_properties import new_cluster_id
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.controller.controller import QuorumController

    _Base = QuorumController
else:
    _Base = object

log = logging.getLogger(__name__)
#: Shortest wait between two session checks (a session about to expire is checked again after it).
SESSION_CHECK_MIN_S = 0.005


@dataclass(frozen=True)
class BrokerEndpoint:
    """What a BrokerRegistration says about the broker."""

    broker_id: int
    incarnation_id: str
    host: str
    port: int
    rack: str | None = None
    cluster_id: str = ""


@dataclass(frozen=True)
class HeartbeatResult:
    """A BrokerHeartbeat's answer."""

    error_code: ErrorCode
    is_caught_up: bool = False
    is_fenced: bool = True
    should_shut_down: bool = False


def _now_ms() -> int:
    return int(time.monotonic() * 1000)


class ClusterControl(_Base):
    """Cluster id, registrations, heartbeats and fencing (see module docstring)."""

    def on_leadership(self) -> None:
        """This node became the active controller: name a new cluster, give every unfenced broker
        a fresh session and watch the sessions while it leads."""
        if not self.image.cluster_id:
            self._claiming = asyncio.get_running_loop().create_task(self._claim_cluster_id())
        self.heartbeats.activate((b.broker_id for b in self.image.live_brokers), _now_ms())
        if self._watching is None or self._watching.done():
            self._watching = asyncio.get_running_loop().create_task(self._watch_sessions())

    @_queued
    async def _claim_cluster_id(self) -> None:
        if self.image.cluster_id:
            return
        try:
            await self._commit([{"type": "ClusterRecord", "cluster_id": self.formatted_cluster_id or new_cluster_id()}])
        except MetadataCommitError as exc:  # leadership lost meanwhile: the next leader names it
            log.warning("cluster id not written: %s", exc)

    @_queued
    async def register_broker(self, endpoint: BrokerEndpoint) -> tuple[ErrorCode, int]:
        """BrokerRegistration on the active controller: (error, broker epoch). Errors as Kafka:
        NOT_CONTROLLER, INCONSISTENT_CLUSTER_ID, DUPLICATE_BROKER_REGISTRATION (another process
        registered as this broker and still heartbeats)."""
        if not self.is_active:
            return ErrorCode.not_controller, -1
        if endpoint.cluster_id and self.image.cluster_id and endpoint.cluster_id != self.image.cluster_id:
            return ErrorCode.inconsistent_cluster_id, -1
        known = self.image.brokers.get(endpoint.broker_id)
        now_ms = _now_ms()
        if known is not None and known.incarnation_id == endpoint.incarnation_id:
            self.heartbeats.touch(endpoint.broker_id, now_ms)
            return ErrorCode.none, known.epoch  # the same process asking again (a lost answer)
        if known is not None and self.heartbeats.has_valid_session(endpoint.broker_id, now_ms):
            return ErrorCode.duplicate_broker_registration, -1
        try:
            await self._commit([{"type": "RegisterBrokerRecord", "broker_id": endpoint.broker_id,
                                 "incarnation_id": endpoint.incarnation_id, "host": endpoint.host,
                                 "port": endpoint.port, "rack": endpoint.rack, "fenced": True}])
        except MetadataCommitError as exc:
            return exc.error_code, -1
        self.heartbeats.touch(endpoint.broker_id, _now_ms())
        epoch = self.image.brokers[endpoint.broker_id].epoch
        log.info("registered broker %d at %s:%d (epoch %d)", endpoint.broker_id, endpoint.host, endpoint.port, epoch)
        return ErrorCode.none, epoch

    @_queued
    async def broker_heartbeat(self, broker_id: int, broker_epoch: int, metadata_offset: int, want_fence: bool,
                               want_shut_down: bool) -> HeartbeatResult:
        """BrokerHeartbeat on the active controller: unfence a caught-up broker, fence one that
        asks to be (or to shut down), answer its state."""
        if not self.is_active:
            return HeartbeatResult(ErrorCode.not_controller)
        broker = self.image.brokers.get(broker_id)
        if broker is None:
            return HeartbeatResult(ErrorCode.broker_id_not_registered)
        if broker.epoch != broker_epoch:
            return HeartbeatResult(ErrorCode.stale_broker_epoch)
        caught_up = metadata_offset >= broker.epoch
        try:
            if want_shut_down or want_fence:
                self.heartbeats.end_session(broker_id)
                if not broker.fenced:
                    await self._commit(self._fence_records(broker_id, broker.epoch))
                    log.info("fenced broker %d: %s", broker_id, "controlled shutdown" if want_shut_down else "asked")
                return HeartbeatResult(ErrorCode.none, caught_up, True, want_shut_down)
            self.heartbeats.touch(broker_id, _now_ms())
            if broker.fenced and caught_up:
                await self._commit([{"type": "UnfenceBrokerRecord", "id": broker_id, "epoch": broker.epoch},
                                    *self._leader_changes(self.image, broker_id, fenced=False)])
                log.info("unfenced broker %d (epoch %d)", broker_id, broker.epoch)
        except MetadataCommitError as exc:
            return HeartbeatResult(exc.error_code)
        return HeartbeatResult(ErrorCode.none, caught_up, self.image.brokers[broker_id].fenced)

    def _fence_records(self, broker_id: int, epoch: int) -> list[MetadataRecord]:
        return [{"type": "FenceBrokerRecord", "id": broker_id, "epoch": epoch},
                *self._leader_changes(self.image, broker_id, fenced=True)]

    async def _watch_sessions(self) -> None:
        """While this node leads: fence the unfenced brokers whose session expired, when the
        earliest one expires (Kafka's controller schedules its fencing check for that moment:
        ``QuorumController.rescheduleMaybeFenceStaleBrokers``), not on a coarser tick."""
        session_s = self.heartbeats.session_timeout_ms / 1000
        while self.is_active:
            expiry = self.heartbeats.next_expiry_ms()
            wait_s = session_s if expiry is None else (expiry - _now_ms()) / 1000
            await asyncio.sleep(min(max(wait_s, SESSION_CHECK_MIN_S), session_s))
            expired = self.heartbeats.expired(_now_ms())
            if expired:
                await self._fence_expired(expired)

    @_queued
    async def _fence_expired(self, broker_ids: list[int]) -> None:
        for broker_id in broker_ids:
            if broker_id not in self.heartbeats.expired(_now_ms()):
                continue  # a heartbeat came while this waited for its turn
            self.heartbeats.end_session(broker_id)
            broker = self.image.brokers.get(broker_id)
            if broker is None or broker.fenced or not self.is_active:
                continue
            try:
                await self._commit(self._fence_records(broker_id, broker.epoch))
            except MetadataCommitError as exc:
                log.warning("broker %d not fenced: %s", broker_id, exc)
                continue
            log.warning("fenced broker %d: no heartbeat for %d ms (broker.session.timeout.ms)", broker_id,
                        self.heartbeats.session_timeout_ms)
