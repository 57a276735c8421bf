"""`pko cluster …` end to end: the real `pko` binary (subprocess), real node processes, free ports.

Each test gets its own cluster file in ``tmp_path`` and ``XDG_STATE_HOME`` pointed into it, so no
test can touch a developer's default cluster. Waits poll with deadlines; nothing sleeps to wait.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from cluster.pytest_plugin import ClusterFactory, RunningCluster, free_ports
from pykafka_ops.client.wire import WireClient

REPO = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).parent / "pko"
PKO = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "commands.main"]
NAME = "clitest"


@dataclass(frozen=True)
class ClusterFile:
    """A single-node cluster file on a free port, and where its data goes."""

    path: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.path.parent / "data"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "node-1.log"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg-state")}
    environment.pop("PKO_DEBUG", None)
    return environment


@pytest.fixture
def cluster_file(tmp_path: Path) -> Iterator[ClusterFile]:
    (port,) = free_ports(1)
    path = tmp_path / "cluster.yaml"
    path.write_text(
        f"cluster: {{name: {NAME}, data_dir: data}}\n"
        f"nodes:\n  - {{id: 1, port: {port}}}\n"
        "broker:\n  num.partitions: 1\n"
    )
    yield ClusterFile(path, port)
    _stop_by_pid(path)  # safety net, whatever the test did


def _stop_by_pid(path: Path) -> None:
    from cluster import launcher
    from pykafka_ops.config.cluster import ConfigError, load

    try:
        launcher.down(load(path), grace_s=5)
    except ConfigError:  # a test that broke the file on purpose started nothing
        pass


@pytest.fixture
def running(cluster_file: ClusterFile, env: dict[str, str]) -> ClusterFile:
    result = pko("cluster", "up", "-c", cluster_file.path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"cluster {NAME!r} is up: 127.0.0.1:{cluster_file.port} (1 node)\n"
    return cluster_file


def pko(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the real `pko` binary; stdin is not a terminal, stdout is a pipe."""
    return subprocess.run(
        [*PKO, *map(str, args)], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90
    )


def status(cluster: ClusterFile, env: dict[str, str]) -> dict[str, Any]:
    """Node 1 as `status --output json` shows it."""
    result = pko("cluster", "status", "-c", cluster.path, "--output", "json", env=env)
    assert result.returncode == 0, result.stderr
    (node,) = json.loads(result.stdout)
    return node


def read_until(proc: subprocess.Popen[bytes], needle: str, timeout_s: float = 30.0) -> str:
    """Read ``proc``'s stdout until ``needle`` shows up; fail after ``timeout_s`` seconds."""
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout_s
    while needle.encode() not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{needle!r} not seen within {timeout_s} s; got {seen.decode()!r}"
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"stdout closed before {needle!r}; got {seen.decode()!r}"
            seen += chunk
    return seen.decode()


def pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_help_lists_the_command_groups(env: dict[str, str]) -> None:
    result = pko("--help", env=env)
    assert result.returncode == 0
    assert "cluster" in result.stdout and "node" in result.stdout
    sub = pko("cluster", "--help", env=env)
    for command in ("up", "status", "down", "logs", "kill", "pause", "resume", "restart"):
        assert f"  {command} " in sub.stdout


def test_version_prints_the_package_version(env: dict[str, str]) -> None:
    from pykafka_ops import __version__

    result = pko("--version", env=env)
    assert (result.returncode, result.stdout) == (0, f"pko {__version__}\n")


def test_status_json_shows_the_running_node(running: ClusterFile, env: dict[str, str]) -> None:
    node = status(running, env)
    assert set(node) == {"id", "roles", "host", "pid", "port", "controller_port", "admin_port", "state", "fenced",
                         "leader_count",
                         "quorum_leader", "uptime_s", "rss_bytes", "cpu_percent", "under_replicated_partitions",
                         "offline_partitions", "out_of_sync_replicas", "isr_shrinks", "isr_expands"}
    assert (node["id"], node["roles"], node["host"], node["port"], node["controller_port"]) == (
        1, ["broker", "controller"], "127.0.0.1", running.port, None)
    assert (node["state"], node["fenced"], node["quorum_leader"]) == ("running", False, True)
    assert isinstance(node["leader_count"], int)
    assert pid_alive(node["pid"])
    assert node["uptime_s"] >= 0 and node["rss_bytes"] > 0 and node["cpu_percent"] >= 0


