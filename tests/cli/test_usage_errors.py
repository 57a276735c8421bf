"""Usage errors of the real `pko` binary are one line and exit 2; a cluster file the launcher
cannot use names the file, the key and its line (reliability-probe §3.8)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

PKO = str(Path(sys.executable).parent / "pko")


def _pko(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PKO, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, cwd=cwd)


@pytest.mark.parametrize(("args", "message"), [
    (["nosuch"], "No such command 'nosuch'. (see 'pko -h')"),
    (["--bogus"], "No such option: --bogus (see 'pko -h')"),
    (["consumer-groups", "-b", "127.0.0.1:1", "--list", "--timeout", "0"],
     "Invalid value for '--timeout': 0 is not in the range x>=1. (see 'pko consumer-groups -h')"),
    (["consumer-groups", "-b", "127.0.0.1:1", "--reset-offsets", "--group", "g", "--topic", "t",
      "--to-offset", "99999999999999999999"],
     "Invalid value for '--to-offset': 99999999999999999999 is not in the range "
     "-9223372036854775808<=x<=9223372036854775807. (see 'pko consumer-groups -h')"),
    (["consume", "-b", "127.0.0.1:1", "t", "-o", "99999999999999999999999"],
     "invalid offset '99999999999999999999999': beyond a 64-bit offset"),
], ids=["unknown-command", "unknown-option", "out-of-range", "offset-beyond-int64", "consume-offset-beyond-int64"])
def test_a_usage_error_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = _pko(*args)
    assert (result.returncode, result.stderr) == (2, f"pko: {message}\n")


def test_a_directory_given_as_the_cluster_file_is_one_line(tmp_path: Path) -> None:
    result = _pko("cluster", "up", "-c", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == (f"pko: Invalid value for '--config' / '-c': File '{tmp_path}' is a directory. "
                             "(see 'pko cluster up -h')\n")


def test_pko_alone_still_prints_its_help() -> None:
    result = _pko()
    assert result.returncode == 2 and "Commands:" in result.stdout + result.stderr


@pytest.fixture
def busy_port() -> socket.socket:
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_the_launcher_names_the_key_and_line_of_what_it_cannot_use(tmp_path: Path, busy_port: socket.socket) -> None:
    port = busy_port.getsockname()[1]
    cases = {
        "cluster: {name: a, data_dir: /proc/pko-data}\nnodes:\n  - {id: 1, port: 1}\n":
            "bad.yaml: cluster.data_dir (line 1): cannot create /proc/pko-data: No such file or directory",
        "cluster: {name: b, host: 256.1.1.1}\nnodes:\n  - {id: 1, port: 1}\n":
            "cannot start node 1: {path}: cluster.host (line 1): cannot resolve host '256.1.1.1'",
        f"cluster: {{name: c, data_dir: data}}\nnodes:\n  - {{id: 1, port: {port}}}\n":
            f"cannot start node 1: {{path}}: nodes[0].port (line 3): port {port} on 127.0.0.1 is already in use",
    }
    path = tmp_path / "bad.yaml"
    for text, expected in cases.items():
        path.write_text(text)
        result = _pko("cluster", "up", "-c", str(path))
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1 and expected.format(path=path) in result.stderr, result.stderr
