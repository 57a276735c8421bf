"""Three-node cluster benchmark: start-up, failover after kill -9, a wide CreateTopics (issue 14).

Not a test: run it by hand and read the figures.

    python tests/perf/bench_cluster.py                  # Kafka's default broker and quorum timeouts
    python tests/perf/bench_cluster.py --test-timeouts  # session 1 s, heartbeat 200 ms, election 300 ms
    python tests/perf/bench_cluster.py --rounds 5 --json out.json

Three combined broker + controller nodes (the shape of configs/three-brokers.yaml: a quorum of
three voters, topic ``orders`` with 3 partitions, one replica each) on free 127.0.0.1 ports in a
temp dir. Each figure is measured ``--rounds`` times; the table gives the median and the max.

up        ``pko cluster up -c FILE`` on a fresh data dir, until it returns (every node answers,
          every broker is registered and unfenced, every partition has a leader); goal <= 3 s.
          Then ``pko cluster down`` (its seconds, and how each node stopped: SIGTERM or SIGKILL
          after the launcher's grace) for a fresh cluster of the next round.
broker    kill -9 of a broker that does not lead the metadata quorum (DescribeQuorum) until
          Metadata v12, asked of a surviving broker, shows every partition it led with leader -1
          (fenced after broker.session.timeout.ms); goal <= 2 s with --test-timeouts. Then the
          node is restarted and timed until its partitions have a leader again.
leader    kill -9 of the quorum leader until a CreateTopics (1 partition) sent to a surviving
          broker succeeds (retried while it answers an error; TOPIC_ALREADY_EXISTS from a retry
          counts); goal <= 2 s with --test-timeouts. Also until DescribeQuorum names a new leader.
create    one CreateTopics of ``--partitions`` partitions (default 1 000) sent to a broker that
          does not lead the quorum (so it is forwarded): seconds until answered, and until
          Metadata v12 from every broker lists them all with a leader; then DeleteTopics.

The settings used are printed with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from integration_helpers import wait_until  # noqa: E402

from cluster.pytest_plugin import RunningCluster, free_ports  # noqa: E402
from pykafka_ops.client.quorum_requests import describe_metadata_quorum  # noqa: E402
from pykafka_ops.client.wire import WireClient  # noqa: E402
from pykafka_ops.config.cluster import load  # noqa: E402
from pykafka_ops.protocol.api_keys import ApiKey  # noqa: E402

#: --test-timeouts: a broker is fenced 1 s after its last heartbeat, the quorum elects within ~0.5 s.
TEST_TIMEOUTS = {
    "broker.session.timeout.ms": 1000,
    "broker.heartbeat.interval.ms": 200,
    "controller.quorum.election.timeout.ms": 300,
    "controller.quorum.fetch.timeout.ms": 600,
    "controller.quorum.election.backoff.max.ms": 300,
    "controller.quorum.request.timeout.ms": 1000,
}
#: Kafka's defaults of the same settings.
KAFKA_TIMEOUTS = {
    "broker.session.timeout.ms": 9000,
    "broker.heartbeat.interval.ms": 2000,
    "controller.quorum.election.timeout.ms": 1000,
    "controller.quorum.fetch.timeout.ms": 2000,
    "controller.quorum.election.backoff.max.ms": 1000,
    "controller.quorum.request.timeout.ms": 2000,
}
NODES = (1, 2, 3)
#: Longest wait for any one thing to happen, in seconds.
WAIT_S = 60.0
TOPIC_ALREADY_EXISTS = 36
PKO = [str(Path(sys.executable).parent / "pko")] if (Path(sys.executable).parent / "pko").exists() else [
    sys.executable, "-m", "commands.main"]


def write_config(directory: Path, settings: dict[str, int]) -> Path:
    """configs/three-brokers.yaml's shape on free ports, data in ``directory/data``."""
    ports = free_ports(6)
    spec = {
        "cluster": {"name": "bench-cluster", "data_dir": str(directory / "data"), "host": "127.0.0.1"},
        "nodes": [{"id": n, "port": ports[i], "controller_port": ports[3 + i]} for i, n in enumerate(NODES)],
        "broker": {"num.partitions": 3, "default.replication.factor": 1, "min.insync.replicas": 1,
                   "auto.create.topics.enable": True, **settings},
        "topics": [{"name": "orders", "partitions": 3, "replication.factor": 1,
                    "config": {"cleanup.policy": "delete"}}],
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "cluster.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _pko(*args: str) -> tuple[float, str]:
    """Run ``pko args``: (seconds, stdout); RuntimeError on a non-zero exit."""
    started = time.perf_counter()
    done = subprocess.run([*PKO, *args], check=False, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"pko {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return seconds, done.stdout


# --- requests ------------------------------------------------------------------------------------


def _client(cluster: RunningCluster, node: int, timeout: float = 2.0) -> WireClient:
    return WireClient(cluster.config.host_of(node), cluster.config.node(node).port, timeout=timeout)


def metadata(cluster: RunningCluster, node: int, topics: list[str] | None) -> Any:
    """Metadata v12 from ``node`` (``topics`` None: all)."""
    with _client(cluster, node) as client:
        return client.request(ApiKey.METADATA, 12, {
            "topics": None if topics is None else [{"name": t, "topic_id": None} for t in topics],
            "allow_auto_topic_creation": False, "include_topic_authorized_operations": False})


def leaders(cluster: RunningCluster, node: int, topic: str | None = None) -> dict[tuple[str, int], int]:
    """(topic, partition) -> leader id, as ``node``'s Metadata shows it (internal topics left out)."""
    answer = metadata(cluster, node, None if topic is None else [topic])
    return {(t.name, p.partition_index): p.leader_id for t in answer.topics if not t.is_internal and t.error_code == 0
            for p in t.partitions}


def quorum_leader(cluster: RunningCluster, alive: list[int]) -> int:
    """The node DescribeQuorum names as leader, asked through ``alive`` nodes."""
    servers = ",".join(f"{cluster.config.host_of(n)}:{cluster.config.node(n).port}" for n in alive)
    leader = describe_metadata_quorum(servers, timeout_s=2.0).leader_id
    return leader if leader in alive else 0


def create_topic(cluster: RunningCluster, node: int, name: str, partitions: int, timeout_s: float = 30.0) -> int:
    """CreateTopics of ``name`` sent to ``node``: the error code."""
    with _client(cluster, node, timeout=timeout_s + 5) as client:
        answer = client.request(ApiKey.CREATE_TOPICS, 7, {
            "topics": [{"name": name, "num_partitions": partitions, "replication_factor": 1, "assignments": [],
                        "configs": []}], "timeout": int(timeout_s * 1000), "validate_only": False})
    return answer.topics[0].error_code


def delete_topic(cluster: RunningCluster, node: int, name: str) -> int:
    with _client(cluster, node, timeout=35) as client:
        answer = client.request(ApiKey.DELETE_TOPICS, 6, {
            "topics": [{"name": name, "topic_id": uuid.UUID(int=0)}], "timeout": 30_000})
    return answer.responses[0].error_code


def pid_of(cluster: RunningCluster, node: int) -> int:
    return next(s.pid for s in cluster.status() if s.id == node)


def kill9(cluster: RunningCluster, node: int) -> float:
    """SIGKILL ``node`` by PID; the monotonic time it was sent."""
    pid = pid_of(cluster, node)
    sent = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    return sent


# --- the figures ---------------------------------------------------------------------------------


def _log_times(path: Path, began: float) -> dict[str, Any]:
    """From a node log: seconds from ``began`` (a wall-clock time) to its first line, to the first
    "leads the metadata quorum" and to "serving on"; and how many times it led the quorum."""
    out: dict[str, Any] = {"elections_won": 0}
    for line in path.read_text(errors="replace").splitlines():
        try:
            at = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp() - began
        except ValueError:
            continue
        out.setdefault("first_line", at)
        if "leads the metadata quorum" in line:
            out["elections_won"] += 1
            out.setdefault("leads_quorum", at)
        if "serving on" in line:
            out.setdefault("serving", at)
    return out


def measure_up(workdir: Path, rounds: int, settings: dict[str, int]) -> dict[str, Any]:
    """``pko cluster up`` on a fresh dir, then ``pko cluster down``, ``rounds`` times."""
    ups, downs, stops = [], [], []
    first_line, quorum_led, serving, elections = [], [], [], []
    for i in range(rounds):
        path = write_config(workdir / f"up-{i}", settings)
        began = time.time()
        seconds, _out = _pko("cluster", "up", "-c", str(path))
        ups.append(seconds)
        logs = [_log_times(workdir / f"up-{i}" / "data" / "logs" / f"node-{n}.log", began) for n in NODES]
        first_line.append(max(t["first_line"] for t in logs))
        quorum_led.append(min(t.get("leads_quorum", float("inf")) for t in logs))
        serving.append(max(t.get("serving", float("inf")) for t in logs))
        elections.append(sum(t["elections_won"] for t in logs))
        seconds, out = _pko("cluster", "down", "-c", str(path))
        downs.append(seconds)
        stops.append(sorted(line.split(" with ")[-1] for line in out.splitlines() if line.startswith("stopped node")))
    return {"up_s": ups, "down_s": downs, "down_signals": stops, "node_first_log_line_s": first_line,
            "quorum_led_s": quorum_led, "all_serving_s": serving, "elections_during_up": elections}


def measure_broker_kill(cluster: RunningCluster, rounds: int) -> dict[str, Any]:
    """kill -9 of a broker that is not the quorum leader -> its partitions shown offline."""
    offline, back = [], []
    for i in range(rounds):
        leader = wait_until(lambda: quorum_leader(cluster, list(NODES)), WAIT_S, "a quorum leader")
        others = [n for n in NODES if n != leader]
        victim = others[i % len(others)]
        witness = next(n for n in others if n != victim)
        before = leaders(cluster, witness)
        led = sorted(tp for tp, leader_id in before.items() if leader_id == victim)
        if not led:
            raise RuntimeError(f"broker {victim} leads no partition: {before}")
        sent = kill9(cluster, victim)

        def all_offline(witness: int = witness, led: list[tuple[str, int]] = led) -> bool:
            now = leaders(cluster, witness)
            return all(now.get(tp) == -1 for tp in led)

        wait_until(all_offline, WAIT_S,
                   f"the partitions of broker {victim} ({len(led)}) offline in broker {witness}'s Metadata")
        offline.append(time.monotonic() - sent)
        started = time.monotonic()
        cluster.restart(victim)

        def led_again(witness: int = witness, led: list[tuple[str, int]] = led) -> bool:
            now = leaders(cluster, witness)
            return all(now.get(tp, -1) >= 0 for tp in led)

        wait_until(led_again, WAIT_S, f"the partitions of broker {victim} led again")
        back.append(time.monotonic() - started)
    return {"offline_s": offline, "restart_until_led_s": back}


def measure_leader_kill(cluster: RunningCluster, rounds: int) -> dict[str, Any]:
    """kill -9 of the quorum leader -> the next successful CreateTopics through a survivor."""
    created, elected, attempts_per_round = [], [], []
    for i in range(rounds):
        leader = wait_until(lambda: quorum_leader(cluster, list(NODES)), WAIT_S, "a quorum leader")
        survivors = [n for n in NODES if n != leader]
        target = survivors[i % len(survivors)]
        name = f"after-leader-kill-{i}-{uuid.uuid4().hex[:6]}"
        attempts = [0]
        new_leader_at: list[float] = []
        sent = kill9(cluster, leader)

        def created_now(attempts: list[int] = attempts, new_leader_at: list[float] = new_leader_at,
                        survivors: list[int] = survivors, target: int = target, name: str = name) -> bool:
            attempts[0] += 1
            if not new_leader_at:
                with contextlib.suppress(Exception):  # no leader yet
                    if quorum_leader(cluster, survivors):
                        new_leader_at.append(time.monotonic())
            return create_topic(cluster, target, name, 1, timeout_s=5.0) in (0, TOPIC_ALREADY_EXISTS)

        wait_until(created_now, WAIT_S,
                   f"CreateTopics through node {target} after killing the quorum leader {leader}")
        created.append(time.monotonic() - sent)
        if not new_leader_at:
            wait_until(lambda survivors=survivors: quorum_leader(cluster, survivors), WAIT_S, "a new quorum leader")
            new_leader_at.append(time.monotonic())
        elected.append(new_leader_at[0] - sent)
        attempts_per_round.append(attempts[0])
        cluster.restart(leader)
    return {"create_ok_s": created, "new_leader_seen_s": elected, "create_attempts": attempts_per_round}


def measure_wide_create(cluster: RunningCluster, rounds: int, partitions: int) -> dict[str, Any]:
    """CreateTopics of ``partitions`` partitions -> answered, and led in every broker's Metadata."""
    answered, led, deleted = [], [], []
    for i in range(rounds):
        leader = wait_until(lambda: quorum_leader(cluster, list(NODES)), WAIT_S, "a quorum leader")
        target = next(n for n in NODES if n != leader)
        name = f"wide-{i}-{uuid.uuid4().hex[:6]}"
        started = time.monotonic()
        code = create_topic(cluster, target, name, partitions, timeout_s=60.0)
        if code != 0:
            raise RuntimeError(f"CreateTopics of {partitions} partitions answered {code}")
        answered.append(time.monotonic() - started)

        def everywhere(name: str = name) -> bool:
            for node in NODES:
                now = leaders(cluster, node, name)
                if len(now) != partitions or min(now.values()) < 0:
                    return False
            return True

        wait_until(everywhere, WAIT_S, f"{partitions} partitions of {name} led in every broker's Metadata")
        led.append(time.monotonic() - started)
        started = time.monotonic()
        code = delete_topic(cluster, target, name)
        if code != 0:
            raise RuntimeError(f"DeleteTopics answered {code}")
        wait_until(lambda name=name: all(not leaders(cluster, node, None).keys() & {(name, 0)} for node in NODES),
                   WAIT_S, f"{name} gone from every broker's Metadata")
        deleted.append(time.monotonic() - started)
    return {"answered_s": answered, "led_everywhere_s": led, "delete_gone_everywhere_s": deleted}


def run(workdir: Path, rounds: int, partitions: int, settings: dict[str, int]) -> dict[str, Any]:
    figures: dict[str, Any] = {"up": measure_up(workdir, rounds, settings)}
    path = write_config(workdir / "main", settings)
    _pko("cluster", "up", "-c", str(path))
    cluster = RunningCluster(load(path), path)
    try:
        figures["broker"] = measure_broker_kill(cluster, rounds)
        figures["leader"] = measure_leader_kill(cluster, rounds)
        figures["create"] = measure_wide_create(cluster, rounds, partitions)
    finally:
        cluster.down()
    return figures


# --- output --------------------------------------------------------------------------------------

ROWS = [  # (label, section, key, goal in s or None)
    ("cluster up to ready (pko cluster up)", "up", "up_s", 3.0),
    ("  -> every node's first log line", "up", "node_first_log_line_s", None),
    ("  -> first quorum leader", "up", "quorum_led_s", None),
    ("  -> every broker serving", "up", "all_serving_s", None),
    ("cluster down (pko cluster down)", "up", "down_s", None),
    ("kill -9 broker -> its partitions leader -1", "broker", "offline_s", 2.0),
    ("  restart -> its partitions led again", "broker", "restart_until_led_s", None),
    ("kill -9 quorum leader -> CreateTopics ok", "leader", "create_ok_s", 2.0),
    ("  -> DescribeQuorum names a new leader", "leader", "new_leader_seen_s", None),
    ("CreateTopics {p} partitions -> answered", "create", "answered_s", None),
    ("  -> led in every broker's Metadata", "create", "led_everywhere_s", None),
    ("  DeleteTopics -> gone everywhere", "create", "delete_gone_everywhere_s", None),
]


def summarize(figures: dict[str, Any], partitions: int, test_timeouts: bool) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    print(f"{'figure':46} {'median s':>9} {'max s':>7}  goal")
    for label, section, key, goal in ROWS:
        samples = figures[section][key]
        median, worst = round(statistics.median(samples), 3), round(max(samples), 3)
        summary[f"{section}.{key}"] = {"median": median, "max": worst, "samples": [round(s, 3) for s in samples]}
        goal_text = "" if goal is None or (goal == 2.0 and not test_timeouts) else (
            f"<= {goal:g} s " + ("met" if worst <= goal else "MISSED (max)" if median <= goal else "MISSED"))
        print(f"{label.format(p=partitions):46} {median:9.3f} {worst:7.3f}  {goal_text}")
    summary["down_signals"] = figures["up"]["down_signals"]
    summary["up.elections_during_up"] = figures["up"]["elections_during_up"]
    summary["leader.create_attempts"] = figures["leader"]["create_attempts"]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of each figure")
    parser.add_argument("--partitions", type=int, default=1000, help="partitions of the wide CreateTopics")
    parser.add_argument("--test-timeouts", action="store_true", help="short timeouts (see TEST_TIMEOUTS)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    settings = TEST_TIMEOUTS if args.test_timeouts else KAFKA_TIMEOUTS
    print("settings:", json.dumps(settings))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        figures = run(Path(tmp), args.rounds, args.partitions, settings)
    result = {"rounds": args.rounds, "partitions": args.partitions, "settings": settings,
              **summarize(figures, args.partitions, args.test_timeouts),
              "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)], "cpus": os.cpu_count()}
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
