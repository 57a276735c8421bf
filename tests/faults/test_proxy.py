"""The ChaosProxy itself, against a real node: a client behind it sees only the proxy's address,
and each fault does what it says."""

from __future__ import annotations

import pytest

from cluster.pytest_plugin import RunningCluster, wait_until
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


def test_a_held_request_reaches_the_node_after_its_client_gave_up(pko_cluster: RunningCluster) -> None:
    faults = Faults(apis=frozenset(), delay_request_s=0.5, hold_apis=frozenset({ApiKey.API_VERSIONS}),
                    hold_requests=1)
    with ChaosProxy(_node(pko_cluster), faults) as proxy:
        with WireClient("127.0.0.1", proxy.port, timeout=0.2) as client, pytest.raises(WireError):
            client.request(ApiKey.API_VERSIONS, 0, {})  # the client times out and closes
        wait_until(lambda: proxy.stats["late_discarded"], 5, "the held request answered")
        with WireClient("127.0.0.1", proxy.port) as client:  # only the first one is held
            assert client.request(ApiKey.API_VERSIONS, 0, {}).error_code == 0
    [late] = proxy.late
    assert (late.api_key, late.error_code, late.delivered) == (ApiKey.API_VERSIONS, 0, False)
    assert late.forwarded_at is not None and late.forwarded_at - late.held_at >= 0.5
    assert (proxy.stats["held"], proxy.stats["late_forwarded"]) == (1, 1)


def test_a_held_requests_answer_reaches_a_client_still_waiting(pko_cluster: RunningCluster) -> None:
    faults = Faults(apis=frozenset(), delay_request_s=0.3, hold_apis=frozenset({ApiKey.API_VERSIONS}))
    with ChaosProxy(_node(pko_cluster), faults) as proxy, WireClient("127.0.0.1", proxy.port) as client:
        assert client.request(ApiKey.API_VERSIONS, 0, {}).error_code == 0
    assert [late.delivered for late in proxy.late] == [True]
    assert proxy.stats["late_answered"] == 1
