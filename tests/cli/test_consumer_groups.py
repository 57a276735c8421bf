"""`pko consumer-groups` without a broker: Kafka's validation messages (exit 2), the one-line error
for an unreachable cluster (exit 1, within --timeout), and the parsers of reset arguments."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from group_clients import Pko

from pykafka_ops.models.groups import PartitionReset, ResetPlan, TopicPartition
from cluster.pytest_plugin import free_ports
from pykafka_ops.services.groups import InvalidArgumentError, parse_states, parse_topic_arg
from pykafka_ops.services.offsets import export_csv, parse_datetime, parse_duration, parse_reset_csv

_SCRIPT = Path(sys.executable).parent / "pko"
PKO = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "commands.main"]
SCENARIOS = "[to-offset], [shift-by], [to-datetime], [by-duration], [to-earliest], [to-latest], [to-current], [from-file]"
RESET = ["--reset-offsets", "--group", "g"]


@pytest.mark.parametrize(("args", "message"), [
    (["--group", "g"], ("Command must include exactly one action: --list, --describe, --delete, --reset-offsets, "
                       "--delete-offsets")),
    (["--list", "--describe"], ("Command must include exactly one action: --list, --describe, --delete, "
                               "--reset-offsets, --delete-offsets")),
    (["--describe"], "Option [describe] takes one of these options: [group], [all-groups]"),
    (["--delete"], "Option [delete] takes one of these options: [group], [all-groups]"),
    (["--describe", "--group", "g", "--members", "--state"],
     "Option [describe] takes at most one of these options: [members], [offsets], [state]"),
    (["--describe", "--group", "g", "--state", "Stable"], "Option [describe] does not take a value for [state]"),
    (["--describe", "--group", "g", "--all-groups"], 'Option "[group]" can\'t be used with option "[all-groups]"'),
    (["--describe", "--group", "g", "--topic", "t"], 'Option "[topic]" can\'t be used with option "[describe]"'),
    (["--list", "--group", "g"], 'Option "[group]" can\'t be used with option "[list]"'),
    (["--delete", "--group", "g", "--topic", "t"],
     "The consumer does not support topic-specific offset deletion from a consumer group."),
    (["--delete-offsets", "--group", "g"], "Option [delete-offsets] takes the following options: [group], [topic]"),
    ([*RESET, "--all-topics", "--to-earliest", "--dry-run", "--execute"],
     "Option [reset-offsets] only accepts one of [execute] and [dry-run]"),
    ([*RESET, "--all-topics", "--to-offset", "1", "--shift-by", "1"],
     'Option "[to-offset]" can\'t be used with option "[shift-by]"'),
    ([*RESET, "--all-topics"], f"Option '[reset-offsets]' requires one of the following scenarios: {SCENARIOS}"),
    ([*RESET, "--to-earliest"], "One of the reset scopes should be defined: --all-topics, --topic."),
    ([*RESET, "--topic", "t:x", "--to-earliest"], "Invalid partition 'x' specified in topic arg 't:x''"),
    ([*RESET, "--topic", "t:0:1", "--to-earliest"], "Invalid topic arg 't:0:1', expected topic name and partitions"),
    ([*RESET, "--all-topics", "--to-datetime", "2024-01-01"],
     "Error parsing timestamp. It does not contain a 'T' according to ISO8601 format"),
    ([*RESET, "--all-topics", "--by-duration", "1h"], "Text cannot be parsed to a Duration: '1h'"),
    (["--list", "--state", "Bogus"], ("Invalid state list 'Bogus'. Valid states are: PreparingRebalance, "
                                     "CompletingRebalance, Stable, Dead, Empty, Assigning, Reconciling")),
    (["--describe", "--group", "g", "--members", "--time-lag"],
     "Option [time-lag] can be used only with [describe] [offsets]"),
    (["--list", "--fail-on-lag", "3"], "Option [fail-on-lag] can be used only with [describe] [offsets]"),
    (["--list", "--to-earliest"], "Option [to-earliest] can be used only with [reset-offsets]"),
    ([*RESET, "--all-topics", "--to-earliest", "--export", "--output", "json"],
     'Option "[export]" can\'t be used with option "[output]"'),
])
def test_invalid_flags_print_kafkas_message_and_exit_2(args: list[str], message: str) -> None:
    result = Pko("127.0.0.1:1")(*args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"pko: {message}\n")


def test_no_action_given_prints_usage() -> None:
    result = Pko("")(bootstrap=False)
    assert result.exit_code == 2
    assert "--reset-offsets" in result.stdout + result.stderr


def test_without_bootstrap_server_it_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PKO_BOOTSTRAP", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    result = Pko("")("--list", bootstrap=False)
    assert result.exit_code == 2
    assert result.stderr.startswith("pko: no --bootstrap-server given, $PKO_BOOTSTRAP is not set")


def test_bootstrap_server_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    (port,) = free_ports(1)
    monkeypatch.setenv("PKO_BOOTSTRAP", f"127.0.0.1:{port}")
    result = Pko("")("--list", bootstrap=False)
    expected = f"pko: cannot reach the Kafka cluster at 127.0.0.1:{port} within 5 s (connection refused or no route to host)\n"
    assert (result.exit_code, result.stderr) == (1, expected)


def test_refused_connection_fails_at_once_with_one_line() -> None:
    (port,) = free_ports(1)
    started = time.monotonic()
    proc = subprocess.run([*PKO, "consumer-groups", "--describe", "--all-groups", "-b", f"127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == (f"pko: cannot reach the Kafka cluster at 127.0.0.1:{port} within 5 s "
                           "(connection refused or no route to host)\n")
    assert time.monotonic() - started < 5


def test_silent_server_fails_within_the_timeout_with_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        port = silent.getsockname()[1]
        started = time.monotonic()
        proc = subprocess.run([*PKO, "consumer-groups", "--describe", "--group", "g", "--timeout", "1000",
                               "-b", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=30, check=False)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.startswith(f"pko: cannot reach the Kafka cluster at 127.0.0.1:{port} within 1 s (")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert time.monotonic() - started < 5  # --timeout was honoured: the default (5 s) would take longer


@pytest.mark.parametrize(("text", "millis"), [
    ("2024-01-01T00:00:00.000", 1704067200000),          # Kafka's form, UTC assumed
    ("2024-01-01T00:00:00.123Z", 1704067200123),
    ("2024-01-01T05:30:00.000+05:30", 1704067200000),
    ("2024-01-01T05:30:00.000+0530", 1704067200000),
    ("2024-01-01T05:00:00.000+05", 1704067200000),
    ("2024-01-01T00:00:00", 1704067200000),              # no milliseconds: Kafka refuses, we accept
    ("2024-01-01T00:00:00Z", 1704067200000),
    ("2023-12-31T19:00:00-05:00", 1704067200000),
    ("2024-01-01T00:00:00.123456", 1704067200123),       # micros: truncated to ms
    ("1704067200000", 1704067200000),                    # epoch milliseconds
])
def test_to_datetime_accepts_kafkas_forms_and_more(text: str, millis: int) -> None:
    assert parse_datetime(text) == millis


def test_to_datetime_rejects_garbage() -> None:
    with pytest.raises(InvalidArgumentError, match="Error parsing timestamp 'xTy'"):
        parse_datetime("xTy")


@pytest.mark.parametrize(("text", "millis"), [
    ("PT1M", 60_000), ("P1DT2H", 93_600_000), ("PT0.1S", 100), ("pt1h30m", 5_400_000), ("-PT1S", -1000),
    ("PT-1.5S", -1500), ("P2D", 172_800_000),
])
def test_by_duration_parses_like_javas_duration(text: str, millis: int) -> None:
    assert parse_duration(text) == millis


@pytest.mark.parametrize("text", ["PT", "P", "1h", "PT1H2", "P1H"])
def test_by_duration_rejects_what_java_rejects(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="Text cannot be parsed to a Duration"):
        parse_duration(text)


def test_topic_args_and_states_parse_as_kafka() -> None:
    assert parse_topic_arg("orders") == ("orders", None)
    assert parse_topic_arg("orders:0,2") == ("orders", (0, 2))
    assert parse_states("stable,EMPTY") == {"Stable", "Empty"}


def test_export_csv_shapes_and_quoting_round_trip() -> None:
    plans = [ResetPlan("g1", "Empty", (PartitionReset("a,b", 0, 5, 7), PartitionReset('q"t', 1, None, 3))),
             ResetPlan("g2", "Empty", (PartitionReset("t", 2, 1, 0),))]
    assert export_csv(plans[:1], with_group=False) == '"a,b",0,7\n"q""t",1,3\n'
    with_group = export_csv(plans, with_group=True)
    assert with_group == 'g1,"a,b",0,7\ng1,"q""t",1,3\ng2,t,2,0\n'
    assert parse_reset_csv(with_group + "\n", ["g1", "g2"]) == {
        "g1": {TopicPartition("a,b", 0): 7, TopicPartition('q"t', 1): 3}, "g2": {TopicPartition("t", 2): 0}}
    assert parse_reset_csv('"a,b",0,7\n', ["g1"]) == {"g1": {TopicPartition("a,b", 0): 7}}


def test_reset_csv_errors_name_the_line() -> None:
    with pytest.raises(InvalidArgumentError, match="line 2: expected topic,partition,offset"):
        parse_reset_csv("t,0,1\nt,x,1\n", ["g"])
