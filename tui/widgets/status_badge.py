"""A consumer status (OK, WARN, REWIND, STALL, STOP, ERR) in its theme colour: a badge widget and a
table cell. Colours come from the app's theme variables, never hard-coded."""

from __future__ import annotations

from collections.abc import Mapping

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

#: The theme variable that colours each status.
STATUS_COLOURS = {"OK": "success", "WARN": "warning", "REWIND": "accent", "STALL": "warning", "STOP": "error",
                  "ERR": "error"}


def status_text(name: str, variables: Mapping[str, str]) -> Text:
    """``name`` coloured with the theme (``App.get_css_variables()``); bold from STALL up."""
    colour = variables.get(STATUS_COLOURS.get(name, ""), "")
    bold = name in ("STALL", "STOP", "ERR")
    return Text(name, style=Style(color=colour or None, bold=bold))


class StatusBadge(Static):
    """Shows ``status`` (a status name) with a CSS class per status."""

    DEFAULT_CSS = """
    StatusBadge { width: auto; padding: 0 1; text-style: bold; }
    StatusBadge.-ok { background: $success; color: $text; }
    StatusBadge.-warn, StatusBadge.-stall { background: $warning; color: $text; }
    StatusBadge.-rewind { background: $accent; color: $text; }
    StatusBadge.-stop, StatusBadge.-err { background: $error; color: $text; }
    """

    status: reactive[str] = reactive("")

    def watch_status(self, old: str, new: str) -> None:
        """Swap the CSS class and the text."""
        if old:
            self.remove_class(f"-{old.lower()}")
        if new:
            self.add_class(f"-{new.lower()}")
        self.update(new)
