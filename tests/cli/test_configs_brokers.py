"""`pko configs --entity-type brokers` in-process against the session's node: one broker and the
cluster-wide default (``--entity-default``, sent with our wire client), describe and alter in
kafka-configs' layout, usage errors (exit 2) and an unreachable cluster (exit 1).

Only ``log.index.interval.bytes`` is changed (and removed again): the node is shared.
"""

from __future__ import annotations

import json

import pytest
from records_cli import Broker, pko

KEY = "log.index.interval.bytes"


def test_entity_default_and_one_broker(pko_group_cluster: Broker) -> None:
    bootstrap = pko_group_cluster.bootstrap
    default = ("configs", "--entity-type", "brokers", "--entity-default")
    altered = pko(bootstrap, *default, "--alter", "--add-config", f"{KEY}=8192")
    assert (altered.exit_code, altered.stdout) == (0, "Completed updating default config for brokers in the cluster.\n")
    assert pko(bootstrap, *default, "--describe").stdout == (
        "Default configs for brokers in the cluster are:\n"
        f"  {KEY}=8192 sensitive=false synonyms={{DYNAMIC_DEFAULT_BROKER_CONFIG:{KEY}=8192, "
        f"DEFAULT_CONFIG:{KEY}=4096}}\n")
    one = ("configs", "--entity-type", "brokers", "--entity-name", "1")
    assert pko(bootstrap, *one, "--alter", "--add-config", f"{KEY}=16384").exit_code == 0
    (described,) = json.loads(pko(bootstrap, *one, "--describe", "--output", "json").stdout)
    assert [(c["name"], c["value"], c["source"], c["read_only"]) for c in described["configs"]] == [
        (KEY, "16384", "DYNAMIC_BROKER_CONFIG", False)]
    every = pko(bootstrap, "configs", "--describe", "--entity-type", "brokers").stdout.splitlines()
    assert every[0] == "Dynamic configs for broker 1 are:"
    assert "Default configs for brokers in the cluster are:" in every
    every_config = pko(bootstrap, *one, "--describe", "--all").stdout
    assert "  node.id=1 sensitive=false" in every_config and "  advertised.listeners=PLAINTEXT://" in every_config
    assert pko(bootstrap, *one, "--alter", "--delete-config", KEY).exit_code == 0
    assert pko(bootstrap, *default, "--alter", "--delete-config", KEY).exit_code == 0
    assert pko(bootstrap, *default, "--describe").stdout == "Default configs for brokers in the cluster are:\n"
    refused = pko(bootstrap, *default, "--alter", "--add-config", "num.partitions=2")
    assert refused.exit_code == 1 and "Cannot update these configs dynamically" in refused.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--entity-type", "brokers", "--entity-default", "--entity-name", "1"],
     "--entity-default can't be used with --entity-name, --topic or --broker"),
    (["--entity-type", "topics", "--entity-default"], "--entity-default needs --entity-type brokers"),
])
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = pko("127.0.0.1:1", "configs", "--describe", *args)
    assert (result.exit_code, result.stderr) == (2, f"pko: {message}\n")


def test_unreachable_names_the_bootstrap_server() -> None:
    result = pko("127.0.0.1:1", "configs", "--describe", "--entity-type", "brokers", "--entity-default",
                 "--timeout", "2000")
    assert result.exit_code == 1 and "127.0.0.1:1" in result.stderr and len(result.stderr.splitlines()) == 1
