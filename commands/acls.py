"""`pko acls`: kafka-acls — ``--add``, ``--list`` and ``--remove`` ACLs with kafka-acls' flags.

Resources: ``--topic``, ``--group``, ``--transactional-id`` (each repeatable), ``--cluster``;
``--resource-pattern-type literal|prefixed`` (and ``any|match`` to list or remove). Entries:
``--allow-principal``/``--deny-principal`` (``User:alice``), ``--allow-host``/``--deny-host``
(default ``*``), ``--operation`` (repeatable, default ALL), or ``--producer``/``--consumer`` (with
``--idempotent``), expanded as kafka-acls does. ``--remove`` asks y/N unless ``--force``, and
refuses when no answer can be read. Text output is kafka-acls' ("Current ACLs for resource
`ResourcePattern(...)`:" and one entry per line); ``--output json|yaml`` gives the ACLs as data.

Exit codes: 2 for bad flags (one line); 1 when the cluster has no authorizer, cannot be reached
(naming the bootstrap servers) or refuses a request; else 0.
"""

from __future__ import annotations

from itertools import groupby
from typing import TYPE_CHECKING, Annotated

import typer

from commands._exit import USAGE, CliError, handle_errors
from commands._options import BootstrapOption, CommandConfigOption, OutputOption, TimeoutOption
from commands._render import Output

if TYPE_CHECKING:
    from pykafka_ops.services.acls import Acl

OPERATIONS = ("All", "Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction", "DescribeConfigs",
              "AlterConfigs", "IdempotentWrite", "CreateTokens", "DescribeTokens")
PATTERN_TYPES = ("literal", "prefixed", "match", "any")

def _operation(value: str) -> str:
    """kafka-acls' operation names (``Read``, ``ClusterAction`` …, any case) as Kafka's enum names."""
    for name in OPERATIONS:
        if value.replace("_", "").replace("-", "").lower() == name.lower():
            return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name)).upper()
    raise CliError(f"--operation {value!r} is not one of {', '.join(OPERATIONS)}", USAGE)


def _text(acls: list[Acl], verb: str = "Current") -> str:
    blocks = []
    for resource, entries in groupby(sorted(acls), key=lambda acl: acl.resource):
        lines = "\n".join(f" \t{acl.entry} " for acl in entries)
        blocks.append(f"{verb} ACLs for resource `{resource}`: \n{lines} \n")
    return "\n".join(blocks)


def _confirm(question: str) -> bool:
    """y/N from stdin (a TTY or a pipe); no answer to read refuses."""
    typer.echo(f"{question} (y/n)", nl=False)
    try:
        answer = input(" ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


app = typer.Typer(add_completion=False, rich_markup_mode=None)


@app.command()
@handle_errors
def acls(
    add: Annotated[bool, typer.Option("--add", help="Add the ACLs the flags describe.")] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the ACLs matching the flags.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the ACLs of the resources (all without one).")] = False,
    topic: Annotated[list[str] | None, typer.Option("--topic", help="Topic resource (repeatable).")] = None,
    group: Annotated[list[str] | None, typer.Option("--group", help="Consumer group resource (repeatable).")] = None,
    transactional_id: Annotated[list[str] | None, typer.Option(
        "--transactional-id", help="Transactional id resource (repeatable).")] = None,
    cluster: Annotated[bool, typer.Option("--cluster", help="The cluster resource (kafka-cluster).")] = False,
    pattern_type: Annotated[str, typer.Option(
        "--resource-pattern-type", help="literal or prefixed; any or match to list or remove.")] = "literal",
    allow_principal: Annotated[list[str] | None, typer.Option(
        "--allow-principal", help="Principal to allow, e.g. User:alice (repeatable).")] = None,
    deny_principal: Annotated[list[str] | None, typer.Option(
        "--deny-principal", help="Principal to deny (repeatable).")] = None,
    allow_host: Annotated[list[str] | None, typer.Option("--allow-host", help="Host of allow ACLs (default *).")
                          ] = None,
    deny_host: Annotated[list[str] | None, typer.Option("--deny-host", help="Host of deny ACLs (default *).")
                         ] = None,
    operation: Annotated[list[str] | None, typer.Option(
        "--operation", help=f"Operation (repeatable, default All): {', '.join(OPERATIONS)}.")] = None,
    producer: Annotated[bool, typer.Option(
        "--producer", help="Producer ACLs: WRITE, DESCRIBE, CREATE on topics.")] = False,
    consumer: Annotated[bool, typer.Option(
        "--consumer", help="Consumer ACLs: READ, DESCRIBE on topics, READ on groups.")] = False,
    idempotent: Annotated[bool, typer.Option("--idempotent", help="With --producer: IDEMPOTENT_WRITE on the cluster.")
                          ] = False,
    force: Annotated[bool, typer.Option("--force", help="Do not ask before removing.")] = False,
    bootstrap_server: BootstrapOption = None,
    command_config: CommandConfigOption = None,
    timeout: TimeoutOption = 30000,
    output: OutputOption = None,
) -> None:
    """Add, list or remove ACLs (kafka-acls)."""
    from pykafka_ops.client.connection import client_settings
    from pykafka_ops.services import acls as service

    if add + remove + list_ != 1:
        raise CliError("give exactly one of --add, --remove and --list", USAGE)
    if pattern_type.lower() not in PATTERN_TYPES:
        raise CliError(f"--resource-pattern-type {pattern_type!r} is not one of {', '.join(PATTERN_TYPES)}", USAGE)
    if (producer or consumer) and not add:
        raise CliError("--producer and --consumer go with --add", USAGE)
    if output is not None and output not in (Output.json, Output.yaml, Output.text):
        raise CliError("--output takes text, json or yaml here", USAGE)
    flags = service.AclFlags(topic or [], group or [], transactional_id or [], cluster, pattern_type.upper(),
                             allow_principal or [], deny_principal or [], allow_host or [], deny_host or [],
                             [_operation(op) for op in operation or []], producer, consumer, idempotent)
    try:
        planned = service.acls_to_add(flags) if add else service.acl_filters(flags)
    except service.AclsError as exc:
        raise CliError(str(exc), USAGE) from None
    settings = client_settings(bootstrap_server, command_config, timeout)
    try:
        if add:
            typer.echo(_text(planned, "Adding"))
            service.add_acls(settings, planned)
        elif remove:
            if not force and not _confirm("Are you sure you want to remove the ACLs matching these filters?"):
                raise CliError("not removing ACLs without a confirmation (use --force)", USAGE)
            typer.echo(_text(service.remove_acls(settings, planned), "Removed"))
        else:
            _show(service.list_acls(settings, planned), output)
    except service.AclsError as exc:
        raise CliError(str(exc)) from None


def _show(found: list[Acl], output: Output | None) -> None:
    from dataclasses import asdict

    from commands._render import dump

    if output in (Output.json, Output.yaml):
        typer.echo(dump([asdict(acl) for acl in found], output))
    elif found:
        typer.echo(_text(found))
