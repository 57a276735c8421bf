"""Overview: cluster id and controller, the metadata quorum's leader and epoch, brokers running,
fenced and down, topics and partitions, under-replicated and offline partitions and those not on
their preferred leader, hanging transactions, groups by state,
total produce and consume rates; node processes (PID, CPU, RSS) of a `pko cluster up` cluster;
hot partitions; the groups that are not OK, worst first."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from pykafka_ops.models.monitor import MonitorFrame, Overview, Status
from pykafka_ops.services.monitor_rows import (
    GROUP_COLUMNS,
    NODE_COLUMNS,
    brokers_text,
    group_cells,
    node_cells,
    quorum_text,
    rate_text,
)
from tui.screens.base import MonitorScreen
from tui.screens.groups import GROUP_SORTS, SHOWN
from tui.widgets.hot_partitions import HotPartitions
from tui.widgets.lag_table import LagTable


def cluster_text(o: Overview) -> str:
    """The cluster facts, one per line."""
    return "\n".join([
        f"cluster     {o.cluster_id or '-'}",
        f"controller  {o.controller_id if o.controller_id is not None else '-'}",
        f"quorum      {quorum_text(o.quorum)}",
        f"brokers     {brokers_text(o)}",
        f"topics      {o.topics} ({o.partitions} partitions)",
        f"partitions  {o.under_replicated} under-replicated, {o.offline} offline",
        f"imbalance   {o.not_preferred} not on their preferred leader",
        f"hanging     {o.hanging_transactions} transactions",
        f"produce     {rate_text(o.produce_rate) or '-'} records/s",
        f"consume     {rate_text(o.consume_rate) or '-'} records/s",
    ])


def states_text(o: Overview) -> str:
    """Groups by state, one per line."""
    total = sum(n for _state, n in o.groups_by_state)
    return "\n".join([f"groups      {total}", *(f"  {state:<20}{n}" for state, n in o.groups_by_state)])


class OverviewScreen(MonitorScreen):
    """The cluster at a glance."""

    def body(self) -> ComposeResult:
        with Horizontal(id="overview-top"):
            yield Static(id="cluster")
            yield Static(id="states")
        yield LagTable(NODE_COLUMNS, id="nodes")
        yield HotPartitions(id="hot")
        yield LagTable(GROUP_COLUMNS[:SHOWN], id="attention")

    def show(self, frame: MonitorFrame) -> None:
        o = frame.overview
        self.query_one("#cluster", Static).update(Text(cluster_text(o)))
        self.query_one("#states", Static).update(Text(states_text(o)))
        nodes = self.query_one("#nodes", LagTable)
        nodes.display = bool(o.nodes)
        nodes.entries = tuple((str(n.node_id), node_cells(n)) for n in o.nodes)
        nodes.border_title = "Nodes (pko cluster up)"
        hot = self.query_one(HotPartitions)
        hot.partitions = frame.hot_partitions
        hot.border_title = f"Hot partitions · {len(frame.hot_partitions)}"
        attention = sorted((g for g in frame.groups if g.status is not Status.OK), key=GROUP_SORTS["status"])
        table = self.query_one("#attention", LagTable)
        table.entries = tuple((g.group_id, group_cells(g)[:SHOWN]) for g in attention)
        table.border_title = f"Groups needing attention · {len(attention)} of {len(frame.groups)}"

    def on_lag_table_chosen(self, event: LagTable.Chosen) -> None:
        if event.table.id == "attention":
            self.monitor.open_group(event.key)
        elif event.table.id == "hot":
            self.monitor.open_topic(event.key.rsplit(":", 1)[0])
