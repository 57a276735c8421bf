"""BrokerLifecycleManager (Kafka's): a broker's registration, heartbeats and controlled shutdown.

At start the broker registers with the active controller (a new incarnation id per process, so
the controller tells a restarted process from a retry) and gets its broker epoch; it is fenced.
It then sends a heartbeat every ``broker.heartbeat.interval.ms`` with the offset of the metadata
it has applied; the controller unfences it once that offset reaches its registration, and the
broker opens its client listener (``wait_unfenced``). A broker the controller fenced meanwhile
(its session expired: the process was paused or cut off) is unfenced again by its next heartbeat
once it has caught up; one the controller no longer knows at this epoch registers again.
On SIGTERM, ``controlled_shutdown`` asks the controller to move its leadership away first.

Concurrency: owned by the node's event loop; the heartbeat loop is its one task.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING

from cluster.controller.cluster_control import BrokerEndpoint
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.broker import Broker

log = logging.getLogger(__name__)

#: Seconds between two log lines about the same failure to register or heartbeat.
COMPLAINT_INTERVAL_S = 10.0
#: Seconds between two looks at whether a broker in controlled shutdown has applied its lost leadership.
LEADERSHIP_POLL_S = 0.01


class BrokerLifecycleManager:
    """Registration and heartbeats of this node's broker (see module docstring)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.incarnation_id = str(uuid.uuid4())
        self.broker_epoch = -1
        self.fenced = True
        self.interval_s = broker.config["broker.heartbeat.interval.ms"] / 1000
        self._unfenced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_complaint: dict[str, float] = {}
        self._stopping = False

    def start(self) -> None:
        """Register and keep heartbeating, in the background."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def wait_unfenced(self) -> None:
        """Return once the controller has unfenced this broker for the first time."""
        await self._unfenced.wait()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                if self.broker_epoch < 0:
                    await self._register()
                else:
                    await self._heartbeat()
            except Exception:  # a broker that stops heartbeating is fenced for good: never stop
                log.exception("broker %d: heartbeat failed unexpectedly; retrying", self.broker.node_id)
            if self.broker_epoch < 0 or not self.fenced:
                await asyncio.sleep(self.interval_s)
            else:  # registered and fenced: catching up, ask again soon
                await asyncio.sleep(min(self.interval_s, 0.05))

    async def _register(self) -> None:
        broker = self.broker
        endpoint = BrokerEndpoint(broker.node_id, self.incarnation_id, broker.host, broker.port, None,
                                  broker.image.cluster_id or broker.controller.formatted_cluster_id)
        error, epoch = await broker.requests.register(endpoint)
        if error != ErrorCode.none:
            self._complain("register", f"registration with the controller failed: {error.name.upper()}")
            return
        self.broker_epoch, self.fenced = epoch, True
        log.info("broker %d registered with the active controller (broker epoch %d)", broker.node_id, epoch)

    async def _heartbeat(self) -> None:
        result = await self.broker.requests.heartbeat(self.broker.node_id, self.broker_epoch,
                                                      self.broker.applied_offset)
        if result.error_code in (ErrorCode.stale_broker_epoch, ErrorCode.broker_id_not_registered):
            log.warning("the controller no longer knows broker epoch %d (%s): registering again", self.broker_epoch,
                        result.error_code.name.upper())
            self.broker_epoch = -1
            return
        if result.error_code != ErrorCode.none:
            self._complain("heartbeat", f"heartbeat failed: {result.error_code.name.upper()}")
            return
        if result.is_fenced != self.fenced:
            log.info("broker %d is %s", self.broker.node_id, "fenced" if result.is_fenced else "unfenced")
        self.fenced = result.is_fenced
        if not self.fenced:
            self._unfenced.set()

    async def controlled_shutdown(self, timeout_s: float) -> None:
        """Ask the controller to fence this broker and move its leadership away (Kafka's controlled
        shutdown), for at most ``timeout_s`` seconds; then stop heartbeating."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        if self.broker_epoch < 0:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                result = await asyncio.wait_for(
                    self.broker.requests.heartbeat(self.broker.node_id, self.broker_epoch, self.broker.applied_offset,
                                                   want_shut_down=True),
                    max(deadline - time.monotonic(), 0.01))
            except TimeoutError:
                break
            if result.error_code == ErrorCode.none and result.should_shut_down:
                # as Kafka's controller answers SHUTDOWN_NOW only to a broker whose metadata offset
                # reached the records that moved its leadership: until this broker applied them it
                # still takes writes as a leader, and those would be lost with it
                while self._leads_partitions() and time.monotonic() < deadline:
                    await asyncio.sleep(LEADERSHIP_POLL_S)
                if not self._leads_partitions():
                    log.info("controlled shutdown of broker %d done", self.broker.node_id)
                    return
                break
            await asyncio.sleep(0.05)
        log.warning("controlled shutdown of broker %d not confirmed within %g s; stopping anyway",
                    self.broker.node_id, timeout_s)

    def _leads_partitions(self) -> bool:
        return any(partition.is_leader for partition in self.broker.replica_manager.partitions.values())

    def _complain(self, what: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last_complaint.get(what, float("-inf")) >= COMPLAINT_INTERVAL_S:
            self._last_complaint[what] = now
            log.warning("broker %d: %s; retrying", self.broker.node_id, message)
