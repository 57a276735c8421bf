"""ProducerIdControl (Kafka's ``ProducerIdControlManager``): blocks of producer ids, unique
across the cluster, handed to brokers through AllocateProducerIds (key 67).

A mixin of ``QuorumController``. Concurrency: part of the controller, on the node's event loop;
writes go through its event queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.event_queue import queued as _queued
from pykafka_ops.errors import ErrorCode

if TYPE_CHECKING:
    from cluster.controller.controller import QuorumController

    _Base = QuorumController
else:
    _Base = object

#: Producer ids per block (Kafka's ``ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE``).
PRODUCER_ID_BLOCK = 1000


class ProducerIdControl(_Base):
    """Producer-id blocks (see module docstring)."""

    @_queued
    async def allocate_producer_ids(self, broker_id: int, broker_epoch: int) -> tuple[int, int]:
        """A block [first, first + size) of never-used producer ids for ``broker_id``, whose
        registration must be current (Kafka: STALE_BROKER_EPOCH); MetadataCommitError when not
        committed (NOT_CONTROLLER on a controller that does not lead)."""
        if not self.is_active:
            raise MetadataCommitError(ErrorCode.not_controller, "this controller is not the active one")
        broker = self.image.brokers.get(broker_id)
        if broker is None:
            raise MetadataCommitError(ErrorCode.broker_id_not_registered, f"broker {broker_id} is not registered")
        if broker_epoch != -1 and broker.epoch != broker_epoch:
            raise MetadataCommitError(ErrorCode.stale_broker_epoch,
                                      f"broker {broker_id} epoch {broker_epoch} is not its current {broker.epoch}")
        first = self.image.next_producer_id
        await self._commit([{"type": "ProducerIdsRecord", "next_producer_id": first + PRODUCER_ID_BLOCK,
                             "broker_id": broker_id, "broker_epoch": broker.epoch}])
        return first, PRODUCER_ID_BLOCK
