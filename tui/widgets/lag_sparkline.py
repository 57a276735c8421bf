"""A titled sparkline of a history (a group's lag, a topic's produce rate), oldest left."""

from __future__ import annotations

import math
from collections.abc import Sequence

from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label, Sparkline


class LagSparkline(Widget):
    """``values`` (NaN = unknown, drawn as 0) under ``title``; the last value is printed after it."""

    DEFAULT_CSS = """
    LagSparkline { height: 3; }
    LagSparkline Label { width: 1fr; color: $text-muted; }
    LagSparkline Sparkline { height: 2; }
    """

    values: reactive[tuple[float, ...]] = reactive(())

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title

    def compose(self) -> ComposeResult:
        yield Label(self.title)
        yield Sparkline([])

    def watch_values(self, values: Sequence[float]) -> None:
        """Redraw."""
        shown = [0.0 if math.isnan(v) else v for v in values]
        self.query_one(Sparkline).data = shown
        last = f"{shown[-1]:,.1f}".rstrip("0").rstrip(".") if shown else "-"
        self.query_one(Label).update(f"{self.title} · last {len(shown)} polls · now {last}")
