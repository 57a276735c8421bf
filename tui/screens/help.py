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


def reflow(doc: str) -> list[str]:
    """A docstring's paragraphs and ``- `` items as single lines (the modal wraps them)."""
    lines: list[str] = []
    for raw in doc.strip().splitlines()[1:]:
        line = raw.strip()
        if not line or line.startswith("- ") or not lines or not lines[-1]:
            lines.append(line)
        else:
            lines[-1] += " " + line
    return lines


STATUS_HELP = reflow(status.__doc__ or "")


class HelpScreen(ModalScreen[None]):
    """A modal listing ``keys`` (key, description) and the status rules; any of Escape, ? or q closes it."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, keys: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        width = max((len(k) for k, _d in self.keys), default=1)
        lines = ["Keys", *(f"  {key:<{width}}  {description}" for key, description in self.keys), "",
                 "Status", *(f"  {line}" for line in STATUS_HELP)]
        with VerticalScroll(id="help"):
            yield Static(Text("\n".join(lines)))
