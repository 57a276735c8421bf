"""A read-only table of monitor rows: cells in, the chosen row's key out.

Set ``columns`` once and ``entries`` (key, cells) on every frame ("attributes down"); the table
keeps the cursor on the same key across refreshes and posts ``LagTable.Chosen`` when the user
presses Enter on a row, and ``LagTable.Highlighted`` when the cursor moves ("messages up").
Text cells are shown as they are (never parsed as markup); the ``STATUS`` column is coloured
by the theme (``status_badge.status_text``).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable

from pykafka_ops.services.monitor_rows import Cell
from tui.widgets.status_badge import STATUS_COLOURS, status_text

Entry = tuple[str, Sequence[Cell]]
#: Characters a column gets beyond its widest cell when the rows are rebuilt.
WIDTH_SLACK = 2


def _text(value: Cell) -> str:
    """A cell as text: ``-`` for unknown."""
    return "-" if value is None else str(value)


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
        """Show ``entries``: with the same rows in the same order and no column to widen, only the
        cells that changed are updated (no re-measuring: a poll of a thousand groups stays cheap);
        otherwise the rows are rebuilt, keeping the cursor's key and the scroll position."""
        if entries == self._shown:
            return
        previous, self._shown = self._shown, entries
        variables = self.app.get_css_variables()
        status_at = self._column_names.index("STATUS") if "STATUS" in self._column_names else -1
        widths = [max([len(name)] + [cell_len(_text(cells[i])) for _key, cells in entries])
                  for i, name in enumerate(self._column_names)]
        same_rows = len(previous) == len(entries) and all(a[0] == b[0] for a, b in zip(previous, entries))
        if same_rows and all(new <= old for new, old in zip(widths, self._widths)):
            for (row_key, cells), (_key, old_cells) in zip(entries, previous):
                for i, (value, old) in enumerate(zip(cells, old_cells)):
                    if value != old:
                        self.update_cell(row_key, self._column_names[i], self._cell(value, i == status_at, variables))
            return
        key, scroll_y = self.cursor_key, self.scroll_y
        if widths != self._widths:
            # room for a few more characters, so that growing numbers do not force a rebuild each poll
            self._set_columns([w if w == len(name) else w + WIDTH_SLACK for w, name in zip(widths, self._column_names)])
        else:
            self.clear()
        for row_key, cells in entries:
            self.add_row(*(self._cell(c, i == status_at, variables) for i, c in enumerate(cells)), key=row_key)
        keys = [k for k, _cells in entries]
        if key in keys:
            self.move_cursor(row=keys.index(key), animate=False, scroll=False)
        self.scroll_to(y=scroll_y, animate=False, immediate=True)

    @staticmethod
    def _cell(value: Cell, status: bool, variables: dict[str, str]) -> Text:
        if status and value in STATUS_COLOURS:
            return status_text(str(value), variables)
        return Text(_text(value), justify="right" if value is None or isinstance(value, int) else "default")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Chosen(self, event.row_key.value))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Highlighted(self, event.row_key.value))
