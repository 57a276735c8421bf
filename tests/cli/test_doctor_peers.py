"""`pko doctor` against our node and Tansu (the ``broker`` fixture runs it on both): exit 0, valid
JSON, and the checks that need no broker-side evidence answer — a topic whose keys two producers
place with CRC-32 (librdkafka's default) and murmur2 is found by its key sample on either broker;
the checks that need evidence we do not have here (no ``--critical-topics``, no admin endpoint)
are listed as skipped."""

from __future__ import annotations

import json

from confluent_kafka import Producer
from records_cli import Broker, pko, topic


def test_doctor_runs_on_both_brokers(broker: Broker) -> None:
    name = topic(broker.bootstrap, "doctor-mixed", partitions=4)
    crc = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "partitioner": "consistent_random"})
    java = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "partitioner": "murmur2_random"})
    for i in range(150):
        crc.produce(name, key=b"user-%d" % i, value=b"c")
        java.produce(name, key=b"user-%d" % i, value=b"j")
    assert crc.flush(15) == 0 and java.flush(15) == 0

    result = pko(broker.bootstrap, "doctor", "--window", "1", "--polls", "2", "--topic", f"^{name}$",
                 "--group", "^$", "--output", "json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["version"] == 1 and payload["polls"] == 2 and payload["errors"] == []
    assert "mixed-partitioners" in payload["checks"]
    skipped = {s["check"]: s["why"] for s in payload["skipped"]}
    assert set(skipped) == {"durability", "producer-acks"}, skipped
    assert [(f["check"], f["subject"]["name"]) for f in payload["findings"]] == [("mixed-partitioners", name)]
    mixed = payload["findings"][0]["evidence"]
    assert set(mixed["partitioners"].split(",")) == {"consistent_random", "murmur2_random"}
