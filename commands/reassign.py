"""`pko reassign`: kafka-reassign-partitions — move partition replicas between brokers and log dirs.

Exactly one action, with the Java tool's flags and JSON files::

    --generate --topics-to-move-json-file F --broker-list 1,2,3 [--disable-rack-aware]
               [--replication-factor N]      (pko: keep the replicas, add or drop some)
    --execute  --reassignment-json-file F [--throttle B/s] [--replica-alter-log-dirs-throttle B/s]
               [--additional] [--timeout MS]
    --verify   --reassignment-json-file F [--preserve-throttles]
    --cancel   --reassignment-json-file F [--preserve-throttles] [--timeout MS]
    --list

Piped, each prints the Java tool's lines ("Current partition replica assignment", "Status of
partition reassignment:", "Current partition reassignments:" …); --generate's JSON is Kafka's,
byte for byte. ``--output json|yaml`` gives --generate, --verify and --list as data, and a
table on a TTY for the last two. --cancel adds one line Kafka leaves out when only some
partitions had a reassignment going on: "No active reassignment for: t-1".

Exit codes: 2 for bad flags or a bad JSON file; 1 when the cluster cannot be reached, refuses the
plan (unknown broker or topic, a reassignment already going on without --additional) or a
partition; else 0 — --verify exits 0 while reassignments are still in progress, as Kafka's tool.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from commands._exit import FAILURE, USAGE, CliError, handle_errors
from commands._options import (
    BootstrapOption,
    ClusterFileOption,
    CommandConfigOption,
    OutputOption,
)
from commands._render import Output, Table, dump, render, resolve_output

if TYPE_CHECKING:
    from pykafka_ops.models.reassign import (
        CancelReport,
        ExecuteReport,
        PartitionTarget,
        ThrottlesCleared,
        VerifyReport,
    )

app = typer.Typer(add_completion=False, rich_markup_mode=None)

ACTIONS = ("generate", "execute", "verify", "cancel", "list")
#: Options each action takes beyond the connection options (Kafka's ``permittedArgs``).
PERMITTED = {
    "generate": {"topics-to-move-json-file", "broker-list", "disable-rack-aware", "replication-factor", "output"},
    "execute": {"reassignment-json-file", "additional", "throttle", "replica-alter-log-dirs-throttle", "timeout"},
    "verify": {"reassignment-json-file", "preserve-throttles", "output"},
    "cancel": {"reassignment-json-file", "preserve-throttles", "timeout"},
    "list": {"output"},
}
REQUIRED = {"generate": ("topics-to-move-json-file",), "execute": ("reassignment-json-file",),
            "verify": ("reassignment-json-file",), "cancel": ("reassignment-json-file",), "list": ()}
#: A JSON file's option help (Kafka's format, shortened).
_PLAN_HELP = ('Reassignment JSON: {"version":1,"partitions":[{"topic":"foo","partition":1,"replicas":[1,2,3],'
              '"log_dirs":["any","any","any"]}]} ("log_dirs" optional: "any" or a broker\'s absolute log dir).')


def _action(chosen: dict[str, bool], given: dict[str, Any]) -> str:
    """The one action asked for, and Kafka's argument checks (``validateAndParseArgs``)."""
    actions = [a for a in ACTIONS if chosen[a]]
    if len(actions) != 1:
        raise CliError(f"Command must include exactly one action: {', '.join('--' + a for a in ACTIONS)}", USAGE)
    action = actions[0]
    for name in REQUIRED[action]:
        if given.get(name) is None:
            raise CliError(f'Missing required argument "[{name}]"', USAGE)
    if action == "generate" and given.get("broker-list") is None and given.get("replication-factor") is None:
        raise CliError('Missing required argument "[broker-list]"', USAGE)
    for name, value in given.items():
        if value not in (None, False) and name not in PERMITTED[action]:
            raise CliError(f'Option "[{name}]" can\'t be used with action "[{action}]"', USAGE)
    return action


