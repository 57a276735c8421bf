"""Topic detail: replication (ISR health, partitions not on their preferred leader) and retention,
the produce-rate trend, and per partition leader, replicas, ISR, replication state (OFFLINE, URP,
not preferred, ok), offsets, records, produce rate, hot flag and transactions (an open one's last
stable offset; HANGING with its producer id past transaction.max.timeout.ms). ``k`` runs the
`pko skew` report in a worker (cancellable), ``t`` tails the topic."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from pykafka_ops.models.monitor import MonitorFrame, TopicView
from pykafka_ops.services.monitor_rows import (
    TOPIC_PARTITION_COLUMNS,
    duration_text,
    isr_text,
    percent_text,
    rate_text,
    topic_partition_cells,
)
from tui.screens.base import MonitorScreen
from tui.widgets.lag_sparkline import LagSparkline
from tui.widgets.lag_table import LagTable


def summary(t: TopicView) -> str:
    """One line about the topic."""
    retention = duration_text(t.retention_ms / 1000) if t.retention_ms is not None else "none (compact or unlimited)"
    parts = [t.name + (" (internal)" if t.internal else ""), f"{len(t.partitions)} partitions",
             f"RF {t.replication_factor}", f"ISR {isr_text(t.under_replicated, t.offline)}",
             f"leader imbalance {t.not_preferred}", *([f"HANGING TRANSACTIONS {t.hanging}"] if t.hanging else []),
             f"{t.records if t.records is not None else '-'} records", f"produce {rate_text(t.produce_rate) or '-'}/s",
             f"skew {t.skew:.2f}" if t.skew is not None else "skew -", f"retention {retention}",
             f"lag share {percent_text(t.lag_share) or '-'}", f"loss in {duration_text(t.loss_in_s) or '-'}"]
    return " · ".join(parts)


class TopicDetailScreen(MonitorScreen):
    """One topic."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("k", "skew", "Skew report"),
                Binding("t", "tail", "Tail")]

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic

    def body(self) -> ComposeResult:
        yield Static(id="topic-info")
        yield LagSparkline("produce rate (records/s)", id="trend")
        yield LagTable(TOPIC_PARTITION_COLUMNS, id="partitions")

    def show(self, frame: MonitorFrame) -> None:
        topic = next((t for t in frame.topics if t.name == self.topic), None)
        if topic is None:
            self.query_one("#topic-info", Static).update(Text(f"{self.topic}: no longer in the metadata"))
            return
        self.query_one("#topic-info", Static).update(Text(summary(topic)))
        self.query_one(LagSparkline).values = topic.rate_history
        table = self.query_one("#partitions", LagTable)
        table.entries = tuple((str(p.partition), topic_partition_cells(p)) for p in topic.partitions)
        table.border_title = f"Partitions · hot = produce rate above mean + {self.monitor.services.options.hot_k:g}·σ"

    def action_skew(self) -> None:
        from tui.screens.skew import SkewScreen

        self.app.push_screen(SkewScreen(self.topic))

    def action_tail(self) -> None:
        self.monitor.open_tail(self.topic)
