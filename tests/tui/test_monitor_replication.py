"""The monitor shows replication over a fake three-broker cluster: URP, offline, out-of-sync
replicas and leader imbalance on the brokers and topics screens, and a bell once per new alert."""

from __future__ import annotations

from typing import Any

from monitor_fakes import FakeCluster, poll, services

from pykafka_ops.models.groups import TopicPartition
from pykafka_ops.models.topics import BrokerInfo
from pykafka_ops.models.transactions import HangingTransaction
from tui.app import MonitorApp
from tui.screens.topic_detail import TopicDetailScreen
from tui.widgets.lag_table import LagTable

SIZE = (160, 40)


def column(app: MonitorApp, selector: str, name: str) -> list[Any]:
    table = app.screen.query_one(selector, LagTable)
    at = table._column_names.index(name)
    return [cells[at] for _key, cells in table.entries]


def degrade(cluster: FakeCluster) -> None:
    """Broker 3 is out: orders-0 lost it from the ISR, orders-1 moved off it (its preferred leader)
    and lost it too, audit-0 (only on 3) is offline."""
    cluster.partition_states.update({
        TopicPartition("orders", 0): (1, (1, 2, 3), (1, 2)),
        TopicPartition("orders", 1): (2, (3, 2, 1), (2, 1)),
        TopicPartition("audit", 0): (None, (3,), (3,)),
    })


async def test_replication_on_the_brokers_and_topics_screens_and_the_bell(cluster: FakeCluster) -> None:
    cluster.brokers = (BrokerInfo(1, "h", 1), BrokerInfo(2, "h", 2), BrokerInfo(3, "h", 3))
    app = MonitorApp(services(cluster), refresh_s=0)
    rung: list[str] = []
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.bell = lambda: rung.append("bell")  # type: ignore[method-assign]
        app.notify = lambda message, **_: notes.append(message)  # type: ignore[method-assign]
        await poll(app, pilot)
        assert rung == []
        degrade(cluster)
        await poll(app, pilot)
        assert rung == ["bell"]
        assert notes == ["topic 'audit': 1 offline partition (0)", "topic 'orders': 2 under-replicated partitions (0, 1)"]
        await poll(app, pilot)
        assert rung == ["bell"]  # the same alerts ring once

        await pilot.press("4")
        brokers = {name: column(app, "#brokers", name) for name in ("ID", "LEADERS", "PREF", "URP", "OFFLINE", "OSR")}
        assert brokers == {"ID": [1, 2, 3], "LEADERS": [6, 1, 0], "PREF": [6, 0, 2], "URP": [1, 1, 0],
                           "OFFLINE": [0, 0, 1], "OSR": [0, 0, 2]}
        await pilot.press("3")
        topics = dict(zip(column(app, "#topics", "TOPIC"), zip(column(app, "#topics", "ISR"),
                                                              column(app, "#topics", "IMBALANCE"))))
        assert topics == {"audit": ("1 offline", 1), "orders": ("2 URP", 1), "__consumer_offsets": ("ok", 0)}

        cluster.partition_states.clear()
        await poll(app, pilot)
        assert app.frame is not None and app.frame.alerts == () and rung == ["bell"]
        degrade(cluster)
        await poll(app, pilot)
        assert rung == ["bell", "bell"]  # raised again after it cleared


async def test_a_hanging_transaction_is_flagged_with_its_producer(cluster: FakeCluster) -> None:
    """A partition whose LSO a transaction has held past transaction.max.timeout.ms: the bell and a
    notification naming the producer and the abort command, once; HANGING in the topic's partition
    row and the overview; an open transaction that is not hanging shows as ``open``."""
    cluster.produce("orders", 0, 10)
    cluster.produce("orders", 1, 10)
    app = MonitorApp(services(cluster), refresh_s=0)
    rung: list[str] = []
    notes: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.bell = lambda: rung.append("bell")  # type: ignore[method-assign]
        app.notify = lambda message, **_: notes.append(message)  # type: ignore[method-assign]
        cluster.last_stable.update({TopicPartition("orders", 0): 4, TopicPartition("orders", 1): 7})
        cluster.hanging = (HangingTransaction("orders", 0, 4, 10, 0, 1001, 0),)
        await poll(app, pilot)
        assert rung == ["bell"]
        assert notes == ["topic 'orders': hanging transaction on 1 partition (0): partition 0 producer id 1001, "
                         "last stable offset 4 behind the high watermark 10 for longer than "
                         "transaction.max.timeout.ms; abort it with pko transactions abort --topic orders "
                         "--partition 0 --start-offset 4"]
        cluster.produce("orders", 0, 5)  # the high watermark moves on: the same alert
        cluster.hanging = (HangingTransaction("orders", 0, 4, 15, 0, 1001, 0),)
        await poll(app, pilot)
        assert rung == ["bell"]
        assert "hanging     1 transactions" in str(app.screen.query_one("#cluster").render())

        app.push_screen(TopicDetailScreen("orders"))
        await pilot.pause()
        txn = column(app, "#partitions", "TXN")
        assert txn[:2] == ["HANGING pid 1001", "open"] and set(txn[2:]) == {""}
