"""A read-only table of monitor rows: cells in, the chosen row's key out.

Set ``columns`` once and ``entries`` (key, cells) on every frame ("attributes down"); the table
keeps the cursor on the same key across refreshes and posts ``LagTable.Chosen`` when the user
presses Enter on a row, and ``LagTable.Highlighted`` when the cursor moves ("messages up").
Text cells are shown as they are (never parsed as markup); the ``STATUS`` column is coloured
by the theme (``status_badge.status_text``).
"""

from __future__ import annotations

from collections.abc import Sequence
from rich.text import Text
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable

from pykafka_ops.services.monitor_rows import Cell
from tui.widgets.status_badge import STATUS_COLOURS, status_text

Entry = tuple[str, Sequence[Cell]]


class RowMessage(Message):
    """A row of a ``LagTable``, named by its key."""

    def __init__(self, table: LagTable, key: str) -> None:
        super().__init__()
        self.table = table
        self.key = key

    @property
    def control(self) -> LagTable:
        """The table (for ``@on(LagTable.Chosen, "#id")``)."""
        return self.table


class LagTable(DataTable[Text]):
    """``entries`` under ``columns``; numeric cells right-aligned, ``-`` for unknown."""

    class Chosen(RowMessage):
        """Enter on a row."""

    class Highlighted(RowMessage):
        """The cursor moved to a row."""

    entries: reactive[tuple[Entry, ...]] = reactive((), always_update=True)

    def __init__(self, columns: Sequence[str], *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._column_names = tuple(columns)
        self._shown: tuple[Entry, ...] = ()
        self._widths: list[int] = []

    def on_mount(self) -> None:
        self._set_columns([len(name) for name in self._column_names])

    def _set_columns(self, widths: list[int]) -> None:
        """Columns as wide as their widest cell, set at once (auto widths would wait for idle)."""
        self.clear(columns=True)
        for name, width in zip(self._column_names, widths):
            self.add_column(name, width=width, key=name)
        self._widths = widths

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def watch_entries(self, entries: tuple[Entry, ...]) -> None:
        """Rebuild the rows when they changed, keeping the cursor's key and the scroll position."""
        if entries == self._shown:
            return
        self._shown = entries
        key, scroll_y = self.cursor_key, self.scroll_y
        variables = self.app.get_css_variables()
        status_at = self._column_names.index("STATUS") if "STATUS" in self._column_names else -1
        rows = [[self._cell(c, i == status_at, variables) for i, c in enumerate(cells)] for _key, cells in entries]
        widths = [max([len(name)] + [row[i].cell_len for row in rows]) for i, name in enumerate(self._column_names)]
        if widths != self._widths:
            self._set_columns(widths)
        else:
            self.clear()
        for (row_key, _cells), row in zip(entries, rows):
            self.add_row(*row, key=row_key)
        keys = [k for k, _cells in entries]
        if key in keys:
            self.move_cursor(row=keys.index(key), animate=False, scroll=False)
        self.scroll_to(y=scroll_y, animate=False, immediate=True)

    @staticmethod
    def _cell(value: Cell, status: bool, variables: dict[str, str]) -> Text:
        if value is None:
            return Text("-", justify="right")
        if status and value in STATUS_COLOURS:
            return status_text(str(value), variables)
        if isinstance(value, int):
            return Text(str(value), justify="right")
        return Text(value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Chosen(self, event.row_key.value))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Highlighted(self, event.row_key.value))
