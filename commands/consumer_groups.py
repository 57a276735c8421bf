"""`pko consumer-groups` (alias `pko groups`): kafka-consumer-groups' flags, output and messages.

One action flag (``--list``, ``--describe``, ``--delete``, ``--reset-offsets``,
``--delete-offsets``) dispatches to one small function: parse → one ``services`` call → render.
Plain text (when piped, or ``--output text``) is Kafka's own layout (``consumer_groups_text``);
a TTY gets a Rich table; ``--output json|yaml|csv`` the data (``consumer_groups_data``).

Exit codes differ from Kafka's on purpose (it exits 0 after most runtime errors): 0 ok, 1 a
runtime error (missing group, refused reset, failed delete, unreachable cluster), 2 a usage
error, 3 ``--fail-on-lag`` / ``--fail-on-lag-seconds`` exceeded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand

from commands._exit import FAILURE, THRESHOLD, USAGE, CliError, handle_errors
from commands._options import BootstrapOption, CommandConfigOption, OutputOption, TimeoutOption
from commands._render import Output, Table, render, resolve_output

T = TypeVar("T")
app = typer.Typer(add_completion=False, rich_markup_mode=None)

ACTIONS = ("list", "describe", "delete", "reset_offsets", "delete_offsets")
SCENARIOS = ("to_offset", "shift_by", "to_datetime", "by_duration", "to_earliest", "to_latest", "to_current",
             "from_file")
NO_EXECUTE_WARNING = (
    "WARN: No action will be performed as the --execute option is missing.In a future major release, the default "
    "behavior of this command will be to prompt the user before executing the reset rather than doing a dry run. You "
    "should add the --dry-run option explicitly if you are scripting this command and want to keep the current "
    "default behavior without prompting.")

@dataclass(frozen=True)
class Args:
    """The parsed command line (Kafka's option names, dashes as underscores)."""

    bootstrap: str | None
    command_config: Path | None
    timeout: int
    output: Output | None
    list: bool
    describe: bool
    delete: bool
    reset_offsets: bool
    delete_offsets: bool
    group: tuple[str, ...]
    all_groups: bool
    topic: tuple[str, ...]
    all_topics: bool
    members: bool
    offsets: bool
    state: str | None
    verbose: bool
    to_earliest: bool
    to_latest: bool
    to_current: bool
    to_offset: int | None
    shift_by: int | None
    to_datetime: str | None
    by_duration: str | None
    from_file: Path | None
    dry_run: bool
    execute: bool
    export: bool
    time_lag: bool
    fail_on_lag: int | None
    fail_on_lag_seconds: float | None

    def given(self, name: str) -> bool:
        """Whether option ``name`` was given on the command line."""
        value = getattr(self, name)
        return bool(value) if isinstance(value, (bool, tuple)) else value is not None


class ConsumerGroupsCommand(TyperCommand):
    """Kafka's ``--state`` takes an optional value: alone (last, or before another option) it is
    rewritten to ``--state=`` before parsing, since Typer options always take their value."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        rewritten = ["--state=" if a == "--state" and (i + 1 == len(args) or args[i + 1].startswith("-")) else a
                     for i, a in enumerate(args)]
        return super().parse_args(ctx, rewritten)


def usage(message: str) -> CliError:
    """A usage error (exit 2) with Kafka's message."""
    return CliError(message, USAGE)


def _conflict(args: Args, first: str, others: tuple[str, ...]) -> None:
    """Kafka's ``checkInvalidArgs``: ``first`` cannot be combined with any of ``others``."""
    for other in others:
        if args.given(first) and args.given(other):
            raise usage(f'Option "[{first.replace("_", "-")}]" can\'t be used with option "[{other.replace("_", "-")}]"')


def validate(args: Args) -> str:
    """Kafka's ``checkArgs`` (plus our own options); returns the action."""
    from pykafka_ops.services.groups import InvalidArgumentError, parse_topic_arg

    actions = [a for a in ACTIONS if args.given(a)]
    if len(actions) != 1:
        raise usage("Command must include exactly one action: --list, --describe, --delete, --reset-offsets, "
                    "--delete-offsets")
    action = actions[0]
    scope_needed = action in ("describe", "delete", "reset_offsets")
    if scope_needed and not args.group and not args.all_groups:
        raise usage(f"Option [{action.replace('_', '-')}] takes one of these options: [group], [all-groups]")
    if action == "describe":
        if sum(map(args.given, ("members", "offsets", "state"))) > 1:
            raise usage("Option [describe] takes at most one of these options: [members], [offsets], [state]")
        if args.state:
            raise usage("Option [describe] does not take a value for [state]")
    elif args.given("members") or args.given("offsets") or args.given("verbose") or (args.state is not None and action != "list"):
        option = next(o for o in ("members", "offsets", "verbose", "state") if args.given(o))
        raise usage(f"Option [{option}] can be used only with [describe]" + (" or [list]" if option == "state" else ""))
    if action == "delete" and args.topic:
        raise usage("The consumer does not support topic-specific offset deletion from a consumer group.")
    if action == "delete_offsets" and (len(args.group) != 1 or not args.topic or args.all_groups):
        raise usage("Option [delete-offsets] takes the following options: [group], [topic]")
    for arg in args.topic:
        try:
            parse_topic_arg(arg)
        except InvalidArgumentError as exc:
            raise usage(str(exc)) from None
    if action == "reset_offsets":
        _validate_reset(args)
    else:
        for option in SCENARIOS + ("dry_run", "execute", "export", "all_topics"):
            if args.given(option):
                raise usage(f"Option [{option.replace('_', '-')}] can be used only with [reset-offsets]")
    _conflict(args, "group", ("all_groups",))
    _conflict(args, "group", ("list",))
    _conflict(args, "topic", ("list", "describe"))
    lag_options = [o for o in ("time_lag", "fail_on_lag", "fail_on_lag_seconds") if args.given(o)]
    if lag_options and (action != "describe" or args.members or args.state is not None):
        raise usage(f"Option [{lag_options[0].replace('_', '-')}] can be used only with [describe] [offsets]")
    return action


def _validate_reset(args: Args) -> None:
    if args.dry_run and args.execute:
        raise usage("Option [reset-offsets] only accepts one of [execute] and [dry-run]")
    for scenario in SCENARIOS:
        _conflict(args, scenario, tuple(s for s in SCENARIOS if s != scenario))
    if not any(map(args.given, SCENARIOS)):
        raise usage("Option '[reset-offsets]' requires one of the following scenarios: "
                    + ", ".join(f"[{s.replace('_', '-')}]" for s in SCENARIOS))
    _conflict(args, "all_topics", ("topic",))
    if not args.from_file and not args.all_topics and not args.topic:
        raise usage("One of the reset scopes should be defined: --all-topics, --topic.")
    if args.export and args.output is not None:
        raise usage('Option "[export]" can\'t be used with option "[output]"')


def run(args: Args, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(admin)`` against the cluster of the command line's connection options."""
    from pykafka_ops.client.connection import client_settings

    return run_with_admin(client_settings(args.bootstrap, args.command_config, args.timeout), work)


def run_with_admin(settings: Any, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(admin)`` with a ``KafkaAdmin`` for ``settings``; fails at once if no bootstrap server
    accepts connections (instead of waiting for the timeout)."""
    from pykafka_ops.client.admin import KafkaAdmin

    async def main() -> T:
        admin = KafkaAdmin(settings)
        try:
            _reachable, result = await asyncio.gather(admin.ensure_reachable(), work(admin))
            return result
        finally:
            admin.close()

    return asyncio.run(main())


def emit(args: Args, text: str, tables: list[Table], payload: Any, errors: Sequence[str] = ()) -> None:
    """Kafka's text (errors inline, as Kafka prints them) or a table/data format (errors on stderr)."""
    if resolve_output(args.output) is Output.text:
        typer.echo(text, nl=False)
        return
    for error in errors:
        typer.echo(f"Error: {error}", err=True)
    render(args.output, tables, payload)


def describe_offsets(args: Args) -> int:
    """``--describe [--offsets]``: lag per partition; exit 3 when a ``--fail-on-*`` threshold is exceeded."""
    from commands import consumer_groups_data as data
    from commands import consumer_groups_text as text
    from pykafka_ops.services.groups import group_ids
    from pykafka_ops.services.lag import describe_group_lag

    time_lag = args.time_lag or args.fail_on_lag_seconds is not None

    async def work(admin: Any) -> Any:
        return await describe_group_lag(admin, await group_ids(admin, args.group, args.all_groups), time_lag)

    lags = run(args, work)
    for lag in lags:
        if (line := text.notice(lag.description)) is not None:
            typer.echo(line, err=True)
    errors = [e for lag in lags if (e := text.problem(lag.description, lag.error)) is not None]
    emit(args, text.describe_offsets(lags, time_lag, args.verbose), [data.offsets_table(lags, time_lag, args.verbose)],
         data.offsets_payload(lags), errors)
    for note in text.time_lag_notes(lags):
        typer.echo(note, err=True)
    if errors:
        return FAILURE
    breach = lag_breach(lags, args.fail_on_lag, args.fail_on_lag_seconds)
    if breach is not None:
        typer.echo(f"pko: {breach}", err=True)
        return THRESHOLD
    return 0


def lag_breach(lags: list[Any], max_lag: int | None, max_seconds: float | None) -> str | None:
    """The first partition whose lag exceeds ``--fail-on-lag`` or ``--fail-on-lag-seconds``, described."""
    for lag in lags:
        for r in lag.partitions:
            if max_lag is not None and r.lag is not None and r.lag > max_lag:
                return f"group '{lag.group_id}' lags {r.lag} records on {r.topic}-{r.partition} (--fail-on-lag {max_lag})"
            if max_seconds is not None and r.lag_seconds is not None and r.lag_seconds > max_seconds:
                return (f"group '{lag.group_id}' lags {r.lag_seconds:.3f} s on {r.topic}-{r.partition} "
                        f"(--fail-on-lag-seconds {max_seconds:g})")
    return None


def describe_groups(args: Args) -> int:
    """``--describe --members [--verbose]`` or ``--describe --state``."""
    from commands import consumer_groups_data as data
    from commands import consumer_groups_text as text
    from pykafka_ops.services.groups import describe_all

    groups = run(args, lambda admin: describe_all(admin, args.group, args.all_groups))
    for group in groups:
        if (line := text.notice(group)) is not None:
            typer.echo(line, err=True)
    errors = [e for g in groups if (e := text.problem(g)) is not None]
    if args.members:
        emit(args, text.describe_members(groups, args.verbose), [data.members_table(groups, args.verbose)],
             data.members_payload(groups), errors)
    else:
        emit(args, text.describe_state(groups), [data.state_table(groups)], data.state_payload(groups), errors)
    return FAILURE if errors else 0


def list_groups(args: Args) -> int:
    """``--list [--state [s1,s2]]``."""
    from commands import consumer_groups_data as data
    from commands import consumer_groups_text as text
    from pykafka_ops.services.groups import InvalidArgumentError, list_groups, parse_states

    try:
        states = parse_states(args.state) if args.state else frozenset()
    except InvalidArgumentError as exc:
        raise usage(str(exc)) from None
    listings = run(args, lambda admin: list_groups(admin, states))
    emit(args, text.list_groups(listings, args.state is not None), [data.list_table(listings)],
         data.list_payload(listings))
    return 0


def delete(args: Args) -> int:
    """``--delete``: whole groups."""
    from commands import consumer_groups_data as data
    from commands import consumer_groups_text as text
    from pykafka_ops.services.groups import delete_groups, group_ids

    async def work(admin: Any) -> Any:
        return await delete_groups(admin, await group_ids(admin, args.group, args.all_groups))

    deletions = run(args, work)
    failed = [f"Group '{d.group_id}' could not be deleted due to: {d.error}" for d in deletions if d.error]
    emit(args, text.delete_groups(deletions), [data.delete_table(deletions)], data.delete_payload(deletions), failed)
    return FAILURE if failed else 0


def delete_offsets(args: Args) -> int:
    """``--delete-offsets --group g --topic t[:p,…]``: OffsetDelete through our codec; exit 1 if any
    partition (or topic lookup) failed, even when Kafka's status line says the request succeeded."""
    from commands import consumer_groups_data as data
    from commands import consumer_groups_text as text
    from pykafka_ops.services.groups import delete_offsets

    result = run(args, lambda admin: delete_offsets(admin, args.group[0], args.topic))
    errors = [result.error_message] if result.error_message else []
    emit(args, text.delete_offsets(result), [data.delete_offsets_table(result)], data.delete_offsets_payload(result),
         errors)
    return FAILURE if result.error or any(r.error for r in result.partitions) else 0


def reset(args: Args) -> int:
    """``--reset-offsets``: print the plan (dry run, the default) or commit it (``--execute``)."""
    from commands.consumer_groups_reset import reset_offsets

    return reset_offsets(args)


DISPATCH: dict[str, Callable[[Args], int]] = {
    "list": list_groups, "delete": delete, "reset_offsets": reset, "delete_offsets": delete_offsets,
}

GroupsOption = Annotated[list[str] | None, typer.Option("--group", metavar="GROUP", help="Consumer group id (repeatable).")]
TopicsOption = Annotated[list[str] | None, typer.Option(
    "--topic", metavar="TOPIC[:P,…]", help="t or t:0,1,2 (repeatable): reset scope, or the offsets to delete.")]


@app.command(cls=ConsumerGroupsCommand, no_args_is_help=True)
@handle_errors
def consumer_groups(
    bootstrap: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 5000,
    output: OutputOption = None,
    list_: Annotated[bool, typer.Option("--list", help="List all consumer groups.")] = False,
    describe: Annotated[bool, typer.Option("--describe", help="Describe groups: offsets and lag (default).")] = False,
    delete_: Annotated[bool, typer.Option("--delete", help="Delete groups.")] = False,
    reset_offsets: Annotated[bool, typer.Option("--reset-offsets", help="Reset committed offsets.")] = False,
    delete_offsets_: Annotated[bool, typer.Option("--delete-offsets", help="Delete committed offsets.")] = False,
    group: GroupsOption = None,
    all_groups: Annotated[bool, typer.Option("--all-groups", help="Act on every group.")] = False,
    topic: TopicsOption = None,
    all_topics: Annotated[bool, typer.Option("--all-topics", help="Reset scope: every committed partition.")] = False,
    members: Annotated[bool, typer.Option("--members", help="With --describe: members.")] = False,
    offsets: Annotated[bool, typer.Option("--offsets", help="With --describe: offsets and lag.")] = False,
    state: Annotated[str | None, typer.Option(
        "--state", metavar="[S1,S2]", help="With --describe: group state. With --list: add STATE, filter by s1,s2.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="With --describe: more columns.")] = False,
    to_earliest: Annotated[bool, typer.Option("--to-earliest", help="Reset to the log-start offset.")] = False,
    to_latest: Annotated[bool, typer.Option("--to-latest", help="Reset to the log-end offset.")] = False,
    to_current: Annotated[bool, typer.Option("--to-current", help="Reset to the committed offset.")] = False,
    to_offset: Annotated[int | None, typer.Option("--to-offset", metavar="OFFSET", min=-(2**63), max=2**63 - 1,
                                                  help="Reset to this offset (clamped).")] = None,
    shift_by: Annotated[int | None, typer.Option("--shift-by", metavar="N", min=-(2**63), max=2**63 - 1,
                                                 help="Move the committed offset by n (clamped).")] = None,
    to_datetime: Annotated[str | None, typer.Option(
        "--to-datetime", metavar="DATETIME", help="YYYY-MM-DDTHH:mm:SS[.sss][Z|±hh:mm] (UTC if no zone) or epoch ms.")] = None,
    by_duration: Annotated[str | None, typer.Option("--by-duration", metavar="DURATION", help="ISO-8601 duration back from now: PT1H.")] = None,
    from_file: Annotated[Path | None, typer.Option("--from-file", metavar="CSV", exists=True, dir_okay=False,
                                                   help="CSV reset plan (as --export writes it).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print the plan (the default).")] = False,
    execute: Annotated[bool, typer.Option("--execute", help="Commit the plan.")] = False,
    export: Annotated[bool, typer.Option("--export", help="Print the plan as CSV (for --from-file).")] = False,
    time_lag: Annotated[bool, typer.Option("--time-lag", help="Add LAG-SECONDS (time lag of lagging partitions).")] = False,
    fail_on_lag: Annotated[int | None, typer.Option("--fail-on-lag", metavar="N", min=0, help="Exit 3 if a partition lags more than N records.")] = None,
    fail_on_lag_seconds: Annotated[float | None, typer.Option(
        "--fail-on-lag-seconds", metavar="S", min=0, help="Exit 3 if a partition lags more than S seconds (implies --time-lag).")] = None,
) -> None:
    """List, describe, delete consumer groups and reset their offsets (kafka-consumer-groups)."""
    args = Args(bootstrap, command_config, timeout, output, list_, describe, delete_, reset_offsets, delete_offsets_,
                tuple(group or ()), all_groups, tuple(topic or ()), all_topics, members, offsets, state, verbose,
                to_earliest, to_latest, to_current, to_offset, shift_by, to_datetime, by_duration, from_file,
                dry_run, execute, export, time_lag, fail_on_lag, fail_on_lag_seconds)
    action = validate(args)
    handler: Callable[[Args], int]
    if action == "describe":
        handler = describe_groups if args.members or args.state is not None else describe_offsets
    else:
        handler = DISPATCH[action]
    code = handler(args)
    if code:
        raise typer.Exit(code)
