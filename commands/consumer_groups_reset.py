"""`pko consumer-groups --reset-offsets`: scenario and scope from the flags, one service call, Kafka's output.

Dry run is the default (with Kafka's WARN when neither ``--dry-run`` nor ``--execute`` is
given); ``--execute`` commits and prints the same plan; ``--export`` prints Kafka's CSV instead
(``topic,partition,offset`` for exactly one ``--group``, else with the group first). Clamped
offsets get Kafka's WARN on stderr. A refused (active) group or a failed commit exits 1.
"""

from __future__ import annotations

from typing import Any

import typer

from commands._exit import FAILURE
from commands._render import Output, resolve_output
from commands.consumer_groups import NO_EXECUTE_WARNING, Args, emit, run, usage
from pykafka_ops.models.groups import ResetScenario


def scenario_of(args: Args) -> ResetScenario:
    """The ``ResetScenario`` for the one scenario flag given (usage errors for unparsable values)."""
    from pykafka_ops.services.groups import InvalidArgumentError
    from pykafka_ops.services.offsets import parse_datetime, parse_duration, parse_reset_csv

    try:
        if args.to_datetime is not None:
            return ResetScenario("to-datetime", parse_datetime(args.to_datetime))
        if args.by_duration is not None:
            return ResetScenario("by-duration", parse_duration(args.by_duration))
        if args.from_file is not None:
            try:
                return ResetScenario("from-file", plan=parse_reset_csv(args.from_file.read_text(), args.group))
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(f"{args.from_file}: {exc}") from None
    except InvalidArgumentError as exc:
        raise usage(str(exc)) from None
    if args.to_offset is not None:
        return ResetScenario("to-offset", args.to_offset)
    if args.shift_by is not None:
        return ResetScenario("shift-by", args.shift_by)
    name = next(n for n in ("to_earliest", "to_latest", "to_current") if getattr(args, n))
    return ResetScenario(name.replace("_", "-"))


def reset_offsets(args: Args) -> int:
    """Plan (and with ``--execute`` commit) the reset, print it, return the exit code."""
    from commands import consumer_groups_data as data
    from commands import consumer_groups_text as text
    from pykafka_ops.services.groups import group_ids
    from pykafka_ops.services.offsets import export_csv, reset_offsets

    scenario = scenario_of(args)
    if not args.dry_run and not args.execute:
        typer.echo(NO_EXECUTE_WARNING, err=True)
    topics = () if args.all_topics else args.topic

    async def work(admin: Any) -> Any:
        groups = await group_ids(admin, args.group, args.all_groups)
        return await reset_offsets(admin, groups, scenario, topics, execute=args.execute)

    plans = run(args, work)
    for warning in text.clamp_warnings(plans):
        typer.echo(warning, err=True)
    errors = [p.error for p in plans if p.error is not None]
    if args.export or resolve_output(args.output) is not Output.text:
        for plan in plans:
            for tp in plan.empty_partitions:
                typer.echo(f"Warn: Partition {tp.partition} from topic {tp.topic} is empty. "
                           "Falling back to latest known offset.", err=True)
    if args.export:
        for error in errors:
            typer.echo(f"Error: {error}", err=True)
        typer.echo(export_csv(plans, with_group=len(args.group) != 1))
    else:
        emit(args, text.reset_plan(plans), [data.reset_table(plans)], data.reset_payload(plans, args.execute), errors)
    return FAILURE if errors else 0
