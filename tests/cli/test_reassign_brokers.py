"""`pko reassign --generate` and `--list` on our single node and on Tansu (calls both answer), so
the command never leans on one broker's quirks (Tansu lists every partition as a reassignment
with nothing to add or remove: not one)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic
from group_clients import Broker
from typer.testing import CliRunner

from commands.main import app


def test_generate_and_list_on_each_broker(broker: Broker, tmp_path: Path) -> None:
    topic = f"gen-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 0})
    admin.create_topics([NewTopic(topic, 3, 1)], request_timeout=15)[topic].result(15)
    (node,) = admin.list_topics(timeout=10).brokers
    topics = tmp_path / "topics.json"
    topics.write_text(json.dumps({"version": 1, "topics": [{"topic": topic}]}))
    runner = CliRunner()
    result = runner.invoke(app, ["reassign", "-b", broker.bootstrap, "--generate", "--topics-to-move-json-file",
                                 str(topics), "--broker-list", str(node)])
    assert result.exit_code == 0, result.stderr
    expected = json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": p, "replicas": [node], "log_dirs": ["any"]} for p in range(3)]},
        separators=(",", ":"))
    assert result.stdout == (f"Current partition replica assignment\n{expected}\n\n"
                             f"Proposed partition reassignment configuration\n{expected}\n")
    result = runner.invoke(app, ["reassign", "-b", broker.bootstrap, "--generate", "--topics-to-move-json-file",
                                 str(topics), "--broker-list", str(node), "--replication-factor", "2"])
    assert (result.exit_code, result.stderr) == (2, "pko: Replication factor: 2 larger than available brokers: 1.\n")
    listed = runner.invoke(app, ["reassign", "-b", broker.bootstrap, "--list"])
    assert (listed.exit_code, listed.stdout) == (0, "No partition reassignments found.\n"), listed.stderr
    as_json = runner.invoke(app, ["reassign", "-b", broker.bootstrap, "--list", "--output", "json"])
    assert json.loads(as_json.stdout) == {"reassignments": []}
