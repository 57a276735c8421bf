"""Brokers: id, host:port, up or down, controller, leaders, replicas, under-replicated partitions
led, and for a `pko cluster up` cluster the node's PID, CPU and RSS."""

from __future__ import annotations

from textual.app import ComposeResult

from pykafka_ops.models.monitor import MonitorFrame
from tui.screens.base import MonitorScreen
from tui.widgets.broker_panel import BrokerPanel


class BrokersScreen(MonitorScreen):
    """The broker list."""

    def body(self) -> ComposeResult:
        yield BrokerPanel(id="brokers")

    def show(self, frame: MonitorFrame) -> None:
        panel = self.query_one(BrokerPanel)
        panel.brokers = frame.brokers
        o = frame.overview
        panel.border_title = (f"Brokers · {o.brokers_up} up, {o.brokers_down} down · "
                              f"controller {o.controller_id if o.controller_id is not None else '-'}")
