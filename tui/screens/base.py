"""What every monitor screen shares: header and footer, redraw on a new frame, an optional filter bar.

A screen redraws from ``app.frame`` when a poll lands and it is the current screen, and when it
becomes current again (so screens in the background cost nothing). ``/`` opens the filter bar
of a screen that has one; typing filters at once; Enter returns to the table; Escape clears it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input

from pykafka_ops.models.monitor import MonitorFrame
from tui.widgets.lag_table import LagTable

if TYPE_CHECKING:
    from tui.app import MonitorApp

T = TypeVar("T")


class MonitorScreen(Screen[None]):
    """A screen drawn from the app's frames: subclasses compose ``body()`` and implement ``show``."""

    AUTO_FOCUS = "LagTable"

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield from self.body()
        yield Footer()

    def body(self) -> ComposeResult:
        """The widgets between header and footer."""
        yield from ()

    @property
    def monitor(self) -> MonitorApp:
        """The app, typed."""
        return cast("MonitorApp", self.app)

    def on_mount(self) -> None:
        self.watch(self.app, "frame", self._frame_landed, init=False)

    def _frame_landed(self, frame: MonitorFrame | None) -> None:
        if frame is not None and self.is_current:
            self.show(frame)

    def on_screen_resume(self) -> None:
        if self.monitor.frame is not None:
            self.show(self.monitor.frame)

    def redraw(self) -> None:
        """Draw the current frame again (after a sort or filter change)."""
        if self.monitor.frame is not None:
            self.show(self.monitor.frame)

    def show(self, frame: MonitorFrame) -> None:
        """Draw ``frame``."""


class FilteredScreen(MonitorScreen):
    """A monitor screen with a filter bar (``#filter``) above its table."""

    BINDINGS = [Binding("slash", "open_filter", "Filter"), Binding("escape", "clear_filter", "Clear filter", show=False)]

    filter_text = ""
    """Lower-cased text every shown row must contain (in its name, key or value)."""

    def filter_bar(self, placeholder: str) -> Input:
        """The (hidden) filter input to yield in ``body``."""
        bar = Input(placeholder=placeholder, id="filter")
        bar.display = False
        return bar

    def matches(self, *texts: str | None) -> bool:
        """Whether any of ``texts`` contains the filter text (always, without a filter)."""
        return not self.filter_text or any(self.filter_text in t.lower() for t in texts if t)

    def action_open_filter(self) -> None:
        bar = self.query_one("#filter", Input)
        bar.display = True
        bar.focus()

    def action_clear_filter(self) -> None:
        """Clear and hide the filter; without one, go back (from a pushed screen)."""
        bar = self.query_one("#filter", Input)
        if bar.display or self.filter_text:
            bar.value = ""
            bar.display = False
            self.filter_text = ""
            self.query(LagTable).first().focus()
            self.redraw()
        elif len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value.strip().lower()
            self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.input.display = bool(event.value)
            self.query(LagTable).first().focus()


class SortedScreen(FilteredScreen):
    """A filtered screen whose rows ``s`` sorts by each of ``SORTS`` in turn and ``S`` reverses."""

    BINDINGS = [Binding("s", "sort", "Sort"), Binding("S", "reverse", "Reverse")]
    SORTS: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    """Sort name → key function, the default first."""

    def __init__(self) -> None:
        super().__init__()
        self.sort_by = next(iter(self.SORTS))
        self.reverse = False

    def sorted_rows(self, rows: Iterable[T]) -> list[T]:
        """``rows`` in the current order."""
        return sorted(rows, key=self.SORTS[self.sort_by], reverse=self.reverse)

    def notes(self) -> str:
        """The sort and filter, for a table title."""
        notes = [f"sort: {self.sort_by}{' (reversed)' if self.reverse else ''}"]
        notes += [f"filter: {self.filter_text}"] if self.filter_text else []
        return " · ".join(notes)

    def action_sort(self) -> None:
        names = list(self.SORTS)
        self.sort_by = names[(names.index(self.sort_by) + 1) % len(names)]
        self.redraw()

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self.redraw()
