"""`pko consumer-groups` against real brokers: Tansu and our cluster (``group_broker``).

Layouts are pinned byte for byte by the golden tests; here the values, messages and exit codes
are checked against what real clients did. Tansu 0.6 differs from Kafka in ways a case names
when it skips: it has no OffsetDelete (key 47), it describes an unknown group as Empty (Kafka:
Dead), its ConsumerGroupDescribe (key 69, which librdkafka prefers) returns no members, and
ListOffsets for a time past the last record answers 0 (Kafka: -1, so the log end is used), and
DeleteRecords makes it exit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from group_clients import Broker, Pko, commit, create_topic, group_member, produce, rows, unique
from typer.testing import CliRunner

OFFSETS_HEADER = ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST",
                  "CLIENT-ID"]


@pytest.fixture
def topic(group_broker: Broker) -> str:
    """A fresh 3-partition topic with 5, 3 and 0 records."""
    name = unique("orders")
    create_topic(group_broker.bootstrap, name, 3)
    produce(group_broker.bootstrap, name, {0: 5, 1: 3})
    return name


def test_describe_empty_group_prints_message_and_rows_without_consumer(group_broker: Broker, topic: str) -> None:
    group = unique("empty")
    commit(group_broker.bootstrap, group, {(topic, 0): 2, (topic, 1): 3})
    result = Pko(group_broker.bootstrap)("--describe", "--group", group)
    assert (result.exit_code, result.stderr) == (0, f"\nConsumer group '{group}' has no active members.\n")
    assert result.stdout.startswith("\nGROUP ") and result.stdout.endswith("\n")
    assert rows(result.stdout) == [OFFSETS_HEADER, [group, topic, "0", "2", "5", "3", "-", "-", "-"],
                                   [group, topic, "1", "3", "3", "0", "-", "-", "-"]]


def test_list_shows_the_group_and_its_state(group_broker: Broker, topic: str) -> None:
    group = unique("listed")
    commit(group_broker.bootstrap, group, {(topic, 0): 1})
    pko = Pko(group_broker.bootstrap)
    assert group in pko("--list").stdout.splitlines()
    listed = pko("--list", "--state")
    assert rows(listed.stdout)[0] == ["GROUP", "STATE"]
    expected_state = "Unknown" if group_broker.name == "tansu" else "Empty"  # Tansu's ListGroups has no state
    assert [group, expected_state] in rows(listed.stdout)


def test_json_and_csv_outputs(group_broker: Broker, topic: str) -> None:
    group = unique("json")
    commit(group_broker.bootstrap, group, {(topic, 0): 4})
    pko = Pko(group_broker.bootstrap)
    payload = json.loads(pko("--describe", "--group", group, "--output", "json").stdout)
    (described,) = payload["groups"]
    assert (payload["version"], described["group"], described["state"], described["total_lag"]) == (1, group, "Empty", 1)
    assert described["partitions"] == [{
        "topic": topic, "partition": 0, "current_offset": 4, "log_end_offset": 5, "lag": 1, "leader_epoch":
        described["partitions"][0]["leader_epoch"], "lag_seconds": None, "lag_seconds_note": None, "consumer_id": None,
        "host": None, "client_id": None}]
    csv = pko("--describe", "--group", group, "--output", "csv").stdout
    assert csv == ("GROUP,TOPIC,PARTITION,CURRENT-OFFSET,LOG-END-OFFSET,LAG,CONSUMER-ID,HOST,CLIENT-ID\n"
                   f"{group},{topic},0,4,5,1,,,\n")
    assert yaml.safe_load(pko("--describe", "--group", group, "--output", "yaml").stdout) == payload
    table = pko("--describe", "--group", group, "--output", "table")  # Rich, 80 columns wide here
    assert (table.exit_code, rows(table.stdout)[0][:2], len(rows(table.stdout))) == (0, ["GROUP", "TOPIC"], 2)


def test_groups_is_an_alias(group_broker: Broker, topic: str) -> None:
    from commands.main import app

    group = unique("alias")
    commit(group_broker.bootstrap, group, {(topic, 1): 3})
    aliased = CliRunner().invoke(app, ["groups", "--list", "-b", group_broker.bootstrap])
    assert (aliased.exit_code, aliased.stdout) == (0, Pko(group_broker.bootstrap)("--list").stdout)


def test_time_lag_compares_record_timestamps(group_broker: Broker) -> None:
    name, group = unique("timed"), unique("timed")
    create_topic(group_broker.bootstrap, name, 2)
    base = int(time.time() * 1000) - 60_000
    produce(group_broker.bootstrap, name, {0: 3}, timestamp_ms=base)
    produce(group_broker.bootstrap, name, {0: 2}, timestamp_ms=base + 12_500)
    produce(group_broker.bootstrap, name, {1: 1}, timestamp_ms=base)
    commit(group_broker.bootstrap, group, {(name, 0): 1, (name, 1): 1})
    pko = Pko(group_broker.bootstrap)
    result = pko("--describe", "--group", group, "--time-lag")
    assert result.exit_code == 0
    assert rows(result.stdout)[1:] == [[group, name, "0", "1", "5", "4", "12.500", "-", "-", "-"],
                                       [group, name, "1", "1", "1", "0", "0.000", "-", "-", "-"]]
    assert pko("--describe", "--group", group, "--fail-on-lag-seconds", "12").exit_code == 3
    assert pko("--describe", "--group", group, "--fail-on-lag-seconds", "13").exit_code == 0
    breach = pko("--describe", "--group", group, "--fail-on-lag", "3")
    assert (breach.exit_code, breach.stderr.splitlines()[-1]) == (
        3, f"pko: group '{group}' lags 4 records on {name}-0 (--fail-on-lag 3)")
    assert pko("--describe", "--group", group, "--fail-on-lag", "4").exit_code == 0


@pytest.mark.parametrize(("scenario", "expected", "empty"), [
    (["--to-earliest"], {0: 0, 1: 0, 2: 0}, []),
    (["--to-latest"], {0: 5, 1: 3, 2: 0}, []),
    (["--to-current"], {0: 2, 1: 3, 2: 0}, []),        # no committed offset on 2: the log end
    (["--to-offset", "4"], {0: 4, 1: 3, 2: 0}, []),    # clamped to the log end on 1 and 2
    (["--to-datetime", "2000-01-01T00:00:00Z"], {0: 0, 1: 0, 2: 0}, [2]),
    (["--to-datetime", "2999-01-01T00:00:00.000"], {0: 5, 1: 3, 2: 0}, [0, 1, 2]),  # past the last record
    (["--by-duration", "P3650D"], {0: 0, 1: 0, 2: 0}, [2]),
])
def test_reset_scenarios_dry_run_then_execute(group_broker: Broker, topic: str, scenario: list[str],
                                              expected: dict[int, int], empty: list[int]) -> None:
    if group_broker.name == "tansu" and scenario[1:] == ["2999-01-01T00:00:00.000"]:
        pytest.skip("Tansu 0.6 answers ListOffsets for a time past the last record with offset 0 (Kafka: -1)")
    group = unique("reset")
    commit(group_broker.bootstrap, group, {(topic, 0): 2, (topic, 1): 3})
    pko = Pko(group_broker.bootstrap)
    args = ["--reset-offsets", "--group", group, "--topic", topic, *scenario]
    plan = [[group, topic, str(p), str(o)] for p, o in expected.items()]
    dry = pko(*args)
    warnings = [f"Warn: Partition {p} from topic {topic} is empty. Falling back to latest known offset." for p in empty]
    if group_broker.name == "tansu":  # Tansu answers an empty partition with offset 0, not -1: no fallback
        warnings = []
    assert (dry.exit_code, dry.stdout.replace("\n\n", "\n").splitlines()[1:len(warnings) + 1]) == (0, warnings)
    assert rows(dry.stdout)[len(warnings):] == [["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], *plan]
    assert dry.stderr.startswith("WARN: No action will be performed as the --execute option is missing.")
    unchanged = rows(pko("--describe", "--group", group).stdout)
    assert [r[3] for r in unchanged[1:]] == ["2", "3"]
    executed = pko(*args, "--execute")
    assert (executed.exit_code, rows(executed.stdout)) == (0, rows(dry.stdout))
    described = rows(pko("--describe", "--group", group).stdout)[1:]
    assert {int(r[2]): int(r[3]) for r in described} == expected


def test_shift_by_is_clamped_with_a_warning(group_broker: Broker, topic: str) -> None:
    group = unique("shift")
    commit(group_broker.bootstrap, group, {(topic, 0): 2, (topic, 1): 3})
    result = Pko(group_broker.bootstrap)("--reset-offsets", "--group", group, "--all-topics", "--shift-by", "-3",
                                         "--dry-run")
    assert (result.exit_code, rows(result.stdout)[1:]) == (0, [[group, topic, "0", "0"], [group, topic, "1", "0"]])
    assert result.stderr == (f"WARN: New offset (-1) is lower than earliest offset for topic partition {topic}-0. "
                             "Value will be set to 0.\n")
    missing = Pko(group_broker.bootstrap)("--reset-offsets", "--group", group, "--topic", f"{topic}:2",
                                          "--shift-by", "1", "--dry-run")
    assert missing.exit_code == 1
    assert f"Cannot shift offset for partition {topic}-2 since there is no current committed offset" in missing.stdout


def test_export_then_from_file_round_trip(group_broker: Broker, topic: str, tmp_path: Path) -> None:
    group, other = unique("export"), unique("import")
    commit(group_broker.bootstrap, group, {(topic, 0): 1, (topic, 1): 2})
    pko = Pko(group_broker.bootstrap)
    exported = pko("--reset-offsets", "--group", group, "--all-topics", "--shift-by", "1", "--export", "--dry-run")
    assert (exported.exit_code, exported.stdout) == (0, f"{topic},0,2\n{topic},1,3\n\n")
    plan = tmp_path / "plan.csv"
    plan.write_text(exported.stdout)
    applied = pko("--reset-offsets", "--group", other, "--from-file", str(plan), "--execute")
    assert (applied.exit_code, rows(applied.stdout)[1:]) == (0, [[other, topic, "0", "2"], [other, topic, "1", "3"]])
    both = pko("--reset-offsets", "--group", group, "--group", other, "--all-topics", "--to-current", "--export",
               "--dry-run")
    assert both.stdout == f"{group},{topic},0,1\n{group},{topic},1,2\n{other},{topic},0,2\n{other},{topic},1,3\n\n"


def test_active_group_is_not_reset(group_broker: Broker, topic: str) -> None:
    group = unique("active")
    pko = Pko(group_broker.bootstrap)
    with group_member(group_broker.bootstrap, group, [topic], client_id="worker-1"):
        refused = pko("--reset-offsets", "--group", group, "--all-topics", "--to-earliest", "--execute")
        state = pko("--describe", "--group", group, "--state")
        members = pko("--describe", "--group", group, "--members")
    expected = (f"\nError: Assignments can only be reset if the group '{group}' is inactive, but the current state is "
                f"Stable.\n\nGROUP{' ' * max(11, len(group) - 4)}TOPIC           PARTITION  NEW-OFFSET\n")
    assert (refused.exit_code, refused.stdout) == (1, expected)
    assert rows(state.stdout)[1][0] == group and rows(state.stdout)[1][-2:] in (["Stable", "1"], ["Stable", "0"])
    if group_broker.name == "tansu":
        pytest.skip("Tansu 0.6's ConsumerGroupDescribe (preferred by librdkafka) returns no members")
    assert rows(state.stdout)[1][3:] == ["range", "Stable", "1"]
    ((_g, consumer_id, host, client_id, count),) = rows(members.stdout)[1:]
    assert (consumer_id.startswith("worker-1-"), host, client_id, count) == (True, "/127.0.0.1", "worker-1", "3")


def test_delete_groups(group_broker: Broker, topic: str) -> None:
    first, second = unique("del"), unique("del")
    for group in (first, second):
        commit(group_broker.bootstrap, group, {(topic, 0): 1})
    pko = Pko(group_broker.bootstrap)
    deleted = pko("--delete", "--group", first, "--group", second)
    assert (deleted.exit_code, deleted.stdout) == (
        0, f"Deletion of requested consumer groups ('{first}', '{second}') was successful.\n")
    assert first not in pko("--list").stdout.splitlines()
    if group_broker.name == "tansu":
        pytest.skip("Tansu 0.6 describes a deleted (unknown) group as Empty; Kafka says Dead")
    gone = pko("--describe", "--group", first)
    assert (gone.exit_code, gone.stdout) == (1, f"\nError: Consumer group '{first}' does not exist.\n")


def test_delete_offsets(group_broker: Broker, topic: str) -> None:
    if group_broker.name == "tansu":
        pytest.skip("Tansu 0.6 does not implement OffsetDelete (key 47)")
    group = unique("deloff")
    commit(group_broker.bootstrap, group, {(topic, 0): 1, (topic, 1): 2})
    pko = Pko(group_broker.bootstrap)
    result = pko("--delete-offsets", "--group", group, "--topic", f"{topic}:0")
    assert (result.exit_code, rows(result.stdout)) == (0, [
        ["Request", "succeeded", "for", "deleting", "offsets", "from", "group", f"{group}."],
        ["TOPIC", "PARTITION", "STATUS"], [topic, "0", "Successful"]])
    assert [r[2] for r in rows(pko("--describe", "--group", group).stdout)[1:]] == ["1"]
    with group_member(group_broker.bootstrap, group, [topic]):
        refused = pko("--delete-offsets", "--group", group, "--topic", topic)
    assert refused.exit_code == 1
    assert rows(refused.stdout)[0] == ["Error:", "Encountered", "some", "partition-level", "error,", "see", "the",
                                       "follow-up", "details."]


def test_missing_group_exits_1(group_broker: Broker) -> None:
    if group_broker.name == "tansu":
        pytest.skip("Tansu 0.6 describes an unknown group as Empty; Kafka says Dead")
    group = unique("missing")
    result = Pko(group_broker.bootstrap)("--describe", "--group", group)
    assert (result.exit_code, result.stdout) == (1, f"\nError: Consumer group '{group}' does not exist.\n")


def test_all_groups_survives_a_deleted_topic(group_broker: Broker, topic: str) -> None:
    from confluent_kafka.admin import AdminClient

    doomed = unique("doomed")
    create_topic(group_broker.bootstrap, doomed, 1)
    broken, healthy = unique("broken"), unique("healthy")
    commit(group_broker.bootstrap, broken, {(doomed, 0): 0, (topic, 0): 1})
    commit(group_broker.bootstrap, healthy, {(topic, 1): 1})
    admin = AdminClient({"bootstrap.servers": group_broker.bootstrap})
    admin.delete_topics([doomed])[doomed].result(10)
    result = Pko(group_broker.bootstrap)("--describe", "--all-groups", "--output", "json")
    assert result.exit_code == 0
    by_group = {g["group"]: g for g in json.loads(result.stdout)["groups"]}
    assert by_group[healthy]["partitions"][0]["lag"] == 2
    doomed_rows = [p for p in by_group[broken]["partitions"] if p["topic"] == doomed]
    assert [p["log_end_offset"] for p in doomed_rows] in ([None], [])
    assert [p["lag"] for p in by_group[broken]["partitions"] if p["topic"] == topic] == [4]


def test_time_lag_is_unknown_with_a_reason_when_the_record_was_deleted(group_broker: Broker) -> None:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    if group_broker.name == "tansu":
        pytest.skip("Tansu 0.6 exits (connection reset, then refused) when it gets DeleteRecords (key 21)")
    name, group = unique("trimmed"), unique("trimmed")
    create_topic(group_broker.bootstrap, name, 1)
    produce(group_broker.bootstrap, name, {0: 6})
    commit(group_broker.bootstrap, group, {(name, 0): 1})
    admin = AdminClient({"bootstrap.servers": group_broker.bootstrap})
    admin.delete_records([TopicPartition(name, 0, 4)])[TopicPartition(name, 0, 4)].result(10)
    result = Pko(group_broker.bootstrap)("--describe", "--group", group, "--time-lag", "--output", "json")
    (partition,) = json.loads(result.stdout)["groups"][0]["partitions"]
    note = "record at the committed offset: the record was deleted (offset out of range)"
    assert (partition["lag"], partition["lag_seconds"], partition["lag_seconds_note"]) == (5, None, note)
    assert result.stderr.endswith(f"LAG-SECONDS of group '{group}' on {name}-0 is unknown: {note}\n")


def test_command_config_properties_reach_the_client(group_broker: Broker, topic: str, tmp_path: Path) -> None:
    group = unique("props")
    commit(group_broker.bootstrap, group, {(topic, 0): 1})
    good, bad = tmp_path / "good.properties", tmp_path / "bad.properties"
    good.write_text("# Java properties\nclient.id=pko-from-config\nrequest.timeout.ms: 4000\n")
    bad.write_text("no.such.property=1\n")
    pko = Pko(group_broker.bootstrap)
    assert pko("--describe", "--group", group, "--command-config", str(good)).exit_code == 0
    refused = pko("--describe", "--group", group, "--command-config", str(bad))
    assert (refused.exit_code, refused.stderr) == (
        2, 'pko: invalid client configuration: No such configuration property: "no.such.property"\n')
