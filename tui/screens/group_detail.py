"""Group detail: state, members and status; the lag trend; per partition committed and log-end
offsets, lag, time lag and its method, produce and consume rates, owner, status and a lag
sparkline; members and their assignments. ``t`` tails the highlighted partition's topic."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Static

from pykafka_ops.models.monitor import GroupView, MonitorFrame
from pykafka_ops.services.monitor_rows import (
    MEMBER_COLUMNS,
    PARTITION_COLUMNS,
    duration_text,
    member_cells,
    method_text,
    partition_cells,
    rate_text,
)
from tui.screens.base import MonitorScreen
from tui.widgets.lag_sparkline import LagSparkline
from tui.widgets.lag_table import LagTable
from tui.widgets.status_badge import StatusBadge

SHOWN = len(PARTITION_COLUMNS) - 1


def summary(g: GroupView) -> str:
    """One line about the group."""
    coordinator = g.description.coordinator
    parts = [g.group_id, g.state, f"{g.members} member{'' if g.members == 1 else 's'}", f"assignor {g.description.partition_assignor or '-'}",
             f"coordinator {coordinator.id if coordinator else '-'}", f"lag {g.total_lag}",
             f"time lag {duration_text(g.max_lag_seconds) or '-'} ({method_text(g.lag_method) or '-'})",
             f"consume {rate_text(g.consume_rate) or '-'}/s"]
    return " · ".join(parts)


class GroupDetailScreen(MonitorScreen):
    """One consumer group."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("t", "tail", "Tail topic")]

    def __init__(self, group_id: str) -> None:
        super().__init__()
        self.group_id = group_id
        self._reasons: dict[str, str] = {}

    def body(self) -> ComposeResult:
        with Horizontal(id="group-summary"):
            yield StatusBadge(id="status")
            yield Static(id="group-info")
        yield Static(id="reason")
        yield LagSparkline("total lag (records)", id="trend")
        yield LagTable(PARTITION_COLUMNS[:SHOWN], id="partitions")
        yield LagTable(MEMBER_COLUMNS, id="members")

    def show(self, frame: MonitorFrame) -> None:
        group = next((g for g in frame.groups if g.group_id == self.group_id), None)
        if group is None:
            self.query_one("#group-info", Static).update(Text(f"{self.group_id}: no longer listed by the cluster"))
            return
        self.query_one(StatusBadge).status = group.status.name
        self.query_one("#group-info", Static).update(Text(summary(group)))
        self.query_one("#reason", Static).update(Text(group.reason))
        self.query_one(LagSparkline).values = group.lag_history
        trends = self.monitor.services.partition_trends(self.group_id)
        partitions = self.query_one("#partitions", LagTable)
        partitions.entries = tuple((f"{p.topic}:{p.partition}", partition_cells(p, trends.get(p.topic_partition, ()))[:SHOWN])
                                   for p in group.partitions)
        partitions.border_title = f"Partitions · {len(group.partitions)}"
        self._reasons = {f"{p.topic}:{p.partition}": f"{p.topic}-{p.partition}: {p.status.name} · {p.reason}"
                         for p in group.partitions}
        members = self.query_one("#members", LagTable)
        members.entries = tuple((m.consumer_id, member_cells(m)) for m in group.description.members)
        members.border_title = f"Members · {len(group.description.members)}"

    def on_lag_table_highlighted(self, event: LagTable.Highlighted) -> None:
        if event.table.id == "partitions" and event.key in self._reasons:
            self.query_one("#reason", Static).update(Text(self._reasons[event.key]))

    def action_tail(self) -> None:
        key = self.query_one("#partitions", LagTable).cursor_key
        if key is not None:
            self.monitor.open_tail(key.rsplit(":", 1)[0])