def test_status_is_aligned_plain_text_when_piped(running: ClusterFile, env: dict[str, str]) -> None:
    result = pko("cluster", "status", "-c", running.path, env=env)
    header, row = result.stdout.splitlines()
    assert header.split() == ["NODE", "ROLES", "HOST", "PID", "PORT", "CONTROLLER-PORT", "STATE", "LEADERS", "QUORUM",
                              "UPTIME", "RSS", "CPU%", "URP", "OFFLINE", "OUT-OF-ISR", "ISR-SHRINKS", "ISR-EXPANDS"]
    node = status(running, env)
    assert row.split()[:9] == ["1", "broker,controller", "127.0.0.1", str(node["pid"]), str(running.port), "-",
                               "running", str(node["leader_count"]), "leader"]
    assert "\x1b[" not in result.stdout  # no colours when piped


def test_status_yaml_is_the_json_data(running: ClusterFile, env: dict[str, str]) -> None:
    import yaml

    result = pko("cluster", "status", "-c", running.path, "--output", "yaml", env=env)
    assert result.returncode == 0, result.stderr
    (node,) = yaml.safe_load(result.stdout)
    assert set(node) == set(status(running, env)) and node["state"] == "running"


def test_the_node_answers_api_versions_and_metadata(running: ClusterFile) -> None:
    with WireClient("127.0.0.1", running.port, timeout=5) as client:
        assert client.request(18, 0, {}).error_code == 0
        assert [b.node_id for b in client.request(3, 1, {"topics": None}).brokers] == [1]


def test_logs_prints_the_node_log(running: ClusterFile, env: dict[str, str]) -> None:
    with running.log_file.open("a") as log:
        log.write("marker written by the test\n")
    for args in ((), ("--node", "1")):
        result = pko("cluster", "logs", "-c", running.path, *args, env=env)
        assert result.returncode == 0, result.stderr
        assert "marker written by the test\n" in result.stdout


