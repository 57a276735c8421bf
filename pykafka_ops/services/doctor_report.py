"""`pko doctor --report FILE.html`: one self-contained HTML file of a doctor run, the artifact a CI job keeps.

``render_report`` is pure: from a ``DoctorReport`` (and, when given, the monitor frame at the end of
the window) it returns one HTML document with inline CSS and inline SVG charts drawn here, no script
and no external asset, so it opens offline and renders the same in any browser:

* a header: cluster, time, window, polls, checks and the counts per severity;
* the findings grouped by severity, worst first: check, subject, evidence, why, fix and caveats;
* per-partition produce rates (one ``<rect>`` per partition, hot ones marked) of the topics with
  findings, or of the busiest topics when no finding names one;
* a lag trend per group with lag (a ``<polyline>`` of its total lag over the polls) and its lag per
  partition (``<rect>``).

Every chart is an ``<svg class="chart" data-chart="rates:TOPIC|lag:GROUP">`` with a ``<title>``.
All text from the cluster is HTML-escaped (``html.escape``).
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Sequence

from pykafka_ops.models.doctor import DoctorReport, Finding, Severity
from pykafka_ops.models.monitor import GroupView, MonitorFrame, TopicView

CHART_W, CHART_H, PAD = 360, 120, 24
"""Chart size in pixels and the room kept for the axis labels."""
COLORS = {Severity.ERROR: "#c62828", Severity.WARN: "#ef6c00", Severity.INFO: "#1565c0"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;
background:#fafafa}h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:24px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:14px;margin:8px 0 4px}.meta{color:#555;font-size:13px}
.counts span{display:inline-block;margin-right:12px;font-weight:600}
.finding{background:#fff;border:1px solid #ddd;border-left:6px solid #999;border-radius:4px;margin:8px 0;
padding:8px 12px}.finding.error{border-left-color:#c62828}.finding.warn{border-left-color:#ef6c00}
.finding.info{border-left-color:#1565c0}.finding .head{font-weight:600}
.finding dl{margin:4px 0;display:grid;grid-template-columns:90px 1fr;gap:2px 8px}
.finding dt{color:#666}.finding dd{margin:0}code{background:#f1f1f1;padding:1px 4px;border-radius:3px;
white-space:pre-wrap;word-break:break-all}
.charts{display:flex;flex-wrap:wrap;gap:16px}
.chart-box{background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px}
svg.chart text{font-size:10px;fill:#555}.none{color:#2e7d32;font-weight:600}.errors{color:#b71c1c}
"""


def esc(value: object) -> str:
    """``value`` as text, HTML-escaped (quotes too: it may land in an attribute)."""
    return html.escape(str(value), quote=True)


def _fmt(value: float) -> str:
    """A rate or lag for an axis label: ``1.2k``, ``35``, ``0.5``."""
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def _evidence(finding: Finding) -> str:
    """``lag=120 time_lag_s=4.2`` (unknown figures left out)."""
    return " ".join(f"{k}={v}" for k, v in finding.evidence.items() if v is not None)


def _finding_html(f: Finding) -> str:
    """One finding as a card."""
    rows = [("evidence", f"<code>{esc(_evidence(f))}</code>"), ("why", esc(f.why)),
            ("fix", f"<code>{esc(f.fix)}</code>")]
    rows += [("caveat", esc(c)) for c in f.caveats]
    body = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return (f'<div class="finding {f.severity.label}" data-check="{esc(f.check)}">'
            f'<div class="head">{esc(f.severity.name)} · {esc(f.check)} · {esc(f.subject)}</div>'
            f"<dl>{body}</dl></div>")


def bar_chart(chart_id: str, title: str, labels: Sequence[str], values: Sequence[float],
              marked: Iterable[int] = ()) -> str:
    """An SVG bar chart: one ``<rect>`` per value (at least 1 px high, so a zero still shows), the
    ``marked`` indexes in red, the largest value labelled on the axis."""
    marked = set(marked)
    top = max(values, default=0.0) or 1.0
    n = max(len(values), 1)
    slot = (CHART_W - PAD) / n
    width = max(slot * 0.8, 1.0)
    bars, ticks = [], []
    for i, (label, value) in enumerate(zip(labels, values)):
        h = max((CHART_H - 2 * PAD) * value / top, 1.0)
        x = PAD + i * slot + (slot - width) / 2
        y = CHART_H - PAD - h
        color = "#c62828" if i in marked else "#42a5f5"
        bars.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}" fill="{color}">'
                    f"<title>{esc(label)}: {esc(_fmt(value))}</title></rect>")
        if n <= 24:
            ticks.append(f'<text x="{x + width / 2:.1f}" y="{CHART_H - PAD + 12}" text-anchor="middle">'
                         f"{esc(label)}</text>")
    return _svg(chart_id, title, "".join(bars) + "".join(ticks), _fmt(top))


def sparkline(chart_id: str, title: str, values: Sequence[float]) -> str:
    """An SVG line chart of ``values`` over the polls: one ``<polyline>`` (a single value is drawn flat)."""
    points = list(values) or [0.0]
    if len(points) == 1:
        points *= 2
    top = max(points) or 1.0
    step = (CHART_W - 2 * PAD) / (len(points) - 1)
    coords = " ".join(f"{PAD + i * step:.1f},{CHART_H - PAD - (CHART_H - 2 * PAD) * v / top:.1f}"
                      for i, v in enumerate(points))
    line = (f'<polyline points="{coords}" fill="none" stroke="#ef6c00" stroke-width="2"/>'
            f'<text x="{CHART_W - PAD}" y="{CHART_H - PAD + 12}" text-anchor="end">last {esc(_fmt(points[-1]))}</text>'
            f'<text x="{PAD}" y="{CHART_H - PAD + 12}">{len(values)} polls</text>')
    return _svg(chart_id, title, line, _fmt(top))


