"""Golden files pin kafka-consumer-groups' plain layouts and our JSON schema (version 1).

The models are built by hand (what the service layer returns), so the files change only when a
layout does. Regenerate after a deliberate change with ``PKO_UPDATE_GOLDEN=1 pytest tests/cli``
and review the diff: the text files must stay byte-identical to Kafka 4.x's output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from commands import consumer_groups_data as data
from commands import consumer_groups_text as text
from pykafka_ops.models.groups import (
    GroupDeletion,
    GroupDescription,
    GroupLag,
    GroupListing,
    MemberDescription,
    OffsetDeleteResult,
    OffsetDeletion,
    PartitionLag,
    PartitionReset,
    ResetPlan,
    TopicPartition,
)
from pykafka_ops.models.topics import BrokerInfo

GOLDEN = Path(__file__).parent / "golden"
COORDINATOR = BrokerInfo(1, "127.0.0.1", 9092)
A = MemberDescription("rdkafka-5f0c9a8e-8d44-4c4f-9d0e-2b1f6f6f8a11", "orders-worker-1", "/127.0.0.1", None,
                      (TopicPartition("orders", 0), TopicPartition("orders", 1)))
B = MemberDescription("rdkafka-0b6d3c1e-1b8e-4a53-8f70-7c4f9e2d1c22", "orders-worker-2", "/10.0.0.12", None,
                      (TopicPartition("orders", 2),))
IDLE = MemberDescription("rdkafka-idle", "idle-client", "/127.0.0.1")
STABLE = GroupDescription("orders-worker", "Stable", COORDINATOR, "range", (B, A, IDLE))
EMPTY = GroupDescription("audit", "Empty", COORDINATOR, "", ())
DEAD = GroupDescription("nobody", "Dead")
LAGS = [
    GroupLag(EMPTY, (PartitionLag("orders", 0, 12, 40, leader_epoch=0, lag_seconds=1.25),
                     PartitionLag("payments-eu-west-1", 3, 7, None, lag_seconds_note="log-end offset unknown"))),
    GroupLag(DEAD),
    GroupLag(STABLE, (
        PartitionLag("orders", 0, 10, 10, A.consumer_id, A.host, A.client_id, 0, 0.0),
        PartitionLag("orders", 1, None, 5, A.consumer_id, A.host, A.client_id, lag_seconds_note="no committed offset"),
        PartitionLag("orders", 2, 3, 9, B.consumer_id, B.host, B.client_id, 0, 42.5),
        PartitionLag("refunds", 0, 4, 4, leader_epoch=2, lag_seconds=0.0))),
]


def check(name: str, actual: str) -> None:
    """Compare with ``golden/<name>`` (or write it when PKO_UPDATE_GOLDEN=1)."""
    path = GOLDEN / name
    if os.environ.get("PKO_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual)
    assert actual == path.read_text(), f"{name} differs from its golden file"


def as_json(payload: Any) -> str:
    return json.dumps(payload, indent=2) + "\n"


def test_describe_offsets_layout() -> None:
    check("describe_offsets.txt", text.describe_offsets(LAGS))


@pytest.mark.parametrize(("time_lag", "verbose", "name"), [(True, False, "describe_offsets_time_lag.txt"),
                                                           (False, True, "describe_offsets_verbose.txt")])
def test_describe_offsets_extra_columns(time_lag: bool, verbose: bool, name: str) -> None:
    check(name, text.describe_offsets(LAGS, time_lag=time_lag, verbose=verbose))


def test_describe_offsets_json_schema() -> None:
    check("describe_offsets.json", as_json(data.offsets_payload(LAGS)))


def test_describe_members_layouts() -> None:
    static = GroupDescription("static", "Stable", COORDINATOR, "roundrobin",
                              (MemberDescription("m-1", "c-1", "/127.0.0.1", "instance-1", A.assignment),))
    groups = [EMPTY, DEAD, STABLE, static]
    check("describe_members.txt", text.describe_members(groups))
    check("describe_members_verbose.txt", text.describe_members(groups, verbose=True))
    check("describe_members.json", as_json(data.members_payload(groups)))


def test_describe_state_layout() -> None:
    groups = [EMPTY, DEAD, STABLE]
    check("describe_state.txt", text.describe_state(groups))
    check("describe_state.json", as_json(data.state_payload(groups)))


def test_list_layouts() -> None:
    listings = [GroupListing("audit", "Empty"), GroupListing("orders-worker", "Stable")]
    check("list.txt", text.list_groups(listings, with_state=False))
    check("list_state.txt", text.list_groups(listings, with_state=True))
    check("list.json", as_json(data.list_payload(listings)))


def test_reset_plan_layout() -> None:
    plans = [ResetPlan("audit", "Empty", (PartitionReset("orders", 0, 12, 40, 99, "log_end"),
                                          PartitionReset("orders", 1, None, 0)),
                       empty_partitions=(TopicPartition("orders", 1),)),
             ResetPlan("orders-worker", "Stable", error="Assignments can only be reset if the group 'orders-worker' "
                                                        "is inactive, but the current state is Stable.")]
    check("reset_plan.txt", text.reset_plan(plans))
    check("reset_plan.json", as_json(data.reset_payload(plans, execute=False)))
    assert text.clamp_warnings(plans) == [
        "WARN: New offset (99) is higher than latest offset for topic partition orders-0. Value will be set to 40."]


def test_delete_layouts() -> None:
    check("delete.txt", text.delete_groups([GroupDeletion("a"), GroupDeletion("b")]))
    check("delete_failed.txt", text.delete_groups([GroupDeletion("a"), GroupDeletion("b", "The group is not empty.")]))
    check("delete.json", as_json(data.delete_payload([GroupDeletion("a"), GroupDeletion("b", "The group is not empty.")])))


def test_delete_offsets_layouts() -> None:
    ok = OffsetDeleteResult("audit", partitions=(OffsetDeletion("orders", 0), OffsetDeletion("orders", 1)))
    failed = OffsetDeleteResult("orders-worker", "GROUP_SUBSCRIBED_TO_TOPIC",
                                "The consumer group is actively subscribed to the topic",
                                (OffsetDeletion("missing", None, "This server does not host this topic-partition."),
                                 OffsetDeletion("orders", 0, "The consumer group is actively subscribed to the topic")))
    check("delete_offsets.txt", text.delete_offsets(ok))
    check("delete_offsets_failed.txt", text.delete_offsets(failed))
    check("delete_offsets.json", as_json(data.delete_offsets_payload(failed)))
