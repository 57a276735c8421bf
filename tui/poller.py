"""Polling for `pko monitor`: a timer starts a poll in one exclusive worker; the frame lands in a reactive.

``set_interval(refresh_s)`` ticks; a tick starts ``services.poll()`` in a worker unless polling is
paused or a poll is still running (ticks are skipped, never queued, as kaskade's refresh
coordinator does). ``refresh_s = 0`` means manual: only ``r`` polls. Poll errors and the
frame's partial errors become notifications, never a crash; a group whose status changes to
WARN or worse, and a topic that gets under-replicated (WARN) or offline (ERR) partitions
(``frame.new_alerts``), ring the bell and notify, unless alerts are off.
"""

from __future__ import annotations

import time

from textual import work
from textual.app import App
from textual.reactive import reactive
from textual.timer import Timer

from pykafka_ops.models.monitor import MonitorFrame, Status
from pykafka_ops.services.monitor import MonitorServices


class PollingApp(App[None]):
    """An app that polls ``services`` every ``refresh_s`` seconds into ``frame``."""

    frame: reactive[MonitorFrame | None] = reactive(None, always_update=True)
    paused: reactive[bool] = reactive(False)
    alerts: reactive[bool] = reactive(True)
    refresh_s: reactive[float] = reactive(2.0)

    def __init__(self, services: MonitorServices, refresh_s: float = 2.0, alerts: bool = True) -> None:
        super().__init__()
        self.services = services
        self._timer: Timer | None = None
        self._polling = False
        self._shown_errors: tuple[str, ...] = ()
        self.set_reactive(PollingApp.refresh_s, refresh_s)
        self.set_reactive(PollingApp.alerts, alerts)

    def start_polling(self) -> None:
        """The first poll now, then every ``refresh_s`` seconds."""
        self.poll_now()
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self.refresh_s > 0:
            self._timer = self.set_interval(self.refresh_s, self._tick, name="poll")

    def watch_refresh_s(self) -> None:
        """A new interval restarts the timer."""
        if self.is_running:
            self._schedule()
        self.show_status()

    def watch_paused(self) -> None:
        self.show_status()

    def watch_alerts(self) -> None:
        self.show_status()

    def _tick(self) -> None:
        if not self.paused:
            self.poll_now()

    def poll_now(self) -> bool:
        """Start a poll unless one is running; whether one was started."""
        if self._polling:
            return False
        self._polling = True
        self._poll()
        return True

    @property
    def polling(self) -> bool:
        """A poll is running."""
        return self._polling

    @work(exclusive=True, group="poll")
    async def _poll(self) -> None:
        try:
            frame = await self.services.poll()
        except Exception as exc:  # the cluster went away, a bad answer …: say so and keep the last frame
            self.notify(str(exc) or type(exc).__name__, title="poll failed", severity="error")
            return
        finally:
            self._polling = False
        self.frame = frame
        self._report(frame)
        self.show_status()

    def _report(self, frame: MonitorFrame) -> None:
        """Notify new partial errors and, with alerts on, status changes and new replication
        alerts (with the bell)."""
        fresh = [e for e in frame.errors if e not in self._shown_errors]
        self._shown_errors = frame.errors
        for error in fresh:
            self.notify(error, title="partial poll", severity="warning")
        if self.alerts and (frame.changes or frame.new_alerts):
            self.bell()
            for change in frame.changes:
                self.notify(f"{change.group_id}: {change.reason}", title=change.status.name,
                            severity="error" if change.status >= Status.STALL else "warning")
            for alert in frame.new_alerts:
                self.notify(alert.message, title=alert.level,
                            severity="error" if Status[alert.level] >= Status.STALL else "warning")

    def show_status(self) -> None:
        """Bootstrap servers, refresh, last poll and alerts in the header's sub-title."""
        frame = self.frame
        parts = [self.services.bootstrap_servers,
                 "PAUSED" if self.paused else (f"every {self.refresh_s:g}s" if self.refresh_s > 0 else "manual (r)")]
        if frame is not None:
            parts.append(f"updated {time.strftime('%H:%M:%S', time.localtime(frame.taken_at))}")
            parts.append(f"poll {frame.poll} ({frame.elapsed_s * 1000:.0f} ms)")
        parts.append("alerts on" if self.alerts else "alerts off")
        self.sub_title = " · ".join(parts)
