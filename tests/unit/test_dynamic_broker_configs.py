"""Dynamic broker configs: validation, replay into the image, precedence and sources, unclean
elections after a broker-default change (the controller of test_replication_control); the paging
of DescribeTopicPartitions over an image (no node)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from cluster.controller.broker_configs import (
    DEFAULT_CONFIG,
    DYNAMIC_BROKER_CONFIG,
    DYNAMIC_DEFAULT_BROKER_CONFIG,
    STATIC_BROKER_CONFIG,
    DynamicBrokerConfig,
    check_broker_changes,
)
from cluster.controller.controller import QuorumController
from cluster.controller.metadata_image import MetadataImage, image_records
from cluster.controller.topics import NewTopic
from cluster.handlers.describe_topic_partitions import describe
from pykafka_ops.config.settings import SettingError, broker_defaults, topic_defaults
from pykafka_ops.errors import ErrorCode


def _config(broker: str, name: str, value: Any) -> dict[str, Any]:
    return {"type": "ConfigRecord", "resource_type": "broker", "resource_name": broker, "name": name, "value": value}


def _image(*records: dict[str, Any]) -> MetadataImage:
    return MetadataImage().apply_all(enumerate(records))


def test_only_dynamic_configs_with_good_values_are_accepted() -> None:
    assert check_broker_changes({"log.retention.ms": "60000", "log.cleanup.policy": None}) == {
        "log.retention.ms": 60000, "log.cleanup.policy": None}
    with pytest.raises(SettingError, match=r"Cannot update these configs dynamically: \['num.partitions'\]"):
        check_broker_changes({"num.partitions": "3", "log.retention.ms": "1"})
    with pytest.raises(SettingError, match="log.segment.bytes: must be at least 14"):
        check_broker_changes({"log.segment.bytes": "1"})
    with pytest.raises(SettingError, match="no.such: unknown broker config"):
        check_broker_changes({"no.such": "1"})
    with pytest.raises(SettingError, match="not supported yet"):
        check_broker_changes({"log.cleaner.enable": "true"})


def test_per_broker_over_cluster_default_over_static() -> None:
    static = {**broker_defaults(), "log.retention.hours": 24}
    image = _image(_config("", "log.retention.ms", 1000), _config("", "min.insync.replicas", 2),
                   _config("1", "log.retention.ms", 2000), _config("2", "message.max.bytes", 5))
    one = DynamicBrokerConfig(static, 1, lambda: image)
    two = DynamicBrokerConfig(static, 2, lambda: image)
    assert (one["log.retention.ms"], two["log.retention.ms"], two["message.max.bytes"]) == (2000, 1000, 5)
    assert (one["min.insync.replicas"], one["log.retention.hours"], one["num.partitions"]) == (2, 24, 1)
    assert topic_defaults(one)["retention.ms"] == 2000 and topic_defaults(two)["min.insync.replicas"] == 2
    assert one.sources("log.retention.hours") == [
        ("log.retention.ms", 2000, DYNAMIC_BROKER_CONFIG), ("log.retention.ms", 1000, DYNAMIC_DEFAULT_BROKER_CONFIG),
        ("log.retention.hours", 24, STATIC_BROKER_CONFIG), ("log.retention.hours", 168, DEFAULT_CONFIG)]
    assert one.sources("log.retention.ms", per_broker=False)[0] == ("log.retention.ms", 1000,
                                                                    DYNAMIC_DEFAULT_BROKER_CONFIG)
    assert DynamicBrokerConfig(static, 1, lambda: None)["log.retention.ms"] is None  # before any image


def test_broker_config_records_replay_delete_and_snapshot() -> None:
    image = _image(_config("", "log.retention.ms", 1000), _config("3", "log.segment.bytes", 4096))
    later = image.apply(_config("3", "log.segment.bytes", None), 10).apply(_config("4", "message.max.bytes", 9), 11)
    assert dict(image.broker_node_configs[3]) == {"log.segment.bytes": 4096}  # the older image is unchanged
    assert 3 not in later.broker_node_configs and dict(later.broker_node_configs[4]) == {"message.max.bytes": 9}
    rebuilt = _image(*image_records(later))
    assert (dict(rebuilt.broker_configs), {k: dict(v) for k, v in rebuilt.broker_node_configs.items()}) == (
        {"log.retention.ms": 1000}, {4: {"message.max.bytes": 9}})


def _topics_image(partitions: dict[str, int]) -> MetadataImage:
    records: list[dict[str, Any]] = [{"type": "RegisterBrokerRecord", "broker_id": 1, "host": "h", "port": 1}]
    for name, count in partitions.items():
        topic_id = str(uuid.uuid4())
        records.append({"type": "TopicRecord", "name": name, "topic_id": topic_id})
        records += [{"type": "PartitionRecord", "topic_id": topic_id, "partition": p, "replicas": [1, 2],
                     "isr": [1], "leader": 1, "leader_epoch": 0, "partition_epoch": 0} for p in range(count)]
    return _image(*records)


def _pages(image: MetadataImage, names: list[str], limit: int) -> list[list[tuple[str, int]]]:
    pages, first, cursor = [], 0, ""
    while True:
        body = describe(image, [n for n in names if n >= cursor], first, limit, fetch_all=False)
        pages.append([(t["name"], p["partition_index"]) for t in body["topics"] for p in t["partitions"]])
        if body["next_cursor"] is None:
            return pages
        cursor, first = body["next_cursor"]["topic_name"], body["next_cursor"]["partition_index"]


def test_describe_topic_partitions_pages_as_kafka() -> None:
    image = _topics_image({"a": 3, "b": 2, "c": 1})
    # a page that ends exactly at a topic's end points the cursor at the next topic, partition 0
    assert _pages(image, ["a", "b", "c"], 3) == [[("a", 0), ("a", 1), ("a", 2)], [("b", 0), ("b", 1), ("c", 0)]]
    assert _pages(image, ["a", "b", "c"], 2) == [[("a", 0), ("a", 1)], [("a", 2), ("b", 0)], [("b", 1), ("c", 0)]]
    body = describe(image, ["a"], 0, 10, fetch_all=False)
    partition = body["topics"][0]["partitions"][0]
    assert (partition["leader_id"], partition["offline_replicas"], partition["eligible_leader_replicas"]) == (
        1, [2], [])  # broker 2 is not registered: offline
    unknown = describe(image, ["zz", "bad name"], 0, 10, fetch_all=False)["topics"]
    assert [(t["name"], int(t["error_code"])) for t in unknown] == [("zz", 3), ("bad name", 17)]
    assert describe(image, ["zz"], 0, 10, fetch_all=True)["topics"] == []


def test_a_broker_default_that_allows_unclean_election_elects_offline_partitions(tmp_path: Path) -> None:
    from test_replication_control import _fence, _run, _state, _unfence

    async def scenario(controller: QuorumController, epochs: dict[int, int]) -> list[Any]:
        controller.broker_defaults = DynamicBrokerConfig(controller.broker_defaults, 1, lambda: controller.image)
        await controller.create_topics([NewTopic("t", assignments={0: [1, 2]})])
        await _fence(controller, epochs, 2)
        await _unfence(controller, epochs, 2)
        await _fence(controller, epochs, 1)  # ISR [1], offline
        seen: list[Any] = [_state(controller, "t")]
        refused = await controller.alter_broker_configs("x", {"unclean.leader.election.enable": "true"})
        result = await controller.alter_broker_configs("", {"unclean.leader.election.enable": "true"})
        return [*seen, refused.error_code, result.error_code, _state(controller, "t"),
                dict(controller.image.broker_configs)]

    assert _run(tmp_path, scenario) == [(-1, (1,)), ErrorCode.invalid_request, ErrorCode.none, (2, (2,)),
                                        {"unclean.leader.election.enable": True}]
