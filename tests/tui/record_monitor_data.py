"""Record real data objects for the monitor's snapshot tests (a script, not a test).

    python tests/tui/record_monitor_data.py      # writes tests/tui/recorded.py

Starts a real cluster, runs a producer with one hot key, a slow consumer group (``orders-app``),
a group that stopped (``billing``) and one that keeps up (``audit``), and records what
``KafkaClusterSource`` returns: ``POLLS`` snapshots ``STEP_S`` apart and when each was taken,
the record timestamps the monitor asked for, a `pko skew` report and a few tailed records. The snapshot tests replay
them, so the SVGs show real data yet stay stable.
"""

from __future__ import annotations

import asyncio
import pprint
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from group_clients import commit, create_topic, group_member  # noqa: E402

from cluster.pytest_plugin import TEST_CLUSTER_YAML, start_cluster  # noqa: E402
from pykafka_ops.client.connection import ClientSettings  # noqa: E402
from pykafka_ops.models.groups import TopicPartition  # noqa: E402
from pykafka_ops.models.records import ConsumedRecord, PartitionEnd  # noqa: E402
from pykafka_ops.services.snapshot import KafkaClusterSource  # noqa: E402

POLLS = 6
STEP_S = 2.0
OUTPUT = HERE / "recorded.py"


def produce_forever(bootstrap: str, stop: threading.Event) -> None:
    """Keyed orders, a third of them for one hot customer; payments unkeyed."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    n = 0
    while not stop.is_set():
        for _ in range(50):
            key = b"customer-7" if n % 3 == 0 else b"customer-%d" % (n % 40)
            producer.produce("orders", key=key, value=b'{"order": %d, "amount": %d}' % (n, n % 97))
            producer.produce("payments", value=b"payment %d" % n)
            n += 1
        producer.poll(0)
        stop.wait(0.1)
    producer.flush(10)


def consume_slowly(bootstrap: str, stop: threading.Event) -> None:
    """``orders-app``: one member that processes 100 records/s, fewer than are produced."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "orders-app", "client.id": "orders-app-1",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["orders"])
    try:
        while not stop.is_set():
            msg = consumer.poll(0.1)
            if msg is not None and not msg.error():
                consumer.commit(message=msg, asynchronous=False)
                stop.wait(0.01)
    finally:
        consumer.close()


class Sink:
    """Keeps the first records a tail writes."""

    def __init__(self) -> None:
        self.records: list[ConsumedRecord] = []

    def write(self, records: list[ConsumedRecord]) -> int:
        self.records.extend(records)
        return len(records)

    def partition_end(self, end: PartitionEnd, last: bool) -> None:
        """Unused."""


async def record(source: KafkaClusterSource) -> dict[str, Any]:
    snapshots, taken_at, timestamps = [], [], {}
    for _ in range(POLLS):
        snapshot = await source.collect()
        snapshots.append(snapshot)
        taken_at.append(round(time.time(), 3))
        lagging = {TopicPartition(r.topic, r.partition): r.current_offset for g in snapshot.groups
                   for r in g.partitions if r.current_offset is not None and (r.lag or 0) > 0}
        answers = await source.record_timestamps(lagging)
        timestamps.update({(tp.topic, tp.partition, lagging[tp]): ts for tp, ts in answers.items() if isinstance(ts, int)})
        await asyncio.sleep(STEP_S)
    report = await source.skew("orders")
    sink = Sink()
    task = asyncio.ensure_future(source.tail("payments", sink))
    deadline = time.monotonic() + 10
    while len(sink.records) < 12 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return {"SNAPSHOTS": snapshots, "TAKEN_AT": taken_at, "TIMESTAMPS": timestamps,
            "SKEW_REPORT": report, "TAIL_RECORDS": sink.records[:12]}


def main() -> None:
    cluster = start_cluster(TEST_CLUSTER_YAML, tempfile.mkdtemp(), num_partitions=3,
                            offsets_topic_num_partitions=3, group_initial_rebalance_delay_ms=0)
    stop = threading.Event()
    try:
        bootstrap = cluster.bootstrap_servers
        create_topic(bootstrap, "orders", 6)
        create_topic(bootstrap, "payments", 3)
        producer = threading.Thread(target=produce_forever, args=(bootstrap, stop), daemon=True)
        producer.start()
        commit(bootstrap, "billing", {("payments", p): 1 for p in range(3)})
        slow = threading.Thread(target=consume_slowly, args=(bootstrap, stop), daemon=True)
        slow.start()
        with group_member(bootstrap, "audit", ["payments"]):
            source = KafkaClusterSource(ClientSettings(bootstrap), state_file=cluster.config.state_file)
            data = asyncio.run(record(source))
            source.close()
    finally:
        stop.set()
        cluster.down()
    body = "\n\n".join(f"{name} = {pprint.pformat(value, width=110)}" for name, value in data.items())
    OUTPUT.write_text(f'"""Real data objects recorded by record_monitor_data.py (do not edit)."""\n\n'
                      "from math import inf, nan  # noqa: F401  (floats as repr writes them)\n\n"
                      "from pykafka_ops.models.groups import *  # noqa: F403\n"
                      "from pykafka_ops.models.monitor import *  # noqa: F403\n"
                      "from pykafka_ops.models.records import *  # noqa: F403\n"
                      "from pykafka_ops.models.skew import *  # noqa: F403\n"
                      "from pykafka_ops.models.topics import *  # noqa: F403\n\n"
                      f"{body}\n")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