def _read(path: Path, parse: Any) -> Any:
    """A JSON file parsed by ``parse``; a bad file is a usage error naming it."""
    from pykafka_ops.services.reassign_plan import ReassignmentDataError

    try:
        return parse(path.read_text())
    except (ReassignmentDataError, OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: {exc}", USAGE) from None


@app.command()
@handle_errors
def reassign(
    generate: Annotated[bool, typer.Option("--generate", help="Propose a reassignment of the topics of "
                                           "--topics-to-move-json-file onto --broker-list (nothing is changed).")] = False,
    execute: Annotated[bool, typer.Option("--execute", help="Start the reassignment of --reassignment-json-file.")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Report the state of --reassignment-json-file's reassignment; "
                                         "clears the throttles once nothing moves.")] = False,
    cancel: Annotated[bool, typer.Option("--cancel", help="Cancel the reassignment of --reassignment-json-file.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the reassignments going on.")] = False,
    reassignment_json_file: Annotated[Path | None, typer.Option(
        "--reassignment-json-file", exists=True, dir_okay=False, help=_PLAN_HELP)] = None,
    topics_to_move_json_file: Annotated[Path | None, typer.Option(
        "--topics-to-move-json-file", exists=True, dir_okay=False,
        help='Topics for --generate: {"version":1,"topics":[{"topic":"foo"},{"topic":"foo1"}]}.')] = None,
    broker_list: Annotated[str | None, typer.Option(
        "--broker-list", help='Brokers to place the partitions on, "1,2,3" (--generate; with --replication-factor '
                              'the default is every broker).')] = None,
    disable_rack_aware: Annotated[bool, typer.Option(
        "--disable-rack-aware", help="Place replicas without regard to broker racks.")] = False,
    replication_factor: Annotated[int | None, typer.Option(
        "--replication-factor", min=1, help="pko: propose this many replicas per partition, keeping the current "
                                            "ones first (the leader stays) and adding the least loaded brokers.")] = None,
    throttle: Annotated[int | None, typer.Option(
        "--throttle", min=0, help="Inter-broker replication throttle while moving, bytes/s (at least 1 KB/s makes "
                                  "sense); resubmit with --additional to change it.")] = None,
    replica_alter_log_dirs_throttle: Annotated[int | None, typer.Option(
        "--replica-alter-log-dirs-throttle", min=0,
        help="Throttle of moves between log dirs of one broker, bytes/s.")] = None,
    additional: Annotated[bool, typer.Option(
        "--additional", help="Execute beside reassignments already going on (or change their throttle).")] = False,
    preserve_throttles: Annotated[bool, typer.Option(
        "--preserve-throttles", help="Leave broker and topic throttles as they are.")] = False,
    timeout: Annotated[int | None, typer.Option(
        "--timeout", min=1, help="Longest wait for log-dir moves to start, in ms (default 10000).")] = None,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    config: ClusterFileOption = None,
    output: OutputOption = None,
) -> None:
    """Move partition replicas between brokers and log dirs (kafka-reassign-partitions)."""
    given = {"reassignment-json-file": reassignment_json_file, "topics-to-move-json-file": topics_to_move_json_file,
             "broker-list": broker_list, "disable-rack-aware": disable_rack_aware,
             "replication-factor": replication_factor, "throttle": throttle,
             "replica-alter-log-dirs-throttle": replica_alter_log_dirs_throttle, "additional": additional,
             "preserve-throttles": preserve_throttles, "timeout": timeout, "output": output}
    action = _action({"generate": generate, "execute": execute, "verify": verify, "cancel": cancel,
                      "list": list_}, given)
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.services import reassign as service
    from pykafka_ops.services import reassign_plan as plan
    from pykafka_ops.services.reassign_text import reassignment_payload

    targets: tuple[PartitionTarget, ...] = ()
    if reassignment_json_file is not None:
        targets = _read(reassignment_json_file, plan.parse_reassignment_json)
    topics = _read(topics_to_move_json_file, plan.parse_topics_json) if topics_to_move_json_file else []
    try:  # everything the files and flags alone can refuse, before connecting
        if action == "execute":
            plan.check_execute_plan(targets)
        brokers = None if broker_list is None else plan.parse_broker_list(broker_list)
        settings = client_settings(bootstrap_server, command_config, 30000, config)
        wait_ms = timeout or 10000
        if action == "generate":
            generated = asyncio.run(service.generate(settings, topics, brokers, not disable_rack_aware,
                                                     replication_factor))
            _print(output, {"current": reassignment_payload(generated.current),
                            "proposed": reassignment_payload(generated.proposed)},
                   f"Current partition replica assignment\n{plan.reassignment_json(generated.current)}\n\n"
                   f"Proposed partition reassignment configuration\n{plan.reassignment_json(generated.proposed)}")
        elif action == "execute":
            _execute_text(asyncio.run(service.execute(settings, targets, additional, throttle,
                                                      replica_alter_log_dirs_throttle)))
            moves = asyncio.run(service.start_log_dir_moves(settings, targets, wait_ms, _progress()))
            typer.echo("".join(f"Successfully started moving log directory to {d} for replica {p} with broker {b} \n"
                               for p, b, d in moves), nl=False)
        elif action == "verify":
            _verify_output(output, asyncio.run(service.verify(settings, targets, preserve_throttles)))
        elif action == "cancel":
            _cancel_text(asyncio.run(service.cancel(settings, targets, preserve_throttles, wait_ms, _progress())),
                         targets)
        else:
            _list_output(output, asyncio.run(service.list_reassignments(settings)))
    except plan.ReassignmentDataError as exc:
        raise CliError(str(exc), USAGE) from None


def _print(output: Output | None, payload: Any, text: str) -> None:
    """``payload`` as JSON/YAML when asked for, else the Kafka tool's ``text``."""
    typer.echo(dump(payload, output) if output in (Output.json, Output.yaml) else text)


