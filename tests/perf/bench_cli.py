"""`pko perf produce` / `pko perf consume` benchmark: our node (on disk) against Tansu (memory), in
the same run, driving the real `pko` binary as a user would.

Not a test: run it by hand and read the figures.

    python tests/perf/bench_cli.py            # 1 M × 100 B and 200 k × 1 KiB, acks=1 and acks=all
    python tests/perf/bench_cli.py --quick    # a tenth of the records
    python tests/perf/bench_cli.py --json out.json

Every workload gets its own 6-partition topic; `pko perf produce` runs with librdkafka's defaults
plus ``acks``, then `pko perf consume` reads the same records back (assigned partitions). Figures
are pko's own ``--output json`` summaries, plus the broker process's CPU seconds during the phase.
The client and the broker share the machine, so a busy machine lowers both brokers' figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from bench_broker import create_topic, our_node, tansu

_SCRIPT = Path(sys.executable).parent / "pko"
PKO = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "commands.main"]
#: (records, record size in bytes) of the issue's workloads.
WORKLOADS = ((1_000_000, 100), (200_000, 1024))
ACKS = ("1", "all")


@dataclass
class Result:
    """One phase against one broker: pko's JSON summary and the broker's CPU seconds."""

    broker: str
    phase: str
    records: int
    size: int
    acks: str
    summary: dict[str, Any]
    broker_cpu_s: float

    @property
    def records_per_s(self) -> float:
        """Records per second as pko measured them."""
        return self.summary["records_per_sec"] if self.phase == "produce" else self.summary["nmsg_sec"]

    @property
    def mb_per_s(self) -> float:
        """MB (2^20 bytes) per second as pko measured them."""
        return self.summary["mb_per_sec"] if self.phase == "produce" else self.summary["mb_sec"]


def pko_json(*args: str) -> dict[str, Any]:
    """Run `pko … --output json` and return its JSON; fail loudly with its stderr."""
    done = subprocess.run([*PKO, *args, "--output", "json"], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"pko {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return json.loads(done.stdout)


@contextmanager
def cpu_seconds(proc: psutil.Process, out: list[float]) -> Iterator[None]:
    """Append the user+system CPU seconds ``proc`` used during the block to ``out``."""
    before = sum(proc.cpu_times()[:2])
    yield
    out.append(sum(proc.cpu_times()[:2]) - before)


def run(broker: str, bootstrap: str, proc: psutil.Process, scale: float) -> list[Result]:
    """Every workload against one broker: produce, then consume the same records."""
    results = []
    for records, size in WORKLOADS:
        count = max(1, int(records * scale))
        for acks in ACKS:
            topic = f"bench-{size}-{acks}"
            create_topic(bootstrap, topic)
            cpu: list[float] = []
            with cpu_seconds(proc, cpu):
                produced = pko_json("perf", "produce", "-b", bootstrap, "--topic", topic, "--num-records",
                                    str(count), "--record-size", str(size), "--throughput", "-1",
                                    "--producer-props", f"acks={acks}")
            results.append(Result(broker, "produce", count, size, acks, produced, cpu[-1]))
            with cpu_seconds(proc, cpu):
                consumed = pko_json("perf", "consume", "-b", bootstrap, "--topic", topic, "--messages", str(count),
                                    "--timeout", "30000")
            results.append(Result(broker, "consume", count, size, acks, consumed, cpu[-1]))
            print(f"{broker:6} {count:>9} × {size:>4} B acks={acks:3}  produce {results[-2].records_per_s:>10,.0f} "
                  f"rec/s  consume {results[-1].records_per_s:>10,.0f} rec/s", file=sys.stderr)
    return results


def report(results: list[Result]) -> str:
    """A table: one row per workload and phase, our figures, Tansu's, and the ratio."""
    by_key = {(r.broker, r.phase, r.size, r.acks): r for r in results}
    lines = [f"{'workload':28} {'phase':8} {'pko rec/s':>11} {'MB/s':>7} {'p50/p99 ms':>11} {'cpu s':>6}   "
             f"{'tansu rec/s':>11} {'MB/s':>7} {'p50/p99 ms':>11} {'cpu s':>6}   {'pko/tansu':>9}"]
    for _, size in WORKLOADS:
        for acks in ACKS:
            for phase in ("produce", "consume"):
                ours, theirs = by_key.get(("pko", phase, size, acks)), by_key.get(("tansu", phase, size, acks))
                if ours is None or theirs is None:
                    continue
                cells = []
                for r in (ours, theirs):
                    latency = (f"{r.summary['p50_ms']:.0f}/{r.summary['p99_ms']:.0f}" if phase == "produce" else "-")
                    cells.append(f"{r.records_per_s:>11,.0f} {r.mb_per_s:>7.1f} {latency:>11} {r.broker_cpu_s:>6.2f}")
                workload = f"{ours.records:,} × {size} B acks={acks}"
                lines.append(f"{workload:28} {phase:8} {cells[0]}   {cells[1]}   "
                             f"{ours.records_per_s / theirs.records_per_s:>9.2f}")
    return "\n".join(lines)


def main() -> None:
    """Run both brokers, print the table (and write JSON when asked)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the records")
    parser.add_argument("--json", type=Path, help="also write every result as JSON here")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="pko-bench-cli-") as tmp:
        workdir = Path(tmp)
        with our_node(workdir) as (bootstrap, proc):
            results += run("pko", bootstrap, proc, scale)
        with tansu(workdir) as (bootstrap, proc):
            results += run("tansu", bootstrap, proc, scale)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
