"""The coordinator's markers through this broker's own WriteTxnMarkers handler (the local call:
the request and answer pass through the codec as on the wire) into a real partition log."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from cluster.handlers import load_handlers
from cluster.log.config import LogConfig
from cluster.log.partition_log import PartitionLog
from cluster.replication.partition import Partition
from cluster.txn.coordinator import TransactionCoordinator
from cluster.txn.state_manager import TransactionConfig
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.errors import ErrorCode
from pykafka_ops.records.batch import iter_batches

from .txn_builders import T0, broker, open_partition, settle


class _Replicas:
    def __init__(self, *partitions: Partition) -> None:
        self.by_key = {(p.topic, p.index): p for p in partitions}

    def partition(self, topic: str, index: int) -> Partition | None:
        return self.by_key.get((topic, index))


def _user_partition(directory: Path) -> Partition:
    config = LogConfig.from_topic_config(topic_defaults(broker_defaults()) | {"min.insync.replicas": 1})
    partition = Partition("t", 0, uuid.uuid4(), PartitionLog.open(directory / "t-0", config, 86_400_000,
                                                                  clean_shutdown=True), 1)
    partition.update_leadership(1, 3, (1,), (1,), now_ms=T0)
    return partition


def test_commit_and_abort_markers_land_in_the_partition_as_control_batches(tmp_path: Path) -> None:
    load_handlers()  # the broker's registry, as a running broker has it

    async def scenario():
        state_partition = open_partition(tmp_path)
        user = _user_partition(tmp_path)
        b = broker(state_partition)
        b.replica_manager = _Replicas(state_partition, user)
        c = TransactionCoordinator(b, TransactionConfig(num_partitions=1))  # type: ignore[arg-type]
        c.on_metadata_update(b.image)
        for task in list(c._loads.values()):
            await task
        init = await c.handle_init_producer_id("tx", 10_000)
        results = []
        for commit in (True, False):
            results.append(await c.handle_add_partitions("tx", init.producer_id, 0, [("t", 0)]))
            results.append(await c.handle_end_txn("tx", init.producer_id, 0, commit))
            await settle(c)
        state = c.state.get_transaction_state("tx")[1].metadata.state
        log = user.log
        data = log.read(0, 1 << 20, log.log_end_offset, min_one_batch=True)
        return results, state.name, [(h.is_control, h.producer_id) for _, h in iter_batches(data)]

    results, state, batches = asyncio.run(scenario())
    assert results == [ErrorCode.none] * 4
    assert state == "COMPLETE_ABORT"
    assert batches == [(True, 1000), (True, 1000)]
