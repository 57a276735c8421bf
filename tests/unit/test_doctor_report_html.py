"""`pko doctor --report`'s HTML on hand-built data: findings grouped by severity and escaped, one
chart per busy topic and per lagging group with drawn elements, "no findings" when there are none."""

from __future__ import annotations

import re
from dataclasses import replace

from test_doctor_checks import B, NOW, group, make_input, row, topic

from pykafka_ops.models.doctor import DoctorReport, Finding, Severity, Subject
from pykafka_ops.services.doctor_report import render_report


def report(*findings: Finding) -> DoctorReport:
    return DoctorReport(B, NOW, 2.0, 4, findings, ("hot-partitions", "stalled-groups"))


def svg(document: str, chart: str) -> str:
    """The ``<svg>`` element of ``chart``."""
    match = re.search(rf'<svg class="chart" data-chart="{re.escape(chart)}".*?</svg>', document, re.S)
    assert match, f"no chart {chart}"
    return match.group(0)


def test_findings_are_grouped_escaped_and_charted() -> None:
    hot = Finding("hot-partition", Severity.WARN, Subject("partition", "orders", 0),
                  {"rate": 90.0, "max_over_mean": 2.7}, "one partition takes <most> writes",
                  "pko skew orders --what-if-key '{key}:{offset%8}'", ("keys & order <change>",))
    rf = Finding("replication-factor", Severity.ERROR, Subject("topic", "pay<script>"), {"replication_factor": 1},
                 "one replica", "pko topics --alter", ())
    stuck = group("stuck<g>", rows=(row("stuck<g>", "orders", 0, 40), row("stuck<g>", "orders", 1, 5)))
    data = make_input((topic("orders", [90.0, 10.0, 0.0]), topic("quiet", [1.0, 1.0])),
                      (replace(stuck, lag_history=(10.0, 25.0, 45.0)),))
    document = render_report(report(hot, rf), data.frame)

    assert document.startswith("<!DOCTYPE html>") and "<script" not in document and "http://" not in document.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "pay&lt;script&gt;" in document and "keys &amp; order &lt;change&gt;" in document
    assert "one partition takes &lt;most&gt; writes" in document and "{key}:{offset%8}" in document
    assert document.index("ERROR (1)") < document.index("WARN (1)")
    assert '1 error</span>' in document and '1 warn</span>' in document

    rates = svg(document, "rates:orders")
    assert rates.count("<rect") == 3 and "<title>orders: produce rate per partition" in rates
    assert 'data-chart="rates:quiet"' not in document  # a finding names orders: only it is charted
    trend = svg(document, "lag:stuck&lt;g&gt;")
    assert trend.count("<polyline") == 1 and "last 45" in trend
    assert svg(document, "partition-lag:stuck&lt;g&gt;").count("<rect") == 2


def test_no_findings_charts_the_busiest_topics() -> None:
    data = make_input((topic("a", [5.0, 5.0]), topic("b", [50.0, 1.0, 1.0]), topic("idle", [0.0, 0.0])))
    document = render_report(report(), data.frame)
    assert '<p class="none">no findings</p>' in document
    assert document.index('data-chart="rates:b"') < document.index('data-chart="rates:a"')
    assert 'data-chart="rates:idle"' not in document and "no group has lag" in document


def test_without_a_frame_there_are_no_charts() -> None:
    document = render_report(report())
    assert "no findings" in document and "<svg" not in document
