"""Skew report of a topic on demand: `pko skew` (a sample of the newest records) in a worker, with
progress; Escape cancels it (the scan stops at once) and goes back.

Shows the imbalance (max/mean, CV, Gini), the hot partitions, the partitioners the keys reveal,
the per-partition balance and the heavy-hitter keys.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import ProgressBar, Static

from pykafka_ops.models.skew import SkewReport
from pykafka_ops.services.monitor_rows import Cell, rate_text
from tui.screens.base import MonitorScreen
from tui.widgets.lag_table import LagTable

BALANCE_COLUMNS = ("PARTITION", "RECORDS", "SHARE", "Z-SCORE", "HOT", "PRODUCE/S")
HEAVY_COLUMNS = ("KEY", "PARTITION", "COUNT", "SHARE-OF-PARTITION")
#: Seconds between two progress updates.
PROGRESS_S = 0.2


def report_text(report: SkewReport) -> str:
    """The report's headline figures and warnings."""
    i = report.imbalance
    forensics = report.forensics
    lines = [f"{report.source}: {report.scanned} of {report.records} records read ({report.mode}"
             f"{'' if report.complete else ', incomplete'}) in {report.elapsed_s:.1f}s",
             f"max/mean {i.max_over_mean:.2f} · CV {i.cv:.2f} · Gini {i.gini:.2f} · hot partitions "
             f"{', '.join(map(str, i.hot_partitions)) or 'none'} (mean + {i.hot_k:g}·σ)",
             f"~{report.distinct_keys} distinct keys · {report.null_keys} null keys · partitioners: "
             f"{', '.join(forensics.partitioners) if forensics and forensics.partitioners else 'unknown'}"]
    return "\n".join(lines + [f"! {w}" for w in report.warnings])


def balance_cells(report: SkewReport) -> tuple[tuple[str, tuple[Cell, ...]], ...]:
    """One row per partition."""
    return tuple((str(p.partition), (p.partition, p.records, f"{p.share * 100:.1f}%", f"{p.z_score:.2f}",
                                     "HOT" if p.hot else "", rate_text(p.rate_per_s)))
                 for p in report.partitions)


def heavy_cells(report: SkewReport) -> tuple[tuple[str, tuple[Cell, ...]], ...]:
    """One row per heavy-hitter key."""
    return tuple((f"{n}", (h.key, h.partition, h.count, f"{h.share_of_partition * 100:.1f}%"))
                 for n, h in enumerate(report.heavy_hitters))


class SkewScreen(MonitorScreen):
    """The key-skew report of one topic."""

    BINDINGS = [Binding("escape", "cancel", "Cancel / back")]

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic
        self.progress: tuple[int, int] = (0, 0)
        self.report: SkewReport | None = None

    def body(self) -> ComposeResult:
        yield Static(Text(f"skew report of {self.topic}: reading …"), id="skew-status")
        yield ProgressBar(id="skew-progress", show_eta=False)
        yield LagTable(BALANCE_COLUMNS, id="balance")
        yield LagTable(HEAVY_COLUMNS, id="heavy")

    def on_mount(self) -> None:
        super().on_mount()
        self._analyse()
        self.set_interval(PROGRESS_S, self._show_progress)

    def _on_progress(self, read: int, to_read: int) -> None:
        """Called from the scanning thread: only store the figures."""
        self.progress = (read, to_read)

    def _show_progress(self) -> None:
        read, to_read = self.progress
        if to_read and self.report is None:
            self.query_one(ProgressBar).update(total=to_read, progress=read)

    @work(exclusive=True, group="skew")
    async def _analyse(self) -> None:
        try:
            report = await self.monitor.services.skew(self.topic, self._on_progress)
        except Exception as exc:  # unreachable cluster, missing topic: say so on the screen
            self.query_one("#skew-status", Static).update(Text(f"skew report of {self.topic} failed: {exc}"))
            return
        self.show_report(report)

    def show_report(self, report: SkewReport) -> None:
        """Draw a finished report."""
        self.report = report
        self.query_one(ProgressBar).display = False
        self.query_one("#skew-status", Static).update(Text(report_text(report)))
        balance = self.query_one("#balance", LagTable)
        balance.entries = balance_cells(report)
        balance.border_title = "Partitions"
        heavy = self.query_one("#heavy", LagTable)
        heavy.entries = heavy_cells(report)
        heavy.border_title = f"Heavy hitters (count ≤ true count ≤ count + {report.heavy_hitter_error})"

    def action_cancel(self) -> None:
        """Stop a running scan and go back."""
        self.workers.cancel_group(self, "skew")
        self.app.pop_screen()
