"""`pko demo --exactly-once` (issue 17 item 5) on one node: the copier killed with SIGKILL
part-way; the exactly-once output equals the input with no duplicates (asserted from the printed
table, and by the command's exit status), while the at-least-once flow under the same kill copies
the killed batch again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from cluster.pytest_plugin import RunningCluster, start_cluster

YAML = """\
cluster: {name: demo-eos}
nodes:
  - {id: 1}
broker:
  offsets.topic.num.partitions: 3
  transaction.state.log.num.partitions: 3
  group.initial.rebalance.delay.ms: 0
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with start_cluster(YAML, tmp_path_factory.mktemp("demo-eos")) as running:
        yield running


def _rows(stdout: str) -> dict[str, list[str]]:
    """FLOW → its row of the comparison table."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["FLOW", "OUTPUT-TOPIC"])
    return {cells[0]: cells[1:] for cells in (line.split() for line in lines[header + 1:header + 3])}


def test_demo_exactly_once_output_equals_input_where_at_least_once_duplicates(cluster: RunningCluster) -> None:
    from commands.main import app

    result = CliRunner().invoke(app, ["demo", "-c", str(cluster.config_path), "--orders", "12", "--exactly-once"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    # OUTPUT-TOPIC, INPUT, OUTPUT, DISTINCT, DUPLICATES, MISSING (then KILLED-AFTER: records committed before the kill)
    assert rows["exactly-once"][:6] == ["orders-validated", "12", "12", "12", "0", "0"], result.stdout
    topic, given, output, distinct, dups, missing, killed_after = rows["at-least-once"]
    assert 4 <= int(killed_after) < 12 and 4 <= int(rows["exactly-once"][6]) < 12
    assert (topic, given, distinct, missing) == ("orders-validated-at-least-once", "12", "12", "0")
    assert int(dups) > 0 and int(output) == 12 + int(dups), result.stdout
    assert "output == input, 12 orders, no duplicates" in result.stdout
