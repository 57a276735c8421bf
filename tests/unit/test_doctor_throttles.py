"""The replication-throttle check of `pko doctor` (``doctor_throttles``), on hand-built inputs."""

from __future__ import annotations

import dataclasses

import pytest
from test_doctor_checks import make_input

from pykafka_ops.models.doctor import (
    DoctorOptions,
    ReplicationThrottles,
    Severity,
    Subject,
)
from pykafka_ops.services.doctor_checks import run_checks
from pykafka_ops.services.doctor_throttles import check_replication_throttles

LEFT = ReplicationThrottles({2: {"leader.replication.throttled.rate": 1_000_000}},
                            {"orders": {"follower.replication.throttled.replicas": "0:3"}}, ())


def test_throttles_left_without_a_reassignment_are_warned_with_the_commands_that_clear_them() -> None:
    data = dataclasses.replace(make_input(), throttles=LEFT)
    found = check_replication_throttles(data, DoctorOptions())
    assert [(f.check, f.severity, f.subject, f.evidence) for f in found] == [
        ("replication-throttle", Severity.WARN, Subject("broker", "2"), {"leader.replication.throttled.rate": 1_000_000}),
        ("replication-throttle", Severity.WARN, Subject("topic", "orders"),
         {"follower.replication.throttled.replicas": "0:3"})]
    assert found[0].fix.endswith("--alter --entity-type brokers --entity-name 2 --delete-config "
                                 "leader.replication.throttled.rate,follower.replication.throttled.rate")
    assert found[1].fix.endswith("--alter --topic orders --delete-config "
                                 "leader.replication.throttled.replicas,follower.replication.throttled.replicas")


def test_throttles_during_a_reassignment_are_meant_and_unread_ones_skip_the_check() -> None:
    moving = dataclasses.replace(make_input(), throttles=dataclasses.replace(LEFT, reassigning=(("orders", 0),)))
    assert check_replication_throttles(moving, DoctorOptions()) == []
    _findings, skipped = run_checks(make_input(), DoctorOptions())
    assert ("replication-throttles", "the throttle configs or the reassignments in progress could not be read") \
        in skipped


@pytest.mark.parametrize("pattern", ["^payments$"])
def test_topic_throttles_follow_the_topic_filter(pattern: str) -> None:
    import re

    data = dataclasses.replace(make_input(), throttles=LEFT)
    found = check_replication_throttles(data, DoctorOptions(topics=re.compile(pattern)))
    assert [f.subject.kind for f in found] == ["broker"]
