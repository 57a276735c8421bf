"""Helpers for the topics / configs / produce / consume / offsets / perf CLI tests.

``pko(bootstrap, *args, input=…)`` runs `pko` in-process (typer's CliRunner) against a broker (the
``broker`` fixture of conftest.py is our cluster, then Tansu). Topics get unique names, so every
test can share the session's brokers.
"""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from group_clients import Broker, create_topic, unique, wait_until

__all__ = ["Broker", "create_topic", "consume_json", "pko", "topic", "unique", "wait_until"]


def pko(bootstrap: str, *args: str, input: bytes | str | None = None) -> Any:
    """Run ``pko *args --bootstrap-server bootstrap`` in-process; the Result has exit_code, stdout, stderr."""
    from commands.main import app

    return CliRunner().invoke(app, [*args, "--bootstrap-server", bootstrap], input=input, catch_exceptions=False)


def topic(bootstrap: str, prefix: str, partitions: int = 1) -> str:
    """A new topic with a unique name, its metadata visible."""
    name = unique(prefix)
    create_topic(bootstrap, name, partitions)
    return name


def consume_json(bootstrap: str, name: str, *args: str) -> list[dict[str, Any]]:
    """Every record of ``name`` from the beginning, as `pko consume --format json` prints them."""
    result = pko(bootstrap, "consume", name, "-o", "beginning", "-e", "-q", "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]
