"""Partition-count benchmark: one node holding 12 000 partitions, against Tansu in the same run.

Not a test: run it by hand and read the figures (issue "Data safety" item 3).

    python tests/perf/bench_partitions.py                     # pko and Tansu
    python tests/perf/bench_partitions.py --baseline 624da2b  # also a node of that commit, first
    python tests/perf/bench_partitions.py --json out.json

For each broker: one CreateTopics of 10 000 partitions (seconds, and the slowest ApiVersions
answer while it runs — how long the event loop stalled), two more topics of 1 000 partitions,
then Metadata for all 12 000 partitions (the first answer and the median of 20), the open file
descriptors, idle CPU over 5 s and RSS; for pko nodes also a clean restart (seconds until
Metadata describes every partition again). A broker that fails a step reports the error.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_broker import baseline_node, our_node, tansu  # noqa: E402

from pykafka_ops.client.wire import WireClient  # noqa: E402
from pykafka_ops.protocol.api_keys import ApiKey  # noqa: E402

BIG = 10_000
SMALL = (1_000, 1_000)
METADATA_VERSION = 9  # flexible, and answered by Tansu too


def _client(bootstrap: str) -> WireClient:
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    return WireClient(host, int(port), timeout=300)


def _create(bootstrap: str, name: str, partitions: int) -> int:
    with _client(bootstrap) as client:
        response = client.request(ApiKey.CREATE_TOPICS, 5, {
            "topics": [{"name": name, "num_partitions": partitions, "replication_factor": 1, "assignments": [],
                        "configs": []}], "timeout": 300_000, "validate_only": False})
    return response.topics[0].error_code


def _metadata_partitions(client: WireClient) -> int:
    response = client.request(ApiKey.METADATA, METADATA_VERSION, {
        "topics": None, "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})
    return sum(len(t.partitions) for t in response.topics)


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def _worst_ping_during(bootstrap: str, action: Callable[[], Any]) -> tuple[float, float, Any]:
    """Run ``action`` while another connection sends ApiVersions every 5 ms: (seconds, slowest
    answer in ms, result)."""
    stop, answers = threading.Event(), [0.0]

    def ping() -> None:
        with _client(bootstrap) as client:
            while not stop.is_set():
                seconds, _ = _timed(lambda: client.request(ApiKey.API_VERSIONS, 0, {}))
                answers.append(seconds * 1000)
                time.sleep(0.005)

    thread = threading.Thread(target=ping, daemon=True)
    thread.start()
    time.sleep(0.2)
    try:
        seconds, result = _timed(action)
    finally:
        stop.set()
        thread.join(timeout=60)
    return seconds, max(answers), result


def measure(name: str, bootstrap: str, proc: psutil.Process, restart: Callable[[], None] | None) -> dict[str, Any]:
    """Every figure of one broker (see the module docstring)."""
    out: dict[str, Any] = {"broker": name}
    try:
        with _client(bootstrap) as client:  # as a client does on connecting (a broker may learn the version)
            _metadata_partitions(client)
        seconds, worst, code = _worst_ping_during(bootstrap, lambda: _create(bootstrap, "wide-big", BIG))
        out.update(create_10k_s=round(seconds, 2), create_10k_worst_ping_ms=round(worst, 1), create_10k_error=code)
        for i, count in enumerate(SMALL):
            _create(bootstrap, f"wide-small{i}", count)
        with _client(bootstrap) as client:
            first, total = _timed(lambda: _metadata_partitions(client))
            times = [_timed(lambda: _metadata_partitions(client))[0] for _ in range(20)]
        out.update(partitions=total, metadata_first_ms=round(first * 1000, 1),
                   metadata_median_ms=round(statistics.median(times) * 1000, 1))
        out["open_fds"] = proc.num_fds()
        cpu_before, wall_before = sum(proc.cpu_times()[:2]), time.monotonic()
        time.sleep(5)
        out["idle_cpu_pct"] = round(100 * (sum(proc.cpu_times()[:2]) - cpu_before) / (time.monotonic() - wall_before), 2)
        out["rss_mb"] = round(proc.memory_info().rss / 2**20)
        if restart is not None:
            def restarted() -> int:
                restart()
                with _client(bootstrap) as client:
                    return _metadata_partitions(client)
            seconds, total_after = _timed(restarted)
            out.update(restart_s=round(seconds, 2), partitions_after_restart=total_after)
    except Exception as exc:  # noqa: BLE001 - a broker that fails a step is a figure too
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def _pko_restart(workdir: Path) -> Callable[[], None]:
    """Restart the node that ``our_node(workdir)`` started (its config file is in ``workdir``)."""
    from cluster import launcher
    from pykafka_ops.config.cluster import load

    def restart() -> None:
        launcher.restart(load(workdir / "bench.yaml"), 1, wait_s=300, grace_s=60)

    return restart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", metavar="REF", help="also measure a node of this git commit (before/after)")
    parser.add_argument("--no-tansu", action="store_true", help="skip the Tansu peer")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-partitions-") as tmp:
        workdir = Path(tmp)
        if args.baseline:
            with baseline_node(workdir, args.baseline) as (bootstrap, proc):
                results.append(measure(f"pko@{args.baseline}", bootstrap, proc,
                                       _pko_restart(workdir / "baseline-data")))
        with our_node(workdir / "pko") as (bootstrap, proc):
            results.append(measure("pko", bootstrap, proc, _pko_restart(workdir / "pko")))
        if not args.no_tansu:
            (workdir / "tansu").mkdir()
            with tansu(workdir / "tansu") as (bootstrap, proc):
                results.append(measure("tansu", bootstrap, proc, None))
    for row in results:
        print(json.dumps(row))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
