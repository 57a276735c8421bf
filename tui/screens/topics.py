"""Topics: partitions, replication factor, ISR health, leader imbalance (partitions not led by their
preferred leader), size, produce rate and trend, skew (max/mean of
the partition rates), retention and retention risk. ``/`` filter, ``s``/``S`` sort and reverse,
Enter opens the topic, ``t`` tails it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding

from pykafka_ops.models.monitor import MonitorFrame, TopicView
from pykafka_ops.services.monitor_rows import TOPIC_COLUMNS, topic_cells
from tui.screens.base import SortedScreen
from tui.widgets.lag_table import LagTable

TOPIC_SORTS: dict[str, Callable[[TopicView], Any]] = {
    "topic": lambda t: (t.internal, t.name),
    "produce-rate": lambda t: (-(t.produce_rate or 0.0), t.name),
    "records": lambda t: (-(t.records or 0), t.name),
    "skew": lambda t: (-(t.skew or 0.0), t.name),
    "lag-share": lambda t: (-(t.lag_share or 0.0), t.name),
    "loss-in": lambda t: (t.loss_in_s if t.loss_in_s is not None else float("inf"), t.name),
    "replication": lambda t: (-t.offline, -t.under_replicated, -t.not_preferred, t.name),
}


class TopicsScreen(SortedScreen):
    """The topic list."""

    BINDINGS = [Binding("t", "tail", "Tail")]
    SORTS: ClassVar[dict[str, Callable[[Any], Any]]] = TOPIC_SORTS

    def body(self) -> ComposeResult:
        yield self.filter_bar("filter topics by name")
        yield LagTable(TOPIC_COLUMNS, id="topics")

    def show(self, frame: MonitorFrame) -> None:
        topics = self.sorted_rows(t for t in frame.topics if self.matches(t.name))
        table = self.query_one("#topics", LagTable)
        table.entries = tuple((t.name, topic_cells(t)) for t in topics)
        table.border_title = f"Topics · {len(topics)} of {len(frame.topics)} · {self.notes()}"

    def on_lag_table_chosen(self, event: LagTable.Chosen) -> None:
        self.monitor.open_topic(event.key)

    def action_tail(self) -> None:
        key = self.query_one("#topics", LagTable).cursor_key
        if key is not None:
            self.monitor.open_tail(key)