def _svg(chart_id: str, title: str, content: str, top_label: str) -> str:
    """The chart frame: title, axes and the largest value."""
    axes = (f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{CHART_H - PAD}" stroke="#999"/>'
            f'<line x1="{PAD}" y1="{CHART_H - PAD}" x2="{CHART_W - PAD / 2}" y2="{CHART_H - PAD}" stroke="#999"/>'
            f'<text x="2" y="{PAD - 6}">{esc(top_label)}</text>')
    return (f'<div class="chart-box"><h3>{esc(title)}</h3>'
            f'<svg class="chart" data-chart="{esc(chart_id)}" xmlns="http://www.w3.org/2000/svg" '
            f'width="{CHART_W}" height="{CHART_H}" viewBox="0 0 {CHART_W} {CHART_H}" role="img">'
            f"<title>{esc(title)}</title>{axes}{content}</svg></div>")


def _finding_topics(report: DoctorReport) -> list[str]:
    """Topics named by a finding (topic, partition, or ``topic``/``topics`` evidence), in finding order."""
    names: list[str] = []
    for f in report.findings:
        found = [f.subject.name] if f.subject.kind in ("topic", "partition") else []
        found += str(f.evidence.get("topic") or f.evidence.get("topics") or "").split(",")
        names += [n for n in found if n and n not in names]
    return names


def chart_topics(report: DoctorReport, frame: MonitorFrame, limit: int = 4) -> list[TopicView]:
    """The topics whose partition rates are charted: those with findings and some rate, else the busiest."""
    by_name = {t.name: t for t in frame.topics}
    named = [by_name[n] for n in _finding_topics(report) if n in by_name and by_name[n].produce_rate]
    if not named:
        busy = [t for t in frame.topics if not t.internal and t.produce_rate]
        named = sorted(busy, key=lambda t: (-(t.produce_rate or 0.0), t.name))
    return named[:limit]


def chart_groups(frame: MonitorFrame, limit: int = 6) -> list[GroupView]:
    """The groups with lag (now or during the window), the most behind first."""
    lagging = [g for g in frame.groups if g.total_lag > 0 or any(v > 0 for v in g.lag_history)]
    return sorted(lagging, key=lambda g: (-g.total_lag, g.group_id))[:limit]


def charts_html(report: DoctorReport, frame: MonitorFrame) -> str:
    """The rate and lag sections."""
    rates = []
    for t in chart_topics(report, frame):
        parts = sorted(t.partitions, key=lambda p: p.partition)
        rates.append(bar_chart(f"rates:{t.name}", f"{t.name}: produce rate per partition (records/s)",
                               [str(p.partition) for p in parts], [p.produce_rate or 0.0 for p in parts],
                               [i for i, p in enumerate(parts) if p.hot]))
    lags = []
    for g in chart_groups(frame):
        lags.append(sparkline(f"lag:{g.group_id}", f"{g.group_id}: total lag over the window", g.lag_history))
        parts = sorted(g.partitions, key=lambda p: (p.topic, p.partition))
        if parts:
            lags.append(bar_chart(f"partition-lag:{g.group_id}", f"{g.group_id}: lag per partition (records)",
                                  [f"{p.topic}-{p.partition}" if len(parts) <= 6 else str(p.partition)
                                   for p in parts], [float(p.lag or 0) for p in parts]))
    out = ['<h2>Produce rates</h2>', f'<div class="charts">{"".join(rates)}</div>' if rates
           else '<p class="meta">no topic was written to during the window</p>',
           '<h2>Consumer lag</h2>', f'<div class="charts">{"".join(lags)}</div>' if lags
           else '<p class="meta">no group has lag</p>']
    return "\n".join(out)


def render_report(report: DoctorReport, frame: MonitorFrame | None = None) -> str:
    """The whole HTML document (see the module docstring); without ``frame`` it has no charts."""
    counts = {s: sum(f.severity is s for f in report.findings) for s in Severity}
    taken = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.taken_at))
    count_html = "".join(f'<span style="color:{COLORS[s]}" data-severity="{s.label}">{n} {s.label}</span>'
                         for s, n in sorted(counts.items(), reverse=True))
    body = [f"<h1>pko doctor: {esc(report.bootstrap_servers)}</h1>",
            (f'<p class="meta">taken {esc(taken)} · window {report.window_s:g} s · {report.polls} polls · '
             f"{len(report.checks)} checks</p>"), f'<p class="counts">{count_html}</p>', "<h2>Findings</h2>"]
    if not report.findings:
        body.append('<p class="none">no findings</p>')
    for severity in sorted(Severity, reverse=True):
        found = [f for f in report.findings if f.severity is severity]
        if found:
            body.append(f'<h3 class="severity">{severity.name} ({len(found)})</h3>')
            body += [_finding_html(f) for f in found]
    if report.skipped:
        body.append('<p class="meta">skipped: ' + "; ".join(f"{esc(c)} ({esc(w)})" for c, w in report.skipped) + "</p>")
    if report.errors:
        body.append('<ul class="errors">' + "".join(f"<li>{esc(e)}</li>" for e in report.errors) + "</ul>")
    if frame is not None:
        body.append(charts_html(report, frame))
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>pko doctor: {esc(report.bootstrap_servers)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
