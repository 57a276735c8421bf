"""`pko doctor --report FILE.html` on a real node with a hot partition and a stalled group, the report
rendered by headless Chromium: the findings' text is in the rendered DOM, every chart has drawn
``<rect>``/``<polyline>`` elements, and a screenshot shows the bars' and the lag line's colours; an
unwritable ``--report`` path is one line on stderr and exit 1.

Without ``chromium`` the test skips, except in CI (``CI`` set: ``.ci/run`` installs it) where it fails.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import threading
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from confluent_kafka import Producer
from group_members import GROUPS_YAML, create_topic, unique
from test_doctor import commit
from typer.testing import CliRunner

from cluster.pytest_plugin import start_cluster
from commands.main import app

BAR, LINE = (0x42, 0xA5, 0xF5), (0xEF, 0x6C, 0x00)
"""The colours of ``doctor_report``'s bars and lag line."""


class Charts(HTMLParser):
    """Per ``svg.chart`` (by ``data-chart``), the drawn elements it holds; and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, dict[str, int]] = {}
        self.current: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "svg" and "chart" in (values.get("class") or "").split():
            self.current = values.get("data-chart") or ""
            self.charts[self.current] = {"rect": 0, "polyline": 0}
        elif self.current is not None and tag in ("rect", "polyline"):
            drawn = values.get("points") if tag == "polyline" else values.get("height")
            self.charts[self.current][tag] += bool(drawn)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.current = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def chromium() -> str:
    """The browser, or a skip (a failure in CI)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI must render the report (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def headless(browser: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", *argv], capture_output=True,
                          text=True, timeout=60, check=True)


def pixels(png: bytes) -> Iterator[tuple[int, int, int]]:
    """The RGB pixels of an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes), stdlib only."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 4
    while pos < len(png):
        (length,), kind = struct.unpack(">I", png[pos:pos + 4]), png[pos + 4:pos + 8]
        chunk = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and color in (2, 6) and chunk[12] == 0
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw, stride, previous = zlib.decompress(idat), width * channels, bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        previous = line
        for x in range(0, stride, channels):
            yield line[x], line[x + 1], line[x + 2]


def write_unevenly(bootstrap: str, topic: str, stop: threading.Event) -> None:
    """About 300 records/s into partition 0 and 15/s into partitions 1 and 2, until ``stop``."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    while not stop.is_set():
        for i in range(30):
            producer.produce(topic, key=b"k%d" % i, value=b"v", partition=0)
        producer.produce(topic, key=b"a", value=b"v", partition=1)
        producer.produce(topic, key=b"b", value=b"v", partition=2)
        producer.poll(0)
        stop.wait(0.1)
    producer.flush(10)


def test_the_html_report_renders_its_findings_and_charts(tmp_path: Path) -> None:
    browser = chromium()
    hot, stalled = unique("hot"), unique("stalled")
    with start_cluster(GROUPS_YAML, tmp_path / "cluster") as cluster:
        b = cluster.bootstrap_servers
        create_topic(b, hot, 3)
        commit(b, stalled, hot, {0: 0, 1: 0, 2: 0})  # an Empty group, never consuming what follows
        stop = threading.Event()
        writer = threading.Thread(target=write_unevenly, args=(b, hot, stop), daemon=True)
        writer.start()
        try:
            out = tmp_path / "out.html"
            result = CliRunner().invoke(app, ["doctor", "-b", b, "--window", "1", "--fail-on", "warn",
                                              "--report", str(out)], catch_exceptions=False)
            bad = CliRunner().invoke(app, ["doctor", "-b", b, "--window", "0.2", "--polls", "2",
                                           "--report", str(tmp_path / "missing" / "out.html")])
        finally:
            stop.set()
            writer.join(15)
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1, bad.stderr
    assert bad.stderr.startswith(f"pko: cannot write the report to {tmp_path / 'missing' / 'out.html'}")
    assert result.exit_code == 3, result.stdout + result.stderr  # written although a finding fails the run
    assert f"report written to {out}" in result.stderr

    dom = headless(browser, "--dump-dom", out.as_uri()).stdout
    parsed = Charts()
    parsed.feed(dom)
    text = " ".join(" ".join(parsed.text).split())
    assert f"pko doctor: {b}" in text
    assert f"WARN · hot-partition · partition {hot}-0" in text and f"pko skew {hot} -b {b}" in text
    assert f"WARN · stalled-group · group {stalled}" in text and "--reset-offsets --to-latest" in text
    assert parsed.charts, dom[:2000]
    for chart, drawn in parsed.charts.items():
        assert drawn["rect"] + drawn["polyline"] > 0, chart
    assert parsed.charts[f"rates:{hot}"]["rect"] == 3
    assert parsed.charts[f"lag:{stalled}"]["polyline"] == 1
    assert parsed.charts[f"partition-lag:{stalled}"]["rect"] == 3

    shot = tmp_path / "out.png"
    headless(browser, f"--screenshot={shot}", "--window-size=1000,1400", "--hide-scrollbars", out.as_uri())
    counts = {BAR: 0, LINE: 0}
    for rgb in pixels(shot.read_bytes()):
        if rgb in counts:
            counts[rgb] += 1
    assert counts[BAR] > 500 and counts[LINE] > 50, counts  # the bars and the lag line were painted
