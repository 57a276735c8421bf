"""`pko acls` (kafka-acls) in-process (typer's CliRunner) against a real node with Kafka's
StandardAuthorizer (``allow.everyone.if.no.acl.found``, so the anonymous client may manage ACLs),
and against the session's node without an authorizer. Tansu implements no ACL API: not tested there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from cluster.pytest_plugin import RunningCluster, start_cluster

YAML = """\
cluster: {name: acls-cli}
nodes:
  - {id: 1}
broker:
  authorizer.class.name: org.apache.kafka.metadata.authorizer.StandardAuthorizer
  allow.everyone.if.no.acl.found: true
"""


@pytest.fixture(scope="module")
def acl_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with start_cluster(YAML, tmp_path_factory.mktemp("acls-cli")) as running:
        yield running


def pko(bootstrap: str, *args: str, stdin: str | None = None) -> Any:
    """`pko acls -b BOOTSTRAP ARGS` in-process; exit code and output."""
    from commands.main import app

    return CliRunner().invoke(app, ["acls", "-b", bootstrap, *args], input=stdin, catch_exceptions=False)


def listed(bootstrap: str, *args: str) -> list[dict[str, Any]]:
    result = pko(bootstrap, "--list", "--output", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_add_list_remove(acl_node: RunningCluster) -> None:
    b = acl_node.bootstrap_servers
    added = pko(b, "--add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Describe",
                "--topic", "orders")
    assert added.exit_code == 0, added.output
    assert "Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`" in (
        added.output)
    text = pko(b, "--list", "--topic", "orders")
    assert text.exit_code == 0
    assert "\t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)" in text.output
    assert "\t(principal=User:alice, host=*, operation=DESCRIBE, permissionType=ALLOW)" in text.output
    assert {(a["operation"], a["principal"]) for a in listed(b, "--topic", "orders")} == {
        ("READ", "User:alice"), ("DESCRIBE", "User:alice")}
    refused = pko(b, "--remove", "--topic", "orders")  # no --force and nothing on stdin
    assert refused.exit_code == 2 and "--force" in refused.output
    assert len(listed(b, "--topic", "orders")) == 2
    removed = pko(b, "--remove", "--topic", "orders", "--operation", "Read", stdin="y\n")
    assert removed.exit_code == 0 and "operation=READ" in removed.output
    assert [a["operation"] for a in listed(b, "--topic", "orders")] == ["DESCRIBE"]
    assert pko(b, "--remove", "--topic", "orders", "--force").exit_code == 0
    assert listed(b, "--topic", "orders") == []


def test_producer_and_consumer_expand_as_kafka_acls(acl_node: RunningCluster) -> None:
    b = acl_node.bootstrap_servers
    # --idempotent puts an ACL on the cluster: from then on the anonymous client needs one there too
    assert pko(b, "--add", "--cluster", "--allow-principal", "User:ANONYMOUS").exit_code == 0
    assert pko(b, "--add", "--producer", "--idempotent", "--topic", "pay", "--transactional-id", "tx",
               "--allow-principal", "User:bob").exit_code == 0
    assert pko(b, "--add", "--consumer", "--topic", "pay", "--group", "pay-", "--resource-pattern-type", "prefixed",
               "--allow-principal", "User:carol").exit_code == 0
    found = {(a["resource_type"], a["resource_name"], a["pattern_type"], a["principal"], a["operation"])
             for a in listed(b, "--resource-pattern-type", "any")}
    assert {("TOPIC", "pay", "LITERAL", "User:bob", op) for op in ("WRITE", "DESCRIBE", "CREATE")} <= found
    assert {("TRANSACTIONAL_ID", "tx", "LITERAL", "User:bob", op) for op in ("WRITE", "DESCRIBE")} <= found
    assert ("CLUSTER", "kafka-cluster", "LITERAL", "User:bob", "IDEMPOTENT_WRITE") in found
    assert {("TOPIC", "pay", "PREFIXED", "User:carol", op) for op in ("READ", "DESCRIBE")} <= found
    assert ("GROUP", "pay-", "PREFIXED", "User:carol", "READ") in found
    match = listed(b, "--group", "pay-1", "--resource-pattern-type", "match")
    assert [(a["resource_name"], a["operation"]) for a in match] == [("pay-", "READ")]
    assert pko(b, "--remove", "--force", "--resource-pattern-type", "any", "--topic", "pay").exit_code == 0
    assert pko(b, "--remove", "--force", "--cluster").exit_code == 0


@pytest.mark.parametrize("args", [
    ["--add", "--topic", "t"],
    ["--add", "--allow-principal", "User:a"],
    ["--add", "--allow-principal", "User:a", "--topic", "t", "--operation", "Fly"],
    ["--add", "--allow-principal", "User:a", "--topic", "t", "--resource-pattern-type", "match"],
    ["--list", "--remove"],
    ["--list", "--consumer", "--topic", "t"],
])
def test_bad_flags_exit_2(acl_node: RunningCluster, args: list[str]) -> None:
    result = pko(acl_node.bootstrap_servers, *args)
    assert result.exit_code == 2 and result.output.startswith("pko: ") and result.output.count("\n") == 1


def test_invalid_principal_is_refused_by_the_cluster(acl_node: RunningCluster) -> None:
    result = pko(acl_node.bootstrap_servers, "--add", "--allow-principal", "alice", "--topic", "t")
    assert result.exit_code == 1 and "INVALID_REQUEST" in result.output and "Could not parse principal" in result.output


def test_no_authorizer_and_unreachable(pko_cluster: RunningCluster) -> None:
    for args in (["--list"], ["--add", "--allow-principal", "User:a", "--topic", "t"]):
        result = pko(pko_cluster.bootstrap_servers, *args)
        assert result.exit_code == 1 and "has no authorizer" in result.output, result.output
    result = pko("127.0.0.1:1", "--list")
    assert result.exit_code == 1 and "127.0.0.1:1" in result.output
