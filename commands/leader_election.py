"""`pko leader-election`: kafka-leader-election — elect preferred (or unclean) leaders.

Flags are kafka-leader-election's: ``--election-type PREFERRED|UNCLEAN`` (any case) and exactly
one of ``--all-topic-partitions``, ``--topic T --partition P``, ``--path-to-json-file F``
(``{"partitions": [{"topic": "t", "partition": 0}]}``); ``--admin.config`` is an alias of
``--command-config``. Piped, the output is the Java tool's::

    Successfully completed leader election (PREFERRED) for partitions t-0, t-1
    Valid replica already elected for partitions t-2
    Error completing leader election (PREFERRED) for partition: t-3: org.apache.kafka.common.errors.…

Exit codes: 2 for bad flags or a bad JSON file, 1 when the cluster cannot be reached or a
partition could not be elected (after the lines above, as the Java tool throws then), else 0.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands._exit import FAILURE, USAGE, CliError, handle_errors
from commands._options import (
    BootstrapOption,
    ClusterFileOption,
    OutputOption,
    TimeoutOption,
)
from commands._render import Table, render

if TYPE_CHECKING:
    from pykafka_ops.services.leader_election import ElectionReport

app = typer.Typer(add_completion=False, rich_markup_mode=None)

_EXCLUSIVE = "One and only one of the following options is required: topic, all-topic-partitions, path-to-json-file"


def _election_type(value: str | None) -> str:
    """kafka-leader-election's ``--election-type``: required, PREFERRED or UNCLEAN in any case."""
    from pykafka_ops.services.leader_election import ELECTION_TYPES

    if value is None:
        raise CliError("Missing required option(s): election-type", USAGE)
    if value.upper() not in ELECTION_TYPES:
        raise CliError(f"Invalid election type {value!r}: expected one of {', '.join(ELECTION_TYPES)} "
                       "(any case)", USAGE)
    return value.upper()


def _partitions(topic: str | None, partition: int | None, all_partitions: bool,
                json_file: Path | None) -> list[tuple[str, int]] | None:
    """The partitions asked for (None: all), with kafka-leader-election's argument rules."""
    from pykafka_ops.services.leader_election import (
        ElectionDataError,
        parse_election_json,
    )

    if sum((topic is not None, all_partitions, json_file is not None)) != 1:
        raise CliError(_EXCLUSIVE, USAGE)
    if topic is not None and partition is None:
        raise CliError("Missing required option(s): partition", USAGE)
    if topic is None and partition is not None:
        raise CliError("Option partition is only allowed if topic is used", USAGE)
    if topic is not None and partition is not None:
        return [(topic, partition)]
    if json_file is not None:
        try:
            return parse_election_json(json_file.read_text())
        except (ElectionDataError, OSError, UnicodeDecodeError) as exc:
            raise CliError(f"{json_file}: {exc}", USAGE) from None
    return None


@app.command()
@handle_errors
def leader_election(
    election_type: Annotated[str | None, typer.Option(
        "--election-type", help="PREFERRED (the first replica leads again) or UNCLEAN (elect a leader for "
                                "partitions that have none); any case. Required.")] = None,
    topic: Annotated[str | None, typer.Option("--topic", help="Topic of the one partition to elect.")] = None,
    partition: Annotated[int | None, typer.Option(
        "--partition", min=0, help="Partition to elect; required with --topic.")] = None,
    all_topic_partitions: Annotated[bool, typer.Option(
        "--all-topic-partitions", help="Elect on every partition that needs it.")] = False,
    path_to_json_file: Annotated[Path | None, typer.Option(
        "--path-to-json-file", exists=True, dir_okay=False,
        help='Partitions from a JSON file: {"partitions": [{"topic": "t", "partition": 0}]}.')] = None,
    bootstrap_server: BootstrapOption = None,
    command_config: Annotated[Path | None, typer.Option(
        "--command-config", "--admin.config", exists=True, dir_okay=False,
        help="Client properties file (Java or librdkafka names), e.g. for SASL/TLS.")] = None,
    config: ClusterFileOption = None,
    timeout: TimeoutOption = 30000,
    output: OutputOption = None,
) -> None:
    """Elect preferred or unclean leaders (kafka-leader-election)."""
    kind = _election_type(election_type)
    wanted = _partitions(topic, partition, all_topic_partitions, path_to_json_file)
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.services.leader_election import FAILED, elect_leaders

    settings = client_settings(bootstrap_server, command_config, timeout, config)
    report = asyncio.run(elect_leaders(settings, kind, wanted))
    table = Table(["TOPIC", "PARTITION", "RESULT", "ERROR"],
                  [[p.topic, p.partition, p.status, p.error] for p in report.partitions],
                  title=f"Leader election ({kind})", numeric=frozenset({"PARTITION"}))
    render(output, [table], _payload(report), text=lambda: _text(report))
    failed = report.having(FAILED)
    if failed:
        raise CliError(f"{len(failed)} replica(s) could not be elected", FAILURE)


def _text(report: ElectionReport) -> str:
    """kafka-leader-election's lines (``LeaderElectionCommand.electLeaders``)."""
    from pykafka_ops.services.leader_election import ELECTED, FAILED, NOT_NEEDED

    lines = []
    elected = report.having(ELECTED)
    if elected:
        lines.append(f"Successfully completed leader election ({report.election_type}) for partitions "
                     f"{', '.join(p.name for p in elected)}")
    not_needed = report.having(NOT_NEEDED)
    if not_needed:
        lines.append(f"Valid replica already elected for partitions {', '.join(p.name for p in not_needed)}")
    lines.extend(f"Error completing leader election ({report.election_type}) for partition: {p.name}: {p.exception}"
                 for p in report.having(FAILED))
    return "\n".join(lines)


def _payload(report: ElectionReport) -> dict[str, Any]:
    return {"election_type": report.election_type,
            "partitions": [{"topic": p.topic, "partition": p.partition, "result": p.status, "error": p.error,
                            "message": p.message} for p in report.partitions]}
