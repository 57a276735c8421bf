"""The design document's orders flow, as `pko demo` runs it against any bootstrap server.

A producer configured as the document's C# example (acks=all, enable.idempotence=true) writes
orders keyed by customer id to ``orders``; the murmur2 partitioner (the Java clients' default,
so keys land where Java producers put them) sends every order of a customer to one partition. The orders are then read back partition by
partition (assigned partitions, from the first produced offset), showing that each customer's
orders sit in one partition, in the order they were produced. Last, the document's consumer: group
``orders-worker`` reads ``orders`` from the earliest offset and commits each record after
processing it (manual commits, at-least-once), until it has processed every order of this run.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

TOPIC = "orders"
PARTITIONS = 3
GROUP = "orders-worker"
T = TypeVar("T")


@dataclass(frozen=True)
class Order:
    """One order as produced and as read back."""

    order_id: str
    customer_id: str
    amount: float
    partition: int = -1
    offset: int = -1


@dataclass
class DemoReport:
    """What the demo produced and read back."""

    bootstrap_servers: str
    topic: str
    created_topic: bool
    produced: list[Order] = field(default_factory=list)
    consumed: dict[int, list[Order]] = field(default_factory=dict)

    @property
    def partitions_by_customer(self) -> dict[str, set[int]]:
        """Which partitions each customer's orders landed in (one each, by key hashing)."""
        result: dict[str, set[int]] = defaultdict(set)
        for order in self.produced:
            result[order.customer_id].add(order.partition)
        return dict(result)

    @property
    def order_preserved(self) -> bool:
        """True when every customer's orders were read back in the order they were produced."""
        produced: dict[str, list[str]] = defaultdict(list)
        for order in self.produced:
            produced[order.customer_id].append(order.order_id)
        consumed: dict[str, list[str]] = defaultdict(list)
        for orders in self.consumed.values():
            for order in orders:
                consumed[order.customer_id].append(order.order_id)
        return produced == consumed


def _config(bootstrap_servers: str) -> dict[str, object]:
    return {"bootstrap.servers": bootstrap_servers, "client.id": "pko-demo", "log_level": 0}


def _ensure_topic(bootstrap_servers: str, timeout_s: float) -> bool:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(_config(bootstrap_servers))
    if TOPIC in admin.list_topics(timeout=timeout_s).topics:
        return False
    futures = admin.create_topics([NewTopic(TOPIC, PARTITIONS)], operation_timeout=timeout_s)
    futures[TOPIC].result(timeout=timeout_s)
    return True


def run_orders_demo(bootstrap_servers: str, orders: int = 24, customers: int = 6, timeout_s: float = 15.0,
                    seed: int | None = None) -> DemoReport:
    """Produce ``orders`` keyed orders for ``customers`` customers, then read them back."""
    from confluent_kafka import Producer

    report = DemoReport(bootstrap_servers, TOPIC, _ensure_topic(bootstrap_servers, timeout_s))
    rng = random.Random(seed)
    run_id = rng.randrange(1000, 9999)
    producer = Producer(_config(bootstrap_servers) | {"acks": "all", "enable.idempotence": True,
                                                      "partitioner": "murmur2_random"})

    def delivered(err: object, msg: object) -> None:
        if err is not None:
            raise RuntimeError(f"delivery failed: {err}")
        value = json.loads(msg.value())  # type: ignore[attr-defined]
        report.produced.append(Order(value["order_id"], value["customer_id"], value["amount"],
                                     msg.partition(), msg.offset()))  # type: ignore[attr-defined]

    for i in range(orders):
        customer = f"customer-{rng.randrange(1, customers + 1)}"
        order = {"order_id": f"order-{run_id}-{i + 1:03d}", "customer_id": customer,
                 "amount": round(rng.uniform(5, 250), 2)}
        producer.produce(TOPIC, key=customer, value=json.dumps(order), on_delivery=delivered)
    remaining = producer.flush(timeout_s)
    if remaining:
        raise TimeoutError(f"{remaining} orders were not acknowledged by {bootstrap_servers} within {timeout_s:.0f} s")
    report.produced.sort(key=lambda o: (o.partition, o.offset))
    report.consumed = _read_back(bootstrap_servers, report.produced, timeout_s)
    return report


def _read_back(bootstrap_servers: str, produced: list[Order], timeout_s: float) -> dict[int, list[Order]]:
    """Read each partition from the first offset this run produced there."""
    import time

    from confluent_kafka import Consumer, TopicPartition

    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for order in produced:
        first[order.partition] = min(first.get(order.partition, order.offset), order.offset)
        last[order.partition] = max(last.get(order.partition, order.offset), order.offset)
    consumer = Consumer(_config(bootstrap_servers) | {"group.id": "pko-demo-reader", "enable.auto.commit": False})
    consumer.assign([TopicPartition(TOPIC, p, o) for p, o in first.items()])
    consumed: dict[int, list[Order]] = {p: [] for p in sorted(first)}
    deadline = time.monotonic() + timeout_s
    try:
        while any(not consumed[p] or consumed[p][-1].offset < last[p] for p in first):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read the orders back from {bootstrap_servers} within {timeout_s:.0f} s")
            for msg in consumer.consume(100, 0.5):
                if msg.error() or msg.offset() > last[msg.partition()]:
                    continue
                value = json.loads(msg.value())
                consumed[msg.partition()].append(Order(value["order_id"], value["customer_id"], value["amount"],
                                                       msg.partition(), msg.offset()))
    finally:
        consumer.close()
    return consumed


def run_orders_worker(bootstrap_servers: str, produced: list[Order], while_member: Callable[[], T],
                      timeout_s: float = 30.0) -> tuple[int, T]:
    """The C# example's consumer: group ``orders-worker``, earliest, no auto-commit, a commit after
    each processed order. Stops once every order in ``produced`` was processed, then calls
    ``while_member()`` while still in the group, and leaves. Returns (records processed, its result)."""
    import time

    from confluent_kafka import Consumer

    pending = {order.order_id for order in produced}
    consumer = Consumer(_config(bootstrap_servers) | {"group.id": GROUP, "auto.offset.reset": "earliest",
                                                      "enable.auto.commit": False, "enable.partition.eof": False})
    consumer.subscribe([TOPIC])
    processed = 0
    deadline = time.monotonic() + timeout_s
    try:
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"group {GROUP} did not process the orders from {bootstrap_servers} "
                                   f"within {timeout_s:.0f} s")
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            try:
                order = json.loads(msg.value())
            except ValueError:
                continue  # not an order: skipped and not committed, as the example does
            pending.discard(order.get("order_id"))  # process...
            processed += 1
            consumer.commit(message=msg, asynchronous=False)
        return processed, while_member()
    finally:
        consumer.close()
