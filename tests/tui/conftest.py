"""Fixtures of the monitor tests: a fake clock and a fake cluster with one consumed topic (the
Pilot helper ``poll`` is in ``monitor_fakes``). ``async def`` tests run through the hook in
``tests/conftest.py``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from monitor_fakes import FakeClock, FakeCluster


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Times on screen are local: pin the zone so snapshots do not depend on the machine."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture
def clock() -> FakeClock:
    """A clock at a fixed moment."""
    return FakeClock()


@pytest.fixture
def cluster(clock: FakeClock) -> FakeCluster:
    """``orders`` (4 partitions) consumed by ``orders-app`` (members m1: 0,1 and m2: 2,3), ``audit``
    (2 partitions) with no group, and an internal topic."""
    fake = FakeCluster(clock)
    fake.create("orders", 4)
    fake.create("audit", 2)
    fake.create("__consumer_offsets", 2, retention_ms=None)
    fake.join("orders-app", "m1", [("orders", 0), ("orders", 1)])
    fake.join("orders-app", "m2", [("orders", 2), ("orders", 3)])
    return fake
