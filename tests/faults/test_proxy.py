"""The ChaosProxy itself, against a real node: a client behind it sees only the proxy's address,
and each fault does what it says."""

from __future__ import annotations

import pytest

from cluster.pytest_plugin import RunningCluster
from faults.proxy import ChaosProxy, Faults
from pykafka_ops.client.wire import WireClient, WireError
from pykafka_ops.protocol.api_keys import ApiKey


def _node(cluster: RunningCluster) -> tuple[str, int]:
    return cluster.config.host, cluster.config.node(1).port


def test_broker_addresses_are_rewritten_to_the_proxys(pko_cluster: RunningCluster) -> None:
    with ChaosProxy(_node(pko_cluster)) as proxy, WireClient("127.0.0.1", proxy.port) as client:
        brokers = client.request(ApiKey.METADATA, 12, {"topics": None}).brokers
        coordinator = client.request(ApiKey.FIND_COORDINATOR, 3, {"key": "g", "key_type": 0})
    assert [(b.host, b.port) for b in brokers] == [("127.0.0.1", proxy.port)]
    assert (coordinator.host, coordinator.port) == ("127.0.0.1", proxy.port)
    assert proxy.stats["rewritten"] == 2


@pytest.mark.parametrize("fault", ["drop_response", "reset"])
def test_a_dropped_or_reset_answer_closes_the_clients_connection(pko_cluster: RunningCluster, fault: str) -> None:
    faults = Faults(apis=frozenset({ApiKey.API_VERSIONS}), **{fault: 1.0})
    with ChaosProxy(_node(pko_cluster), faults) as proxy, WireClient("127.0.0.1", proxy.port) as client:
        with pytest.raises(WireError):
            client.request(ApiKey.API_VERSIONS, 0, {})
    assert proxy.stats["dropped" if fault == "drop_response" else "reset"] == 1


def test_a_connection_is_cut_after_n_answer_bytes(pko_cluster: RunningCluster) -> None:
    faults = Faults(apis=frozenset(), cut_after=1)
    with ChaosProxy(_node(pko_cluster), faults) as proxy, WireClient("127.0.0.1", proxy.port) as client:
        assert client.request(ApiKey.API_VERSIONS, 0, {}).error_code == 0
        with pytest.raises(WireError):
            client.request(ApiKey.API_VERSIONS, 0, {})
    assert proxy.stats["cut"] == 1
