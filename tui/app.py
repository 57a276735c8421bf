"""``MonitorApp``: the `pko monitor` TUI. It reads data only through the injected ``MonitorServices``.

Modes (each its own screen stack): ``1`` overview, ``2`` groups, ``3`` topics, ``4`` brokers;
``5`` tails a topic; ``d`` opens the Doctor screen from any screen. Details, Doctor, tail, skew
report, help and dialogs are pushed on top. Polling (``tui.poller``) fills ``frame``; every
screen redraws from it.
"""

from __future__ import annotations

import gc

from textual.binding import Binding
from textual.screen import ModalScreen

from pykafka_ops.services.monitor import MonitorServices
from tui.poller import PollingApp
from tui.screens.brokers import BrokersScreen
from tui.screens.doctor import DoctorScreen
from tui.screens.group_detail import GroupDetailScreen
from tui.screens.groups import GroupsScreen
from tui.screens.help import HelpScreen
from tui.screens.modals import IntervalModal, TopicPicker
from tui.screens.overview import OverviewScreen
from tui.screens.tail import TailScreen
from tui.screens.topic_detail import TopicDetailScreen
from tui.screens.topics import TopicsScreen


#: The collector's first-generation threshold while the app runs (Python's default is 700). A poll
#: of a big cluster allocates hundreds of thousands of short-lived objects; at the default, the
#: young collections that this triggers cost about as much as the poll's own work.
GC_THRESHOLD = 20_000


class MonitorApp(PollingApp):
    """Live cluster, topic and consumer-group monitor. ``refresh_s`` 0 polls only on ``r``."""

    CSS_PATH = "monitor.tcss"
    TITLE = "pko monitor"
    MODES = {"overview": OverviewScreen, "groups": GroupsScreen, "topics": TopicsScreen, "brokers": BrokersScreen}
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("r", "refresh", "Refresh"),
        Binding("p", "pause", "Pause"),
        Binding("1", "switch_mode('overview')", "Overview"),
        Binding("2", "switch_mode('groups')", "Groups"),
        Binding("3", "switch_mode('topics')", "Topics"),
        Binding("4", "switch_mode('brokers')", "Brokers"),
        Binding("5", "tail", "Tail", show=False),
        Binding("d", "doctor", "Doctor", show=False),
        Binding("i", "interval", "Refresh interval", show=False),
        Binding("a", "alerts", "Alerts on/off", show=False),
    ]

    def __init__(self, services: MonitorServices, refresh_s: float = 2.0, alerts: bool = True) -> None:
        super().__init__(services, refresh_s, alerts)
        self._gc_threshold = gc.get_threshold()

    def on_mount(self) -> None:
        gc.set_threshold(GC_THRESHOLD, *self._gc_threshold[1:])
        self.switch_mode("overview")
        self.show_status()
        self.start_polling()

    def on_unmount(self) -> None:
        gc.set_threshold(*self._gc_threshold)

    def action_refresh(self) -> None:
        """Poll now (ignored while a poll runs: its frame is on the way)."""
        self.poll_now()

    def action_pause(self) -> None:
        """Stop or restart periodic polling (``r`` still polls)."""
        self.paused = not self.paused

    def action_alerts(self) -> None:
        """Bell and notifications on status changes, on or off."""
        self.alerts = not self.alerts
        self.notify(f"alerts {'on' if self.alerts else 'off'}")

    def action_interval(self) -> None:
        """Ask for a new refresh interval."""
        def chosen(seconds: float | None) -> None:
            if seconds is not None:
                self.refresh_s = seconds

        self.push_screen(IntervalModal(self.refresh_s), chosen)

    def action_help(self) -> None:
        """Our keys: those of the current screen's classes, then the app's (not the widgets' own)."""
        owners = [c for c in type(self.screen).__mro__ if c.__module__.startswith("tui.")] + [MonitorApp]
        bindings = [b for c in owners for b in c.__dict__.get("BINDINGS", ()) if isinstance(b, Binding)]
        keys = [(self.get_key_display(b), b.description) for b in bindings if b.description]
        self.push_screen(HelpScreen(list(dict.fromkeys(keys))))

    def action_tail(self) -> None:
        """Pick a topic and tail it."""
        topics = [t.name for t in self.frame.topics] if self.frame is not None else []

        def chosen(topic: str | None) -> None:
            if topic:
                self.open_tail(topic)

        self.push_screen(TopicPicker(topics), chosen)

    def action_doctor(self) -> None:
        """Push the Doctor screen (unless it is shown, or a dialog is open)."""
        if not isinstance(self.screen, (DoctorScreen, ModalScreen)):
            self.push_screen(DoctorScreen())

    def open_group(self, group_id: str) -> None:
        """Push the detail screen of a group."""
        self.push_screen(GroupDetailScreen(group_id))

    def open_topic(self, topic: str) -> None:
        """Push the detail screen of a topic."""
        self.push_screen(TopicDetailScreen(topic))

    def open_tail(self, topic: str) -> None:
        """Push a live tail of a topic."""
        self.push_screen(TailScreen(topic))