def test_logs_follow_prints_new_lines_until_ctrl_c(running: ClusterFile, env: dict[str, str]) -> None:
    proc = subprocess.Popen([*PKO, "cluster", "logs", "-c", str(running.path), "--follow"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with running.log_file.open("a") as log:
            log.write("first line\n")
        read_until(proc, "first line\n")
        with running.log_file.open("a") as log:
            log.write("second line\n")
        read_until(proc, "second line\n")
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_kill_then_status_down_then_up_again(running: ClusterFile, env: dict[str, str]) -> None:
    pid = status(running, env)["pid"]
    result = pko("cluster", "kill", "-c", running.path, "--node", "1", "--signal", "KILL", env=env)
    assert (result.returncode, result.stdout) == (0, f"sent SIGKILL to node 1 (pid {pid}): it is down\n")
    assert status(running, env) == {
        "id": 1, "roles": ["broker", "controller"], "host": "127.0.0.1", "pid": None, "port": running.port,
        "controller_port": None, "admin_port": None, "state": "down", "fenced": None, "leader_count": None,
        "quorum_leader": None,
        "uptime_s": None, "rss_bytes": None, "cpu_percent": None, "under_replicated_partitions": None,
        "offline_partitions": None, "out_of_sync_replicas": None,
        "isr_shrinks": 0, "isr_expands": 0,  # counted from the metadata log on disk: no node needs to answer
    }
    again = pko("cluster", "up", "-c", running.path, env=env)
    assert again.returncode == 0, again.stderr
    node = status(running, env)
    assert node["state"] == "running" and node["pid"] != pid


def test_stop_pauses_and_cont_resumes_a_node(running: ClusterFile, env: dict[str, str]) -> None:
    for sig, state in (("STOP", "paused"), ("CONT", "running")):
        result = pko("cluster", "kill", "-c", running.path, "--node", "1", "--signal", sig, env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.endswith(f": it is {state}\n")
        assert status(running, env)["state"] == state


def test_pause_and_resume_a_node(running: ClusterFile, env: dict[str, str]) -> None:
    pid = status(running, env)["pid"]
    paused = pko("cluster", "pause", "-c", running.path, "--node", "1", env=env)
    assert (paused.returncode, paused.stdout) == (0, f"paused node 1 (pid {pid})\n"), paused.stderr
    node = status(running, env)  # a paused node answers nothing: status does not wait for it
    assert (node["state"], node["pid"], node["quorum_leader"], node["fenced"]) == ("paused", pid, None, None)
    resumed = pko("cluster", "resume", "-c", running.path, "--node", "1", env=env)
    assert (resumed.returncode, resumed.stdout) == (0, f"resumed node 1 (pid {pid})\n"), resumed.stderr
    assert status(running, env)["state"] == "running"
    with WireClient("127.0.0.1", running.port, timeout=5) as client:
        assert client.request(18, 0, {}).error_code == 0


def test_pause_of_a_node_that_is_not_running_is_refused(cluster_file: ClusterFile, env: dict[str, str]) -> None:
    for command in ("pause", "resume"):
        result = pko("cluster", command, "-c", cluster_file.path, "--node", "1", env=env)
        assert (result.returncode, result.stderr) == (1, f"pko: node 1 of cluster {NAME!r} is not running\n")


def test_restart_replaces_the_process_and_it_answers_again(running: ClusterFile, env: dict[str, str]) -> None:
    old_pid = status(running, env)["pid"]
    result = pko("cluster", "restart", "-c", running.path, "--node", "1", env=env)
    assert result.returncode == 0, result.stderr
    node = status(running, env)
    assert node["state"] == "running" and node["pid"] != old_pid and not pid_alive(old_pid)
    assert result.stdout.startswith(
        f"stopped node 1 (pid {old_pid}) with SIGTERM\n"
        f"node 1 is up again: pid {node['pid']}, 127.0.0.1:{running.port} ("
    )
    with WireClient("127.0.0.1", running.port, timeout=5) as client:
        assert client.request(18, 0, {}).error_code == 0


def test_second_up_while_running_is_refused(running: ClusterFile, env: dict[str, str]) -> None:
    pid = status(running, env)["pid"]
    result = pko("cluster", "up", "-c", running.path, env=env)
    assert (result.returncode, result.stderr) == (1, f"pko: cluster {NAME!r} is already running (node 1 pid {pid})\n")
    assert status(running, env)["pid"] == pid


def test_up_on_a_busy_port_is_refused_and_starts_nothing(cluster_file: ClusterFile, env: dict[str, str]) -> None:
    with socket.create_server(("127.0.0.1", cluster_file.port)):
        result = pko("cluster", "up", "-c", cluster_file.path, env=env)
    assert result.returncode == 1
    lines = cluster_file.path.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if str(cluster_file.port) in text)
    assert result.stderr == (f"pko: cannot start node 1: {cluster_file.path}: nodes[0].port (line {line}): "
                             f"port {cluster_file.port} on 127.0.0.1 is already in use\n")
    assert not cluster_file.data_dir.exists()


def test_up_times_out_with_the_probe_error_and_stops_the_node(cluster_file: ClusterFile, env: dict[str, str]) -> None:
    result = pko("cluster", "up", "-c", cluster_file.path, "--wait", "0", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("pko: node 1 is not ready after 0 s (last probe: ")
    assert str(cluster_file.log_file) in result.stderr
    assert status(cluster_file, env)["state"] == "down"


def test_node_dying_during_start_up_is_reported_at_once(cluster_file: ClusterFile, env: dict[str, str]) -> None:
    node_dir = cluster_file.data_dir / "node-1"
    node_dir.mkdir(parents=True)
    (node_dir / "__cluster_metadata-0").write_text("a file where the metadata log's directory belongs\n")
    result = pko("cluster", "up", "-c", cluster_file.path, env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("pko: node 1 exited with code ")
    assert f"during start-up; last lines of {cluster_file.log_file}:\n" in result.stderr


def test_down_stops_the_node_and_keeps_the_data(running: ClusterFile, env: dict[str, str]) -> None:
    pid = status(running, env)["pid"]
    result = pko("cluster", "down", "-c", running.path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"stopped node 1 (pid {pid}) with SIGTERM\ncluster {NAME!r} is down; data kept in {running.data_dir}\n"
    )
    assert status(running, env)["state"] == "down" and not pid_alive(pid)
    assert running.log_file.exists()
    again = pko("cluster", "down", "-c", running.path, env=env)
    assert (again.returncode, again.stdout) == (0, f"cluster {NAME!r} is not running\n")


def test_down_purge_yes_deletes_the_data_dir(running: ClusterFile, env: dict[str, str]) -> None:
    result = pko("cluster", "down", "-c", running.path, "--purge", "--yes", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(f"deleted {running.data_dir}\n")
    assert not running.data_dir.exists()


def test_purge_without_yes_and_without_a_terminal_is_refused(running: ClusterFile, env: dict[str, str]) -> None:
    result = pko("cluster", "down", "-c", running.path, "--purge", env=env)
    assert result.returncode == 2
    assert result.stderr == (
        f"pko: --purge would delete {running.data_dir}: add --yes to confirm (no terminal to ask on)\n"
    )
    assert status(running, env)["state"] == "running" and running.data_dir.exists()


def test_bad_yaml_is_a_usage_error_and_starts_nothing(cluster_file: ClusterFile, env: dict[str, str]) -> None:
    cluster_file.path.write_text(cluster_file.path.read_text().replace("num.partitions", "num.partitons"))
    result = pko("cluster", "up", "-c", cluster_file.path, env=env)
    assert result.returncode == 2
    assert result.stderr == (
        f"pko: {cluster_file.path}: broker.num.partitons (line 5): unknown key (did you mean 'num.partitions'?)\n"
    )
    assert not cluster_file.data_dir.exists()


@pytest.mark.parametrize("name", ["three-brokers.yaml", "dedicated-controllers.yaml"])
def test_the_multi_node_configs_are_accepted(tmp_path: Path, env: dict[str, str], name: str) -> None:
    path = tmp_path / name
    shutil.copy(REPO / "configs" / name, path)
    result = pko("cluster", "status", "-c", path, "--output", "json", env=env)
    assert result.returncode == 0, result.stderr
    nodes = json.loads(result.stdout)
    assert {n["state"] for n in nodes} == {"down"}
    if name == "three-brokers.yaml":
        assert [(n["id"], n["roles"], n["port"], n["controller_port"]) for n in nodes] == [
            (1, ["broker", "controller"], 9092, 9192), (2, ["broker", "controller"], 9093, 9193),
            (3, ["broker", "controller"], 9094, 9194)]
    else:
        assert [(n["id"], n["roles"]) for n in nodes] == [(1, ["controller"]), (2, ["controller"]), (3, ["controller"]),
                                                          (4, ["broker"]), (5, ["broker"])]
    assert not (tmp_path / ".pko").exists()


def test_a_node_host_that_is_not_on_this_machine_is_refused_by_up(tmp_path: Path, env: dict[str, str]) -> None:
    (port,) = free_ports(1)
    path = tmp_path / "remote.yaml"
    path.write_text(f"cluster: {{name: {NAME}, data_dir: data}}\n"  # 192.0.2.1: TEST-NET-1, only bound, never sent to
                    f"nodes:\n  - {{id: 1, port: {port}, host: 192.0.2.1}}\n")
    result = pko("cluster", "up", "-c", path, env=env)
    assert result.returncode == 1
    assert result.stderr == (f"pko: cannot start node 1: {path}: nodes[0].host (line 3): 192.0.2.1 is not an address "
                             "of this machine: run this node with `pko node` where it is\n")
    assert not (tmp_path / "data").exists()


def test_node_flags_are_checked_against_the_cluster_file(cluster_file: ClusterFile, env: dict[str, str]) -> None:
    result = pko("cluster", "kill", "-c", cluster_file.path, "--node", "7", env=env)
    assert (result.returncode, result.stderr) == (2, f"pko: --node: no node 7 in {cluster_file.path} (nodes: 1)\n")
    stopped = pko("cluster", "kill", "-c", cluster_file.path, "--node", "1", env=env)
    assert (stopped.returncode, stopped.stderr) == (1, f"pko: node 1 of cluster {NAME!r} is not running\n")


def test_built_in_default_cluster_lives_under_xdg_state_home(env: dict[str, str]) -> None:
    result = pko("cluster", "status", "--output", "json", env=env)
    assert result.returncode == 0, result.stderr
    assert [(n["id"], n["port"], n["state"]) for n in json.loads(result.stdout)] == [(1, 9092, "down")]
    down = pko("cluster", "down", env=env)
    assert (down.returncode, down.stdout) == (0, "cluster 'dev' is not running\n")
    logs = pko("cluster", "logs", env=env)
    assert logs.returncode == 1
    assert str(Path(env["XDG_STATE_HOME"]) / "pko" / "dev" / "logs") in logs.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_foreground_stops_every_node_on_ctrl_c_or_sigterm(
    cluster_file: ClusterFile, env: dict[str, str], sig: signal.Signals
) -> None:
    proc = subprocess.Popen([*PKO, "cluster", "up", "-c", str(cluster_file.path), "--foreground"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        read_until(proc, f"cluster {NAME!r} is up: 127.0.0.1:{cluster_file.port} (1 node); Ctrl-C stops it\n")
        pid = status(cluster_file, env)["pid"]
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.decode().endswith(f"stopped node 1 (pid {pid}) with SIGTERM\n")
    assert not pid_alive(pid)


def test_foreground_survives_a_restart_and_detaches_once_every_node_is_killed(
    cluster_file: ClusterFile, env: dict[str, str]
) -> None:
    proc = subprocess.Popen([*PKO, "cluster", "up", "-c", str(cluster_file.path), "--foreground"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        read_until(proc, "Ctrl-C stops it\n")
        restarted = pko("cluster", "restart", "-c", cluster_file.path, "--node", "1", env=env)
        assert restarted.returncode == 0, restarted.stderr
        assert proc.poll() is None
        killed = pko("cluster", "kill", "-c", cluster_file.path, "--node", "1", env=env)
        assert killed.returncode == 0, killed.stderr
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.decode() == f"every node of cluster {NAME!r} is down\n"


def test_plugin_session_cluster_answers_on_its_bootstrap_servers(pko_cluster: RunningCluster) -> None:
    host, port = pko_cluster.bootstrap_servers.split(":")
    with WireClient(host, int(port), timeout=5) as client:
        assert client.request(18, 0, {}).error_code == 0
    assert pko_cluster.config.broker["num.partitions"] == 1


def test_plugin_factory_cluster_is_driven_by_the_pko_binary_and_its_methods(
    pko_cluster_factory: ClusterFactory, env: dict[str, str]
) -> None:
    cluster = pko_cluster_factory(num_partitions=2)
    assert cluster.config.broker["num.partitions"] == 2
    as_file = ClusterFile(cluster.config_path, cluster.config.nodes[0].port)
    pid = status(as_file, env)["pid"]
    assert cluster.kill(1, "KILL").state == "down"  # a child of this process: reaped, not a zombie
    assert status(as_file, env)["state"] == "down"
    cluster.restart(1)
    node = status(as_file, env)
    assert node["state"] == "running" and node["pid"] != pid
    cluster.down()
    assert [n.state for n in cluster.status()] == ["down"]
