"""Groups: every consumer group with state, members, lag in records and seconds, trend, consume
rate and status; the highlighted group's reason below. ``/`` filter, ``s``/``S`` sort and reverse,
``l`` only lagging, Enter opens the group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from pykafka_ops.models.monitor import GroupView, MonitorFrame
from pykafka_ops.services.monitor_rows import GROUP_COLUMNS, group_cells
from tui.screens.base import SortedScreen
from tui.widgets.lag_table import LagTable

#: Sort orders, cycled by ``s``: worst first, then the most behind.
GROUP_SORTS: dict[str, Callable[[GroupView], Any]] = {
    "status": lambda g: (-g.status, -g.total_lag, g.group_id),
    "lag": lambda g: (-g.total_lag, g.group_id),
    "time-lag": lambda g: (-(g.max_lag_seconds if g.max_lag_seconds is not None else -1.0), g.group_id),
    "consume-rate": lambda g: (-(g.consume_rate or 0.0), g.group_id),
    "group": lambda g: g.group_id,
}
#: The table shows every column but REASON, which is shown for the highlighted group.
SHOWN = len(GROUP_COLUMNS) - 1


class GroupsScreen(SortedScreen):
    """The consumer-group list."""

    BINDINGS = [Binding("l", "only_lagging", "Only lagging")]
    SORTS: ClassVar[dict[str, Callable[[Any], Any]]] = GROUP_SORTS

    def __init__(self) -> None:
        super().__init__()
        self.only_lagging = False
        self._shown: dict[str, GroupView] = {}

    def body(self) -> ComposeResult:
        yield self.filter_bar("filter groups by id")
        yield LagTable(GROUP_COLUMNS[:SHOWN], id="groups")
        yield Static(id="reason")

    def show(self, frame: MonitorFrame) -> None:
        groups = self.sorted_rows(g for g in frame.groups
                                  if self.matches(g.group_id) and (not self.only_lagging or g.total_lag > 0))
        self._shown = {g.group_id: g for g in groups}
        table = self.query_one("#groups", LagTable)
        table.entries = tuple((g.group_id, group_cells(g)[:SHOWN]) for g in groups)
        lagging = " · only lagging" if self.only_lagging else ""
        table.border_title = f"Consumer groups · {len(groups)} of {len(frame.groups)} · {self.notes()}{lagging}"
        self._reason(table.cursor_key)

    def _reason(self, group_id: str | None) -> None:
        group = self._shown.get(group_id or "")
        text = Text(f"{group.group_id}: {group.status.name} · {group.reason}") if group else Text("")
        self.query_one("#reason", Static).update(text)

    def on_lag_table_highlighted(self, event: LagTable.Highlighted) -> None:
        self._reason(event.key)

    def on_lag_table_chosen(self, event: LagTable.Chosen) -> None:
        self.monitor.open_group(event.key)

    def action_only_lagging(self) -> None:
        self.only_lagging = not self.only_lagging
        self.redraw()
