"""Metadata snapshots and record versions (issue "KRaft quorum" items 3 and 4)."""

from __future__ import annotations

import uuid

import pytest

from cluster.controller.metadata_image import MetadataImage, MetadataReplayError
from cluster.controller.metadata_snapshot import decode_snapshot, encode_snapshot

TOPIC_ID = uuid.UUID(int=7)


def _image() -> MetadataImage:
    records = [
        {"type": "ClusterRecord", "cluster_id": "abc"},
        {"type": "RegisterBrokerRecord", "broker_id": 1, "host": "h1", "port": 9092},
        {"type": "RegisterBrokerRecord", "broker_id": 2, "host": "h2", "port": 9093, "rack": "r2"},
        {"type": "TopicRecord", "name": "orders", "topic_id": str(TOPIC_ID)},
        *({"type": "PartitionRecord", "topic_id": str(TOPIC_ID), "partition": p, "replicas": [1, 2], "isr": [1],
           "leader": 1, "leader_epoch": 3, "partition_epoch": 4} for p in range(3)),
        {"type": "ConfigRecord", "resource_type": "topic", "resource_name": "orders", "name": "retention.ms",
         "value": 1000},
        {"type": "ConfigRecord", "resource_type": "broker", "resource_name": "", "name": "num.partitions", "value": 3},
        {"type": "ProducerIdsRecord", "next_producer_id": 2000},
    ]
    return MetadataImage().apply_all((i, r) for i, r in enumerate(records))


def test_a_snapshot_rebuilds_the_same_image() -> None:
    image = _image()
    loaded = decode_snapshot(encode_snapshot(image), image.offset + 1)
    assert loaded == image
    assert loaded.brokers[2].epoch == image.brokers[2].epoch == 2  # the registration's offset survives


def test_an_empty_image_snapshots_to_nothing() -> None:
    assert decode_snapshot(encode_snapshot(MetadataImage()), 0) == MetadataImage()


@pytest.mark.parametrize("record, message", [
    ({"type": "FeatureLevelRecord", "name": "x"}, "has type 'FeatureLevelRecord', which this pko does not know"),
    ({"type": "ClusterRecord", "cluster_id": "x", "version": 9}, "has version 9; this pko reads up to version 0"),
    ({"name": "no type"}, "has type None"),
])
def test_an_unknown_record_type_or_version_stops_the_replay(record: dict, message: str) -> None:
    with pytest.raises(MetadataReplayError, match=message):
        MetadataImage().apply_all([(5, record)])
