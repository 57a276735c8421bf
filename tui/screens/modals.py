"""Small dialogs: the refresh interval (``i``) and the topic to tail (``5``)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.validation import Number
from textual.widgets import Input, Label, OptionList


class IntervalModal(ModalScreen[float | None]):
    """Ask for a refresh interval in seconds (0 = manual); returns it, or None when dismissed."""

    BINDINGS = [Binding("escape", "dismiss", "Cancel")]

    def __init__(self, current: float) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Refresh every … seconds (0 = manual, r refreshes)")
            yield Input(f"{self.current:g}", validators=[Number(minimum=0)], id="interval")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.validation_result is None or event.validation_result.is_valid:
            self.dismiss(float(event.value))


class TopicPicker(ModalScreen[str | None]):
    """Pick a topic among ``topics`` (typing filters); returns it, or None when dismissed."""

    BINDINGS = [Binding("escape", "dismiss", "Cancel")]

    def __init__(self, topics: Sequence[str]) -> None:
        super().__init__()
        self.topics = list(topics)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Tail which topic?")
            yield Input(placeholder="type to filter", id="topic-filter")
            yield OptionList(*self.topics, id="topic-list")

    def on_input_changed(self, event: Input.Changed) -> None:
        wanted = event.value.strip().lower()
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([t for t in self.topics if wanted in t.lower()])

    def on_input_submitted(self) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            self.dismiss(str(options.get_option_at_index(options.highlighted or 0).prompt))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(str(event.option.prompt))
