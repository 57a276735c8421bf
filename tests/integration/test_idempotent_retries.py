"""T6 (specs/reliability.md §5.3): idempotent retries after lost answers, through the ChaosProxy.

An idempotent confluent-kafka producer (acks=all, max.in.flight=5) sends 20 000 records to one
partition through a proxy that drops, or resets instead of, about one Produce answer in 20: the
request reached the node, the client sees its connection fail and retries the batch with the
same sequence numbers. Every acknowledged record must be in the partition exactly once, in send
order. The partition is read back from the node directly. Figures are printed as one JSON line.
The protocol-level cases (a replayed sequence, a gap, a fenced epoch) are in test_idempotence.py.
"""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Producer

from cluster.pytest_plugin import ClusterFactory
from faults.proxy import ChaosProxy, Faults
from integration_helpers import create_topic, read_partition

RECORDS = 20_000


@pytest.mark.parametrize("fault", ["drop_response", "reset"])
def test_lost_answers_cause_retries_but_no_duplicate_and_no_reorder(pko_cluster_factory: ClusterFactory,
                                                                     fault: str) -> None:
    cluster = pko_cluster_factory()
    topic = "t6"
    create_topic(cluster, topic, partitions=1)
    node = (cluster.config.host, cluster.config.node(1).port)
    acked: list[int] = []
    errors: list[str] = []

    def delivered(error: object, message: object) -> None:
        if error is None:
            acked.append(int(message.value()))  # type: ignore[attr-defined]
        else:
            errors.append(str(error))

    with ChaosProxy(node, Faults(seed=6, **{fault: 0.05})) as proxy:
        producer = Producer({"bootstrap.servers": proxy.bootstrap, "enable.idempotence": True, "acks": "all",
                             "max.in.flight.requests.per.connection": 5, "linger.ms": 2,
                             "batch.num.messages": 100, "message.timeout.ms": 120_000,
                             "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 100})
        for i in range(RECORDS):
            producer.produce(topic, str(i).encode(), on_delivery=delivered)
            producer.poll(0)
        assert producer.flush(120) == 0, "records still in flight after 120 s"
        stats = dict(proxy.stats)

    values = [int(r.value) for r in read_partition(cluster, topic, 0)]
    duplicates = len(values) - len(set(values))
    reorders = sum(1 for a, b in zip(values, values[1:]) if b <= a)
    missing = sorted(set(acked) - set(values))
    print(json.dumps({"test": "T6", "fault": fault, "records": RECORDS, "acked": len(acked), "errors": len(errors),
                      "answers_through_proxy": stats.get("answers", 0), "dropped": stats.get("dropped", 0),
                      "reset": stats.get("reset", 0), "read_back": len(values), "duplicates": duplicates,
                      "reorders": reorders, "missing": len(missing)}))
    assert stats.get("dropped", 0) + stats.get("reset", 0) > 0, "no answer was lost: nothing was tested"
    assert errors == [] and len(acked) == RECORDS
    assert (duplicates, reorders, missing) == (0, 0, [])
    assert values == sorted(acked)
