"""Reassignment benchmark (issue 20 item 3): how fast `pko reassign --execute` moves a partition,
without a throttle and with one, and how close the throttled move stays to its limit.

Not a test: run it by hand and read the figures (pytest collects only test_*.py files).

    python tests/perf/bench_reassign.py                       # ≈ 1 GB per move, 2-4 minutes
    python tests/perf/bench_reassign.py --mb 128 --throttle-mb 8
    python tests/perf/bench_reassign.py --json out.json

Three combined nodes (cluster.pytest_plugin.start_cluster) on free 127.0.0.1 ports in a temp
dir. Per scenario a fresh topic of one partition with replicas [1, 2] is filled with ``--mb`` MB
(1 KiB records, acks=all, bench_broker.produce), then the real `pko reassign --execute` moves it
to [2, 3] (``--throttle`` bytes/s on the throttled run) and `pko reassign --verify` is polled
until it reports the move completed (and clears the throttles). Figures: seconds from --execute
to "completed"; MB/s over the bytes of the leader's log (``mb``: its .log files, batch headers
included; the producer is idempotent, so retries under load add no duplicates; ``produced_mb``:
the values sent); for the throttled run, the steady rate broker 3's log grew at between 10 % and 90 % of the
size (leaving out the first fetch, which a quota window lets through, and the tail) against the
throttle. One JSON line per scenario, then a table.

Measured (2 shared cores, 1 GiB produced, idempotent producer): unthrottled 1.08 GB moved in 6.5 s
(167 MB/s, 218 steady); --throttle 25 MB/s: 1.08 GB in 45.5 s, steady 24.87 MB/s (0.99 of the throttle).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import produce
from bench_replication import create_topic, log_bytes

from cluster.pytest_plugin import RunningCluster, start_cluster, wait_until

PKO = str(Path(sys.executable).parent / "pko")
RECORD_SIZE = 1024
YAML = """\
cluster: {name: bench-reassign}
nodes:
  - {id: 1}
  - {id: 2}
  - {id: 3}
broker:
  auto.create.topics.enable: false
"""


def pko_reassign(cluster: RunningCluster, *args: str) -> str:
    """The real `pko reassign` binary; its stdout (a non-zero exit raises with its stderr)."""
    done = subprocess.run([PKO, "reassign", "-b", cluster.bootstrap_servers, *args], capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pko reassign {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def move(cluster: RunningCluster, workdir: Path, label: str, mb: int, throttle: int | None) -> dict[str, Any]:
    """Fill a fresh partition on [1, 2] with ``mb`` MB, move it to [2, 3]; the figures."""
    topic = f"bench-reassign-{label}"
    create_topic(cluster.bootstrap_servers, topic, assignment=[[1, 2]])
    records = mb * 1024 * 1024 // RECORD_SIZE
    produce(cluster.bootstrap_servers, topic, records, RECORD_SIZE, "all", enable_idempotence=True)
    total = log_bytes(cluster, 1, topic, 0)
    plan = workdir / f"{label}.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [2, 3]}]}))
    samples: list[tuple[float, int]] = []
    started = time.monotonic()
    pko_reassign(cluster, "--execute", "--reassignment-json-file", str(plan),
                 *(["--throttle", str(throttle)] if throttle is not None else []))

    def completed() -> bool:
        samples.append((time.monotonic() - started, log_bytes(cluster, 3, topic, 0)))
        return "is completed." in pko_reassign(cluster, "--verify", "--reassignment-json-file", str(plan))

    wait_until(completed, max(600.0, 4 * total / (throttle or 50e6)), f"{topic} moved to [2, 3]")
    elapsed = time.monotonic() - started
    figures: dict[str, Any] = {"scenario": label, "produced_mb": round(records * RECORD_SIZE / 1e6, 1),
                               "mb": round(total / 1e6, 1), "throttle_bytes_per_s": throttle,
                               "move_s": round(elapsed, 2), "mb_per_s": round(total / 1e6 / elapsed, 2)}
    steady = [(t, b) for t, b in samples if 0.1 * total <= b <= 0.9 * total]
    if len(steady) >= 2 and steady[-1][0] > steady[0][0]:
        rate = (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0])
        figures["steady_mb_per_s"] = round(rate / 1e6, 2)
        if throttle:
            figures["steady_to_throttle"] = round(rate / throttle, 2)
    print(json.dumps(figures), flush=True)
    return figures


def table(results: list[dict[str, Any]]) -> None:
    print(f"\n{'scenario':<12} {'MB':>7} {'throttle MB/s':>13} {'move s':>8} {'MB/s':>7} {'steady MB/s':>11} "
          f"{'steady/throttle':>15}")
    for r in results:
        throttle = f"{r['throttle_bytes_per_s'] / 1e6:.1f}" if r["throttle_bytes_per_s"] else "-"
        print(f"{r['scenario']:<12} {r['mb']:>7.1f} {throttle:>13} {r['move_s']:>8.2f} {r['mb_per_s']:>7.2f} "
              f"{r.get('steady_mb_per_s', '-'):>11} {r.get('steady_to_throttle', '-'):>15}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=1024, help="MB in the partition moved (default 1024)")
    parser.add_argument("--throttle-mb", type=float, default=25.0, help="throttle of the throttled move, MB/s")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    throttle = int(args.throttle_mb * 1e6)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-reassign-") as tmp, start_cluster(YAML, Path(tmp) / "c") as cluster:
        results.append(move(cluster, Path(tmp), "unthrottled", args.mb, None))
        results.append(move(cluster, Path(tmp), "throttled", args.mb, throttle))
    table(results)
    if args.json:
        args.json.write_text(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
