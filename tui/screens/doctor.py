"""Doctor: `pko doctor`'s findings over the current frame, worst first, redrawn at every poll.

The findings come from ``services.doctor_frame`` (the checks of `pko doctor` over what the poll
read; no extra reads). The table shows SEVERITY, CHECK, SUBJECT, EVIDENCE and FIX; the
highlighted finding's why, fix and caveats are shown below it; a last line names what only
`pko doctor` checks. ``d`` opens it from any screen, Escape goes back. Severity colours come
from ``monitor.tcss`` (the table's ``findings--*`` component classes, the ``-error`` / ``-warn``
/ ``-info`` classes of the summary and detail).
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from pykafka_ops.models.doctor import Finding, Severity
from pykafka_ops.models.monitor import MonitorFrame
from pykafka_ops.services.doctor_frame import FrameDiagnosis, diagnose_frame
from pykafka_ops.services.monitor_rows import Cell
from tui.screens.base import MonitorScreen
from tui.widgets.lag_table import LagTable

FINDING_COLUMNS = ("SEVERITY", "CHECK", "SUBJECT", "EVIDENCE", "FIX")
SEVERITY_CLASSES = tuple(f"-{s.label}" for s in Severity)


def evidence_text(finding: Finding) -> str:
    """The figures as ``name=value`` pairs (``-`` for unknown)."""
    return " ".join(f"{name}={'-' if value is None else value}" for name, value in finding.evidence.items())


def finding_rows(findings: tuple[Finding, ...]) -> tuple[tuple[str, tuple[Cell, ...]], ...]:
    """(key, cells) per finding; the key (check and subject, numbered when repeated) stays the
    same across polls, so the cursor stays on its finding."""
    seen: dict[str, int] = {}
    rows = []
    for f in findings:
        key = f"{f.check} {f.subject}"
        seen[key] = seen.get(key, 0) + 1
        rows.append((key if seen[key] == 1 else f"{key} #{seen[key]}",
                     (f.severity.name, f.check, str(f.subject), evidence_text(f), f.fix)))
    return tuple(rows)


def detail_text(finding: Finding) -> str:
    """Why the finding matters, its fix and Kafka's caveats on it, one per line."""
    return "\n".join([f"{finding.severity.name} {finding.check} · {finding.subject}", f"why     {finding.why}",
                      f"fix     {finding.fix}", *(f"caveat  {c}" for c in finding.caveats)])


class FindingsTable(LagTable):
    """A ``LagTable`` whose SEVERITY cells take their style from ``findings--<severity>`` in the CSS."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"findings--{s.label}" for s in Severity}

    def _cell(self, value: Cell, status: bool, variables: dict[str, str]) -> Text:  # type: ignore[override]
        if isinstance(value, str) and value in Severity.__members__:
            return Text(value, style=self.get_component_rich_style(f"findings--{value.lower()}", partial=True))
        return LagTable._cell(value, status, variables)


class DoctorScreen(MonitorScreen):
    """The findings of `pko doctor`'s checks over the current frame."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]
    AUTO_FOCUS = "FindingsTable"

    def __init__(self) -> None:
        super().__init__()
        self._shown: dict[str, Finding] = {}
        self.diagnosis: FrameDiagnosis | None = None

    def body(self) -> ComposeResult:
        yield Static(id="doctor-summary")
        yield FindingsTable(FINDING_COLUMNS, id="findings")
        yield Static(id="finding-detail")
        yield Static(id="not-checked")

    def show(self, frame: MonitorFrame) -> None:
        self.diagnosis = diagnosis = diagnose_frame(self.monitor.services, frame)
        findings = diagnosis.findings
        rows = finding_rows(findings)
        self._shown = {key: f for (key, _cells), f in zip(rows, findings)}
        table = self.query_one("#findings", FindingsTable)
        table.entries = rows
        counts = ", ".join(f"{n} {s.label}" for s in reversed(Severity)
                           if (n := sum(f.severity is s for f in findings)))
        table.border_title = f"Doctor · {len(findings)} finding{'s' if len(findings) != 1 else ''}"
        summary = self.query_one("#doctor-summary", Static)
        summary.update(Text(f"{counts or 'no findings'} · rates over {diagnosis.window_s:g} s · poll {frame.poll}"))
        self._severity_class(summary, max((f.severity for f in findings), default=None))
        self.query_one("#not-checked", Static).update(
            Text(f"not checked here: {', '.join(diagnosis.not_checked)}: run pko doctor"))
        self._detail(table.cursor_key)

    @staticmethod
    def _severity_class(widget: Static, severity: Severity | None) -> None:
        widget.remove_class(*SEVERITY_CLASSES)
        if severity is not None:
            widget.add_class(f"-{severity.label}")

    def _detail(self, key: str | None) -> None:
        finding = self._shown.get(key or "")
        detail = self.query_one("#finding-detail", Static)
        detail.update(Text(detail_text(finding)) if finding else Text("no findings" if not self._shown else ""))
        self._severity_class(detail, finding.severity if finding else None)

    def on_lag_table_highlighted(self, event: LagTable.Highlighted) -> None:
        self._detail(event.key)
