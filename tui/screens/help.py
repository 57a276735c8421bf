"""Help: every key of the current screen and of the app, and what the statuses mean."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from pykafka_ops.services import status

STATUS_HELP = status.__doc__ or ""


class HelpScreen(ModalScreen[None]):
    """A modal listing ``keys`` (key, description) and the status rules; any of Escape, ? or q closes it."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, keys: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        width = max((len(k) for k, _d in self.keys), default=1)
        lines = ["Keys", *(f"  {key:<{width}}  {description}" for key, description in self.keys), "",
                 "Status", *(f"  {line.strip()}" for line in STATUS_HELP.strip().splitlines()[1:])]
        with VerticalScroll(id="help"):
            yield Static(Text("\n".join(lines)))