def _progress() -> Any:
    """Progress lines on stderr when it is a terminal (each message once, when it changes), else None."""
    if not sys.stderr.isatty():
        return None
    shown: list[str] = []

    def show(message: str) -> None:
        if not shown or shown[-1] != message:
            shown.append(message)
            typer.echo(message, err=True)
    return show


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def _execute_text(done: ExecuteReport) -> None:
    """kafka-reassign-partitions' --execute lines (``executeAssignment``)."""
    from pykafka_ops.services.reassign_plan import reassignment_json

    lines = [(f"Current partition replica assignment\n\n{reassignment_json(done.current)}\n\n"
              "Save this to use as the --reassignment-json-file option during rollback")]
    if done.throttle is not None or done.log_dir_throttle is not None:
        lines.append("Warning: You must run --verify periodically, until the reassignment completes, to ensure "
                     "the throttle is removed.")
    if done.throttle is not None:
        lines.append(f"The inter-broker throttle limit was set to {done.throttle} B/s")
    if done.log_dir_throttle is not None:
        lines.append(f"The replica-alter-dir throttle limit was set to {done.log_dir_throttle} B/s")
    if done.errors:
        lines.append("Error reassigning partition(s):")
        lines.extend(f"{e.name}: {e.error}: {e.message}" for e in done.errors)
        typer.echo("\n".join(lines))
        raise CliError(f"{len(done.errors)} partition(s) could not be reassigned", FAILURE)
    lines.append(f"Successfully started partition {_plural(len(done.started), 'reassignment')} for "
                 f"{','.join(done.started)}")
    typer.echo("\n".join(lines))


def _cleared_lines(cleared: ThrottlesCleared | None) -> list[str]:
    if cleared is None:
        return []
    return [(f"Clearing broker-level throttles on {_plural(len(cleared.brokers), 'broker')} "
             f"{','.join(map(str, cleared.brokers))}"),
            f"Clearing topic-level throttles on {_plural(len(cleared.topics), 'topic')} {','.join(cleared.topics)}"]


def _cancel_text(report: CancelReport, targets: tuple[PartitionTarget, ...]) -> None:
    """kafka-reassign-partitions' --cancel lines (``cancelAssignment``), and pko's line naming the
    partitions that had no reassignment going on."""
    if report.errors:
        typer.echo(f"Error cancelling partition {_plural(len(report.errors), 'reassignment')} for:\n"
                   + "\n".join(f"{e.name}: {e.error}: {e.message}" for e in report.errors))
        raise CliError(f"{len(report.errors)} reassignment(s) could not be cancelled", FAILURE)
    lines = []
    if report.cancelled:
        lines.append(f"Successfully cancelled partition {_plural(len(report.cancelled), 'reassignment')} for: "
                     f"{','.join(report.cancelled)}")
        idle = sorted({t.name for t in targets} - set(report.cancelled))
        if idle:
            lines.append(f"No active reassignment for: {','.join(idle)}")
    else:
        lines.append("None of the specified partition reassignments are active.")
    if not report.moves_cancelled:
        lines.append("None of the specified partition moves are active.")
    typer.echo("\n".join(lines + _cleared_lines(report.cleared)))


def _verify_text(report: VerifyReport) -> str:
    """kafka-reassign-partitions' --verify lines (``partitionReassignmentStatesToString``,
    ``replicaMoveStatesToString``, ``clearAllThrottles``)."""
    from pykafka_ops.services.reassign_text import verify_lines

    return "\n".join(verify_lines(report) + _cleared_lines(report.cleared))


def _verify_output(output: Output | None, report: VerifyReport) -> None:
    from pykafka_ops.services.reassign_text import verify_payload

    table = Table(["TOPIC", "PARTITION", "STATE", "CURRENT-REPLICAS", "TARGET-REPLICAS"],
                  [[s.topic, s.partition, s.state, ",".join(map(str, s.current_replicas)),
                    ",".join(map(str, s.target_replicas))] for s in report.partitions],
                  title="Status of partition reassignment", numeric=frozenset({"PARTITION"}))
    tables = [table]
    if report.moves:
        tables.append(Table(["TOPIC", "PARTITION", "BROKER", "STATE", "CURRENT-DIR", "FUTURE-DIR", "TARGET-DIR"],
                            [[m.topic, m.partition, m.broker, m.state, m.current_dir, m.future_dir, m.target_dir]
                             for m in report.moves], title="Log directory moves",
                            numeric=frozenset({"PARTITION", "BROKER"})))
    render(output, tables, verify_payload(report), text=lambda: _verify_text(report))
    if resolve_output(output) is not Output.text:  # the data keeps stdout; the user still hears of it
        for line in _cleared_lines(report.cleared):
            typer.echo(line, err=True)


def _list_output(output: Output | None, ongoing: Any) -> None:
    from pykafka_ops.services.reassign_text import list_lines

    table = Table(["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"],
                  [[r.topic, r.partition, ",".join(map(str, r.replicas)), ",".join(map(str, r.adding)) or None,
                    ",".join(map(str, r.removing)) or None] for r in ongoing],
                  title="Current partition reassignments", numeric=frozenset({"PARTITION"}))
    payload = {"reassignments": [{"topic": r.topic, "partition": r.partition, "replicas": list(r.replicas),
                                  "adding_replicas": list(r.adding), "removing_replicas": list(r.removing)}
                                 for r in ongoing]}
    render(output, [table], payload, text=lambda: "\n".join(list_lines(ongoing)))
