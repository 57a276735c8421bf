"""Brokers: every node — id, host:port, state (running / FENCED / DOWN), roles, its part in the
metadata quorum (Leader = the active controller, Follower, Observer), partitions it leads, should
lead (PREF: it is their preferred leader) and replicates, under-replicated partitions led,
partitions hosted that are offline, replicas out of the ISR (OSR), and for a `pko cluster up` cluster the node's PID,
CPU and RSS. The title counts the brokers by state and names the quorum leader and Metadata's
controller; a cluster that cannot tell fenced brokers or the quorum shows no count or ``-``."""

from __future__ import annotations

from textual.app import ComposeResult

from pykafka_ops.models.monitor import MonitorFrame
from pykafka_ops.services.monitor_rows import brokers_text, quorum_text
from tui.screens.base import MonitorScreen
from tui.widgets.broker_panel import BrokerPanel


class BrokersScreen(MonitorScreen):
    """The node list."""

    def body(self) -> ComposeResult:
        yield BrokerPanel(id="brokers")

    def show(self, frame: MonitorFrame) -> None:
        panel = self.query_one(BrokerPanel)
        panel.brokers = frame.brokers
        o = frame.overview
        panel.border_title = (f"Brokers · {brokers_text(o)} · quorum {quorum_text(o.quorum)} · "
                              f"controller {o.controller_id if o.controller_id is not None else '-'}")
