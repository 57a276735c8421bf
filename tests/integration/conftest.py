"""Clusters of the integration tests (real ``pko node`` processes, started by our pytest plugin).

``cluster`` (session scope): one node shared by every test that does not stop, kill or corrupt
it; topics get unique names. ``own_cluster`` (module scope): a fresh node for a module whose
tests restart or kill it (durability, idempotence, retention) — the tests of such a module
run in file order and leave it running.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cluster.pytest_plugin import RunningCluster, start_cluster

#: The session cluster: 3 partitions per auto-created topic, 1 MiB segments, retention checked
#: twice a second, and a topic from the YAML ``topics:`` section.
INTEGRATION_YAML = """\
cluster: {name: integration}
nodes:
  - {id: 1}
broker:
  num.partitions: 3
  log.segment.bytes: 1048576
  log.retention.check.interval.ms: 500
topics:
  - {name: yaml-declared, partitions: 2, replication.factor: 1, config: {retention.ms: 3600000}}
"""


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """The shared single-node cluster of INTEGRATION_YAML."""
    with start_cluster(INTEGRATION_YAML, tmp_path_factory.mktemp("integration")) as running:
        yield running


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """A fresh cluster (same settings) for one module that stops, kills or restarts its node."""
    with start_cluster(INTEGRATION_YAML, tmp_path_factory.mktemp("own")) as running:
        yield running
