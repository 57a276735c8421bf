"""MetadataImage.apply_all (through MetadataDelta) builds the same image as applying records one
by one, shares what a batch does not touch, and refuses records that do not apply."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from cluster.controller.metadata_image import MetadataImage


def _records(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """A plausible history: brokers, topics with partitions and configs, deletions, re-creations."""
    records: list[dict[str, Any]] = [{"type": "ClusterRecord", "cluster_id": "c"},
                                     {"type": "RegisterBrokerRecord", "broker_id": 1, "host": "h", "port": 1}]
    topics: dict[str, str] = {}
    while len(records) < count:
        choice = rng.random()
        if choice < 0.2 or not topics:
            name = f"t{rng.randrange(8)}"
            if name in topics:
                records.append({"type": "RemoveTopicRecord", "topic_id": topics.pop(name)})
                continue
            topics[name] = str(uuid.UUID(int=rng.getrandbits(128)))
            records.append({"type": "TopicRecord", "name": name, "topic_id": topics[name]})
        elif choice < 0.7:
            name = rng.choice(sorted(topics))
            records.append({"type": "PartitionRecord", "topic_id": topics[name], "partition": rng.randrange(5),
                            "replicas": [1], "isr": [1], "leader": 1, "leader_epoch": rng.randrange(3),
                            "partition_epoch": 0})
        elif choice < 0.9:
            name = rng.choice(sorted(topics))
            records.append({"type": "ConfigRecord", "resource_type": "topic", "resource_name": name,
                            "name": rng.choice(["retention.ms", "segment.bytes"]),
                            "value": rng.choice([None, "1000", "2000"])})
        else:
            records.append({"type": "ProducerIdsRecord", "next_producer_id": len(records) * 1000})
    return records


@pytest.mark.parametrize("seed", range(20))
def test_a_batch_gives_the_image_that_one_record_at_a_time_gives(seed: int) -> None:
    records = _records(random.Random(seed), 200)
    one_by_one = MetadataImage()
    for offset, record in enumerate(records):
        one_by_one = one_by_one.apply(record, offset)
    cut = len(records) // 2
    batched = MetadataImage().apply_all(enumerate(records[:cut]))
    batched = batched.apply_all((cut + i, r) for i, r in enumerate(records[cut:]))
    assert batched == one_by_one
    assert {name: (dict(t.partitions), dict(t.config)) for name, t in batched.topics.items()} == {
        name: (dict(t.partitions), dict(t.config)) for name, t in one_by_one.topics.items()}


def test_what_a_batch_does_not_touch_is_shared() -> None:
    base = MetadataImage().apply_all(enumerate(_records(random.Random(1), 100)))
    after = base.apply_all([(1000, {"type": "ProducerIdsRecord", "next_producer_id": 7})])
    assert after.topics is base.topics and after.brokers is base.brokers
    assert after.next_producer_id == 7 and after.offset == 1000


def test_a_partition_of_an_unknown_topic_does_not_apply() -> None:
    with pytest.raises(ValueError, match="unknown topic id"):
        MetadataImage().apply(
            {"type": "PartitionRecord", "topic_id": str(uuid.uuid4()), "partition": 0, "replicas": [1], "isr": [1],
             "leader": 1, "leader_epoch": 0, "partition_epoch": 0}, 0)
