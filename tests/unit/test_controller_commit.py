"""QuorumController._commit: records are applied to a scratch image before they are appended, so
a record that does not apply, or a batch over the metadata log's limit, never reaches the log
and never breaks a later start-up (issue "Data safety" item 4)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from cluster.controller.cluster_control import BrokerEndpoint
from cluster.controller.controller import QuorumController
from cluster.controller.event_queue import MetadataCommitError
from cluster.controller.quorum import METADATA_LOG_CONFIG, METADATA_TOPIC
from cluster.controller.raft_quorum import RaftQuorum
from cluster.controller.topics import NewTopic
from cluster.log.manager import LogManager
from pykafka_ops.config.settings import broker_defaults, topic_defaults
from pykafka_ops.errors import ErrorCode


async def _ignore(_image: object) -> None:
    pass


async def _register_and_unfence(controller: QuorumController) -> None:
    controller.on_leadership()
    _, epoch = await controller.register_broker(BrokerEndpoint(1, "incarnation", "127.0.0.1", 9092))
    await controller.broker_heartbeat(1, epoch, epoch, want_fence=False, want_shut_down=False)
    controller._watching.cancel()


def _controller(directory: Path, **log_overrides: Any) -> QuorumController:
    manager = LogManager(directory, 86_400_000)
    manager.startup()
    broker = broker_defaults()
    metadata_log = manager.get_or_create(METADATA_TOPIC, 0, topic_defaults(broker) | METADATA_LOG_CONFIG | log_overrides)
    controller = QuorumController(RaftQuorum(1, [1], metadata_log), broker, on_image=_ignore)
    controller.load()
    asyncio.run(_register_and_unfence(controller))
    return controller


def test_a_record_that_does_not_apply_never_reaches_the_log(tmp_path: Path) -> None:
    controller = _controller(tmp_path)
    end, image = controller.quorum.end_offset, controller.image
    orphan = {"type": "PartitionRecord", "topic_id": str(uuid.uuid4()), "partition": 0, "replicas": [1],
              "isr": [1], "leader": 1, "leader_epoch": 0, "partition_epoch": 0}
    with pytest.raises(MetadataCommitError) as refused:
        asyncio.run(controller._commit([orphan]))
    assert refused.value.error_code == ErrorCode.unknown_server_error
    assert (controller.quorum.end_offset, controller.image) == (end, image)
    assert _controller(tmp_path).image.offset == image.offset  # the next start-up replays cleanly


def test_a_create_over_the_metadata_batch_limit_is_refused_with_an_error_code(tmp_path: Path) -> None:
    controller = _controller(tmp_path, **{"max.message.bytes": 10_000})
    end = controller.quorum.end_offset
    results = asyncio.run(controller.create_topics([NewTopic("wide", 200, 1), NewTopic("small", 1, 1)]))
    assert {r.name: r.error_code for r in results} == {"wide": ErrorCode.message_too_large,
                                                       "small": ErrorCode.message_too_large}
    assert controller.quorum.end_offset == end and "wide" not in controller.image.topics


def test_a_create_over_10_000_partitions_in_all_is_a_policy_violation_for_every_topic(tmp_path: Path) -> None:
    controller = _controller(tmp_path)
    end = controller.quorum.end_offset
    results = asyncio.run(controller.create_topics([NewTopic("a", 6_000, 1), NewTopic("b", 4_001, 1),
                                                    NewTopic("c", assignments={0: [1]})]))
    assert {r.error_code for r in results} == {ErrorCode.policy_violation}
    assert results[0].error_message == "Excessively large number of partitions per request."
    assert controller.quorum.end_offset == end and not {"a", "b", "c"} & set(controller.image.topics)
    (ok,) = asyncio.run(controller.create_topics([NewTopic("a", 10_000, 1)]))  # exactly the limit
    assert ok.error_code == ErrorCode.none and len(controller.image.topics["a"].partitions) == 10_000


def test_an_elected_leader_takes_no_write_until_its_leadership_is_committed(tmp_path: Path) -> None:
    """A newly elected quorum leader has not replayed the earlier epochs' records until its own
    epoch's first entry is committed: a registration validated against that empty image was once
    committed on top of it, and the cluster's topics vanished after a full restart (issue 15's CI)."""
    controller = _controller(tmp_path)
    controller.quorum._leading_epoch = -1  # elected, leadership not committed yet
    assert controller.quorum.node.is_leader and not controller.is_active
    end = controller.quorum.end_offset
    answer = asyncio.run(controller.register_broker(BrokerEndpoint(2, "other", "127.0.0.1", 9093)))
    assert answer == (ErrorCode.not_controller, -1)
    with pytest.raises(MetadataCommitError) as refused:
        asyncio.run(controller._commit([{"type": "ClusterRecord", "cluster_id": "x"}]))
    assert refused.value.error_code == ErrorCode.not_controller
    assert controller.quorum.end_offset == end
