"""Tail: live records of a topic (partition, offset, timestamp, key and value previews), newest at
the bottom; ``space`` pauses the view (records keep arriving into a bounded buffer), ``/`` filters
by key or value.

The records are read by ``services.tail`` in a worker; its sink (``TailBuffer``) only appends to a
bounded deque, which is safe from the reading thread, and the screen drains it five times a second.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from pykafka_ops.models.records import ConsumedRecord, PartitionEnd
from pykafka_ops.services.monitor_rows import RECORD_COLUMNS, record_cells
from tui.screens.base import FilteredScreen
from tui.widgets.lag_table import LagTable

#: Records kept for display (and buffered while paused).
KEPT = 500
#: Seconds between two drains of the buffer into the table.
DRAIN_S = 0.2


class TailBuffer:
    """A ``RecordSink`` that keeps the newest ``KEPT`` records for the screen; counts what it dropped."""

    def __init__(self) -> None:
        self.records: deque[ConsumedRecord] = deque(maxlen=KEPT)
        self.received = 0
        self.dropped = 0

    def write(self, records: list[ConsumedRecord]) -> int:
        """Called from the reading thread: keep the records (the oldest fall out)."""
        overflow = len(self.records) + len(records) - KEPT
        self.dropped += max(0, overflow)
        self.records.extend(records)
        self.received += len(records)
        return len(records)

    def partition_end(self, end: PartitionEnd, last: bool) -> None:
        """Nothing to do: a tail never stops at the end."""

    def take(self) -> list[ConsumedRecord]:
        """Every record buffered, oldest first, and forget them."""
        taken = []
        while self.records:
            taken.append(self.records.popleft())
        return taken


class TailScreen(FilteredScreen):
    """Live records of one topic."""

    BINDINGS = [Binding("space", "pause", "Pause/resume")]

    def __init__(self, topic: str) -> None:
        super().__init__()
        self.topic = topic
        self.buffer = TailBuffer()
        self.rows: deque[ConsumedRecord] = deque(maxlen=KEPT)
        self.paused = False
        self.ended: str | None = None

    def body(self) -> ComposeResult:
        yield self.filter_bar("filter records by key or value")
        yield Static(id="tail-status")
        yield LagTable(RECORD_COLUMNS, id="records")

    def on_mount(self) -> None:
        super().on_mount()
        self._read()
        self.set_interval(DRAIN_S, self.drain)
        self._status()

    @work(exclusive=True, group="tail")
    async def _read(self) -> None:
        try:
            report = await self.monitor.services.tail(self.topic, self.buffer)
        except Exception as exc:  # a missing topic, an unreachable cluster: say so, keep the screen
            self.ended = str(exc) or type(exc).__name__
            self.notify(self.ended, title=f"tail {self.topic}", severity="error")
        else:
            self.ended = f"stopped ({report.reason})"
        self._status()

    def drain(self) -> None:
        """Move buffered records to the table unless paused."""
        if not self.paused:
            fresh = self.buffer.take()
            if fresh:
                self.rows.extend(fresh)
                self.redraw()
        self._status()

    def redraw(self) -> None:
        shown = [r for r in self.rows if self.matches(*(c for c in record_cells(r)[3:] if isinstance(c, str)))]
        table = self.query_one("#records", LagTable)
        table.entries = tuple((f"{r.partition}:{r.offset}", record_cells(r)) for r in shown)
        if not self.paused:
            table.move_cursor(row=len(shown) - 1, animate=False)

    def _status(self) -> None:
        state = self.ended or ("PAUSED (space resumes)" if self.paused else "live")
        text = (f"tail {self.topic} · {state} · {self.buffer.received} received · {len(self.rows)} shown"
                + (f" · {self.buffer.dropped} dropped while paused" if self.buffer.dropped else "")
                + (f" · filter: {self.filter_text}" if self.filter_text else ""))
        self.query_one("#tail-status", Static).update(Text(text))

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.drain()
